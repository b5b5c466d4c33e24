"""A server's console log through nova's API on a simulated Hyper-V host.

nova's Hyper-V driver answers ``os-getConsoleOutput`` from the console log
files (``<instance dir>/console.log`` and ``console.log.1``) that its
serial console handler writes from the VM's COM1 named pipe; the handler
starts when the power state event of the VM's start reaches nova
(``InstanceEventHandler``) and stops when the VM stops.  The simulated
guest prints ``hyperv_guest.GUEST_BOOT_LINES`` lines on COM1 at every boot.
"""

import os
import time

from os_win import constants as os_win_const

from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import guest as hyperv_guest
from tests.functional import base

OFF = os_win_const.HYPERV_VM_STATE_DISABLED


class ConsoleTestBase(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def console(self, server, length=None):
        """os-getConsoleOutput, as tempest asks it."""
        action = {} if length is None else {'length': length}
        return self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': action})['output']

    def wait_for_console(self, server, line, timeout=20):
        """The whole console output once it holds line."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.console(server)
            if line in output.splitlines():
                return output
            if time.monotonic() > deadline:
                self.fail('console output of %s never showed %r; it is %r'
                          % (server['id'], line, output[-500:]))
            time.sleep(0.1)

    def boot_lines(self, server, boot):
        return hyperv_guest.guest_boot_messages(
            'host1', server['OS-EXT-SRV-ATTR:instance_name'],
            boot).splitlines()

    def reboot(self, server, kind, boot):
        """Reboot; the whole console output once boot ``boot`` shows."""
        self.api.post_server_action(server['id'],
                                    {'reboot': {'type': kind}})
        output = self.wait_for_console(server,
                                       self.boot_lines(server, boot)[2])
        self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        return output


class ConsoleOutputTest(ConsoleTestBase):

    def test_booted_server_shows_its_boot_messages(self):
        server, port = self.boot(self.image)
        boot1 = self.boot_lines(server, 1)

        output = self.wait_for_console(server, boot1[2])

        # The log holds the first lines the guest printed (the handler's
        # write buffer holds the rest, as os-win's does).
        lines = output.splitlines()
        self.assertGreater(len(lines), 3)
        self.assertEqual(boot1[:len(lines)], lines)
        # tempest's test_get_console_output: length=3 gives 3 lines.
        last3 = self.console(server, length=3)
        self.assertEqual(3, len(last3.split('\n')))
        self.assertTrue(output.endswith(last3))
        self.assertEqual('', self.console(server, length=0))
        # nova's tail of -1 ("unlimited") drops the first line
        # (ComputeManager._tail_log: split('\n')[-(-1):]).
        self.assertEqual('\n'.join(output.split('\n')[1:]),
                         self.console(server, length=-1))

    def test_console_log_grows_with_each_reboot(self):
        server, port = self.boot(self.image)
        boot1 = self.boot_lines(server, 1)
        self.wait_for_console(server, boot1[2])

        # Soft reboot: the guest shuts down (the handler's log file is
        # closed, so all of boot 1 is in it) and starts again.
        output = self.reboot(server, 'SOFT', 2)
        boot2 = self.boot_lines(server, 2)
        self.assertEqual(boot1, output.splitlines()[:len(boot1)])

        # Hard reboot: a reset; the guest boots a third time into the
        # same log.
        output = self.reboot(server, 'HARD', 3)
        lines = output.splitlines()
        self.assertEqual(boot1 + boot2, lines[:len(boot1) + len(boot2)])
        self.assertEqual(3, self.vm_of(server).boot_count)

    def test_stopped_server_keeps_its_whole_log(self):
        # tempest's test_get_console_output_server_id_in_shutoff_status.
        server, port = self.boot(self.image)
        boot1 = self.boot_lines(server, 1)
        self.wait_for_console(server, boot1[2])

        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')

        # The handler stopped with the VM: the log holds the whole boot,
        # down to the login prompt.
        self.assertEqual(boot1, self.console(server).splitlines())
        self.assertEqual(boot1[-2:] + [''],
                         self.console(server, length=3).split('\n'))


class ConsoleOfMovedServerTest(ConsoleTestBase):
    """A stopped server cold-migrated to host2 keeps its console log."""

    # As a deployment: casts stay casts (test_migration does the same).
    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host2')

    def test_cold_migrated_server_keeps_its_console_log(self):
        server, port = self.boot(self.image, host='host1')
        boot1 = self.boot_lines(server, 1)
        self.wait_for_console(server, boot1[2])
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')

        # The log files travel with the disks; the VM on host2, created
        # Off, has not run there yet.
        server = self._migrate_server(server, host='host2')
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        vm = self.vm_of(server)
        self.assertEqual((hyperv_const.POWER_STATE_NAMES[OFF], 0),
                         (vm.power_state_name, vm.boot_count))
        self.assertEqual(boot1, self.console(server).splitlines())
        self.api.post_server_action(server['id'], {'confirmResize': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        # Confirming removed host1's copy, not host2's.
        self.assertEqual(boot1, self.console(server).splitlines())
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host1')))

        # Its first start on host2 is the guest's first boot there,
        # appended to the log of its time on host1.
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        host2_boot1 = hyperv_guest.guest_boot_messages(
            'host2', server['OS-EXT-SRV-ATTR:instance_name'], 1).splitlines()
        lines = self.wait_for_console(server, host2_boot1[2]).splitlines()
        self.assertEqual(boot1 + host2_boot1[:len(lines) - len(boot1)],
                         lines)

    def test_reverted_migration_keeps_the_log_on_the_source(self):
        server, port = self.boot(self.image, host='host1')
        boot1 = self.boot_lines(server, 1)
        self.wait_for_console(server, boot1[2])
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        server = self._migrate_server(server, host='host2')

        self.api.post_server_action(server['id'], {'revertResize': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')

        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(boot1, self.console(server).splitlines())
