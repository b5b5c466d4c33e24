"""The VMs' console logs, which ``openstack console log show`` reads.

vmops connects each VM's COM1 to a named pipe of which the running VM is
the server (``\\\\.\\pipe\\<instance uuid>_rw``).  While the VM runs, an
os-win ``NamedPipeHandler`` (``utilsfactory.get_named_pipe_handler``)
reads that pipe in a thread of its own and appends what the guest prints
to ``<instance dir>\\console.log``; when the file reaches os-win's
``MAX_CONSOLE_LOG_FILE_SIZE`` (512 KiB) os-win moves it to
``console.log.1`` and starts a new one, so a log is at most two files
(nova 28 ``serialconsolehandler`` / ``serialconsoleops``).

Handlers start when a VM starts (the event handler's callback), for every
running VM at ``init_host``, and stop when the VM stops or goes away.
os-win's pipe handlers use kernel32 only, no WMI, and expect their caller
to serialise ``start``/``stop``: each VM's are, by a lock per VM.

Interactive serial consoles (``[serial_console] enabled``, nova 28's
``serialproxy``) are not offered yet.
"""

import threading

from nova import exception
from nova.i18n import _
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils

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


class SerialConsoleOps(object):
    """The console log handlers of this host's VMs, by VM name."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._pathutils = pathutils.PathUtils()
        self._handlers = {}
        self._locks = {}
        self._locks_guard = threading.Lock()

    def _vm_lock(self, instance_name):
        with self._locks_guard:
            return self._locks.setdefault(instance_name, threading.Lock())

    def start_console_handlers(self):
        """Start logging every running VM nova made (``init_host``).

        A VM counts as nova's when it has an instance directory (nova 28
        ``start_console_handlers``).
        """
        for instance_name in self._vmutils.get_active_instances():
            instance_dir = self._pathutils.get_instance_dir(
                instance_name, create_dir=False)
            if self._pathutils.exists(instance_dir):
                self.start_console_handler(instance_name)

    def stop_console_handlers(self):
        """Stop every handler (``cleanup_host``): the log files close."""
        with self._locks_guard:
            instance_names = list(self._handlers)
        for instance_name in instance_names:
            self.stop_console_handler(instance_name)

    def start_console_handler(self, instance_name):
        """Log the running VM's console, replacing any earlier handler.

        Failures are logged, not raised: a VM without its console log
        still runs (nova 28 did the same).

        :returns: True when the handler runs.
        """
        with self._vm_lock(instance_name):
            self._stop_handler(instance_name)
            try:
                self._handlers[instance_name] = self._start_handler(
                    instance_name)
            except Exception as exc:
                LOG.error('The console log of VM %(vm)s cannot be '
                          'recorded: %(error)s',
                          {'vm': instance_name, 'error': exc})
                return False
        return True

    def _start_handler(self, instance_name):
        """:raises nova.exception.ConsoleNotAvailable: no COM port pipe."""
        pipe = console_log_pipe(
            self._vmutils.get_vm_serial_port_connections(instance_name))
        if pipe is None:
            raise exception.ConsoleNotAvailable(_(
                'VM %s has no COM port connected to a named pipe; a VM '
                'created by this driver has one') % instance_name)
        # The writer makes the directory the log goes in (the readers of
        # get_vm_console_log_paths do not): a VM started by hand or
        # re-registered after a host rebuild may not have one.
        self._pathutils.get_instance_dir(instance_name)
        log_path = self._pathutils.get_vm_console_log_paths(
            instance_name)[0]
        handler = utilsfactory.get_named_pipe_handler(pipe,
                                                      log_file=log_path)
        # os-win stops the handler itself when start() fails.
        handler.start()
        LOG.debug('Logging the console of VM %(vm)s from %(pipe)s to '
                  '%(log)s', {'vm': instance_name, 'pipe': pipe,
                              'log': log_path})
        return handler

    def stop_console_handler(self, instance_name):
        """Stop logging the VM's console; nothing happens if not logging.

        Needed before the instance directory is removed: the handler holds
        the log file open (nova bug #1556189).
        """
        with self._vm_lock(instance_name):
            self._stop_handler(instance_name)

    def _stop_handler(self, instance_name):
        handler = self._handlers.pop(instance_name, None)
        if handler is not None:
            LOG.debug('Stopping the console log of VM %s', instance_name)
            handler.stop()

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
            handler = self._handlers.get(instance_name)
            if handler is not None:
                handler.flush_log_file()
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
        """Interactive serial consoles are not offered yet.

        :raises nova.exception.ConsoleTypeUnavailable: always.
        """
        LOG.info('An interactive serial console of VM %s was asked for; '
                 'this Hyper-V driver offers only the console log '
                 '(console log show)', instance_name)
        raise exception.ConsoleTypeUnavailable(console_type='serial')
