"""MigrationOps between two simulated Hyper-V hosts (shared-nothing).

host1 is the source and host2 the destination, each with its own
instances path; each has the core's own VMOps, ImageCache and
SerialConsoleOps.  The VIF driver is a recorder: the network back end is
not the core's business, only that VIFs go through VMOps.
"""

import os
import shutil

import fixtures
from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova import test
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.hyperv import imagecache
from compute_hyperv_ovs.hyperv import migrationops
from compute_hyperv_ovs.hyperv import serialconsole
from compute_hyperv_ovs.hyperv import vmops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images
from tests.unit.hyperv import recording_vif

MAC = recording_vif.MAC


def make_flavor(root_gb, ephemeral_gb=0):
    return objects.Flavor(root_gb=root_gb, ephemeral_gb=ephemeral_gb,
                          memory_mb=1024, vcpus=2, swap=0, extra_specs={})


def block_device_info(ephemerals=()):
    return {'root_device_name': None, 'ephemerals': list(ephemerals),
            'block_device_mapping': [], 'swap': None}


class Host(object):
    """One simulated host with the core's ops built on it."""

    def __init__(self, hosts, name, instances_path):
        self.sim = hosts.add_host(name, instances_path=instances_path)
        self.vifs = recording_vif.RecordingVIFDriver()
        with hosts.building(name):
            self.image_cache = imagecache.ImageCache()
            self.vmops = vmops.VMOps(None, self.vifs, self.image_cache,
                                     serialconsole.SerialConsoleOps())
            self.ops = migrationops.MigrationOps(self.vmops,
                                                 self.image_cache)
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()

    @property
    def address(self):
        return self.sim.local_ips[0]

    def path(self, *parts):
        return os.path.join(self.sim.instances_path, *parts)


class MigrationOpsTestBase(test.NoDBTestCase):

    image_format = 'vhdx'

    def setUp(self):
        super().setUp()
        root = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=root)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.src = Host(self.hosts, 'host1', os.path.join(root, 'host1'))
        self.dest = Host(self.hosts, 'host2', os.path.join(root, 'host2'))
        self.context = nova_context.get_admin_context()
        self.image_id = uuidutils.generate_uuid()
        disk_images = self.useFixture(images.DiskImagesFixture(glance=None))
        self.glance_file = disk_images.make_file(self.image_format,
                                                 size_gb=0.0625)
        self.downloads = self.useFixture(images.ImageDownloadsFixture(
            {self.image_id: self.glance_file}))
        self.fetched = self.downloads.fetched
        self.vif = recording_vif.ovs_vif()
        self.network_info = network_model.NetworkInfo([self.vif])
        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', image_ref=self.image_id,
            flavor=make_flavor(1), old_flavor=None, config_drive='',
            system_metadata={'image_disk_format': self.image_format},
            metadata={},
            pci_requests=objects.InstancePCIRequests(requests=[]))
        self.name = self.instance.name

    def running_vm_on_source(self):
        """The VM as a boot on host1 leaves it, running.

        Its root disk is a child of the cached image, grown to the
        flavor's root disk.
        """
        base = self.src.image_cache.get_cached_image(self.context,
                                                     self.instance)
        os.makedirs(self.src.path(self.name))
        root = self.src.path(self.name, 'root.' + self.image_format)
        self.src.vhdutils.create_differencing_vhd(root, base)
        if self.image_format == 'vhdx':
            # vmops grows a root disk to what a root_gb file holds.
            self.src.vhdutils.resize_vhd(root, units.Gi)
        self.src.vmutils.create_vm(self.name, False, 1,
                                   self.src.path(self.name),
                                   [self.instance.uuid])
        ctrl = self.src.vmutils.get_vm_ide_controller(self.name, 0)
        self.src.vmutils.attach_drive(self.name, root, ctrl, 0)
        self.src.vmutils.create_nic(self.name, self.vif['id'], MAC)
        self.src.vmutils.set_vm_state(self.name, hyperv_const.RUNNING)
        return root

    def migrate_away(self, flavor=None, dest=None):
        return self.src.ops.migrate_disk_and_power_off(
            self.context, self.instance, dest or self.dest.address,
            flavor or make_flavor(1), self.network_info,
            block_device_info())

    def finish(self, new_flavor=None, bdi=None):
        if new_flavor is not None:
            self.instance.old_flavor = self.instance.flavor
            self.instance.flavor = new_flavor
        migration = objects.Migration(source_compute='host1',
                                      dest_compute='host2')
        self.dest.ops.finish_migration(
            self.context, migration, self.instance, '', self.network_info,
            objects.ImageMeta.from_instance(self.instance),
            resize_instance=new_flavor is not None,
            block_device_info=bdi or block_device_info())

    def holds(self, host, path, gb):
        """What a ``gb`` GB disk file holds (os-win's arithmetic).

        nova 28 grows a disk to the flavor's size as a file size
        (``VHDUtils.resize_vhd(is_file_max_size=True)``), like a boot does.
        """
        return host.vhdutils.get_internal_vhd_size_by_file_size(
            path, gb * units.Gi)

    def files(self, host, *parts):
        path = host.path(*parts)
        return sorted(os.listdir(path)) if os.path.isdir(path) else None


class ShrinkRefusalTest(MigrationOpsTestBase):

    def setUp(self):
        super().setUp()
        self.instance.flavor = make_flavor(3, ephemeral_gb=2)
        self.running_vm_on_source()

    def refused(self, flavor):
        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.migrate_away, flavor)
        inner = exc.inner_exception
        self.assertIsInstance(inner, nova_exception.CannotResizeDisk)
        # Nothing changed: the VM runs, no files moved or copied.
        self.assertEqual('Running',
                         self.src.sim.vms[self.name].power_state_name)
        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertIsNone(self.files(self.dest, self.name))
        return inner.format_message()

    def test_shrinking_root_disk_is_refused_before_anything_changes(self):
        message = self.refused(make_flavor(2, ephemeral_gb=2))

        # nova 28's refusal, with what to do.
        self.assertIn('Cannot resize the root disk to a smaller size',
                      message)
        self.assertIn('Current size: 3 GB. Requested size: 2 GB.', message)
        self.assertIn('choose a flavor whose root disk is at least 3 GB',
                      message)

    def test_shrinking_ephemeral_disk_is_refused(self):
        message = self.refused(make_flavor(3, ephemeral_gb=1))

        self.assertIn('Cannot resize the ephemeral disk to a smaller size',
                      message)
        self.assertIn('at least 2 GB', message)


class ColdMigrationTest(MigrationOpsTestBase):

    def setUp(self):
        super().setUp()
        self.src_root = self.running_vm_on_source()

    def test_source_keeps_its_files_aside_and_deletes_the_vm(self):
        self.assertEqual('', self.migrate_away())

        self.assertNotIn(self.name, self.src.sim.vms)
        self.assertEqual(['root.vhdx'],
                         self.files(self.src, self.name + '_revert'))
        self.assertEqual([], self.files(self.src, self.name))
        self.assertEqual(['root.vhdx'], self.files(self.dest, self.name))
        self.assertEqual([('unplug', self.vif['id'])], self.src.vifs.calls)

    def test_destination_reparents_resizes_and_starts_the_vm(self):
        self.migrate_away(make_flavor(2))

        self.finish(new_flavor=make_flavor(2))

        root = self.dest.path(self.name, 'root.vhdx')
        disk = self.dest.sim.disks[root]
        # The child now hangs off host2's own cached copy of the image.
        self.assertEqual(self.dest.path('_base', self.image_id + '.vhdx'),
                         disk.parent)
        self.assertEqual(self.holds(self.dest, root, 2), disk.virtual_size)
        self.assertGreater(disk.virtual_size, units.Gi)
        vm = self.dest.sim.vms[self.name]
        self.assertEqual('Running', vm.power_state_name)
        self.assertEqual([root], [d.path for d in vm.disks])
        self.assertEqual([self.vif['id']], list(vm.nics))
        self.assertEqual([('plug', self.vif['id'])], self.dest.vifs.calls)

    def test_finish_without_power_on_leaves_the_vm_off(self):
        self.migrate_away()
        migration = objects.Migration(source_compute='host1',
                                      dest_compute='host2')

        self.dest.ops.finish_migration(
            self.context, migration, self.instance, '', self.network_info,
            objects.ImageMeta.from_instance(self.instance),
            block_device_info=block_device_info(), power_on=False)

        self.assertEqual('Off', self.dest.sim.vms[self.name].power_state_name)

    def test_missing_root_disk_is_disk_not_found_and_no_vm(self):
        self.migrate_away()
        os.remove(self.dest.path(self.name, 'root.vhdx'))

        exc = self.assertRaises(nova_exception.DiskNotFound, self.finish)

        self.assertIn(self.dest.path(self.name), exc.format_message())
        self.assertNotIn(self.name, self.dest.sim.vms)

    def test_missing_config_drive_deletes_the_new_vm_keeps_disks(self):
        self.instance.config_drive = 'True'
        self.migrate_away()

        exc = self.assertRaises(nova_exception.ConfigDriveNotFound,
                                self.finish)

        self.assertIn(self.instance.uuid, exc.format_message())
        self.assertNotIn(self.name, self.dest.sim.vms)
        self.assertEqual(['root.vhdx'], self.files(self.dest, self.name))
        self.assertEqual(['root.vhdx'],
                         self.files(self.src, self.name + '_revert'))

    def test_confirm_removes_revert_files_and_emptied_instance_dir(self):
        self.migrate_away()
        self.finish()

        self.src.ops.confirm_migration(self.context, None, self.instance,
                                       self.network_info)

        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertIsNone(self.files(self.src, self.name))
        self.assertTrue(os.path.isdir(self.src.sim.instances_path))
        # The destination's VM is untouched.
        self.assertEqual('Running',
                         self.dest.sim.vms[self.name].power_state_name)

    def test_confirm_keeps_an_instance_dir_that_holds_files(self):
        self.migrate_away()
        # With a shared instances path the migrated disks are in there.
        open(self.src.path(self.name, 'root.vhdx'), 'w').close()

        self.src.ops.confirm_migration(self.context, None, self.instance,
                                       self.network_info)

        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertEqual(['root.vhdx'], self.files(self.src, self.name))

    def test_revert_brings_the_vm_back_on_the_source(self):
        self.migrate_away()

        self.src.ops.finish_revert_migration(
            self.context, self.instance, self.network_info,
            block_device_info())

        vm = self.src.sim.vms[self.name]
        self.assertEqual('Running', vm.power_state_name)
        self.assertEqual([self.src_root], [d.path for d in vm.disks])
        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertEqual(self.src.path('_base', self.image_id + '.vhdx'),
                         self.src.sim.disks[self.src_root].parent)
        self.assertEqual(
            [('unplug', self.vif['id']), ('plug', self.vif['id'])],
            self.src.vifs.calls)

    def test_failed_copy_puts_everything_back_and_restarts_the_vm(self):
        # CopyFileW on host2's full disk fails with ERROR_DISK_FULL.
        self.dest.sim.disk_free_gb = 0

        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.migrate_away)

        inner = exc.inner_exception
        self.assertIsInstance(inner, nova_exception.ResizeError)
        self.assertIn('copying the disks to %s failed' % self.dest.address,
                      inner.format_message())
        self.assertIn('not enough space on the disk', inner.format_message())
        self.assertEqual('Running',
                         self.src.sim.vms[self.name].power_state_name)
        self.assertEqual(['root.vhdx'], self.files(self.src, self.name))
        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertIsNone(self.files(self.dest, self.name))
        self.assertEqual([('plug', self.vif['id'])], self.src.vifs.calls)

    def test_resize_on_the_same_host(self):
        # allow_resize_to_same_host: the destination is the source.
        self.migrate_away(make_flavor(2), dest=self.src.address)

        self.assertEqual(['root.vhdx'], self.files(self.src, self.name))
        self.assertEqual(['root.vhdx'],
                         self.files(self.src, self.name + '_revert'))
        self.assertIsNone(self.files(self.src, self.name + '_tmp'))

        self.instance.old_flavor = self.instance.flavor
        self.instance.flavor = make_flavor(2)
        self.src.ops.finish_migration(
            self.context, None, self.instance, '', self.network_info,
            objects.ImageMeta.from_instance(self.instance),
            resize_instance=True, block_device_info=block_device_info())
        self.src.ops.confirm_migration(self.context, None, self.instance,
                                       self.network_info)

        # Confirm keeps the instance dir: it holds the resized VM's disk.
        self.assertEqual(['root.vhdx'], self.files(self.src, self.name))
        self.assertIsNone(self.files(self.src, self.name + '_revert'))
        self.assertEqual(self.holds(self.src, self.src_root, 2),
                         self.src.sim.disks[self.src_root].virtual_size)

    def test_confirm_with_nothing_left_is_fine(self):
        self.src.vmutils.set_vm_state(self.name, hyperv_const.OFF)
        self.src.vmutils.destroy_vm(self.name)
        shutil.rmtree(self.src.path(self.name))

        self.src.ops.confirm_migration(self.context, None, self.instance,
                                       self.network_info)

        self.assertIsNone(self.files(self.src, self.name))


class EphemeralDiskTest(MigrationOpsTestBase):

    def setUp(self):
        super().setUp()
        self.instance.flavor = make_flavor(1, ephemeral_gb=1)
        self.running_vm_on_source()
        self.eph = self.src.path(self.name, 'eph0.vhdx')
        self.src.vhdutils.create_dynamic_vhd(self.eph, units.Gi)
        ctrl = self.src.vmutils.get_vm_ide_controller(self.name, 0)
        self.src.vmutils.attach_drive(self.name, self.eph, ctrl, 1)

    def test_single_ephemeral_grows_to_the_flavor(self):
        self.migrate_away(make_flavor(1, ephemeral_gb=2))

        self.finish(make_flavor(1, ephemeral_gb=2),
                    block_device_info([{'size': 1}]))

        dest_eph = self.dest.path(self.name, 'eph0.vhdx')
        self.assertEqual(self.holds(self.dest, dest_eph, 2),
                         self.dest.sim.disks[dest_eph].virtual_size)
        self.assertGreater(self.dest.sim.disks[dest_eph].virtual_size,
                           units.Gi)
        vm = self.dest.sim.vms[self.name]
        self.assertIn(dest_eph, [d.path for d in vm.disks])

    def test_ephemeral_dropped_by_a_flavor_without_one(self):
        self.migrate_away(make_flavor(1, ephemeral_gb=0))

        self.finish(make_flavor(1, ephemeral_gb=0),
                    block_device_info([{'size': 1}]))

        self.assertEqual(['root.vhdx'], self.files(self.dest, self.name))
        vm = self.dest.sim.vms[self.name]
        self.assertEqual([self.dest.path(self.name, 'root.vhdx')],
                         [d.path for d in vm.disks])

    def test_missing_ephemeral_without_resize_is_disk_not_found(self):
        self.migrate_away()
        os.remove(self.dest.path(self.name, 'eph0.vhdx'))

        exc = self.assertRaises(nova_exception.DiskNotFound, self.finish,
                                None, block_device_info([{'size': 1}]))

        self.assertIn('eph0.vhdx', exc.format_message())
        self.assertNotIn(self.name, self.dest.sim.vms)


class VHDResizeTest(MigrationOpsTestBase):
    """A VHD child cannot grow: it is flattened first."""

    image_format = 'vhd'

    def test_grown_vhd_root_is_flat_and_the_cache_untouched(self):
        self.running_vm_on_source()
        self.migrate_away(make_flavor(2))

        self.finish(new_flavor=make_flavor(2))

        root = self.dest.path(self.name, 'root.vhd')
        disk = self.dest.sim.disks[root]
        self.assertIsNone(disk.parent)
        self.assertNotEqual(os_win_const.VHD_TYPE_DIFFERENCING, disk.type)
        self.assertEqual(self.holds(self.dest, root, 2), disk.virtual_size)
        self.assertGreater(disk.virtual_size, units.Gi)
        self.assertEqual(['root.vhd'], self.files(self.dest, self.name))
        # host2's cache holds the image and its copy grown to the old
        # root size (the child's parent before it was flattened).
        cached = self.dest.path('_base', self.image_id + '_1.vhd')
        self.assertLess(self.dest.sim.disks[cached].virtual_size,
                        2 * units.Gi)
        self.assertEqual('Running',
                         self.dest.sim.vms[self.name].power_state_name)
