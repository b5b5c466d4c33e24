"""ImageCache: fetched images that are not what they claim are refused."""

import os
import shutil

import fixtures
from nova import context as nova_context
from nova import objects
from nova import test
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs import imagecache
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images


class GetCachedImageTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=instances_path)
        self.base_dir = os.path.join(instances_path, '_base')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.hosts.add_host('host1')
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

    def fake_fetch(self, context, image_id, path, trusted_certs=None):
        self.fetched.append(image_id)
        parent = self.differencing_parents.get(image_id)
        if parent is not None:
            # A differencing VHD's parent is recorded beside the file (see
            # tests/fixtures/hyperv/diskfiles.py DiskMetadata), so make it in
            # place.
            with self.hosts.building('host1'):
                utilsfactory.get_vhdutils().create_differencing_vhd(
                    path + '.vhd', parent)
            os.rename(path + '.vhd', path)  # same inode, same record
            return
        shutil.copyfile(self.glance_files[image_id], path)

    def instance(self, file_format, disk_format):
        """An instance of a glance image whose data is a file_format file."""
        image_id = uuidutils.generate_uuid()
        self.glance_files[image_id] = self.images.make_file(
            file_format, size_gb=0.03125)
        flavor = objects.Flavor(root_gb=1, ephemeral_gb=0, swap=0)
        return objects.Instance(
            uuid=uuidutils.generate_uuid(), image_ref=image_id,
            flavor=flavor, old_flavor=None,
            system_metadata={'image_disk_format': disk_format})

    def get(self, instance):
        return self.cache.get_cached_image(
            nova_context.get_admin_context(), instance)

    def cached_files(self):
        # nova's external cache locks live in _base too; they are not images.
        return sorted(f for f in os.listdir(self.base_dir)
                      if not f.endswith('.lock'))

    def test_qcow2_file_refused_and_not_cached(self):
        instance = self.instance('qcow2', disk_format='vhdx')

        exc = self.assertRaises(exception.ImageNotVHD, self.get, instance)

        self.assertIn(instance.image_ref, exc.format_message())
        self.assertIn('neither VHD nor VHDX', exc.format_message())
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
        self.assertEqual('VHDX', self.hosts['host1'].disks[path].format)
        # A second boot of the same image uses the cache.
        self.assertEqual(expected, self.get(instance))
        self.assertEqual([instance.image_ref], self.fetched)

    def test_matching_vhd_is_returned_resized_for_the_flavor(self):
        instance = self.instance('vhd', disk_format='vhd')

        path = self.get(instance)

        self.assertEqual(
            os.path.join(self.base_dir, instance.image_ref + '_1.vhd'), path)
        self.assertEqual('VHD', self.hosts['host1'].disks[path].format)

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
        self.hosts['host1'].disk_free_gb = 0

        exc = self.assertRaises(exception.ImageCopyFailed, self.get,
                                instance)

        message = exc.format_message()
        self.assertIn(instance.image_ref, message)
        self.assertIn('could not be copied', message)
        self.assertIn('not enough space on the disk', message)
        self.assertNotIn(instance.image_ref + '_1.vhd', self.cached_files())
