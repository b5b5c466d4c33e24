"""ImageCache on a simulated Hyper-V host, with real VHD/VHDX files.

Fetching, the refusals (not VHD/VHDX, not the declared format, larger
than the root disk, a bad rescue image), the grown VHD copies and their
failures, and the ageing of the cache.
"""

import os
import shutil
import time

import fixtures
from nova.compute import vm_states
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova import test
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import imagecache
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images

# 32 MiB images: small enough to copy quickly, smaller than any flavor.
SMALL_GB = 0.03125


class ImageCacheTestBase(test.TestCase):

    USES_DB = False

    def setUp(self):
        super().setUp()
        instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=instances_path)
        self.base_dir = os.path.join(instances_path, '_base')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('host1')
        with self.hosts.building('host1'):
            self.cache = imagecache.ImageCache()
        # glance, not Hyper-V: the download writes the image's bytes to the
        # path nova asks for.
        self.images = self.useFixture(images.DiskImagesFixture(glance=None))
        self.glance_files = {}
        self.differencing_parents = {}
        self.fetched = []
        self.useFixture(fixtures.MonkeyPatch('nova.virt.images.fetch',
                                             self.fake_fetch))
        self.context = nova_context.get_admin_context()

    def fake_fetch(self, context, image_id, path, trusted_certs=None):
        self.fetched.append(image_id)
        parent = self.differencing_parents.get(image_id)
        if parent is not None:
            # A differencing VHD's parent is recorded beside the file (see
            # tests/fixtures/hyperv.py _DiskMetadata), so make it in place.
            with self.hosts.building('host1'):
                utilsfactory.get_vhdutils().create_differencing_vhd(
                    path + '.vhd', parent)
            os.rename(path + '.vhd', path)  # same inode, same record
            return
        shutil.copyfile(self.glance_files[image_id], path)

    def image(self, file_format, size_gb=SMALL_GB):
        image_id = uuidutils.generate_uuid()
        self.glance_files[image_id] = self.images.make_file(
            file_format, size_gb=size_gb)
        return image_id

    def instance(self, file_format, disk_format, size_gb=SMALL_GB,
                 root_gb=1, image_id=None):
        """An instance of a glance image whose data is a file_format file."""
        image_id = image_id or self.image(file_format, size_gb)
        flavor = objects.Flavor(root_gb=root_gb, ephemeral_gb=0, swap=0)
        return objects.Instance(
            uuid=uuidutils.generate_uuid(), image_ref=image_id,
            flavor=flavor, old_flavor=None,
            system_metadata={'image_disk_format': disk_format})

    def get(self, instance, rescue_image_id=None):
        return self.cache.get_cached_image(self.context, instance,
                                           rescue_image_id)

    def cached_files(self):
        # nova's external cache locks live in _base too; they are not images.
        return sorted(f for f in os.listdir(self.base_dir)
                      if not f.endswith('.lock'))


class GetCachedImageTestCase(ImageCacheTestBase):

    def test_qcow2_file_refused_and_not_cached(self):
        instance = self.instance('qcow2', disk_format='vhdx')

        exc = self.assertRaises(exception.ImageNotVHD, self.get, instance)

        self.assertIn(instance.image_ref, exc.format_message())
        self.assertIn('neither VHD nor VHDX', exc.format_message())
        self.assertIn('qemu-img convert -O vhdx', exc.format_message())
        self.assertEqual([], self.cached_files())

    def test_vhd_file_declared_vhdx_refused_and_removed_from_cache(self):
        instance = self.instance('vhd', disk_format='vhdx')

        exc = self.assertRaises(exception.ImageNotVHD, self.get, instance)

        message = exc.format_message()
        self.assertIn('declared disk_format=vhdx', message)
        self.assertIn('its content is VHD', message)
        self.assertEqual([], self.cached_files())

    def test_vhdx_file_declared_vhd_refused_and_removed_from_cache(self):
        instance = self.instance('vhdx', disk_format='vhd')

        exc = self.assertRaises(exception.ImageNotVHD, self.get, instance)

        message = exc.format_message()
        self.assertIn('declared disk_format=vhd ', message)
        self.assertIn('its content is VHDX', message)
        self.assertEqual([], self.cached_files())

    def test_refused_image_is_checked_again_on_next_boot(self):
        instance = self.instance('vhd', disk_format='vhdx')
        self.assertRaises(exception.ImageNotVHD, self.get, instance)

        self.assertRaises(exception.ImageNotVHD, self.get, instance)

        self.assertEqual([instance.image_ref] * 2, self.fetched)

    def test_matching_vhdx_is_cached_and_returned(self):
        instance = self.instance('vhdx', disk_format='vhdx')

        path = self.get(instance)

        expected = os.path.join(self.base_dir, instance.image_ref + '.vhdx')
        self.assertEqual(expected, path)
        self.assertEqual('VHDX', self.host.disks[path].format)
        # A second boot of the same image uses the cache.
        self.assertEqual(expected, self.get(instance))
        self.assertEqual([instance.image_ref], self.fetched)
        self.assertEqual([instance.image_ref + '.vhdx'], self.cached_files())

    def test_matching_vhd_is_returned_resized_for_the_flavor(self):
        instance = self.instance('vhd', disk_format='vhd')

        path = self.get(instance)

        self.assertEqual(
            os.path.join(self.base_dir, instance.image_ref + '_1.vhd'), path)
        self.assertEqual('VHD', self.host.disks[path].format)
        # Grown to what a 1 GB file holds (os-win's
        # get_internal_vhd_size_by_file_size: less the VHD's own metadata).
        size = self.host.disks[path].virtual_size
        self.assertGreater(size, SMALL_GB * units.Gi)
        self.assertLessEqual(size, units.Gi)
        self.assertGreater(size, units.Gi - 16 * units.Mi)
        # The image as glance served it stays beside its grown copy.
        self.assertEqual(sorted([instance.image_ref + '.vhd',
                                 instance.image_ref + '_1.vhd']),
                         self.cached_files())

    def test_grown_copy_is_made_once_per_root_size(self):
        image_id = self.image('vhd')
        first = self.get(self.instance('vhd', 'vhd', image_id=image_id))
        # A second name for the file: a copy made again would be another
        # file (its use touches it, so its time tells nothing).
        kept = first + '.kept'
        os.link(first, kept)

        again = self.get(self.instance('vhd', 'vhd', image_id=image_id))
        bigger = self.get(self.instance('vhd', 'vhd', image_id=image_id,
                                        root_gb=2))

        self.assertEqual(first, again)
        self.assertTrue(os.path.samefile(kept, again))
        self.assertEqual(os.path.join(self.base_dir, image_id + '_2.vhd'),
                         bigger)
        self.assertEqual([image_id], self.fetched)

    def test_resize_uses_the_old_flavor_size(self):
        # finish_migration re-parents a disk made on the old flavor's size.
        instance = self.instance('vhd', disk_format='vhd', root_gb=3)
        instance.old_flavor = objects.Flavor(root_gb=1, ephemeral_gb=0,
                                             swap=0)

        path = self.get(instance)

        self.assertEqual(
            os.path.join(self.base_dir, instance.image_ref + '_1.vhd'), path)

    def test_vhd_not_grown_without_cow_images(self):
        self.flags(use_cow_images=False)
        instance = self.instance('vhd', disk_format='vhd')

        path = self.get(instance)

        self.assertEqual(
            os.path.join(self.base_dir, instance.image_ref + '.vhd'), path)
        self.assertEqual([instance.image_ref + '.vhd'], self.cached_files())

    def test_vhd_image_larger_than_root_disk_refused(self):
        instance = self.instance('vhd', disk_format='vhd', size_gb=2,
                                 root_gb=1)

        exc = self.assertRaises(exception.RootDiskTooSmall, self.get,
                                instance)

        self.assertIsInstance(exc, nova_exception.FlavorDiskSmallerThanImage)
        cached = os.path.join(self.base_dir, instance.image_ref + '.vhd')
        # qemu-img rounds a VHD up to its CHS geometry: a little over 2 GiB.
        image_size = self.host.disks[cached].virtual_size
        self.assertGreaterEqual(image_size, 2 * units.Gi)
        self.assertIn('is %d bytes' % image_size, exc.format_message())
        self.assertIn('allows %d' % units.Gi, exc.format_message())
        self.assertIn('larger root_gb', exc.format_message())
        # No grown copy; the image itself stays cached (it is valid).
        self.assertEqual([instance.image_ref + '.vhd'], self.cached_files())

    # ---- a copy or resize that fails is not a bad image ----

    def test_resize_failure_is_not_reported_as_a_bad_image(self):
        # glance serves a differencing VHD (a child disk uploaded as an
        # image); Hyper-V cannot resize a differencing VHD.
        instance = self.instance('vhd', disk_format='vhd')
        parent = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              'parent.vhd')
        shutil.copyfile(self.glance_files[instance.image_ref], parent)
        self.differencing_parents[instance.image_ref] = parent

        exc = self.assertRaises(exception.ImageResizeFailed, self.get,
                                instance)

        message = exc.format_message()
        self.assertIn(instance.image_ref, message)
        self.assertIn('could not be resized', message)
        self.assertIn('cannot be resized', message)  # Hyper-V's reason
        self.assertNotIn('neither VHD nor VHDX', message)
        # Nothing half-made stays in the cache under the resized name.
        self.assertNotIn(instance.image_ref + '_1.vhd', self.cached_files())

    def test_copy_failure_is_not_reported_as_a_bad_image(self):
        instance = self.instance('vhd', disk_format='vhd')
        # CopyFileW fails with ERROR_DISK_FULL.
        self.host.disk_free_gb = 0

        exc = self.assertRaises(exception.ImageCopyFailed, self.get,
                                instance)

        message = exc.format_message()
        self.assertIn(instance.image_ref, message)
        self.assertIn('could not be copied', message)
        self.assertIn('not enough space on the disk', message)
        self.assertNotIn(instance.image_ref + '_1.vhd', self.cached_files())


class RescueImageTestCase(ImageCacheTestBase):

    def test_rescue_image_is_cached_as_is(self):
        instance = self.instance('vhdx', disk_format='vhdx')
        rescue_id = self.image('vhd')

        path = self.get(instance, rescue_image_id=rescue_id)

        # Not grown (nova 28: rescue disks keep the image's size), and the
        # instance's own image is not fetched.
        self.assertEqual(os.path.join(self.base_dir, rescue_id + '.vhd'),
                         path)
        self.assertEqual([rescue_id], self.fetched)

    def test_rescue_image_larger_than_root_disk_refused(self):
        instance = self.instance('vhdx', disk_format='vhdx', root_gb=1)
        rescue_id = self.image('vhdx', size_gb=2)

        exc = self.assertRaises(nova_exception.ImageUnacceptable, self.get,
                                instance, rescue_id)

        message = exc.format_message()
        self.assertIn(rescue_id, message)
        self.assertIn('larger than the flavor\'s root disk', message)
        self.assertIn('use a smaller rescue image', message)

    def test_rescue_image_that_is_not_vhd_refused(self):
        instance = self.instance('vhdx', disk_format='vhdx')
        rescue_id = self.image('qcow2')

        exc = self.assertRaises(exception.ImageNotVHD, self.get, instance,
                                rescue_id)

        self.assertIn(rescue_id, exc.format_message())
        self.assertEqual([], self.cached_files())


class ImageDetailsTestCase(ImageCacheTestBase):

    def test_details_come_from_glance(self):
        glance = self.useFixture(images.GlanceFixture(self))
        disk_images = self.useFixture(images.DiskImagesFixture(glance))
        image_id = disk_images.create_image('vhdx', size_gb=SMALL_GB)
        instance = self.instance('vhdx', 'vhdx', image_id=image_id)

        details = self.cache.get_image_details(self.context, instance)

        self.assertEqual(image_id, details['id'])
        self.assertEqual('vhdx', details['disk_format'])


class AgeingTestCase(ImageCacheTestBase):
    """update(): nova's [image_cache] rules on the cache's files."""

    # _list_running_instances reads the instances' block device mappings.
    USES_DB = True

    def setUp(self):
        super().setUp()
        self.flags(remove_unused_original_minimum_age_seconds=3600,
                   group='image_cache')

    def cached(self, file_format='vhd'):
        """An image in the cache with its grown copy (for VHD)."""
        instance = self.instance(file_format, file_format)
        self.get(instance)
        return instance

    def age(self, seconds):
        for name in self.cached_files():
            path = os.path.join(self.base_dir, name)
            then = time.time() - seconds
            os.utime(path, (then, then))

    def update(self, *instances):
        for instance in instances:
            instance.host = 'host1'
            instance.vm_state = vm_states.ACTIVE
            instance.task_state = None
            instance.kernel_id = None
            instance.ramdisk_id = None
        self.cache.update(self.context, instances)

    def test_files_of_used_images_are_touched(self):
        instance = self.cached('vhd')
        self.age(7200)

        self.update(instance)

        names = [instance.image_ref + '.vhd', instance.image_ref + '_1.vhd']
        self.assertEqual(sorted(names), self.cached_files())
        for name in names:
            age = time.time() - os.path.getmtime(
                os.path.join(self.base_dir, name))
            self.assertLess(age, 60)

    def test_old_unused_image_and_its_grown_copies_are_removed(self):
        used = self.cached('vhdx')
        self.cached('vhd')
        self.age(7200)

        self.update(used)

        self.assertEqual([used.image_ref + '.vhdx'], self.cached_files())

    def test_recently_used_image_is_kept(self):
        unused = self.cached('vhd')
        self.age(60)

        self.update()

        self.assertEqual(sorted([unused.image_ref + '.vhd',
                                 unused.image_ref + '_1.vhd']),
                         self.cached_files())

    def test_nothing_removed_when_removal_is_off(self):
        self.flags(remove_unused_base_images=False, group='image_cache')
        unused = self.cached('vhdx')
        self.age(7200)

        self.update()

        self.assertEqual([unused.image_ref + '.vhdx'], self.cached_files())

    def test_files_not_named_like_images_are_left_alone(self):
        self.cached('vhdx')
        for name in ('notes.txt', 'my-disk.vhdx'):
            with open(os.path.join(self.base_dir, name), 'w'):
                pass
        self.age(7200)

        self.update()

        self.assertEqual(['my-disk.vhdx', 'notes.txt'], self.cached_files())
