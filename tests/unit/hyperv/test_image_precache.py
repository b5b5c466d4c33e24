"""Pre-caching (cache_image), what nova's cache_images asks each host."""

import os
import time

from nova import exception as nova_exception

from compute_hyperv_ovs import exception
from tests.fixtures import images
from tests.unit.hyperv import test_imagecache


class CacheImageTestCase(test_imagecache.ImageCacheTestBase):
    """ImageCache.cache_image: what nova's cache_images asks each host."""

    def setUp(self):
        super().setUp()
        self.glance = self.useFixture(images.GlanceFixture(self))
        self.disk_images = self.useFixture(
            images.DiskImagesFixture(self.glance))

    def glance_image(self, file_format, disk_format=None):
        image_id = self.disk_images.create_image(
            file_format, disk_format=disk_format,
            size_gb=test_imagecache.SMALL_GB)
        # The download stand-in of the base class serves these bytes.
        self.glance_files[image_id] = self.disk_images.make_file(
            file_format, size_gb=test_imagecache.SMALL_GB)
        return image_id

    def test_fetches_once_then_reports_it_cached(self):
        image_id = self.glance_image('vhdx')

        self.assertTrue(self.cache.cache_image(self.context, image_id))
        self.assertFalse(self.cache.cache_image(self.context, image_id))

        self.assertEqual([image_id], self.fetched)
        self.assertEqual([image_id + '.vhdx'], self.cached_files())

    def test_a_vhd_is_cached_as_served_not_grown(self):
        image_id = self.glance_image('vhd')

        self.assertTrue(self.cache.cache_image(self.context, image_id))

        self.assertEqual([image_id + '.vhd'], self.cached_files())

    def test_iso_image_cached_as_iso(self):
        image_id = self.glance_image('iso')

        self.assertTrue(self.cache.cache_image(self.context, image_id))

        self.assertEqual([image_id + '.iso'], self.cached_files())

    def test_a_boot_finds_the_pre_cached_image(self):
        image_id = self.glance_image('vhdx')
        self.cache.cache_image(self.context, image_id)

        path = self.get(self.instance('vhdx', 'vhdx', image_id=image_id))

        self.assertEqual(os.path.join(self.base_dir, image_id + '.vhdx'),
                         path)
        self.assertEqual([image_id], self.fetched)

    def test_format_hyperv_cannot_boot_refused_before_download(self):
        image_id = self.glance_image('qcow2')

        exc = self.assertRaises(exception.ImageNotVHD,
                                self.cache.cache_image, self.context,
                                image_id)

        self.assertIn('disk_format is qcow2', exc.format_message())
        self.assertEqual([], self.fetched)
        self.assertEqual([], self.cached_files())

    def test_content_not_its_declared_format_refused_leaving_nothing(self):
        image_id = self.glance_image('vhd', disk_format='vhdx')

        self.assertRaises(exception.ImageNotVHD, self.cache.cache_image,
                          self.context, image_id)

        self.assertEqual([], self.cached_files())

    def test_unknown_image_is_image_not_found(self):
        self.assertRaises(nova_exception.ImageNotFound,
                          self.cache.cache_image, self.context,
                          'ba3c5b5e-0c2e-4e5a-9a37-4cf1a3a6d9f1')
        self.assertEqual([], self.cached_files())

    def test_asking_again_makes_an_old_image_young(self):
        image_id = self.glance_image('vhdx')
        self.cache.cache_image(self.context, image_id)
        path = os.path.join(self.base_dir, image_id + '.vhdx')
        then = time.time() - 7200
        os.utime(path, (then, then))

        self.assertFalse(self.cache.cache_image(self.context, image_id))

        self.assertLess(time.time() - os.path.getmtime(path), 60)
