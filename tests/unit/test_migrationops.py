"""MigrationOps on simulated Hyper-V hosts: shrink refusal and confirm."""

import os

from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import driver as virt_driver
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs import migrationops
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vmops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture

VSWITCH = 'ovs-switch'


def make_flavor(root_gb):
    return objects.Flavor(root_gb=root_gb, ephemeral_gb=0, memory_mb=1024,
                          vcpus=2, swap=0, extra_specs={})


class MigrationOpsTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(
            test.fixtures.TempDir()).path)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        # No OVSDB is reached: the VMs here have no NICs.
        self.flags(ovsdb_connection='tcp:127.0.0.1:1', timeout=1,
                   group=plugin.CONFIG_GROUP)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host(
            'host1', vswitch_name=VSWITCH,
            instances_path=os.path.join(test.CONF.instances_path, 'host1'))
        vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(vif_plugin.close)
        with self.hosts.building('host1'):
            self.ops = migrationops.MigrationOps(
                vmops.VMOps(None, vif_plugin))
            self.vmutils = utilsfactory.get_vmutils()
        self.context = nova_context.get_admin_context()
        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', flavor=make_flavor(3))
        self.instance_dir = os.path.join(self.host.instances_path,
                                         self.instance.name)


class CheckTargetFlavorTest(MigrationOpsTestBase):

    def running_vm(self):
        name = self.instance.name
        self.vmutils.create_vm(name, False, 1, self.instance_dir,
                               [self.instance.uuid])
        self.vmutils.set_vm_state(name, hyperv_const.RUNNING)

    def test_shrinking_root_disk_is_refused_before_anything_changes(self):
        self.running_vm()

        exc = self.assertRaises(
            nova_exception.InstanceFaultRollback,
            self.ops.migrate_disk_and_power_off, self.context, self.instance,
            '192.0.2.11', make_flavor(2), network_model.NetworkInfo())

        inner = exc.inner_exception
        self.assertIsInstance(inner, nova_exception.CannotResizeDisk)
        message = inner.format_message()
        # nova 28's own refusal, not reworded by this driver.
        self.assertIn('Cannot resize the root disk to a smaller size',
                      message)
        vm = self.host.vms[self.instance.name]
        self.assertEqual('Running', vm.power_state_name)
        self.assertFalse(os.path.exists(self.instance_dir + '_revert'))

    def test_same_or_bigger_root_disk_passes(self):
        for root_gb in (3, 4):
            self.ops._check_target_flavor(self.instance,
                                          make_flavor(root_gb))


class ConfirmMigrationTest(MigrationOpsTestBase):

    def migrated_away(self, leave_in_instance_dir=()):
        """The source's files as nova 28 leaves them for VERIFY_RESIZE."""
        revert_dir = self.instance_dir + '_revert'
        os.makedirs(revert_dir)
        open(os.path.join(revert_dir, 'root.vhdx'), 'w').close()
        os.makedirs(self.instance_dir)
        for name in leave_in_instance_dir:
            open(os.path.join(self.instance_dir, name), 'w').close()
        return revert_dir

    def confirm(self):
        migration = objects.Migration(source_compute='host1',
                                      dest_compute='host2')
        self.ops.confirm_migration(self.context, migration, self.instance,
                                   network_model.NetworkInfo())

    def test_removes_revert_files_and_emptied_instance_dir(self):
        revert_dir = self.migrated_away()

        self.confirm()

        self.assertFalse(os.path.exists(revert_dir))
        self.assertFalse(os.path.exists(self.instance_dir))
        self.assertTrue(os.path.isdir(self.host.instances_path))

    def test_keeps_an_instance_dir_that_holds_files(self):
        # With a shared instances path the migrated disks are in there.
        revert_dir = self.migrated_away(leave_in_instance_dir=['root.vhdx'])

        self.confirm()

        self.assertFalse(os.path.exists(revert_dir))
        self.assertTrue(os.path.isfile(os.path.join(self.instance_dir,
                                                    'root.vhdx')))

    def test_nothing_to_remove_is_fine(self):
        self.confirm()

        self.assertFalse(os.path.exists(self.instance_dir))


class DriverFacadeTest(MigrationOpsTestBase):

    def test_driver_uses_these_ops_with_its_vmops(self):
        with self.hosts.building('host1'):
            driver = virt_driver.load_compute_driver(
                None, 'compute_hyperv_ovs.driver.HyperVOVSDriver')
        self.addCleanup(driver._vif_plugin.close)

        self.assertIsInstance(driver._migrationops, migrationops.MigrationOps)
        self.assertIs(driver._vmops, driver._migrationops._vmops)
