"""The VMs' serial consoles: their logs and the interactive console.

vmops connects each VM's COM ports to named pipes of which the running VM
is the server: the interactive port to ``\\\\.\\pipe\\<instance
uuid>_rw`` and, when the image names another logging port, that one to
``..._ro`` (COM1 read-write by default; the image properties
``interactive_serial_port`` and ``logging_serial_port``, see
:mod:`.serialports`).  While the VM runs, an os-win ``NamedPipeHandler``
(``utilsfactory.get_named_pipe_handler``) reads the logged pipe in a thread
of its own and appends what the guest prints to ``<instance
dir>\\console.log``; when the file reaches os-win's
``MAX_CONSOLE_LOG_FILE_SIZE`` (512 KiB) os-win moves it to
``console.log.1`` and starts a new one, so a log is at most two files
(nova 28 ``serialconsolehandler`` / ``serialconsoleops``).

With ``[serial_console] enabled`` each running VM also gets an
interactive console (nova 28 ``SerialConsoleHandler._setup_serial_proxy_
handler``): a TCP port from ``nova.console.serial.acquire_port`` (in
``[serial_console] port_range``) on ``[serial_console]
proxyclient_address``, where a :class:`~.serialproxy.SerialProxy` joins
one client at a time to the VM's read-write pipe: the same pipe handler
that feeds the log also hands the guest's output to the client and writes
the client's input to the guest (os-win's ``input_queue`` /
``output_queue`` / ``connect_event``).  ``get_serial_console`` answers
that address and port; nova-serialproxy connects its websocket clients
there.  A read-only ('_ro') pipe is only logged.

Handlers start when a VM starts (the event handler's callback), for every
running VM at ``init_host``, and stop (the proxy's port released) when the
VM stops, is destroyed or leaves the host.  os-win's pipe handlers use
kernel32 only, no WMI, and expect their caller to serialise
``start``/``stop``: each VM's are, by a lock per VM.
"""

import threading

import nova.conf
from nova.console import serial as serial_ports
from nova.console import type as console_type
from nova import exception
from nova.i18n import _
from os_win.utils.io import ioutils
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs import conf  # noqa: F401
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.hyperv import serialproxy

CONF = nova.conf.CONF

LOG = logging.getLogger(__name__)

# vmops names a COM port's pipe after what it is for: '_ro' only feeds the
# log, '_rw' may also be offered interactively.  nova 28 tagged pipes by
# suffix because Hyper-V does not keep a serial port's ElementName
# (serialconsolehandler._get_vm_serial_port_mapping).
_PIPE_SUFFIXES = ('_' + constants.SERIAL_PORT_TYPE_RO,
                  '_' + constants.SERIAL_PORT_TYPE_RW)


def console_log_pipe(pipe_paths):
    """The pipe whose output goes to the console log, or None.

    A read-only ('_ro') pipe when the VM has one, else its read-write or
    untagged pipe (nova 28 logged the 'rw' pipe only when no 'ro' pipe
    existed).

    :param pipe_paths: the VM's COM port pipe paths (os-win
        ``get_vm_serial_port_connections``).
    :returns: str or None.
    """
    read_only = [path for path in pipe_paths
                 if path.endswith(_PIPE_SUFFIXES[0])]
    others = [path for path in pipe_paths if path not in read_only]
    for candidates in (read_only, others):
        if candidates:
            return sorted(candidates)[0]
    return None


def interactive_pipe(pipe_paths):
    """The pipe an interactive console is joined to, or None.

    The VM's read-write ('_rw') or untagged pipe, never a read-only one
    (nova 28 ``_get_vm_serial_port_mapping``).

    :param pipe_paths: the VM's COM port pipe paths.
    :returns: str or None.
    """
    candidates = sorted(path for path in pipe_paths
                        if not path.endswith(_PIPE_SUFFIXES[0]))
    return candidates[0] if candidates else None


class _ConsoleQueue(ioutils.IOQueue):
    """os-win's IOQueue, giving up sooner once the client has gone.

    os-win's pipe writer calls ``get()`` with IOQueue's default wait of
    ``IO_QUEUE_TIMEOUT`` (2 s) between looks at the client event, and
    ``NamedPipeHandler.stop`` waits for that writer: each console would
    hold up a power off, a migration or the service's stop by up to 2 s.
    """

    WAIT = 0.2

    def get(self, timeout=WAIT, continue_on_timeout=True):
        return super().get(timeout=timeout,
                           continue_on_timeout=continue_on_timeout)


class _VMConsole(object):
    """What runs for one VM's console: its pipe handlers and proxy."""

    def __init__(self):
        self.handlers = []
        self.log_handler = None
        self.proxy = None

    def stop(self):
        """Stop the proxy (its port released), then the pipe handlers.

        The proxy first: it clears the client event, which lets the
        interactive pipe handler's writer end (``IOQueue.get``).
        """
        if self.proxy is not None:
            self.proxy.stop()
            serial_ports.release_port(self.proxy.address, self.proxy.port)
            self.proxy = None
        for handler in self.handlers:
            handler.stop()
        self.handlers = []


class SerialConsoleOps(object):
    """The serial consoles of this host's VMs, by VM name."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._pathutils = pathutils.PathUtils()
        self._consoles = {}
        self._locks = {}
        self._locks_guard = threading.Lock()

    def _vm_lock(self, instance_name):
        with self._locks_guard:
            return self._locks.setdefault(instance_name, threading.Lock())

    def start_console_handlers(self):
        """Start the console of every running VM nova made (``init_host``).

        A VM counts as nova's when it has an instance directory (nova 28
        ``start_console_handlers``).
        """
        for instance_name in self._vmutils.get_active_instances():
            instance_dir = self._pathutils.get_instance_dir(
                instance_name, create_dir=False)
            if self._pathutils.exists(instance_dir):
                self.start_console_handler(instance_name)

    def stop_console_handlers(self):
        """Stop every console (``cleanup_host``).

        The log files close and the serial console ports are released.
        """
        with self._locks_guard:
            instance_names = list(self._consoles)
        # Side by side: os-win's interactive pipe handler takes up to a
        # second to stop (its writer polls the client event once a
        # second, NamedPipeHandler._get_data_to_write).
        stoppers = [threading.Thread(target=self.stop_console_handler,
                                     args=(instance_name,), daemon=True)
                    for instance_name in instance_names]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def start_console_handler(self, instance_name):
        """Log the running VM's console, replacing any earlier handler.

        With ``[serial_console] enabled``, the VM's interactive console is
        offered too.  Failures are logged, not raised: a VM without its
        console log or interactive console still runs (nova 28 did the
        same); a proxy that cannot listen leaves the log running.

        :returns: True when the console log handler runs.
        """
        with self._vm_lock(instance_name):
            self._stop_console(instance_name)
            console = _VMConsole()
            try:
                self._start_console(instance_name, console)
            except Exception as exc:
                console.stop()
                LOG.error('The console log of VM %(vm)s cannot be '
                          'recorded: %(error)s',
                          {'vm': instance_name, 'error': exc})
                return False
            self._consoles[instance_name] = console
        return True

    def _start_console(self, instance_name, console):
        """:raises nova.exception.ConsoleNotAvailable: no COM port pipe."""
        pipes = self._vmutils.get_vm_serial_port_connections(instance_name)
        log_pipe = console_log_pipe(pipes)
        if log_pipe is None:
            raise exception.ConsoleNotAvailable(_(
                'VM %s has no COM port connected to a named pipe; a VM '
                'created by this driver has one') % instance_name)
        # The writer makes the directory the log goes in (the readers of
        # get_vm_console_log_paths do not): a VM started by hand or
        # re-registered after a host rebuild may not have one.
        self._pathutils.get_instance_dir(instance_name)
        log_path = self._pathutils.get_vm_console_log_paths(
            instance_name)[0]
        queues = {}
        rw_pipe = interactive_pipe(pipes)
        if CONF.serial_console.enabled and rw_pipe is not None:
            queues = self._start_proxy(instance_name, console)
        for pipe in sorted(set([log_pipe] + ([rw_pipe] if queues else []))):
            kwargs = dict(queues) if pipe == rw_pipe else {}
            if pipe == log_pipe:
                kwargs['log_file'] = log_path
            handler = utilsfactory.get_named_pipe_handler(pipe, **kwargs)
            # os-win stops the handler itself when start() fails.
            handler.start()
            console.handlers.append(handler)
            if pipe == log_pipe:
                console.log_handler = handler
        LOG.debug('Logging the console of VM %(vm)s from %(pipe)s to '
                  '%(log)s', {'vm': instance_name, 'pipe': log_pipe,
                              'log': log_path})

    def _start_proxy(self, instance_name, console):
        """Start the VM's TCP console.

        :returns: the pipe handler's queue arguments, or {} when it cannot
            listen (logged; the console log goes on without it).
        """
        address = CONF.serial_console.proxyclient_address
        try:
            port = serial_ports.acquire_port(address)
        except exception.SocketPortRangeExhaustedException as exc:
            LOG.error('VM %(vm)s gets no serial console: %(error)s; widen '
                      '[serial_console] port_range',
                      {'vm': instance_name, 'error': exc.format_message()})
            return {}
        client_connected = threading.Event()
        to_vm = _ConsoleQueue(client_connected=client_connected)
        from_vm = _ConsoleQueue(client_connected=client_connected)
        proxy = serialproxy.SerialProxy(instance_name, address, port,
                                        to_vm, from_vm, client_connected)
        try:
            proxy.start()
        except exception.NovaException as exc:
            serial_ports.release_port(address, port)
            LOG.error('VM %(vm)s gets no serial console: %(error)s',
                      {'vm': instance_name, 'error': exc.format_message()})
            return {}
        console.proxy = proxy
        return {'input_queue': to_vm, 'output_queue': from_vm,
                'connect_event': client_connected}

    def stop_console_handler(self, instance_name):
        """Stop the VM's console log and interactive console, if any.

        Needed before the instance directory is removed: the handler holds
        the log file open (nova bug #1556189).  The serial console's port
        goes back to ``[serial_console] port_range``.
        """
        with self._vm_lock(instance_name):
            self._stop_console(instance_name)

    def _stop_console(self, instance_name):
        console = self._consoles.pop(instance_name, None)
        if console is not None:
            LOG.debug('Stopping the console of VM %s', instance_name)
            console.stop()

    def get_console_output(self, instance_name):
        """What the VM's guest printed on its console, oldest first.

        The running handler's buffered output is flushed first: os-win
        opens the log unbuffered in name only (binary mode has no line
        buffering), so without it the last kilobytes would be missing
        (compute-hyperv 16 ``get_console_output`` flushes too).

        :returns: bytes; empty when the VM has logged nothing here.
        :raises nova.exception.ConsoleLogOutputException: a log file
            exists but cannot be read.
        """
        with self._vm_lock(instance_name):
            console = self._consoles.get(instance_name)
            if console is not None and console.log_handler is not None:
                console.log_handler.flush_log_file()
            output = []
            for path in reversed(self._pathutils.get_vm_console_log_paths(
                    instance_name)):
                if not self._pathutils.exists(path):
                    continue
                try:
                    # Not os-win's PathUtils.open: it imports six, which
                    # os-win does not declare.
                    with open(path, 'rb') as log_file:
                        output.append(log_file.read())
                except OSError as exc:
                    raise exception.ConsoleLogOutputException(
                        instance_id=instance_name, reason=str(exc))
        return b''.join(output)

    def get_serial_console(self, instance_name):
        """Where the running VM's interactive serial console listens.

        :returns: nova.console.type.ConsoleSerial(host=[serial_console]
            proxyclient_address, port=its TCP port).
        :raises nova.exception.ConsoleTypeUnavailable: ``[serial_console]
            enabled`` is off, or the VM has no interactive console here
            (it does not run, has no read-write COM port pipe, or its
            proxy could not listen: see the compute log).
        """
        if not CONF.serial_console.enabled:
            raise exception.ConsoleTypeUnavailable(console_type='serial')
        with self._vm_lock(instance_name):
            console = self._consoles.get(instance_name)
            proxy = console.proxy if console is not None else None
        if proxy is None:
            LOG.info('VM %s has no interactive serial console on this '
                     'host: it is not running, or its console could not '
                     'listen (see earlier errors)', instance_name)
            raise exception.ConsoleTypeUnavailable(console_type='serial')
        return console_type.ConsoleSerial(host=proxy.address,
                                          port=proxy.port)
