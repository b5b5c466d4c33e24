"""SerialConsoleOps: the console log a user reads after a boot."""

import os
import queue
import socket
import time

import fixtures
from nova.console import serial
from nova.console import type as console_type
from nova import exception
from nova import test
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import eventhandler
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.hyperv import serialconsole
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import guest as hyperv_guest

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED
OFF = os_win_const.HYPERV_VM_STATE_DISABLED
REBOOT = os_win_const.HYPERV_VM_STATE_REBOOT


class SerialConsoleOpsTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('hv1')
        with self.hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.paths = pathutils.PathUtils()
            self.ops = serialconsole.SerialConsoleOps()
        self.addCleanup(self.ops.stop_console_handlers)

    def _nova_vm(self, name='instance-1', pipe_suffix='_rw'):
        """A VM as vmops makes it: instance dir, uuid notes, COM1 pipe."""
        instance_uuid = uuidutils.generate_uuid()
        instance_dir = self.paths.get_instance_dir(name)
        self.vmutils.create_vm(name, False, os_win_const.VM_GEN_1,
                               instance_dir, [instance_uuid])
        if pipe_suffix is not None:
            self.vmutils.set_vm_serial_port_connection(
                name, 1, r'\\.\pipe\%s%s' % (instance_uuid, pipe_suffix))
        return name

    def _boot(self, boot_count, name='instance-1'):
        return hyperv_guest.guest_boot_messages(
            'hv1', name, boot_count).encode()

    def test_console_output_after_a_boot(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)

        self.assertTrue(self.ops.start_console_handler(vm))

        # All of it, though more than os-win's write buffer: flushed.
        self.assertEqual(self._boot(1), self.ops.get_console_output(vm))

    def test_reboots_append_to_the_log(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)

        self.vmutils.set_vm_state(vm, REBOOT)

        self.assertEqual(self._boot(1) + self._boot(2),
                         self.ops.get_console_output(vm))

    def test_a_full_log_is_rotated_and_read_in_order(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)
        boots = 1
        while boots * len(self._boot(1)) < os_win_const.\
                MAX_CONSOLE_LOG_FILE_SIZE * 1.2:
            self.vmutils.set_vm_state(vm, REBOOT)
            boots += 1

        output = self.ops.get_console_output(vm)

        log, archived = self.paths.get_vm_console_log_paths(vm)
        self.assertTrue(os.path.exists(archived))
        with open(archived, 'rb') as f:
            older = f.read()
        with open(log, 'rb') as f:
            newer = f.read()
        self.assertEqual(older + newer, output)
        self.assertTrue(output.endswith(self._boot(boots)))
        self.assertLess(len(output), 2 * os_win_const.
                        MAX_CONSOLE_LOG_FILE_SIZE)

    def test_init_host_logs_every_running_nova_vm(self):
        for name in ('instance-1', 'instance-2', 'instance-3'):
            self._nova_vm(name)
        self.vmutils.set_vm_state('instance-1', RUNNING)
        self.vmutils.set_vm_state('instance-2', RUNNING)
        # An operator's own VM: no instance directory.
        self.vmutils.create_vm('operators-vm', False, os_win_const.VM_GEN_1,
                               self.host.instances_path, None)
        self.vmutils.set_vm_serial_port_connection(
            'operators-vm', 1, r'\\.\pipe\operators-vm')
        self.vmutils.set_vm_state('operators-vm', RUNNING)

        self.ops.start_console_handlers()

        self.assertEqual(2, len(self.host.serial_pipe_handlers))
        self.assertEqual(self._boot(1, 'instance-1'),
                         self.ops.get_console_output('instance-1'))
        self.assertEqual(self._boot(1, 'instance-2'),
                         self.ops.get_console_output('instance-2'))
        self.assertEqual(b'', self.ops.get_console_output('instance-3'))

    def test_a_vm_without_a_pipe_has_no_log(self):
        vm = self._nova_vm(pipe_suffix=None)
        self.vmutils.set_vm_state(vm, RUNNING)

        self.assertFalse(self.ops.start_console_handler(vm))
        self.assertEqual((), self.host.serial_pipe_handlers)
        self.assertEqual(b'', self.ops.get_console_output(vm))

    def test_a_vm_that_is_off_serves_no_pipe(self):
        vm = self._nova_vm()
        self.assertFalse(self.ops.start_console_handler(vm))
        self.assertEqual((), self.host.serial_pipe_handlers)

    def test_stopped_handler_logs_nothing_more(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)

        self.ops.stop_console_handler(vm)
        self.vmutils.set_vm_state(vm, REBOOT)

        self.assertEqual(self._boot(1), self.ops.get_console_output(vm))
        self.assertEqual((), self.host.serial_pipe_handlers)
        # The log file is closed: the instance directory can go.
        self.paths.get_instance_dir(vm, remove_dir=True, create_dir=False)
        self.assertFalse(os.path.exists(self.paths.get_instance_dir(
            vm, create_dir=False)))

    def test_restarting_a_handler_replaces_it(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)
        self.ops.start_console_handler(vm)
        self.assertEqual(1, len(self.host.serial_pipe_handlers))

    def test_cleanup_host_stops_every_handler(self):
        for name in ('instance-1', 'instance-2'):
            self._nova_vm(name)
            self.vmutils.set_vm_state(name, RUNNING)
        self.ops.start_console_handlers()

        self.ops.stop_console_handlers()

        self.assertEqual((), self.host.serial_pipe_handlers)

    def test_read_only_pipe_is_logged(self):
        vm = self._nova_vm(pipe_suffix='_ro')
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)
        self.assertEqual([r'_ro'], [h.pipe_path[-3:] for h in
                                    self.host.serial_pipe_handlers])
        self.assertEqual(self._boot(1), self.ops.get_console_output(vm))

    def test_unknown_instance_has_empty_output_and_no_directory(self):
        self.assertEqual(b'', self.ops.get_console_output('instance-9'))
        self.assertFalse(os.path.exists(
            self.paths.get_instance_dir('instance-9', create_dir=False)))

    def test_unreadable_log_is_a_console_log_error(self):
        vm = self._nova_vm()
        log, _ = self.paths.get_vm_console_log_paths(vm)
        os.makedirs(log)  # something that cannot be read as a file
        exc = self.assertRaises(exception.ConsoleLogOutputException,
                                self.ops.get_console_output, vm)
        self.assertIn(vm, str(exc))

    def test_no_interactive_console_unless_enabled(self):
        vm = self._nova_vm()
        self.vmutils.set_vm_state(vm, RUNNING)
        self.ops.start_console_handler(vm)
        self.assertRaises(exception.ConsoleTypeUnavailable,
                          self.ops.get_serial_console, vm)
        # The log handler alone: no queues, no port taken.
        handler, = self.host.serial_pipe_handlers
        self.assertFalse(handler.interactive)
        self.assertEqual(set(), serial.ALLOCATED_PORTS)


class ConsoleLogPipeTestCase(test.NoDBTestCase):

    def test_read_only_pipe_first(self):
        self.assertEqual(r'\\.\pipe\x_ro', serialconsole.console_log_pipe(
            [r'\\.\pipe\x_rw', r'\\.\pipe\x_ro']))

    def test_read_write_or_untagged_pipe_otherwise(self):
        self.assertEqual(r'\\.\pipe\x_rw', serialconsole.console_log_pipe(
            [r'\\.\pipe\x_rw']))
        self.assertEqual(r'\\.\pipe\x', serialconsole.console_log_pipe(
            [r'\\.\pipe\x']))

    def test_no_pipe(self):
        self.assertIsNone(serialconsole.console_log_pipe([]))


class ConsoleFollowsPowerStateTestCase(test.NoDBTestCase):
    """The event handler and the console log, joined as the driver does.

    A VM started and stopped on the host behind nova's back.
    """

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('hv1')
        self.events = queue.Queue()
        with self.hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.paths = pathutils.PathUtils()
            self.ops = serialconsole.SerialConsoleOps()
            self.handler = eventhandler.InstanceEventHandler(
                self.events.put,
                vm_started_callback=self.ops.start_console_handler,
                vm_stopped_callback=self.ops.stop_console_handler)
            self.handler.start()
        self.addCleanup(self.handler.stop)
        self.addCleanup(self.ops.stop_console_handlers)

    def test_boot_by_hand_is_logged(self):
        instance_uuid = uuidutils.generate_uuid()
        self.vmutils.create_vm('instance-1', False, os_win_const.VM_GEN_1,
                               self.paths.get_instance_dir('instance-1'),
                               [instance_uuid])
        self.vmutils.set_vm_serial_port_connection(
            'instance-1', 1, r'\\.\pipe\%s_rw' % instance_uuid)

        self.host.start_by_hand('instance-1')
        self.events.get(timeout=10)
        self.host.turn_off_by_hand('instance-1')
        self.events.get(timeout=10)
        self.host.start_by_hand('instance-1')
        self.events.get(timeout=10)

        self.assertEqual(
            (hyperv_guest.guest_boot_messages('hv1', 'instance-1', 1) +
             hyperv_guest.guest_boot_messages(
                 'hv1', 'instance-1', 2)).encode(),
            self.ops.get_console_output('instance-1'))


def free_port_range(size=20):
    """A [serial_console] port_range starting at a port free right now.

    The OS picks it (a bind to port 0), so test processes running side by
    side and ports left in TIME_WAIT by an earlier test do not collide;
    nova's acquire_port skips whichever of the others are taken.
    """
    probe = socket.socket()
    try:
        probe.bind(('127.0.0.1', 0))
        start = probe.getsockname()[1]
    finally:
        probe.close()
    start = min(start, 65535 - size)
    return start, start + size


def _connect(console, timeout=10):
    client = socket.create_connection((console.host, console.port),
                                      timeout=timeout)
    client.settimeout(timeout)
    return client


def _receive_until(client, expected, timeout=10):
    """Bytes read from client until they end with expected."""
    data = b''
    deadline = time.monotonic() + timeout
    while not data.endswith(expected):
        if time.monotonic() > deadline:
            raise AssertionError('%r never arrived; got %r'
                                 % (expected, data[-200:]))
        chunk = client.recv(4096)
        if not chunk:
            raise AssertionError('the console closed after %r'
                                 % data[-200:])
        data += chunk
    return data


def _wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


class InteractiveSerialConsoleTestCase(test.NoDBTestCase):
    """[serial_console] enabled: a TCP console per running VM."""

    def setUp(self):
        # Test processes run side by side: each takes ports of its own.
        self.PORTS = free_port_range()
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.flags(enabled=True, proxyclient_address='127.0.0.1',
                   port_range='%d:%d' % self.PORTS, group='serial_console')
        self.useFixture(fixtures.MonkeyPatch(
            'nova.console.serial.ALLOCATED_PORTS', set()))
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('hv1')
        with self.hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.paths = pathutils.PathUtils()
            self.ops = serialconsole.SerialConsoleOps()
        self.addCleanup(self.ops.stop_console_handlers)

    def _running_vm(self, name='instance-1', suffixes=('_rw',)):
        instance_uuid = uuidutils.generate_uuid()
        self.vmutils.create_vm(name, False, os_win_const.VM_GEN_1,
                               self.paths.get_instance_dir(name),
                               [instance_uuid])
        for port, suffix in enumerate(suffixes, 1):
            self.vmutils.set_vm_serial_port_connection(
                name, port, r'\\.\pipe\%s%s' % (instance_uuid, suffix))
        self.vmutils.set_vm_state(name, RUNNING)
        self.assertTrue(self.ops.start_console_handler(name))
        return name

    def test_console_listens_on_a_port_of_the_range(self):
        vm = self._running_vm()

        console = self.ops.get_serial_console(vm)

        self.assertIsInstance(console, console_type.ConsoleSerial)
        self.assertEqual('127.0.0.1', console.host)
        self.assertTrue(self.PORTS[0] <= console.port < self.PORTS[1])
        self.assertEqual({('127.0.0.1', console.port)},
                         serial.ALLOCATED_PORTS)
        _connect(console).close()

    def test_client_types_to_the_guest_and_reads_its_answer(self):
        vm = self._running_vm()
        client = _connect(self.ops.get_serial_console(vm))
        self.addCleanup(client.close)

        client.sendall(b'root\r\n')
        _wait_for(lambda: self.host.vms[vm].console_input == b'root\r\n',
                  'the guest to receive what the client typed')
        self.host.guest_writes_console(vm, 'Password: ')

        self.assertEqual(b'Password: ', _receive_until(client,
                                                       b'Password: '))
        # What the guest printed is logged as well.
        self.assertTrue(self.ops.get_console_output(vm).endswith(
            b'login:\nPassword: '))

    def test_output_before_the_client_came_is_not_replayed(self):
        # os-win's IOQueue drops what the guest prints while no client
        # is attached: the boot messages are in the log only.
        vm = self._running_vm()
        client = _connect(self.ops.get_serial_console(vm))
        self.addCleanup(client.close)
        _wait_for(lambda: self._client_attached(vm), 'the client')

        self.host.guest_writes_console(vm, 'hello\n')

        self.assertEqual(b'hello\n', _receive_until(client, b'hello\n'))

    def _client_attached(self, vm):
        # A write goes through only once the proxy accepted the client.
        return self.ops._consoles[vm].proxy._client_connected.is_set()

    def test_a_second_client_after_the_first_left(self):
        vm = self._running_vm()
        console = self.ops.get_serial_console(vm)
        first = _connect(console)
        first.sendall(b'one\n')
        _wait_for(lambda: self.host.vms[vm].console_input == b'one\n',
                  'the first client')
        first.close()

        second = _connect(console)
        self.addCleanup(second.close)
        second.sendall(b'two\n')

        _wait_for(
            lambda: self.host.vms[vm].console_input == b'one\ntwo\n',
            'the second client')

    def test_stopping_the_console_closes_and_releases_its_port(self):
        vm = self._running_vm()
        console = self.ops.get_serial_console(vm)
        client = _connect(console)
        self.addCleanup(client.close)

        self.ops.stop_console_handler(vm)

        self.assertEqual(b'', client.recv(16))  # closed by the proxy
        self.assertRaises(ConnectionRefusedError, _connect, console)
        self.assertEqual(set(), serial.ALLOCATED_PORTS)
        self.assertEqual((), self.host.serial_pipe_handlers)
        self.assertRaises(exception.ConsoleTypeUnavailable,
                          self.ops.get_serial_console, vm)

    def test_each_vm_has_its_own_port(self):
        ports = {self.ops.get_serial_console(
            self._running_vm(name)).port
            for name in ('instance-1', 'instance-2', 'instance-3')}
        self.assertEqual(3, len(ports))

    def test_vm_that_is_off_has_no_console(self):
        name = 'instance-1'
        self.vmutils.create_vm(name, False, os_win_const.VM_GEN_1,
                               self.paths.get_instance_dir(name),
                               [uuidutils.generate_uuid()])
        self.vmutils.set_vm_serial_port_connection(
            name, 1, r'\\.\pipe\x_rw')

        self.assertFalse(self.ops.start_console_handler(name))

        self.assertRaises(exception.ConsoleTypeUnavailable,
                          self.ops.get_serial_console, name)
        # The port taken for it went back.
        self.assertEqual(set(), serial.ALLOCATED_PORTS)

    def test_exhausted_port_range_leaves_the_log(self):
        self.flags(port_range='%d:%d' % (self.PORTS[0], self.PORTS[0] + 1),
                   group='serial_console')
        first = self._running_vm('instance-1')
        second = self._running_vm('instance-2')

        self.ops.get_serial_console(first)
        self.assertRaises(exception.ConsoleTypeUnavailable,
                          self.ops.get_serial_console, second)
        self.assertTrue(self.ops.get_console_output(second).endswith(
            b'instance-2 login:\n'))

    def test_port_taken_by_someone_else_is_skipped(self):
        squatter = socket.socket()
        self.addCleanup(squatter.close)
        squatter.bind(('127.0.0.1', self.PORTS[0]))
        squatter.listen(1)

        console = self.ops.get_serial_console(self._running_vm())

        self.assertNotEqual(self.PORTS[0], console.port)
        _connect(console).close()

    def test_read_only_pipe_logs_read_write_pipe_is_interactive(self):
        vm = self._running_vm(suffixes=('_ro', '_rw'))
        handlers = {h.pipe_path[-3:]: h
                    for h in self.host.serial_pipe_handlers}

        self.assertEqual({'_ro': False, '_rw': True},
                         {k: h.interactive for k, h in handlers.items()})
        self.assertIsNotNone(handlers['_ro'].log_file)
        self.assertIsNone(handlers['_rw'].log_file)
        client = _connect(self.ops.get_serial_console(vm))
        self.addCleanup(client.close)
        client.sendall(b'x')
        _wait_for(lambda: self.host.vms[vm].console_input == b'x',
                  'the guest to receive on its read-write port')

    def test_vm_turned_off_breaks_the_pipe_and_the_console_stops(self):
        vm = self._running_vm()
        console = self.ops.get_serial_console(vm)

        self.vmutils.set_vm_state(vm, OFF)
        self.ops.stop_console_handler(vm)  # what its power-off event does

        self.assertRaises(ConnectionRefusedError, _connect, console)
        self.assertEqual(set(), serial.ALLOCATED_PORTS)
