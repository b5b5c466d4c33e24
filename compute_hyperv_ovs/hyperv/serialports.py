"""Which COM port gets which named pipe: the image's choice.

Every Hyper-V VM has COM1 and COM2.  compute-hyperv 16's image properties
(``vmops._get_image_serial_port_settings``) choose what each is for:

- ``interactive_serial_port`` (1 or 2, default 1): the port connected to
  ``\\\\.\\pipe\\<instance uuid>_rw``, which the interactive serial console
  joins (and which is logged when no port is read-only);
- ``logging_serial_port`` (1 or 2, default 1): the port connected to
  ``\\\\.\\pipe\\<instance uuid>_ro``, which is only logged to the console
  log (``serialconsole.console_log_pipe``).

Each defaults to COM1 on its own, as in compute-hyperv: with neither set,
COM1 is read-write and logged (nova 28's only layout); with only
``interactive_serial_port=2``, COM1 is the logged read-only port and COM2
the interactive one.  Both may name the same port: it is then the
read-write one, logged too.  Any other value is refused before anything
is created (compute-hyperv raised ``ImageSerialPortNumberInvalid`` from
deep inside the spawn, and a value that is no number failed with a bare
``ValueError``).

nova 34's ``ImageMetaProps`` has no field for either property (only
``hw_serial_port_count``, which Hyper-V's fixed two ports ignore), and
``ImageMeta.from_dict`` drops properties it does not know.  nova-api keeps
every image property, as a string, in the instance's system metadata as
``image_<name>`` (``nova.utils.get_system_metadata_from_image``; a
rebuild replaces them with the new image's), which is where they are read
(``vmsettings.image_properties``).
"""

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import vmsettings

IMAGE_PROP_INTERACTIVE = 'interactive_serial_port'
IMAGE_PROP_LOGGING = 'logging_serial_port'

COM_PORTS = (1, 2)
DEFAULT_PORT = constants.SERIAL_CONSOLE_PORT


def _port(props, name):
    value = props.get(name)
    if value is None or str(value).strip() == '':
        return DEFAULT_PORT
    try:
        port = int(str(value).strip())
    except ValueError:
        port = None
    if port not in COM_PORTS:
        raise exception.ImageSerialPortInvalid(name=name, value=value)
    return port


def port_pipe_types(instance):
    """{COM port number: pipe type} the instance's image asks for.

    :returns: dict of 1 and/or 2 -> ``constants.SERIAL_PORT_TYPE_RW`` or
        ``SERIAL_PORT_TYPE_RO``; the read-write port always, the read-only
        port when it is another one.
    :raises compute_hyperv_ovs.exception.ImageSerialPortInvalid: a value
        that is not 1 or 2.
    """
    props = vmsettings.image_properties(instance)
    interactive = _port(props, IMAGE_PROP_INTERACTIVE)
    logging_port = _port(props, IMAGE_PROP_LOGGING)
    ports = {interactive: constants.SERIAL_PORT_TYPE_RW}
    if logging_port != interactive:
        ports[logging_port] = constants.SERIAL_PORT_TYPE_RO
    return ports


def pipe_path(instance, pipe_type):
    r"""``\\.\pipe\<instance uuid>_<rw|ro>``."""
    return r'\\.\pipe\%s_%s' % (instance.uuid, pipe_type)
