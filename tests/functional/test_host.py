"""The host through nova's API: power actions, uptime, traits.

One simulated Hyper-V host behind nova's in-process stack.  The os-hosts
API (power actions) exists up to microversion 2.42; uptime is in the
hypervisor's details from 2.88 on (``/os-hypervisors/{id}/uptime`` before).
"""

import re
import threading

from nova.tests.functional.api import client as api_client
from os_win import constants as os_win_const

from tests.functional import base
from tests.functional import test_migration

# nova 34 os-hosts: removed from microversion 2.43 on.
OS_HOSTS_MICROVERSION = '2.42'
OFF = os_win_const.HYPERV_VM_STATE_DISABLED

# The traits the driver's capabilities give a Hyper-V compute node in
# placement (nova.virt.driver.CAPABILITY_TRAITS_MAP): the one place to add
# a trait when a capability is turned on.
DRIVER_TRAITS = frozenset([
    'COMPUTE_NET_ATTACH_INTERFACE',     # supports_attach_interface
    'COMPUTE_DEVICE_TAGGING',           # supports_device_tagging
    'COMPUTE_IMAGE_TYPE_VHD',           # supports_image_type_vhd
    'COMPUTE_IMAGE_TYPE_VHDX',          # supports_image_type_vhdx
    'COMPUTE_SECURITY_UEFI_SECURE_BOOT',  # supports_secure_boot
    'COMPUTE_VOLUME_EXTEND',            # supports_extend_volume
    'COMPUTE_VOLUME_ATTACH_WITH_TAG',   # supports_tagged_attach_volume
    'COMPUTE_IMAGE_TYPE_ISO',           # supports_image_type_iso
    'COMPUTE_TRUSTED_CERTS',            # supports_trusted_certs
])
# What nova's resource tracker sets on every compute node it owns.
NOVA_TRAITS = frozenset(['COMPUTE_NODE', 'OWNER_NOVA'])
UPTIME = re.compile(r'^\d\d:\d\d:\d\d up (\d+ days?, )?\d+:\d\d:\d\d,  '
                    r'0 users,  load average: 0, 0, 0$')


class HostPowerActionTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.admin_api.microversion = OS_HOSTS_MICROVERSION

    def power_action(self, action, **kwargs):
        return self.admin_api.api_get('/os-hosts/host1/%s' % action,
                                      **kwargs)

    def test_reboot_and_shutdown_reach_windows(self):
        self.assertEqual({'host': 'host1', 'power_action': 'reboot'},
                         self.power_action('reboot').body)
        self.assertEqual({'host': 'host1', 'power_action': 'shutdown'},
                         self.power_action('shutdown').body)
        self.assertEqual(['reboot', 'shutdown'],
                         self.host('host1').power_actions)

    def test_startup_is_not_implemented(self):
        exc = self.assertRaises(api_client.OpenStackApiException,
                                self.power_action, 'startup')
        self.assertEqual(501, exc.response.status_code)
        self.assertEqual([], self.host('host1').power_actions)

    def test_os_hosts_is_gone_after_2_42(self):
        self.admin_api.microversion = '2.43'
        exc = self.assertRaises(api_client.OpenStackApiException,
                                self.power_action, 'reboot')
        self.assertEqual(404, exc.response.status_code)
        self.assertEqual([], self.host('host1').power_actions)


class HostUptimeTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.host('host1').boot_time_ms = (
            3 * 86400 + 4 * 3600 + 5 * 60 + 6) * 1000 + 789

    def test_hypervisor_details_show_windows_uptime(self):
        hypervisor = self.admin_api.api_get(
            '/os-hypervisors').body['hypervisors'][0]
        uptime = self.admin_api.api_get(
            '/os-hypervisors/%s' % hypervisor['id']).body[
                'hypervisor']['uptime']
        self.assertRegex(uptime, UPTIME)
        self.assertIn(' up 3 days, 4:05:06,', uptime)

    def test_uptime_api_before_2_88(self):
        self.admin_api.microversion = '2.87'
        hypervisor = self.admin_api.api_get(
            '/os-hypervisors').body['hypervisors'][0]
        body = self.admin_api.api_get(
            '/os-hypervisors/%s/uptime' % hypervisor['id']).body
        self.assertRegex(body['hypervisor']['uptime'], UPTIME)
        self.assertIn(' up 3 days, 4:05:06,', body['hypervisor']['uptime'])


class HostMaintenanceModeTest(test_migration.MigrationTestBase):
    """os-hosts maintenance mode drains host1 onto host2."""

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')

    def maintenance(self, mode, **kwargs):
        self.admin_api.microversion = OS_HOSTS_MICROVERSION
        try:
            return self.admin_api.api_put(
                '/os-hosts/host1', {'maintenance_mode': mode},
                **kwargs).body
        finally:
            self.admin_api.microversion = 'latest'

    def service(self, hostname):
        return self.admin_api.get_services(binary='nova-compute',
                                           host=hostname)[0]

    def host1_traits(self):
        return self._get_provider_traits(
            self._get_provider_uuid_by_host('host1'))

    def test_enable_moves_every_server_and_disable_reopens(self):
        active, active_port = self.boot(self.image, host='host1')
        stopped, stopped_port = self.boot(self.image, host='host1')
        stopped = self._stop_server(stopped)

        self.assertEqual({'host': 'host1',
                          'maintenance_mode': 'on_maintenance'},
                         self.maintenance('enable'))

        self.assertEqual('disabled', self.service('host1')['status'])
        self.assertIn('COMPUTE_STATUS_DISABLED', self.host1_traits())
        self.assertEqual({}, dict(self.host('host1').vms))
        active = self.api.get_server(active['id'])
        self.assert_runs_on('host2', active, active_port)
        # The stopped server was cold-migrated: it waits, off, for its
        # owner to confirm the move.
        stopped = self.api.get_server(stopped['id'])
        self.assertEqual(('host2', 'VERIFY_RESIZE'),
                         (stopped['OS-EXT-SRV-ATTR:host'],
                          stopped['status']))
        self.assertEqual(OFF, self.vm_of(stopped, 'host2').power_state)
        self.assert_allocated_on('host2', active)

        self.assertEqual({'host': 'host1',
                          'maintenance_mode': 'off_maintenance'},
                         self.maintenance('disable'))
        self.assertEqual('enabled', self.service('host1')['status'])
        self.assertNotIn('COMPUTE_STATUS_DISABLED', self.host1_traits())

    def test_a_server_that_cannot_move_is_named(self):
        suspended, _port = self.boot(self.image, host='host1')
        self.api.post_server_action(suspended['id'], {'suspend': None})
        self._wait_for_state_change(suspended, 'SUSPENDED')

        exc = self.assertRaises(api_client.OpenStackApiException,
                                self.maintenance, 'enable')

        self.assertEqual(400, exc.response.status_code)
        self.assertIn(suspended['id'], exc.response.text)
        self.assertIn('suspended', exc.response.text)
        # The host stays closed to new servers; the server stays put.
        self.assertEqual('disabled', self.service('host1')['status'])
        self.assertIn(suspended['OS-EXT-SRV-ATTR:instance_name'],
                      self.host('host1').vms)

    def test_maintenance_after_2_42_is_gone(self):
        self.admin_api.microversion = '2.43'
        exc = self.assertRaises(
            api_client.OpenStackApiException, self.admin_api.api_put,
            '/os-hosts/host1', {'maintenance_mode': 'enable'})
        self.assertEqual(404, exc.response.status_code)
        self.assertEqual('enabled', self.service('host1')['status'])

    def test_a_move_that_outlasts_the_timeout_is_named(self):
        self.flags(evacuate_task_state_timeout=1, group='hyperv')
        server, port = self.boot(self.image, host='host1')
        cutover = threading.Event()
        # Hyper-V takes its time to move the VM: until the test lets it.
        self.host('host1').on_live_migration = (
            lambda vm_name, source, destination: cutover.wait(30))

        exc = self.assertRaises(api_client.OpenStackApiException,
                                self.maintenance, 'enable')

        self.assertEqual(400, exc.response.status_code)
        self.assertIn('%s (its migration did not end in 1 s)' % server['id'],
                      exc.response.text)
        self.assertEqual('disabled', self.service('host1')['status'])
        # The move itself goes on and ends on host2.
        cutover.set()
        self._wait_for_migration_status(server, ['completed'])
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-SRV-ATTR:host': 'host2',
                     'OS-EXT-STS:task_state': None})
        self.assert_runs_on('host2', server, port)


class ComputeNodeTraitsTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')

    def traits(self):
        return set(self._get_provider_traits(
            self._get_provider_uuid_by_host('host1')))

    def test_placement_has_exactly_the_drivers_traits(self):
        self.assertEqual(set(DRIVER_TRAITS | NOVA_TRAITS), self.traits())

    def test_image_type_exclude_list_takes_a_type_away(self):
        # [compute] image_type_exclude_list is the operator's say over the
        # image type traits (nova.virt.driver._check_image_type_exclude_
        # list): read at the next provider tree update.
        self.flags(image_type_exclude_list=['vhd'], group='compute')
        self._run_periodics()
        self.assertEqual(
            set(DRIVER_TRAITS | NOVA_TRAITS) - {'COMPUTE_IMAGE_TYPE_VHD'},
            self.traits())
