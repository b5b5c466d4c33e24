"""A server's interactive serial console through nova's API.

With ``[serial_console] enabled`` nova answers ``POST /servers/{id}/
remote-consoles`` (protocol ``serial``) with a websocket URL of
nova-serialproxy carrying a token; the token stands for the ``host:port``
the driver's ``get_serial_console`` gave, which nova-serialproxy connects
to over plain TCP.  Here the test is nova-serialproxy: it reads the
token's host and port back (``GET /os-console-auth-tokens/{token}``),
connects there and talks to the simulated guest, whose COM1 named pipe
the driver's proxy joins to that socket.
"""

import socket
import time
from urllib import parse

import fixtures
from nova.tests.functional.api import client as api_client

from tests.functional import base
from tests.unit.hyperv import test_serialconsole


class SerialConsoleTestBase(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.ports = test_serialconsole.free_port_range()
        self.flags(enabled=True, proxyclient_address='127.0.0.1',
                   port_range='%d:%d' % self.ports, group='serial_console')
        # nova's record of the ports it handed out is one per process.
        self.allocated = set()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.console.serial.ALLOCATED_PORTS', self.allocated))
        self.image = self.images.create_image('vhdx')

    def start_compute(self, hostname, **kwargs):
        compute = super().start_compute(hostname, **kwargs)
        # nova's ServiceFixture stops a service in the background and
        # un-mocks shutdown_all_executors meanwhile; a driver whose
        # cleanup_host takes a moment (each interactive console's os-win
        # pipe writer polls for up to a second) would let the real one
        # run and break the next test's thread pools.  Stop the consoles
        # first, as the service's stop would.
        self.addCleanup(compute.manager.driver.cleanup_host, hostname)
        return compute

    def serial_console(self, server):
        """(host, port) behind the server's serial console URL."""
        console = self.api.api_post(
            '/servers/%s/remote-consoles' % server['id'],
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}}
        ).body['remote_console']
        self.assertEqual(('serial', 'serial'),
                         (console['protocol'], console['type']))
        url = parse.urlparse(console['url'])
        self.assertEqual('ws', url.scheme)
        token, = parse.parse_qs(url.query)['token']
        auth = self.api.api_get(
            '/os-console-auth-tokens/%s' % token).body['console']
        self.assertEqual(server['id'], auth['instance_uuid'])
        return auth['host'], int(auth['port'])

    def assert_no_serial_console(self, server):
        exc = self.assertRaises(
            api_client.OpenStackApiException, self.api.api_post,
            '/servers/%s/remote-consoles' % server['id'],
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}})
        self.assertEqual(400, exc.response.status_code)
        self.assertIn('Unavailable console type serial', exc.response.text)

    def connect(self, address):
        client = socket.create_connection(address, timeout=10)
        self.addCleanup(client.close)
        return client

    def receive_until(self, client, expected):
        return test_serialconsole._receive_until(client, expected)

    def wait_for_guest_input(self, server, expected):
        deadline = time.monotonic() + 20
        while True:
            received = self.vm_of(server).console_input
            if received == expected:
                return
            if time.monotonic() > deadline:
                self.fail('the guest received %r, not %r'
                          % (received, expected))
            time.sleep(0.05)

    def talk(self, server, address, typed, answer):
        """Type on the console; the guest answers; the client reads it."""
        client = self.connect(address)
        before = self.vm_of(server).console_input
        client.sendall(typed)
        self.wait_for_guest_input(server, before + typed)
        self.host(server['OS-EXT-SRV-ATTR:host']).guest_writes_console(
            server['OS-EXT-SRV-ATTR:instance_name'], answer.decode())
        self.assertEqual(answer, self.receive_until(client, answer))
        return client


class SerialConsoleTest(SerialConsoleTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')

    def test_typing_reaches_the_guest_and_its_answer_comes_back(self):
        server, port = self.boot(self.image)

        host, tcp_port = self.serial_console(server)

        self.assertEqual('127.0.0.1', host)
        self.assertTrue(self.ports[0] <= tcp_port < self.ports[1])
        self.talk(server, (host, tcp_port), b'root\r\n', b'Password: ')
        # The guest's answer is in the console log too.
        output = self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': {'length': 1}})['output']
        self.assertEqual('Password: ', output)

    def test_stopped_server_closes_its_console_and_frees_the_port(self):
        server, port = self.boot(self.image)
        address = self.serial_console(server)
        client = self.connect(address)

        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')

        self.assertEqual(b'', client.recv(16))
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          address, 5)
        self.assertEqual(set(), self.allocated)
        self.assert_no_serial_console(server)

        # Started again: a console again (the port may be another one).
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.talk(server, self.serial_console(server), b'x', b'y')

    def test_each_server_has_its_own_console(self):
        one, _ = self.boot(self.image)
        two, _ = self.boot(self.image)

        address_one = self.serial_console(one)
        address_two = self.serial_console(two)

        self.assertNotEqual(address_one, address_two)
        self.talk(one, address_one, b'to one\n', b'from one\n')
        self.talk(two, address_two, b'to two\n', b'from two\n')
        self.assertEqual(b'to one\n', self.vm_of(one).console_input)
        self.assertEqual(b'to two\n', self.vm_of(two).console_input)

    def test_deleted_server_frees_its_port(self):
        server, port = self.boot(self.image)
        address = self.serial_console(server)

        self._delete_server(server)

        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          address, 5)
        self.assertEqual(set(), self.allocated)


class SerialConsoleDisabledTest(SerialConsoleTestBase):

    def test_no_console_and_no_port_when_disabled(self):
        self.flags(enabled=False, group='serial_console')
        self.start_compute('host1')
        server, port = self.boot(self.image)

        self.assert_no_serial_console(server)
        self.assertEqual(set(), self.allocated)


class ConsoleAcrossMigrationTest(SerialConsoleTestBase):
    """The console log and the serial console follow a moved server."""

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')

    def console_log(self, server):
        return self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': {}})['output']

    def wait_for_log_line(self, server, line):
        deadline = time.monotonic() + 20
        while line not in self.console_log(server).splitlines():
            if time.monotonic() > deadline:
                self.fail('the console log of %s never showed %r'
                          % (server['id'], line))
            time.sleep(0.1)
        return self.console_log(server)

    def test_live_migration_keeps_the_log_and_moves_the_console(self):
        server, port = self.boot(self.image, host='host1')
        old_address = self.talk(server, self.serial_console(server),
                                b'before\n', b'on host1\n').getpeername()

        self.api.post_server_action(
            server['id'],
            {'os-migrateLive': {'host': 'host2', 'block_migration': 'auto'}})
        self._wait_for_migration_status(server, ['completed'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': 'host2'})

        # The guest did not reboot: host2's log is host1's, copied, and
        # what the guest prints now is appended to it.
        self.host('host2').guest_writes_console(
            server['OS-EXT-SRV-ATTR:instance_name'], 'on host2\n')
        log = self.wait_for_log_line(server, 'on host2')
        self.assertTrue(log.endswith('login:\non host1\non host2\n'), log)
        self.assertIn('simulated guest on Hyper-V host host1', log)
        # The console is served from host2 now; host1's port is closed.
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          old_address, 5)
        self.talk(server, self.serial_console(server), b'after\n',
                  b'still here\n')
        self.assertEqual(b'before\nafter\n', self.vm_of(server).console_input)

    def test_cold_migration_keeps_the_log(self):
        server, port = self.boot(self.image, host='host1')
        self.talk(server, self.serial_console(server), b'x', b'on host1\n')
        self.wait_for_log_line(server, 'on host1')

        server = self._migrate_server(server, host='host2')
        self.api.post_server_action(server['id'], {'confirmResize': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        # The VM restarted on host2: its boot there follows host1's log.
        host2_boot = ('[    0.000000] Linux version 6.1.0-simulated '
                      '(simulated guest on Hyper-V host host2)')
        lines = self.wait_for_log_line(server, host2_boot).splitlines()
        self.assertIn('on host1', lines)
        self.assertLess(lines.index('on host1'), lines.index(host2_boot))
        self.talk(server, self.serial_console(server), b'y', b'on host2\n')
