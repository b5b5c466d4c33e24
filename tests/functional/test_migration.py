"""Live and cold migration between simulated Hyper-V hosts with real OVS.

Every host has its own instances path (shared-nothing), its own vSwitch
and its own Open vSwitch; each test reads both hosts' simulated Hyper-V
state and both OVSDBs back after the operation.
"""

import os

from nova.tests.functional.api import client as api_client
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from oslo_utils import units

from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures import neutron_agent
from tests.functional import base

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED


class MigrationTestBase(base.HyperVOVSTestBase):

    # RPC casts stay casts, as in a deployment: the API answers 202 and a
    # refused migration shows in the migration record and instance actions
    # (nova's default here turns casts into calls, and the refusal into an
    # API error 500 that no user would see).
    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.image = self.images.create_image('vhdx')

    # ---- helpers ----

    def external_ids(self, server, port, hostname=None):
        # The markers name the compute service that registered the port
        # (doc/source/design.rst); by default the server's current host.
        return {'iface-id': port['id'],
                'attached-mac': port['mac_address'],
                'iface-status': 'active',
                'vm-uuid': server['id'],
                'created-by': 'compute-hyperv-ovs',
                'compute-host': hostname or server['OS-EXT-SRV-ATTR:host']}

    def assert_ovs_port(self, hostname, server, port):
        """The port as neutron-openvswitch-agent needs it, read from OVSDB."""
        switch = self.ovs[hostname]
        self.assertIn(port['id'], switch.list_ports('br-int'))
        iface = switch.get_interface(port['id'])
        self.assertEqual(self.external_ids(server, port, hostname),
                         iface['external_ids'])
        self.assertGreater(iface['ofport'], 0)

    def assert_no_ovs_port(self, hostname, port):
        switch = self.ovs[hostname]
        self.assertNotIn(port['id'], switch.list_ports('br-int'))
        self.assertIsNone(switch.get_interface(port['id']))

    def assert_runs_on(self, hostname, server, port, status='ACTIVE'):
        """The VM runs on hostname, its NIC on the vSwitch, port in OVS."""
        self.assertEqual(hostname, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(status, server['status'])
        vm = self.vm_of(server, hostname)
        self.assertIsNotNone(vm)
        self.assertEqual(RUNNING, vm.power_state)
        nic = vm.nics[port['id']]
        self.assertEqual((base.VSWITCH, port['id']),
                         (nic.vswitch, nic.switch_port))
        self.assertIn(base.VSWITCH, self.host(hostname).vswitches)
        self.assert_ovs_port(hostname, server, port)
        return vm

    def assert_gone_from(self, hostname, server, port):
        """Nothing of the server is left on hostname."""
        self.assertIsNone(self.vm_of(server, hostname))
        self.assert_no_ovs_port(hostname, port)
        self.assertFalse(os.path.exists(self.instance_dir(server, hostname)))
        self.assertFalse(os.path.exists(
            self.instance_dir(server, hostname) + '_revert'))

    def root_disk(self, server, hostname):
        """(path, DiskView) of the server's root disk on hostname."""
        path = os.path.join(self.instance_dir(server, hostname), 'root.vhdx')
        return path, self.host(hostname).disks[path]

    def assert_allocated_on(self, hostname, server):
        rp_uuid = self._get_provider_uuid_by_host(hostname)
        self.assertEqual([rp_uuid], list(
            self._get_allocations_by_server_uuid(server['id'])))

    def live_migrate(self, server, host, migration_status='completed'):
        self.api.post_server_action(
            server['id'],
            {'os-migrateLive': {'host': host, 'block_migration': 'auto'}})
        migration = self._wait_for_migration_status(server,
                                                    [migration_status])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        return server, migration


class LiveMigrationTest(MigrationTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')

    def test_live_migration_hands_ovs_port_over_and_moves_disks(self):
        server, port = self.boot(self.image, host='host1')
        src_root, src_disk = self.root_disk(server, 'host1')
        image_file = os.path.basename(src_disk.parent)
        self.assertFalse(os.path.exists(
            os.path.join(self.base_dir('host2'), image_file)))
        at_cutover = {}

        def cutover(vm_name, source, destination):
            # The moment Hyper-V moves the VM: read both real OVSDBs.
            at_cutover['host1'] = self.ovs['host1'].get_interface(port['id'])
            at_cutover['host2'] = self.ovs['host2'].get_interface(port['id'])
            at_cutover['host2 ports'] = self.ovs['host2'].list_ports()

        self.host('host2').on_live_migration = cutover

        server, migration = self.live_migrate(server, 'host2')

        # Before the VM arrived, host2's OVSDB had the port, named and
        # tagged as on host1, and host1 still had its own.
        self.assertIn(port['id'], at_cutover['host2 ports'])
        self.assertEqual(self.external_ids(server, port, 'host2'),
                         at_cutover['host2']['external_ids'])
        self.assertEqual(self.external_ids(server, port, 'host1'),
                         at_cutover['host1']['external_ids'])
        # Afterwards: the VM runs on host2 with its port; host1 is clean.
        vm = self.assert_runs_on('host2', server, port)
        self.assert_gone_from('host1', server, port)
        self.assertEqual('host2', migration['dest_compute'])
        # The disks moved: root differencing disk on host2, whose parent
        # is the image, fetched into host2's own cache.
        dest_root, dest_disk = self.root_disk(server, 'host2')
        self.assertIn(dest_root, [d.path for d in vm.disks])
        self.assertEqual(os_win_const.VHD_TYPE_DIFFERENCING, dest_disk.type)
        self.assertEqual(os.path.join(self.base_dir('host2'), image_file),
                         dest_disk.parent)
        self.assertTrue(os.path.isfile(dest_disk.parent))
        self.assertEqual(self.instance_dir(server, 'host2'), vm.instance_path)
        self.assertFalse(os.path.exists(src_root))
        self.assert_allocated_on('host2', server)

    # ---- refused before anything moves ----

    def refused(self, server, port, event):
        """Live-migrate to host2, expect a refusal; return its message.

        The server stays ACTIVE on host1 with its port, nothing reached
        host2 (no VM, port, instance files or image), the migration record
        says error and the allocation stays on host1.
        """
        image_file = os.path.basename(
            self.root_disk(server, 'host1')[1].parent)
        server, migration = self.live_migrate(server, 'host2',
                                              migration_status='error')
        self.assertEqual('error', migration['status'])
        self.assert_runs_on('host1', server, port)
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        self.assertFalse(os.path.exists(
            os.path.join(self.base_dir('host2'), image_file)))
        self.assert_allocated_on('host1', server)
        return self._wait_for_action_fail_completion(
            server, 'live-migration', event)['details']

    def test_destination_without_the_vswitch_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        self.host('host2').remove_vswitch(base.VSWITCH)

        message = self.refused(server, port,
                               'compute_check_can_live_migrate_destination')

        self.assertIn('Hyper-V on host2 has no vSwitch named %s'
                      % base.VSWITCH, message)
        self.assertIn('[hyperv] vswitch_name', message)
        self.assert_no_ovs_port('host2', port)

    def test_destination_with_ovsdb_down_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        switch = self.ovs['host2']
        switch.stop()

        message = self.refused(server, port,
                               'compute_check_can_live_migrate_destination')

        self.assertIn('Open vSwitch on host2 is unreachable: OVSDB at %s'
                      % switch.connection, message)
        self.assertIn('ovsdb_connection', message)
        # The database survives on disk: read it back to see no port.
        switch.start()
        self.assert_no_ovs_port('host2', port)

    def test_destination_without_integration_bridge_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        self.ovs['host2'].vsctl('del-br', 'br-int')

        message = self.refused(server, port,
                               'compute_check_can_live_migrate_destination')

        self.assertIn('Open vSwitch on host2 has no bridge br-int', message)
        self.assertIn('neutron-openvswitch-agent', message)
        # Not created behind the operator's back either.
        self.assertNotIn('br-int', self.ovs['host2'].list_bridges())

    def test_destination_without_hyperv_live_migration_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        self.host('host2').live_migration_enabled = False

        message = self.refused(server, port,
                               'compute_check_can_live_migrate_destination')

        self.assertIn('Hyper-V on host2 cannot live-migrate', message)
        self.assertIn('Enable-VMMigration', message)
        self.assert_no_ovs_port('host2', port)

    def test_source_without_hyperv_live_migration_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        self.host('host1').live_migration_enabled = False

        message = self.refused(server, port,
                               'compute_check_can_live_migrate_source')

        self.assertIn('Hyper-V on host1 cannot live-migrate', message)
        self.assertIn('Enable-VMMigration', message)
        self.assert_no_ovs_port('host2', port)

    # ---- rollback ----

    def test_failed_move_rolls_back_to_the_source(self):
        server, port = self.boot(self.image, host='host1')
        src_root, _disk = self.root_disk(server, 'host1')
        prepared = {}

        def fail_at_cutover(vm_name, source, destination):
            prepared['port'] = self.ovs['host2'].get_interface(port['id'])
            prepared['dir'] = os.path.isdir(self.instance_dir(server,
                                                              'host2'))
            raise os_win_exc.HyperVException(
                'Virtual machine migration operation failed at migration '
                'source (simulated)')

        self.host('host2').on_live_migration = fail_at_cutover

        server, migration = self.live_migrate(server, 'host2',
                                              migration_status='error')

        # Still running on host1, with its port and its disk.
        vm = self.assert_runs_on('host1', server, port)
        self.assertIn(src_root, [d.path for d in vm.disks])
        self.assertTrue(os.path.isfile(src_root))
        self.assert_allocated_on('host1', server)
        # host2 had prepared the move, and took everything back.
        self.assertEqual(self.external_ids(server, port, 'host2'),
                         prepared['port']['external_ids'])
        self.assertTrue(prepared['dir'])
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assert_no_ovs_port('host2', port)
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        event = self._wait_for_action_fail_completion(
            server, 'live-migration', 'hyperv_live_migrate_vm')
        self.assertIn('Hyper-V could not live-migrate the VM to host2',
                      event['details'])
        self.assertIn('operation failed at migration source',
                      event['details'])

    # ---- the destination's own port bindings ----

    def bind_on_bridge(self, hostname, bridge, create=True):
        """neutron binds the server's ports on hostname to another bridge.

        As when that host's neutron-openvswitch-agent runs with ``[ovs]
        integration_bridge = <bridge>``: neutron's OVS mechanism driver
        reports it as ``bridge_name`` in the binding's vif_details, from
        which nova takes the VIF's bridge (nova 28
        ``network/neutron.py`` ``_nw_info_build_network``).  nova makes
        the destination's binding during the live migration (conductor
        ``_bind_ports_on_destination``); the source's binding stays as it
        is until the VM has moved.
        """
        if create:
            self.ovs[hostname].add_bridge(bridge)
            # The same agent release as before, on the other bridge.
            old_agent = self.agents[hostname]
            old_agent.stop()
            self.agents[hostname] = self.useFixture(
                neutron_agent.NeutronOVSAgentStandIn(
                    self.ovs[hostname], hostname, on_port_up=self._port_up,
                    bridge=bridge,
                    binds_failed_ports=old_agent.binds_failed_ports))
        create_port_binding = self.neutron.create_port_binding

        def bind(port_id, body):
            result = create_port_binding(port_id, body)
            if body['binding']['host'] == hostname:
                # The fixture keeps the dict it returns as the binding.
                result['binding']['vif_details'] = dict(
                    result['binding']['vif_details'], bridge_name=bridge)
            return result

        self.neutron.create_port_binding = bind

    def test_failed_move_removes_the_port_bound_differently_here(self):
        server, port = self.boot(self.image, host='host1')
        self.bind_on_bridge('host2', 'br-alt')
        prepared = {}

        def fail_at_cutover(vm_name, source, destination):
            prepared['bridge'] = self.ovs['host2'].port_to_bridge(port['id'])
            raise os_win_exc.HyperVException(
                'Virtual machine migration operation failed at migration '
                'source (simulated)')

        self.host('host2').on_live_migration = fail_at_cutover

        server, migration = self.live_migrate(server, 'host2',
                                              migration_status='error')

        # Registered ahead where host2's binding puts it, and removed from
        # there, although host1's binding names br-int.
        self.assertEqual('br-alt', prepared['bridge'])
        self.assert_runs_on('host1', server, port)
        self.assertIsNone(self.ovs['host2'].get_interface(port['id']))
        self.assertEqual([], self.ovs['host2'].list_ports('br-alt'))
        self.assert_no_ovs_port('host2', port)
        self.assertIsNone(self.vm_of(server, 'host2'))

    def test_move_follows_the_destination_binding(self):
        server, port = self.boot(self.image, host='host1')
        self.bind_on_bridge('host2', 'br-alt')

        server, migration = self.live_migrate(server, 'host2')

        self.assertEqual('br-alt', self.ovs['host2'].port_to_bridge(
            port['id']))
        self.assertNotIn(port['id'], self.ovs['host2'].list_ports('br-int'))
        self.assert_gone_from('host1', server, port)

    def test_destination_binding_on_a_missing_bridge_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        self.bind_on_bridge('host2', 'br-alt', create=False)

        # nova marks a migration whose pre_live_migration failed "failed".
        server, migration = self.live_migrate(server, 'host2',
                                              migration_status='failed')

        self.assert_runs_on('host1', server, port)
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assertIsNone(self.ovs['host2'].get_interface(port['id']))
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        self.assert_allocated_on('host1', server)
        message = self._wait_for_action_fail_completion(
            server, 'live-migration', 'compute_pre_live_migration')['details']
        self.assertIn('Open vSwitch on host2 has no bridge br-alt', message)


class CPUFeaturesTest(MigrationTestBase):
    """host2's CPU lacks one of host1's features and has another one."""

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2', cpu_features=(
            hyperv_const.DEFAULT_CPU_FEATURES - {'xsave'}) | {'3dnow'})

    def test_limit_cpu_features_creates_limited_vm(self):
        self.flags(limit_cpu_features=True, group='hyperv')

        server, port = self.boot(self.image, host='host1')

        self.assertTrue(self.vm_of(server).limit_cpu_features)

    def test_vm_is_not_limited_by_default(self):
        server, port = self.boot(self.image, host='host1')

        self.assertFalse(self.vm_of(server).limit_cpu_features)

    def test_limited_vm_moves_to_a_different_cpu(self):
        self.flags(limit_cpu_features=True, group='hyperv')
        server, port = self.boot(self.image, host='host1')

        server, _migration = self.live_migrate(server, 'host2')

        vm = self.assert_runs_on('host2', server, port)
        self.assertTrue(vm.limit_cpu_features)
        self.assert_gone_from('host1', server, port)

    def test_unlimited_vm_is_refused_before_it_moves(self):
        server, port = self.boot(self.image, host='host1')

        server, _migration = self.live_migrate(server, 'host2',
                                               migration_status='error')

        self.assert_runs_on('host1', server, port)
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assert_no_ovs_port('host2', port)
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        event = self._wait_for_action_fail_completion(
            server, 'live-migration',
            'compute_check_can_live_migrate_destination')
        self.assertIn('host2 lacks processor features of host1',
                      event['details'])
        self.assertIn('[hyperv] limit_cpu_features = True',
                      event['details'])
        # nova keeps 255 characters of details; the log has it all.
        self.assertIn('(host2 lacks xsave)',
                      self.stdlog.logger.output)

    def test_vm_created_before_limiting_is_refused_by_hyperv(self):
        # Created unlimited; the operator turns the option on afterwards,
        # so the pre-check passes and Hyper-V itself refuses the move.
        server, port = self.boot(self.image, host='host1')
        self.flags(limit_cpu_features=True, group='hyperv')

        server, _migration = self.live_migrate(server, 'host2',
                                               migration_status='error')

        vm = self.assert_runs_on('host1', server, port)
        self.assertFalse(vm.limit_cpu_features)
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assert_no_ovs_port('host2', port)
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        self.assert_allocated_on('host1', server)
        message = self._wait_for_action_fail_completion(
            server, 'live-migration', 'hyperv_live_migrate_vm')['details']
        self.assertIn('Hyper-V refused to move the VM to host2', message)
        self.assertIn('processor features are not limited', message)
        self.assertIn('[hyperv] limit_cpu_features = True', message)
        self.assertIn('cold-migrate or resize the server once', message)


class CPUSupersetTest(MigrationTestBase):
    """host2's CPU has every feature of host1's, and one more.

    Hyper-V refuses a VM whose processor features are not limited only on
    a host that lacks a feature the VM may use; a host with more features
    takes it (learn.microsoft.com/en-us/windows-server/virtualization/
    hyper-v/manage/processor-compatibility-mode-hyper-v).
    """

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2', cpu_features=(
            hyperv_const.DEFAULT_CPU_FEATURES | {'3dnow'}))

    def test_unlimited_vm_moves_to_a_cpu_with_more_features(self):
        server, port = self.boot(self.image, host='host1')

        server, _migration = self.live_migrate(server, 'host2')

        vm = self.assert_runs_on('host2', server, port)
        self.assertFalse(vm.limit_cpu_features)
        self.assert_gone_from('host1', server, port)

    def test_vm_created_before_limiting_moves_to_a_superset(self):
        # The pre-check trusts the option; Hyper-V itself lets the
        # unlimited VM move because host2 lacks nothing.
        server, port = self.boot(self.image, host='host1')
        self.flags(limit_cpu_features=True, group='hyperv')

        server, _migration = self.live_migrate(server, 'host2')

        vm = self.assert_runs_on('host2', server, port)
        self.assertFalse(vm.limit_cpu_features)

    def test_back_to_fewer_features_is_refused(self):
        server, port = self.boot(self.image, host='host2')

        server, _migration = self.live_migrate(server, 'host1',
                                               migration_status='error')

        self.assert_runs_on('host2', server, port)
        event = self._wait_for_action_fail_completion(
            server, 'live-migration',
            'compute_check_can_live_migrate_destination')
        self.assertIn('host1 lacks processor features of host2',
                      event['details'])


class ColdMigrationTest(MigrationTestBase):
    """Cold migration and resize between two hosts (never the same one)."""

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.bigger_flavor_id = self._create_flavor(
            memory_mb=2048, vcpu=4, disk=3, ephemeral=0)

    def assert_source_kept_for_revert(self, server, port):
        """During VERIFY_RESIZE host1 keeps only the files to revert to.

        nova's Hyper-V driver destroys the source VM when it moves the
        disks, so the source port goes with it, as in nova's libvirt
        driver; revert re-creates both.
        """
        self.assertIsNone(self.vm_of(server, 'host1'))
        self.assert_no_ovs_port('host1', port)
        revert_dir = self.instance_dir(server, 'host1') + '_revert'
        self.assertTrue(os.path.isfile(os.path.join(revert_dir,
                                                    'root.vhdx')))

    def assert_moved_root_disk(self, server, size_gb):
        dest_root, disk = self.root_disk(server, 'host2')
        vm = self.vm_of(server, 'host2')
        self.assertIn(dest_root, [d.path for d in vm.disks])
        self.assertEqual(os_win_const.VHD_TYPE_DIFFERENCING, disk.type)
        # Re-parented onto the image fetched into host2's own cache.
        self.assertEqual(self.base_dir('host2'), os.path.dirname(disk.parent))
        self.assertTrue(os.path.isfile(disk.parent))
        # root_gb is the file's maximum size (nova resizes with
        # is_file_max_size=True); the VHDX metadata takes the difference.
        self.assertGreater(disk.virtual_size, (size_gb - 1) * units.Gi)
        self.assertLessEqual(disk.virtual_size, size_gb * units.Gi)

    def test_cold_migrate_then_confirm(self):
        server, port = self.boot(self.image, host='host1')

        server = self._migrate_server(server, host='host2')

        vm = self.assert_runs_on('host2', server, port, 'VERIFY_RESIZE')
        self.assertEqual((2, 1024), (vm.vcpus, vm.memory_mb))
        self.assert_moved_root_disk(server, 2)
        self.assert_source_kept_for_revert(server, port)

        server = self._confirm_resize(server)

        self.assert_runs_on('host2', server, port)
        self.assert_gone_from('host1', server, port)
        self.assert_allocated_on('host2', server)

    def test_resize_grows_root_disk_then_confirm(self):
        server, port = self.boot(self.image, host='host1')

        server = self._resize_server(server, self.bigger_flavor_id)

        vm = self.assert_runs_on('host2', server, port, 'VERIFY_RESIZE')
        self.assertEqual((4, 2048), (vm.vcpus, vm.memory_mb))
        self.assert_moved_root_disk(server, 3)
        self.assert_source_kept_for_revert(server, port)

        server = self._confirm_resize(server)

        self.assert_runs_on('host2', server, port)
        self.assert_moved_root_disk(server, 3)
        self.assert_gone_from('host1', server, port)
        self.assert_allocated_on('host2', server)

    def test_resize_then_revert(self):
        server, port = self.boot(self.image, host='host1')
        src_root, src_disk = self.root_disk(server, 'host1')
        server = self._resize_server(server, self.bigger_flavor_id)
        self.assert_runs_on('host2', server, port, 'VERIFY_RESIZE')

        server = self._revert_resize(server)

        vm = self.assert_runs_on('host1', server, port)
        self.assertEqual((2, 1024), (vm.vcpus, vm.memory_mb))
        self.assertIn(src_root, [d.path for d in vm.disks])
        self.assertEqual(src_disk, self.host('host1').disks[src_root])
        self.assertFalse(os.path.exists(
            self.instance_dir(server, 'host1') + '_revert'))
        self.assert_gone_from('host2', server, port)
        self.assert_allocated_on('host1', server)

    def test_resize_below_the_boot_flavor_is_refused_by_nova(self):
        smaller_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=1, ephemeral=0)
        server, port = self.boot(self.image, host='host1')
        src_root, src_disk = self.root_disk(server, 'host1')

        exc = self.assertRaises(
            api_client.OpenStackApiException, self.api.post_server_action,
            server['id'], {'resize': {'flavorRef': smaller_flavor_id}})

        # nova's API keeps the boot flavor's root disk as the image's
        # min_disk; nothing reached a host.
        self.assertEqual(400, exc.response.status_code)
        self.assertIn("Flavor's disk is smaller than the minimum size",
                      str(exc))
        vm = self.assert_runs_on('host1', server, port)
        self.assertIn(src_root, [d.path for d in vm.disks])
        self.assertEqual(src_disk, self.host('host1').disks[src_root])
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host2')))
        self.assert_allocated_on('host1', server)

    def test_shrinking_a_grown_root_disk_is_refused(self):
        server, port = self.boot(self.image, host='host1')
        server = self._resize_server(server, self.bigger_flavor_id)
        server = self._confirm_resize(server)
        root, disk = self.root_disk(server, 'host2')

        # Back to the boot flavor: nova's API lets it through, nova's
        # Hyper-V driver on the host holding the grown disk refuses before
        # it changes anything.
        self.api.post_server_action(
            server['id'], {'resize': {'flavorRef': self.flavor_id}})

        self._wait_for_migration_status(server, ['error'])
        event = self._wait_for_action_fail_completion(
            server, 'resize', 'compute_resize_instance')
        # nova 28's own refusal (MigrationOps._check_target_flavor).
        self.assertIn('Cannot resize the root disk to a smaller size',
                      event['details'])
        self.assertIn('Current size: 3 GB', event['details'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual(3, server['flavor']['disk'])
        vm = self.assert_runs_on('host2', server, port)
        self.assertEqual((4, 2048), (vm.vcpus, vm.memory_mb))
        self.assertIn(root, [d.path for d in vm.disks])
        self.assertEqual(disk, self.host('host2').disks[root])
        self.assertFalse(os.path.exists(
            self.instance_dir(server, 'host2') + '_revert'))
        self.assert_gone_from('host1', server, port)
        self.assert_allocated_on('host2', server)
