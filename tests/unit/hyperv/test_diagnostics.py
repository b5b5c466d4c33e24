"""DiagnosticsOps: what a user reads in server diagnostics of a Hyper-V VM.

The VM runs on a simulated host whose resource metering keeps Hyper-V's
counters (tests/fixtures/hyperv/metricsutils.py).
"""

import os

import fixtures
from nova import objects
from nova import test
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import diagnostics
from tests.fixtures.hyperv import fixture as hyperv_fixture

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED
OFF = os_win_const.HYPERV_VM_STATE_DISABLED
NIC = 'port-1'
MAC = 'fa:16:3e:00:00:01'
CLOCK_MHZ = 2000


class DiagnosticsTestBase(test.NoDBTestCase):

    METERING = True

    def setUp(self):
        super().setUp()
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.flags(enable_instance_metrics_collection=self.METERING,
                   group='hyperv')
        hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = hosts.add_host('hv1', cpu_clock_mhz=CLOCK_MHZ)
        with hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()
            self.networkutils = utilsfactory.get_networkutils()
            self.metricsutils = utilsfactory.get_metricsutils()
            self.ops = diagnostics.DiagnosticsOps()
        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(),
            config_drive='', launched_at=None, system_metadata={},
            image_ref='', flavor=objects.Flavor(memory_mb=1024))
        self.root = os.path.join(self.instances_path, 'root.vhdx')

    def _create_vm(self):
        """As vmops makes it: a disk, a vNIC on the vSwitch; off."""
        name = self.instance.name
        self.vmutils.create_vm(name, False, os_win_const.VM_GEN_1,
                               self.instances_path, [self.instance.uuid])
        self.vmutils.update_vm(name, 1024, None, 2, None, False, 1.0)
        self.vmutils.create_scsi_controller(name)
        self.vhdutils.create_dynamic_vhd(self.root, units.Gi)
        self.vmutils.attach_scsi_drive(name, self.root)
        self.vmutils.create_nic(name, NIC, MAC)
        self.networkutils.connect_vnic_to_vswitch('br-ext', NIC)
        if self.METERING:
            # vmops.create_instance, with the option on.
            self.metricsutils.enable_vm_metrics_collection(name)
        return name

    def _start(self, name):
        self.vmutils.set_vm_state(name, RUNNING)
        # The driver's start callback.
        return self.ops.enable_metrics(name)


class MeteredDiagnosticsTest(DiagnosticsTestBase):

    def test_counters_in_nova_units(self):
        name = self._create_vm()
        self.assertTrue(self._start(name))
        self.host.vm_records[name].cpu_load = 0.5
        self.host.guest_network_traffic(name, NIC, rx_bytes=3 * units.Mi,
                                        tx_bytes=5 * units.Mi + 10)
        self.host.guest_disk_io(name, self.root, read_bytes=7 * units.Mi,
                                write_bytes=2 * units.Mi)
        self.host.vm_records[name].booted_at -= 10  # ten seconds on

        diags = self.ops.get_instance_diagnostics(self.instance)

        # Half of 2 vCPUs for ~10 s: ~10 s of CPU time, half each.
        self.assertEqual(2, diags.num_cpus)
        for cpu in diags.cpu_details:
            self.assertEqual(50, cpu.utilisation)
            self.assertGreaterEqual(cpu.time, 5 * 10 ** 9)
            self.assertLess(cpu.time, 6 * 10 ** 9)
        nic, = diags.nic_details
        self.assertEqual((MAC, 3 * units.Mi, 5 * units.Mi),
                         (nic.mac_address, nic.rx_octets, nic.tx_octets))
        self.assertIsNone(nic.rx_packets)
        disk, = diags.disk_details
        self.assertEqual((7 * units.Mi, 2 * units.Mi),
                         (disk.read_bytes, disk.write_bytes))
        self.assertIsNone(disk.read_requests)

    def test_cpu_time_grows_while_the_vm_runs(self):
        name = self._create_vm()
        self._start(name)
        self.host.vm_records[name].booted_at -= 1
        first = self.ops.get_instance_diagnostics(self.instance)
        self.host.vm_records[name].booted_at -= 1

        second = self.ops.get_instance_diagnostics(self.instance)

        self.assertGreater(second.cpu_details[0].time,
                           first.cpu_details[0].time)

    def test_stopped_and_started_vm_is_metered_again(self):
        # Hyper-V drops CPU and network metering when the VM stops; the
        # start callback turns it on again.
        name = self._create_vm()
        self._start(name)
        self.host.guest_network_traffic(name, NIC, rx_bytes=units.Mi)
        self.vmutils.set_vm_state(name, OFF)
        self.assertFalse(self.host.vms[name].metrics_enabled)

        self._start(name)
        self.host.guest_network_traffic(name, NIC, rx_bytes=units.Mi)
        self.host.vm_records[name].booted_at -= 1

        diags = self.ops.get_instance_diagnostics(self.instance)
        self.assertEqual(2 * units.Mi, diags.nic_details[0].rx_octets)
        self.assertGreater(diags.cpu_details[0].time, 0)

    def test_port_of_a_vm_that_is_off_cannot_be_metered(self):
        name = self._create_vm()

        self.assertFalse(self.ops.enable_metrics(name))
        self.assertRaises(os_win_exc.OSWinException,
                          self.metricsutils.enable_port_metrics_collection,
                          NIC)

    def test_traffic_below_a_megabyte_shows_as_zero(self):
        # Hyper-V keeps whole MB.
        name = self._create_vm()
        self._start(name)
        self.host.guest_network_traffic(name, NIC, rx_bytes=units.Mi - 1)

        diags = self.ops.get_instance_diagnostics(self.instance)

        self.assertEqual(0, diags.nic_details[0].rx_octets)

    def test_legacy_dict_carries_the_counters(self):
        name = self._create_vm()
        self._start(name)
        self.host.guest_disk_io(name, self.root, write_bytes=4 * units.Mi)
        self.host.guest_network_traffic(name, NIC, tx_bytes=units.Mi)
        self.host.vm_records[name].booted_at -= 1

        diags = self.ops.get_diagnostics(self.instance)

        self.assertEqual(1024, diags['memory_average_mb'])
        self.assertGreater(diags['cpu0_time'], 0)
        self.assertEqual(diags['cpu0_time'], diags['cpu1_time'])
        self.assertEqual(MAC, diags['nic0_mac'])
        self.assertEqual(units.Mi, diags['nic0_tx_octets'])
        self.assertEqual(4 * units.Mi, diags['disk0_write_bytes'])
        self.assertEqual(0, diags['disk0_read_bytes'])


class UnmeteredDiagnosticsTest(DiagnosticsTestBase):

    METERING = False

    def test_counters_are_null_not_zero(self):
        name = self._create_vm()
        self.assertFalse(self._start(name))
        self.host.guest_network_traffic(name, NIC, rx_bytes=units.Mi)
        self.host.guest_disk_io(name, self.root, read_bytes=units.Mi)

        diags = self.ops.get_instance_diagnostics(self.instance)

        self.assertEqual([None, None],
                         [cpu.time for cpu in diags.cpu_details])
        self.assertEqual([None, None],
                         [cpu.utilisation for cpu in diags.cpu_details])
        self.assertEqual([], diags.nic_details)
        self.assertEqual([(None, None)],
                         [(d.read_bytes, d.write_bytes)
                          for d in diags.disk_details])
        self.assertNotIn('cpu0_time', self.ops.get_diagnostics(self.instance))
        # Hyper-V metered nothing either.
        self.assertFalse(self.host.vms[name].metrics_enabled)

    def test_os_win_reads_unmetered_counters_as_zero(self):
        # Why the driver must not read them when the option is off.
        name = self._create_vm()
        self._start(name)
        self.host.vm_records[name].booted_at -= 1

        self.assertEqual(0, self.metricsutils.get_cpu_metrics(name)[0])
        self.assertEqual(0, self.metricsutils.get_memory_metrics(name))


class CpuTimeTest(test.NoDBTestCase):

    def test_average_mhz_to_cpu_time(self):
        # 3000 MHz on a 2000 MHz host: 1.5 processors busy for 2 s.
        self.assertEqual(3 * 10 ** 9,
                         diagnostics.cpu_time_ns(3000, 2000, 2000))

    def test_unknown_clock(self):
        self.assertEqual(0, diagnostics.cpu_time_ns(3000, 0, 2000))
