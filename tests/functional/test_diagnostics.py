"""Server diagnostics through nova's API on a simulated Hyper-V host.

``GET /servers/{id}/diagnostics`` answers from Hyper-V's VM summary
(compute_hyperv_ovs.hyperv.diagnostics); nova 28's Hyper-V driver answered
501.  Microversion 2.48 and later return nova's versioned model, earlier
ones the driver's own dict.  nova answers only for a running server (409
otherwise, in the compute manager).
"""

import os
import time

from oslo_utils import units

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
        # Without [hyperv] enable_instance_metrics_collection, no counter.
        self.assertEqual([None, None],
                         [c['time'] for c in diags['cpu_details']])
        self.assertEqual([None, None],
                         [d['read_bytes'] for d in diags['disk_details']])
        self.assertEqual([], diags['nic_details'])
        self.assertFalse(self.vm_of(server).metrics_enabled)

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


class MeteredDiagnosticsTest(base.HyperVOVSTestBase):
    """[hyperv] enable_instance_metrics_collection: Hyper-V's counters."""

    def setUp(self):
        super().setUp()
        self.flags(response_validation='warn', group='api')
        self.flags(enable_instance_metrics_collection=True, group='hyperv')
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def wait_for_metering(self, server, port):
        """The start event's callback turns the port's metering on."""
        deadline = time.monotonic() + 20
        while not self.vm_of(server).nics[port['id']].metered:
            if time.monotonic() > deadline:
                self.fail('the port of %s was never metered' % server['id'])
            time.sleep(0.1)

    def test_counters_of_a_busy_guest(self):
        server, port = self.boot(self.image)
        self.wait_for_metering(server, port)
        self.assertTrue(self.vm_of(server).metrics_enabled)
        name = server['OS-EXT-SRV-ATTR:instance_name']
        root = os.path.join(self.instance_dir(server), 'root.vhdx')
        host = self.host('host1')
        host.guest_network_traffic(name, port['id'], rx_bytes=2 * units.Mi,
                                   tx_bytes=units.Mi)
        host.guest_disk_io(name, root, read_bytes=3 * units.Mi,
                           write_bytes=4 * units.Mi)
        time.sleep(1.1)

        diags = self.admin_api.get_server_diagnostics(server['id'])

        self.assertEqual(2, len(diags['cpu_details']))
        for cpu in diags['cpu_details']:
            self.assertGreater(cpu['time'], 0)
            self.assertIsNotNone(cpu['utilisation'])
        self.assertEqual(
            [{'mac_address': port['mac_address'],
              'rx_octets': 2 * units.Mi, 'tx_octets': units.Mi,
              'rx_packets': None, 'tx_packets': None, 'rx_errors': None,
              'tx_errors': None, 'rx_drop': None, 'tx_drop': None,
              'rx_rate': None, 'tx_rate': None}],
            diags['nic_details'])
        self.assertEqual([{'read_bytes': 3 * units.Mi,
                           'write_bytes': 4 * units.Mi,
                           'read_requests': None, 'write_requests': None,
                           'errors_count': None}], diags['disk_details'])

        # Before 2.48: the driver's dict, with the same counters.
        self.admin_api.microversion = '2.47'
        legacy = self.admin_api.get_server_diagnostics(server['id'])
        self.assertEqual(2 * units.Mi, legacy['nic0_rx_octets'])
        self.assertEqual(4 * units.Mi, legacy['disk0_write_bytes'])
        self.assertGreater(legacy['cpu0_time'], 0)
        self.assertEqual(1024, legacy['memory_average_mb'])

    def test_restarted_server_is_metered_again(self):
        server, port = self.boot(self.image)
        self.wait_for_metering(server, port)
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_state_change(server, 'SHUTOFF')
        # Hyper-V dropped the VM's CPU and network metering.
        self.assertFalse(self.vm_of(server).nics[port['id']].metered)

        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.wait_for_metering(server, port)
        self.host('host1').guest_network_traffic(
            server['OS-EXT-SRV-ATTR:instance_name'], port['id'],
            rx_bytes=units.Mi)

        diags = self.admin_api.get_server_diagnostics(server['id'])
        self.assertEqual(units.Mi, diags['nic_details'][0]['rx_octets'])
