"""HostOps: what nova learns about a Hyper-V host, from the host's facts."""

import re

import fixtures
from nova.compute import provider_tree
from nova import exception
from nova import objects
from nova import test
from nova.virt import hardware
import os_resource_classes as orc
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import hostops
from tests.fixtures.hyperv import fixture as hyperv_fixture

RATIOS = {orc.VCPU: 16.0, orc.MEMORY_MB: 1.5, orc.DISK_GB: 1.0}


class HostOpsTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())

    def _hostops(self, hostname='hv1', **facts):
        host = self.hosts.add_host(hostname, **facts)
        with self.hosts.building(hostname):
            return host, hostops.HostOps()

    def test_resources_are_the_hosts(self):
        host, ops = self._hostops(
            sockets=2, cores_per_socket=10, threads_per_core=2,
            memory_mb=128 * 1024, host_os_memory_mb=4096,
            disk_total_gb=2000, disk_free_gb=1500,
            windows_version='10.0.20348')

        res = ops.get_available_resource()

        self.assertEqual(40, res['vcpus'])
        self.assertEqual(128 * 1024, res['memory_mb'])
        self.assertEqual(4096, res['memory_mb_used'])
        self.assertEqual(2000, res['local_gb'])
        self.assertEqual(500, res['local_gb_used'])
        self.assertEqual(1500, res['disk_available_least'])
        self.assertEqual('hyperv', res['hypervisor_type'])
        self.assertEqual(10000, res['hypervisor_version'])
        self.assertEqual('hv1', res['hypervisor_hostname'])
        self.assertEqual(0, res['vcpus_used'])

    def test_cpu_info(self):
        host, ops = self._hostops(
            sockets=2, cores_per_socket=6, threads_per_core=2,
            cpu_model='AMD EPYC 7302', cpu_vendor='AuthenticAMD',
            cpu_features=['sse', 'sse2', 'nx'])

        cpu_info = jsonutils.loads(
            ops.get_available_resource()['cpu_info'])

        self.assertEqual('x86_64', cpu_info['arch'])
        self.assertEqual('AMD EPYC 7302', cpu_info['model'])
        self.assertEqual('AuthenticAMD', cpu_info['vendor'])
        self.assertEqual({'sockets': 2, 'cores': 6, 'threads': 2},
                         cpu_info['topology'])
        self.assertEqual(['nx', 'sse', 'sse2'], sorted(cpu_info['features']))

    def test_both_generations_run_32_and_64_bit_hvm_guests(self):
        host, ops = self._hostops()
        specs = [objects.HVSpec.from_list(spec) for spec in
                 ops.get_available_resource()['supported_instances']]
        self.assertEqual({('i686', 'hyperv', 'hvm'),
                          ('x86_64', 'hyperv', 'hvm')},
                         {(s.arch, s.hv_type, s.vm_mode) for s in specs})

    def test_numa_topology_has_no_dedicated_cpus(self):
        host, ops = self._hostops(sockets=1, cores_per_socket=4,
                                  threads_per_core=2, memory_mb=32768,
                                  host_os_memory_mb=2048)
        topology = objects.NUMATopology.obj_from_db_obj(
            ops.get_available_resource()['numa_topology'])

        self.assertEqual(1, len(topology.cells))
        cell = topology.cells[0]
        self.assertEqual(set(range(8)), cell.cpuset)
        self.assertEqual(set(), cell.pcpuset)
        self.assertEqual(32768, cell.memory)
        self.assertEqual(2048, cell.memory_usage)
        self.assertEqual(0, cell.avail_pcpus)

    def test_each_numa_node_is_a_cell_nova_can_place_a_vm_on(self):
        host, ops = self._hostops(sockets=2, cores_per_socket=4,
                                  threads_per_core=2, memory_mb=32768,
                                  numa_nodes=2)
        topology = objects.NUMATopology.obj_from_db_obj(
            ops.get_available_resource()['numa_topology'])

        self.assertEqual([set(range(8)), set(range(8, 16))],
                         [cell.cpuset for cell in topology.cells])
        for cell in topology.cells:
            self.assertEqual(16384, cell.memory)
            # One pool of 4 KiB pages holding the cell's memory: nova's
            # claims book instance cells against the smallest page size.
            self.assertEqual([(4, 16384 * 1024 // 4)],
                             [(p.size_kb, p.total) for p in cell.mempages])
        # An instance of two even cells fits, as nova's claim checks.
        wanted = objects.InstanceNUMATopology(cells=[
            objects.InstanceNUMACell(id=i, cpuset={2 * i, 2 * i + 1},
                                     pcpuset=set(), memory=1024)
            for i in range(2)])
        fitted = hardware.numa_fit_instance_to_host(topology, wanted,
                                                    provider_mapping=None)
        self.assertIsNotNone(fitted)
        self.assertIsNotNone(hardware.numa_usage_from_instance_numa(
            topology, fitted))

    def test_memory_used_grows_with_running_vms(self):
        host, ops = self._hostops(memory_mb=16384, host_os_memory_mb=1024)
        before = ops.get_available_resource()['memory_mb_used']
        # A VM of 4 GiB started on the host (by hand, as vmops would).
        with self.hosts.building('hv1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.create_vm('instance-1', False, os_win_const.VM_GEN_1,
                          host.instances_path, [uuidutils.generate_uuid()])
        vmutils.update_vm('instance-1', 4096, 4096, 2, 2, False, 1.0)
        vmutils.set_vm_state('instance-1',
                             os_win_const.HYPERV_VM_STATE_ENABLED)

        after = ops.get_available_resource()['memory_mb_used']
        self.assertEqual(4096, after - before)

    def test_inventory_from_host_facts_and_nova_conf(self):
        self.flags(reserved_host_cpus=2, reserved_host_memory_mb=4096,
                   reserved_host_disk_mb=10 * 1024 + 1)
        host, ops = self._hostops(sockets=1, cores_per_socket=8,
                                  threads_per_core=2, memory_mb=65536,
                                  disk_total_gb=1024)
        tree = provider_tree.ProviderTree()
        node_uuid = uuidutils.generate_uuid()
        tree.new_root('hv1', node_uuid)

        ops.update_provider_tree(tree, 'hv1', RATIOS)

        inventory = tree.data('hv1').inventory
        self.assertEqual(
            {orc.VCPU: {'total': 16, 'reserved': 2, 'min_unit': 1,
                        'max_unit': 16, 'step_size': 1,
                        'allocation_ratio': 16.0},
             orc.MEMORY_MB: {'total': 65536, 'reserved': 4096,
                             'min_unit': 1, 'max_unit': 65536,
                             'step_size': 1, 'allocation_ratio': 1.5},
             # 10 GiB and one MiB reserved: 11 GiB (rounded up).
             orc.DISK_GB: {'total': 1024, 'reserved': 11, 'min_unit': 1,
                           'max_unit': 1024, 'step_size': 1,
                           'allocation_ratio': 1.0}},
            inventory)

    def test_inventory_leaves_out_an_empty_disk(self):
        # A volume under 1 GiB is 0 GiB; placement refuses total 0.
        host, ops = self._hostops(disk_total_gb=0, disk_free_gb=0)
        tree = provider_tree.ProviderTree()
        tree.new_root('hv1', uuidutils.generate_uuid())

        ops.update_provider_tree(tree, 'hv1', RATIOS)

        self.assertEqual({orc.VCPU, orc.MEMORY_MB},
                         set(tree.data('hv1').inventory))

    def test_each_host_answers_its_own_name(self):
        _, ops1 = self._hostops('hv1')
        _, ops2 = self._hostops('hv2')
        self.assertEqual('hv1', ops1.get_hostname())
        self.assertEqual('hv2', ops2.get_hostname())

    def test_windows_version(self):
        host, ops = self._hostops(windows_version='10.0.17763')
        self.assertEqual('10.0.17763', ops.get_windows_version())
        self.assertTrue(ops.is_windows_version_at_least(6, 2))
        self.assertTrue(ops.is_windows_version_at_least(10, 0, 17763))
        self.assertFalse(ops.is_windows_version_at_least(10, 0, 20348))

    def test_uptime_since_windows_started(self):
        host, ops = self._hostops()
        host.boot_time_ms = (2 * 86400 + 3 * 3600 + 4 * 60 + 5) * 1000
        uptime = ops.get_host_uptime()
        self.assertRegex(
            uptime, r'^\d\d:\d\d:\d\d up 2 days, 3:04:05,  0 users,  '
                    r'load average: 0, 0, 0$')

    def test_uptime_shows_whole_seconds(self):
        # GetTickCount64 counts milliseconds; uptime shows no fraction.
        host, ops = self._hostops()
        host.boot_time_ms = (3600 + 2 * 60 + 3) * 1000 + 456
        self.assertRegex(ops.get_host_uptime(),
                         r'^\d\d:\d\d:\d\d up 1:02:03,  0 users,  ')

    def test_uptime_of_one_day_is_singular(self):
        host, ops = self._hostops()
        host.boot_time_ms = 86400 * 1000
        self.assertIn(' up 1 day, 0:00:00,', ops.get_host_uptime())

    def test_shutdown_and_reboot_reach_the_host(self):
        host, ops = self._hostops()
        self.assertEqual('reboot', ops.host_power_action('reboot'))
        self.assertEqual('shutdown', ops.host_power_action('shutdown'))
        self.assertEqual(['reboot', 'shutdown'], host.power_actions)

    def test_startup_is_not_possible(self):
        host, ops = self._hostops()
        exc = self.assertRaises(NotImplementedError,
                                ops.host_power_action, 'startup')
        self.assertIn('BMC', str(exc))
        self.assertEqual([], host.power_actions)

    def test_unknown_power_action_is_refused(self):
        host, ops = self._hostops()
        exc = self.assertRaises(exception.InvalidInput,
                                ops.host_power_action, 'hibernate')
        self.assertTrue(re.search('hibernate.*shutdown', str(exc)))
        self.assertEqual([], host.power_actions)


class HostIPTestCase(test.NoDBTestCase):
    """get_host_ip_addr itself (the simulated host replaces it elsewhere).

    The simulated host answers every host's own first address in place of
    this method, because [DEFAULT] my_ip is one option per process; here
    the method runs on one host, unreplaced.
    """

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = hosts.add_host('hv1', local_ips=['192.0.2.50',
                                                     '198.51.100.7'])
        self.useFixture(fixtures.MonkeyPatch(
            'compute_hyperv_ovs.hyperv.hostops.HostOps.get_host_ip_addr',
            _UNREPLACED_GET_HOST_IP_ADDR))
        with hosts.building('hv1'):
            self.ops = hostops.HostOps()

    def test_my_ip_wins(self):
        self.flags(my_ip='203.0.113.9')
        self.assertEqual('203.0.113.9', self.ops.get_host_ip_addr())

    def test_first_host_address_without_my_ip(self):
        self.flags(my_ip='')
        self.assertEqual('192.0.2.50', self.ops.get_host_ip_addr())

    def test_no_address_at_all_says_to_set_my_ip(self):
        self.flags(my_ip='')
        self.host.local_ips = []
        exc = self.assertRaises(exception.InternalError,
                                self.ops.get_host_ip_addr)
        self.assertIn('my_ip', str(exc))


# Taken before any fixture replaces it.
_UNREPLACED_GET_HOST_IP_ADDR = hostops.HostOps.get_host_ip_addr
