"""Server diagnostics through nova's API on a simulated Hyper-V host.

``GET /servers/{id}/diagnostics`` answers from Hyper-V's VM summary
(compute_hyperv_ovs.hyperv.diagnostics); nova 28's Hyper-V driver answered
501.  Microversion 2.48 and later return nova's versioned model, earlier
ones the driver's own dict.  nova answers only for a running server (409
otherwise, in the compute manager).
"""

import time

from tests.functional import base


class DiagnosticsTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        # nova 34's response schema for diagnostics lists the drivers
        # ironic, libvirt, vmwareapi and xenapi only (api/openstack/compute/
        # schemas/server_diagnostics.py), although nova's model allows
        # 'hyperv' (objects.fields.HypervisorDriver) and tempest's schema
        # expects it; so nova-api, at its default [api] response_validation
        # = warn, logs a warning and answers, where nova's test default
        # ('error') would answer 500.
        self.flags(response_validation='warn', group='api')
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def test_running_server_reports_its_vm(self):
        self.flags(force_config_drive=True, mkisofs_cmd='genisoimage')
        self.flags(config_drive_cdrom=True, group='hyperv')
        server, port = self.boot(self.image)
        time.sleep(1.1)

        diags = self.admin_api.get_server_diagnostics(server['id'])

        self.assertEqual('running', diags['state'])
        self.assertEqual('hyperv', diags['driver'])
        self.assertIn("'hyperv' is not one of", self.stdlog.logger.output)
        self.assertTrue(diags['config_drive'])
        self.assertGreaterEqual(diags['uptime'], 1)
        # The flavor's 2 vCPUs and 1024 MiB, as Hyper-V holds them.
        self.assertEqual(2, diags['num_cpus'])
        self.assertEqual([0, 1], [c['id'] for c in diags['cpu_details']])
        self.assertEqual({'maximum': 1024, 'used': 1024},
                         diags['memory_details'])
        # The root disk and the config drive's ISO on its DVD drive.
        self.assertEqual(2, diags['num_disks'])

    def test_uptime_counts_from_the_last_start(self):
        server, port = self.boot(self.image)
        time.sleep(2.1)
        before = self.admin_api.get_server_diagnostics(server['id'])
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        self.api.post_server_action(server['id'], {'os-start': None})
        self._wait_for_state_change(server, 'ACTIVE')

        after = self.admin_api.get_server_diagnostics(server['id'])

        self.assertGreaterEqual(before['uptime'], 2)
        self.assertLess(after['uptime'], before['uptime'])
        self.assertEqual(1, after['num_disks'])

    def test_before_2_48_the_drivers_dict(self):
        server, port = self.boot(self.image)
        self.admin_api.microversion = '2.47'

        diags = self.admin_api.get_server_diagnostics(server['id'])

        self.assertEqual('running', diags['state'])
        self.assertEqual(2, diags['num_cpus'])
        self.assertEqual(1024, diags['memory_maximum_mb'])
