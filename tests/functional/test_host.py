"""The host through nova's API: power actions, uptime, traits.

One simulated Hyper-V host behind nova's in-process stack.  The os-hosts
API (power actions) exists up to microversion 2.42; uptime is in the
hypervisor's details from 2.88 on (``/os-hypervisors/{id}/uptime`` before).
"""

import re

from nova.tests.functional.api import client as api_client

from tests.functional import base

# nova 34 os-hosts: removed from microversion 2.43 on.
OS_HOSTS_MICROVERSION = '2.42'
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
