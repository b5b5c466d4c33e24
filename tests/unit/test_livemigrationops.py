"""Live migration's Open vSwitch side, through HyperVOVSDriver.

host1 is the source, host2 the destination; host2's driver talks to a real
ovsdb-server and ovs-vswitchd.  Only the Hyper-V hosts are simulated.  The
Hyper-V steps (live migration enabled, CPU features, the move and its
failure record) are the core's and are tested in
tests/unit/hyperv/test_livemigrationops.py; here: the OVS layer's
destination checks (``livemigrationops.DestinationChecks``), the ports it
registers ahead of the VM (``destination_network_info``), and that the
driver wires both into nova's calls.
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
from compute_hyperv_ovs.os_vif_plugin import plugin
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


def compute_info(hostname):
    """A ComputeNode as nova hands it to the driver (obj_to_primitive)."""
    return {'hypervisor_hostname': hostname,
            'cpu_info': jsonutils.dumps(
                {'features': sorted(hyperv_const.DEFAULT_CPU_FEATURES)})}


def dest_binding(source_vif, vif_type=network_model.VIF_TYPE_OVS,
                 details=None):
    """migrate_data with nova's binding of the port on the destination."""
    return migrate_data_obj.HyperVLiveMigrateData(
        is_shared_instance_path=False,
        vifs=[migrate_data_obj.VIFMigrateData(
            port_id=source_vif['id'], vif_type=vif_type,
            vif_details=details or {}, vnic_type='normal', profile={},
            source_vif=source_vif)])


class OVSLiveMigrationTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        root = self.useFixture(test.fixtures.TempDir()).path
        self.flags(instances_path=root)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group=plugin.CONFIG_GROUP)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.src = self.hosts.add_host(
            'host1', vswitch_name=VSWITCH,
            instances_path=os.path.join(root, 'host1'))
        self.dest = self.hosts.add_host(
            'host2', vswitch_name=VSWITCH,
            instances_path=os.path.join(root, 'host2'))
        with self.hosts.building('host2'):
            self.driver = virt_driver.load_compute_driver(
                None, 'compute_hyperv_ovs.driver.HyperVOVSDriver')
        self.addCleanup(self.driver.cleanup_host, 'host2')
        self.context = nova_context.get_admin_context()
        self.vif = make_vif()
        self.instance = self.make_instance([self.vif])

    def make_instance(self, vifs):
        instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', image_ref=None,
            pci_requests=objects.InstancePCIRequests(requests=[]))
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo(vifs))
        return instance


class DestinationCheckTest(OVSLiveMigrationTestBase):
    """check_can_live_migrate_destination through the driver."""

    def check(self):
        return self.driver.check_can_live_migrate_destination(
            self.context, self.instance, compute_info('host1'),
            compute_info('host2'))

    def refused(self):
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.check)
        return exc.format_message()

    def test_ready_destination_answers_and_creates_no_port(self):
        data = self.check()

        self.assertIsInstance(data, migrate_data_obj.HyperVLiveMigrateData)
        self.assertFalse(data.is_shared_instance_path)
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
        self.assertIn('neutron-openvswitch-agent', message)
        self.assertNotIn('br-int', self.ovs.list_bridges())

    def test_bridge_of_each_ovs_vif_is_checked(self):
        self.instance = self.make_instance(
            [self.vif, make_vif(bridge='br-other')])

        message = self.refused()

        self.assertIn('has no bridge br-other', message)

    def test_no_ovs_vifs_needs_no_vswitch_or_ovsdb(self):
        self.instance = self.make_instance(
            [make_vif(vif_type=network_model.VIF_TYPE_HYPERV)])
        self.dest.remove_vswitch(VSWITCH)
        self.ovs.stop()

        self.assertFalse(self.check().is_shared_instance_path)


class PreLiveMigrationTest(OVSLiveMigrationTestBase):
    """pre_live_migration through the driver: ports before the VM."""

    def pre(self, network_info=None, migrate_data=None):
        if migrate_data is None:
            migrate_data = migrate_data_obj.HyperVLiveMigrateData(
                is_shared_instance_path=False)
        return self.driver.pre_live_migration(
            self.context, self.instance, None,
            network_info or self.instance.get_network_info(), None,
            migrate_data)

    def assert_port(self, vif, bridge='br-int'):
        iface = self.ovs.get_interface(vif['id'])
        self.assertEqual({'iface-id': vif['id'],
                          'iface-status': 'active',
                          'attached-mac': MAC,
                          'vm-uuid': self.instance.uuid,
                          'created-by': 'compute-hyperv-ovs',
                          # The driver names the compute service it is
                          # built for (nova's CONF.host).
                          'compute-host': test.CONF.host},
                         iface['external_ids'])
        self.assertIn(vif['id'], self.ovs.list_ports(bridge))

    def test_registers_ovs_port_before_the_vm_is_here(self):
        data = migrate_data_obj.HyperVLiveMigrateData(
            is_shared_instance_path=False)

        result = self.pre(migrate_data=data)

        self.assertIs(data, result)
        self.assert_port(self.vif)
        self.assertEqual({}, self.dest.vms)

    def test_uses_destination_port_bindings(self):
        # The source bound the port for the neutron Hyper-V agent; nova
        # bound it for OVS on this host (migrate_data.vifs).
        source_vif = make_vif(vif_type=network_model.VIF_TYPE_HYPERV)

        self.pre(network_model.NetworkInfo([source_vif]),
                 dest_binding(source_vif))

        self.assertEqual([source_vif['id']], self.ovs.list_ports('br-int'))

    def test_uses_the_bridge_the_destination_binding_names(self):
        self.ovs.add_bridge('br-alt')
        source_vif = make_vif()

        self.pre(network_model.NetworkInfo([source_vif]),
                 dest_binding(source_vif, details={'bridge_name': 'br-alt'}))

        self.assertEqual([source_vif['id']], self.ovs.list_ports('br-alt'))
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_missing_destination_bridge_registers_nothing(self):
        source_vif = make_vif()

        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError, self.pre,
            network_model.NetworkInfo([source_vif]),
            dest_binding(source_vif, details={'bridge_name': 'br-alt'}))

        self.assertIn('has no bridge br-alt', exc.format_message())
        self.assertIsNone(self.ovs.get_interface(source_vif['id']))
        # Refused before the core made anything either.
        self.assertEqual([], os.listdir(self.dest.instances_path))

    def test_hyperv_and_hybrid_vifs_are_left_alone(self):
        vifs = [make_vif(vif_type=network_model.VIF_TYPE_HYPERV),
                make_vif(details={'ovs_hybrid_plug': True})]

        self.pre(network_model.NetworkInfo(vifs))

        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_ovsdb_unreachable_names_the_connection(self):
        self.ovs.stop()

        # Found by the bridge check, before any port is written.
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.pre)

        self.assertIn(self.ovs.connection, exc.format_message())
        self.assertIn('ovsdb_connection', exc.format_message())

    def test_live_migration_disabled_here_fails_before_any_port(self):
        self.dest.live_migration_enabled = False

        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.pre)

        self.assertIn('Hyper-V on', exc.format_message())
        self.assertIn('cannot live-migrate', exc.format_message())
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_rollback_removes_the_port_as_bound_here(self):
        self.ovs.add_bridge('br-alt')
        source_vif = make_vif()
        data = dest_binding(source_vif, details={'bridge_name': 'br-alt'})
        self.pre(network_model.NetworkInfo([source_vif]), data)

        # nova hands the source's network_info (bridge br-int).
        self.driver.rollback_live_migration_at_destination(
            self.context, self.instance,
            network_model.NetworkInfo([source_vif]), None,
            migrate_data=data)

        self.assertIsNone(self.ovs.get_interface(source_vif['id']))
        self.assertEqual([], self.ovs.list_ports('br-alt'))


class SimulatedStorageMigrationTest(test.NoDBTestCase):
    """The simulated hosts' shared-nothing storage migration the ops use."""

    def setUp(self):
        super().setUp()
        root = self.useFixture(test.fixtures.TempDir()).path
        self.flags(instances_path=root)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.src = self.hosts.add_host(
            'host1', instances_path=os.path.join(root, 'host1'))
        self.dest = self.hosts.add_host(
            'host2', instances_path=os.path.join(root, 'host2'))
        with self.hosts.building('host1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()
            self.lmutils = utilsfactory.get_livemigrationutils()
        self.name = 'instance-00000001'
        self.image = 'image.vhdx'
        base = os.path.join(self.src.instances_path, '_base')
        os.makedirs(base)
        self.vhdutils.create_dynamic_vhd(os.path.join(base, self.image),
                                         1024 * 1024 * 1024)
        instance_dir = os.path.join(self.src.instances_path, self.name)
        os.makedirs(instance_dir)
        self.root = os.path.join(instance_dir, 'root.vhdx')
        self.vhdutils.create_differencing_vhd(self.root,
                                              os.path.join(base, self.image))
        self.vmutils.create_vm(self.name, False, 1, instance_dir,
                               [uuidutils.generate_uuid()])
        ctrl = self.vmutils.get_vm_ide_controller(self.name, 0)
        self.vmutils.attach_drive(self.name, self.root, ctrl, 0)
        self.vmutils.set_vm_state(self.name, hyperv_const.RUNNING)

    def test_parent_must_already_be_on_the_destination(self):
        exc = self.assertRaises(os_win_exc.HyperVException,
                                self.lmutils.live_migrate_vm,
                                self.name, 'host2')

        self.assertIn('parent', str(exc))
        self.assertIn(self.name, self.src.vms)
        self.assertTrue(os.path.isfile(self.root))

    def test_disk_moves_to_the_same_path_on_the_destination(self):
        dest_base = os.path.join(self.dest.instances_path, '_base')
        os.makedirs(dest_base)
        self.vhdutils.create_dynamic_vhd(os.path.join(dest_base, self.image),
                                         1024 * 1024 * 1024)

        self.lmutils.live_migrate_vm(self.name, 'host2')

        dest_root = os.path.join(self.dest.instances_path, self.name,
                                 'root.vhdx')
        vm = self.dest.vms[self.name]
        self.assertEqual([dest_root], [d.path for d in vm.disks])
        self.assertEqual(os.path.join(dest_base, self.image),
                         self.dest.disks[dest_root].parent)
        self.assertFalse(os.path.exists(self.root))
