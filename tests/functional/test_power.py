"""Power state through nova when the guest or the host has its own say.

Soft shutdown is asynchronous on Hyper-V (the guest turns off when it has
shut down, or never), so nova's wait-and-force path runs; a VM that
changes state behind nova's back reaches nova through Hyper-V's power
state change event and nova's lifecycle event handling.
"""

from os_win import constants as os_win_const

from tests.functional import base

OFF = os_win_const.HYPERV_VM_STATE_DISABLED


class PowerStateTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def stop(self, server):
        self.api.post_server_action(server['id'], {'os-stop': None})
        return self._wait_for_state_change(server, 'SHUTOFF')

    def test_stop_waits_for_the_guest_to_shut_down(self):
        self.host('host1').guest_shutdown_seconds = 1
        server, port = self.boot(self.image)
        name = server['OS-EXT-SRV-ATTR:instance_name']

        server = self.stop(server)

        self.assertEqual(OFF, self.vm_of(server).power_state)
        # nova waited for the guest rather than turning the VM off.
        self.assertEqual('guest', self.host('host1').power_off_causes[name])

    def test_stop_turns_off_a_guest_that_ignores_shutdown(self):
        # nova asks every retry_interval, then turns the VM off once
        # shutdown_timeout has passed.
        self.flags(shutdown_timeout=2)
        self.flags(shutdown_retry_interval=1, group='compute')
        server, port = self.boot(self.image)
        name = server['OS-EXT-SRV-ATTR:instance_name']
        self.host('host1').guest_ignores_shutdown(name)

        server = self.stop(server)

        self.assertEqual(OFF, self.vm_of(server).power_state)
        self.assertEqual('turned off',
                         self.host('host1').power_off_causes[name])

    def test_guest_shutting_itself_down_stops_the_server(self):
        server, port = self.boot(self.image)

        self.host('host1').guest_shuts_down(
            server['OS-EXT-SRV-ATTR:instance_name'])

        # nova's lifecycle event handling (_sync_instance_power_state)
        # stops a server whose VM went off on its own.
        server = self._wait_for_state_change(server, 'SHUTOFF')
        self.assertEqual(OFF, self.vm_of(server).power_state)
        self.assertEqual(4, server['OS-EXT-STS:power_state'])  # SHUTDOWN

    def test_vm_turned_off_on_the_host_stops_the_server(self):
        server, port = self.boot(self.image)

        self.host('host1').turn_off_by_hand(
            server['OS-EXT-SRV-ATTR:instance_name'])

        server = self._wait_for_state_change(server, 'SHUTOFF')
        self.assertEqual(OFF, self.vm_of(server).power_state)
