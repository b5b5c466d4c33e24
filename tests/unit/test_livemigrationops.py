"""LiveMigrationOps between two simulated Hyper-V hosts, with a real OVS.

host1 is the source, host2 the destination; host2's ops talk to a real
ovsdb-server and ovs-vswitchd.  Only the Hyper-V hosts are simulated.
"""

import os

from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova.objects import migrate_data as migrate_data_obj
from nova import test
from nova.virt import driver as virt_driver
from os_vif import objects as osv_objects
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs import livemigrationops
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vmops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

VSWITCH = 'ovs-switch'
MAC = 'fa:16:3e:00:00:01'


def make_vif(vif_type=network_model.VIF_TYPE_OVS, details=None,
             bridge='br-int'):
    port_id = uuidutils.generate_uuid()
    network = network_model.Network(id=uuidutils.generate_uuid(),
                                    bridge=bridge, label='private',
                                    subnets=[])
    return network_model.VIF(id=port_id, address=MAC, network=network,
                             type=vif_type, details=details or {},
                             active=True, ovs_interfaceid=port_id)


def compute_info(hostname, features):
    """A ComputeNode as nova hands it to the driver (obj_to_primitive)."""
    return {'hypervisor_hostname': hostname,
            'cpu_info': jsonutils.dumps({'features': sorted(features)})}


class LiveMigrationOpsTestBase(test.TestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.flags(instances_path=self.useFixture(
            test.fixtures.TempDir()).path)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group=plugin.CONFIG_GROUP)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.src = self.add_host('host1')
        self.dest = self.add_host('host2')
        self.src_ops = self.make_ops('host1')
        self.dest_ops = self.make_ops('host2')
        with self.hosts.building('host1'):
            self.src_vmutils = utilsfactory.get_vmutils()
        self.context = nova_context.get_admin_context()
        self.vif = make_vif()
        self.instance = self.make_instance([self.vif])

    def add_host(self, name, **kwargs):
        path = os.path.join(test.CONF.instances_path, name)
        return self.hosts.add_host(name, vswitch_name=VSWITCH,
                                   instances_path=path, **kwargs)

    def make_ops(self, hostname):
        vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(vif_plugin.close)
        with self.hosts.building(hostname):
            return livemigrationops.LiveMigrationOps(
                vmops.VMOps(None, vif_plugin), vif_plugin)

    def make_instance(self, vifs):
        instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', image_ref=None)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo(vifs))
        return instance

    def running_vm_on_source(self, limit_cpu_features=False):
        name = self.instance.name
        self.src_vmutils.create_vm(name, False, 1, '/instances',
                                   [self.instance.uuid])
        self.src_vmutils.update_vm(name, 1024, None, 2, None,
                                   limit_cpu_features, 1.0)
        self.src_vmutils.create_nic(name, self.vif['id'], MAC)
        with self.hosts.building('host1'):
            utilsfactory.get_networkutils().connect_vnic_to_vswitch(
                VSWITCH, self.vif['id'])
        self.src_vmutils.set_vm_state(name, hyperv_const.RUNNING)


class DestinationCheckTest(LiveMigrationOpsTestBase):

    def check(self, src_features=hyperv_const.DEFAULT_CPU_FEATURES,
              dst_features=hyperv_const.DEFAULT_CPU_FEATURES):
        return self.dest_ops.check_can_live_migrate_destination(
            self.context, self.instance,
            compute_info('host1', src_features),
            compute_info('host2', dst_features))

    def refused(self, **kwargs):
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.check, **kwargs)
        return exc.format_message()

    def test_ready_destination_answers_not_shared(self):
        data = self.check()

        self.assertIsInstance(data, migrate_data_obj.HyperVLiveMigrateData)
        self.assertFalse(data.is_shared_instance_path)
        # Checking creates nothing.
        self.assertEqual([], self.ovs.list_ports())

    def test_missing_vswitch(self):
        self.dest.remove_vswitch(VSWITCH)

        message = self.refused()

        self.assertIn('Hyper-V on host2 has no vSwitch named %s' % VSWITCH,
                      message)
        self.assertIn('[hyperv] vswitch_name', message)

    def test_ovsdb_unreachable(self):
        self.ovs.stop()

        message = self.refused()

        self.assertIn('Open vSwitch on host2 is unreachable: OVSDB at %s'
                      % self.ovs.connection, message)
        self.assertIn('[os_vif_hyperv_ovs] ovsdb_connection', message)

    def test_missing_bridge(self):
        self.ovs.vsctl('del-br', 'br-int')

        message = self.refused()

        self.assertIn('Open vSwitch on host2 has no bridge br-int', message)
        self.assertNotIn('br-int', self.ovs.list_bridges())

    def test_bridge_of_each_ovs_vif_is_checked(self):
        self.instance = self.make_instance(
            [self.vif, make_vif(bridge='br-other')])

        message = self.refused()

        self.assertIn('has no bridge br-other', message)

    def test_live_migration_disabled_here(self):
        self.dest.live_migration_enabled = False

        message = self.refused()

        self.assertIn('Hyper-V on host2 cannot live-migrate', message)
        self.assertIn('Enable-VMMigration', message)

    def test_no_ovs_vifs_needs_no_vswitch_or_ovsdb(self):
        self.instance = self.make_instance(
            [make_vif(vif_type=network_model.VIF_TYPE_HYPERV)])
        self.dest.remove_vswitch(VSWITCH)
        self.ovs.stop()

        self.assertFalse(self.check().is_shared_instance_path)

    def test_different_cpus_refused_without_limit_cpu_features(self):
        message = self.refused(
            dst_features=hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'})

        self.assertIn('host2 lacks processor features of host1', message)
        self.assertIn('[hyperv] limit_cpu_features = True', message)
        self.assertIn('(host2 lacks sse3)', message)

    def test_different_cpus_pass_with_limit_cpu_features(self):
        self.flags(limit_cpu_features=True, group='hyperv')

        self.check(dst_features=hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'})

    def test_same_cpus_pass_without_limit_cpu_features(self):
        self.check()


class SourceCheckTest(LiveMigrationOpsTestBase):

    def test_returns_destination_data(self):
        data = migrate_data_obj.HyperVLiveMigrateData(
            is_shared_instance_path=False)

        self.assertIs(data, self.src_ops.check_can_live_migrate_source(
            self.context, self.instance, data))

    def test_live_migration_disabled_on_source(self):
        self.src.live_migration_enabled = False

        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            self.src_ops.check_can_live_migrate_source, self.context,
            self.instance, migrate_data_obj.HyperVLiveMigrateData())

        self.assertIn('Hyper-V on host1 cannot live-migrate',
                      exc.format_message())


class PreLiveMigrationTest(LiveMigrationOpsTestBase):

    def assert_port(self, vif):
        iface = self.ovs.get_interface(vif['id'])
        self.assertEqual({'iface-id': vif['id'],
                          'iface-status': 'active',
                          'attached-mac': MAC,
                          'vm-uuid': self.instance.uuid,
                          # No driver named the compute service: the
                          # plugin's default, nova's default CONF.host.
                          'created-by': 'compute-hyperv-ovs',
                          'compute-host': plugin.HyperVOvsPlugin.compute_host},
                         iface['external_ids'])
        self.assertIn(vif['id'], self.ovs.list_ports('br-int'))

    def test_registers_ovs_port_before_the_vm_is_here(self):
        self.dest_ops.pre_live_migration(
            self.context, self.instance, None,
            self.instance.get_network_info())

        self.assert_port(self.vif)
        self.assertEqual({}, self.dest.vms)

    def test_uses_destination_port_bindings(self):
        # The source bound the port for the neutron Hyper-V agent; nova
        # bound it for OVS on this host (migrate_data.vifs).
        source_vif = make_vif(vif_type=network_model.VIF_TYPE_HYPERV)
        data = migrate_data_obj.HyperVLiveMigrateData(vifs=[
            migrate_data_obj.VIFMigrateData(
                port_id=source_vif['id'], vif_type=network_model.VIF_TYPE_OVS,
                vif_details={}, vnic_type='normal', profile={},
                source_vif=source_vif)])

        self.dest_ops.pre_live_migration(
            self.context, self.instance, None,
            network_model.NetworkInfo([source_vif]), data)

        self.assertEqual([source_vif['id']], self.ovs.list_ports('br-int'))

    def test_uses_the_bridge_the_destination_binding_names(self):
        self.ovs.add_bridge('br-alt')
        source_vif = make_vif()
        data = migrate_data_obj.HyperVLiveMigrateData(vifs=[
            migrate_data_obj.VIFMigrateData(
                port_id=source_vif['id'], vif_type=network_model.VIF_TYPE_OVS,
                vif_details={'bridge_name': 'br-alt'}, vnic_type='normal',
                profile={}, source_vif=source_vif)])

        self.dest_ops.pre_live_migration(
            self.context, self.instance, None,
            network_model.NetworkInfo([source_vif]), data)

        self.assertEqual([source_vif['id']], self.ovs.list_ports('br-alt'))
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_missing_destination_bridge_registers_nothing(self):
        source_vif = make_vif()
        data = migrate_data_obj.HyperVLiveMigrateData(vifs=[
            migrate_data_obj.VIFMigrateData(
                port_id=source_vif['id'], vif_type=network_model.VIF_TYPE_OVS,
                vif_details={'bridge_name': 'br-alt'}, vnic_type='normal',
                profile={}, source_vif=source_vif)])

        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            self.dest_ops.pre_live_migration, self.context, self.instance,
            None, network_model.NetworkInfo([source_vif]), data)

        self.assertIn('has no bridge br-alt', exc.format_message())
        self.assertIsNone(self.ovs.get_interface(source_vif['id']))

    def test_hyperv_and_hybrid_vifs_are_left_alone(self):
        vifs = [make_vif(vif_type=network_model.VIF_TYPE_HYPERV),
                make_vif(details={'ovs_hybrid_plug': True})]

        self.dest_ops.pre_live_migration(
            self.context, self.instance, None,
            network_model.NetworkInfo(vifs))

        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_ovsdb_unreachable_names_the_connection(self):
        self.ovs.stop()

        # Found by the bridge check, before any port is written.
        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            self.dest_ops.pre_live_migration, self.context, self.instance,
            None, self.instance.get_network_info())

        self.assertIn(self.ovs.connection, exc.format_message())
        self.assertIn('ovsdb_connection', exc.format_message())

    def test_live_migration_disabled_here_fails_before_any_port(self):
        self.dest.live_migration_enabled = False

        self.assertRaises(
            os_win_exc.HyperVException, self.dest_ops.pre_live_migration,
            self.context, self.instance, None,
            self.instance.get_network_info())

        self.assertEqual([], self.ovs.list_ports('br-int'))


class LiveMigrationTest(LiveMigrationOpsTestBase):
    """live_migration on the source, with nova's callbacks recorded."""

    def setUp(self):
        super().setUp()
        self.calls = []
        self.data = migrate_data_obj.HyperVLiveMigrateData(
            is_shared_instance_path=False)
        objects.InstanceAction.action_start(
            self.context, self.instance.uuid, 'live-migration',
            want_result=False)

    def post_method(self, context, instance, dest, block_migration,
                    migrate_data):
        self.calls.append(('post', dest, migrate_data))

    def recover_method(self, context, instance, dest, migrate_data,
                       migration_status='failed'):
        self.calls.append(('recover', dest, migrate_data, migration_status))

    def migrate(self):
        self.src_ops.live_migration(self.context, self.instance, 'host2',
                                    self.post_method, self.recover_method,
                                    migrate_data=self.data)

    def failure_events(self):
        action = objects.InstanceAction.get_by_request_id(
            self.context, self.instance.uuid, self.context.request_id)
        return [e for e in objects.InstanceActionEventList.get_by_action(
            self.context, action.id)
            if e.event == livemigrationops.FAILURE_EVENT]

    def test_success_calls_post_method(self):
        self.running_vm_on_source()

        self.migrate()

        self.assertEqual([('post', 'host2', self.data)], self.calls)
        self.assertIn(self.instance.name, self.dest.vms)
        self.assertNotIn(self.instance.name, self.src.vms)
        self.assertEqual([], self.failure_events())

    def test_failure_rolls_back_as_error_and_records_why(self):
        self.running_vm_on_source()
        self.src.fail_next_live_migration = os_win_exc.HyperVException(
            'migration job failed (simulated)')

        self.migrate()

        self.assertEqual([('recover', 'host2', self.data, 'error')],
                         self.calls)
        self.assertIn(self.instance.name, self.src.vms)
        event, = self.failure_events()
        self.assertEqual('Error', event.result)
        self.assertIn('Hyper-V could not live-migrate the VM to host2: '
                      'migration job failed (simulated)', event.details)
        self.assertIn('HyperVException', event.traceback)

    def test_hyperv_cpu_refusal_names_limit_cpu_features(self):
        self.dest.cpu_features = hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'}
        self.running_vm_on_source(limit_cpu_features=False)

        self.migrate()

        self.assertEqual('error', self.calls[0][3])
        event, = self.failure_events()
        self.assertIn('Hyper-V refused to move the VM to host2: its '
                      'processor features are not limited', event.details)
        self.assertIn('[hyperv] limit_cpu_features = True', event.details)

    def test_limited_vm_moves_to_different_cpu(self):
        self.dest.cpu_features = hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'}
        self.running_vm_on_source(limit_cpu_features=True)

        self.migrate()

        self.assertEqual('post', self.calls[0][0])
        self.assertTrue(self.dest.vms[self.instance.name].limit_cpu_features)

    def test_rollback_happens_even_if_the_reason_cannot_be_recorded(self):
        self.running_vm_on_source()
        self.src.fail_next_live_migration = os_win_exc.HyperVException('x')
        # No instance action for this instance: nowhere to store the event.
        self.instance.uuid = uuidutils.generate_uuid()

        self.migrate()

        self.assertEqual('error', self.calls[0][3])
        self.assertIn('Could not record why the live migration failed',
                      self.stdlog.logger.output)


class DriverFacadeTest(LiveMigrationOpsTestBase):

    def test_pre_live_migration_passes_migrate_data_on(self):
        with self.hosts.building('host2'):
            driver = virt_driver.load_compute_driver(
                None, 'compute_hyperv_ovs.driver.HyperVOVSDriver')
        self.addCleanup(driver._vif_plugin.close)
        self.assertIsInstance(driver._livemigrationops,
                              livemigrationops.LiveMigrationOps)
        data = migrate_data_obj.HyperVLiveMigrateData(
            is_shared_instance_path=False)

        result = driver.pre_live_migration(
            self.context, self.instance, None,
            self.instance.get_network_info(), None, data)

        self.assertIs(data, result)
        self.assertEqual([self.vif['id']], self.ovs.list_ports('br-int'))


class SimulatedStorageMigrationTest(LiveMigrationOpsTestBase):
    """The simulated hosts' shared-nothing storage migration these ops use."""

    def setUp(self):
        super().setUp()
        with self.hosts.building('host1'):
            self.vhdutils = utilsfactory.get_vhdutils()
            self.lmutils = utilsfactory.get_livemigrationutils()
        self.image = 'image.vhdx'
        base = os.path.join(self.src.instances_path, '_base')
        os.makedirs(base)
        self.vhdutils.create_dynamic_vhd(os.path.join(base, self.image),
                                         1024 * 1024 * 1024)
        instance_dir = os.path.join(self.src.instances_path,
                                    self.instance.name)
        os.makedirs(instance_dir)
        self.root = os.path.join(instance_dir, 'root.vhdx')
        self.vhdutils.create_differencing_vhd(self.root,
                                              os.path.join(base, self.image))
        self.running_vm_on_source()
        ctrl = self.src_vmutils.get_vm_ide_controller(self.instance.name, 0)
        self.src_vmutils.attach_drive(self.instance.name, self.root, ctrl, 0)

    def test_parent_must_already_be_on_the_destination(self):
        exc = self.assertRaises(os_win_exc.HyperVException,
                                self.lmutils.live_migrate_vm,
                                self.instance.name, 'host2')

        self.assertIn('parent', str(exc))
        self.assertIn(self.instance.name, self.src.vms)
        self.assertTrue(os.path.isfile(self.root))

    def test_disk_moves_to_the_same_path_on_the_destination(self):
        dest_base = os.path.join(self.dest.instances_path, '_base')
        os.makedirs(dest_base)
        self.vhdutils.create_dynamic_vhd(os.path.join(dest_base, self.image),
                                         1024 * 1024 * 1024)

        self.lmutils.live_migrate_vm(self.instance.name, 'host2')

        dest_root = os.path.join(self.dest.instances_path,
                                 self.instance.name, 'root.vhdx')
        vm = self.dest.vms[self.instance.name]
        self.assertEqual([dest_root], [d.path for d in vm.disks])
        self.assertEqual(os.path.join(dest_base, self.image),
                         self.dest.disks[dest_root].parent)
        self.assertFalse(os.path.exists(self.root))
