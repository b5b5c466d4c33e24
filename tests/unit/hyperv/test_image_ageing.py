"""The image cache's ageing rules, with real files.

Ages are set on the simulated host's files (their modification times), as
Hyper-V's host would show them.
"""

import os
import time

from tests.unit.hyperv import test_imagecache


class AgeingRulesTestCase(test_imagecache.ImageCacheTestBase):
    """The rules nova 28 and compute-hyperv 16 share, and their gaps."""

    USES_DB = True
    # The helpers of the ageing tests, without running those tests again.
    cached = test_imagecache.AgeingTestCase.cached
    age = test_imagecache.AgeingTestCase.age
    update = test_imagecache.AgeingTestCase.update

    def setUp(self):
        super().setUp()
        self.flags(remove_unused_original_minimum_age_seconds=3600,
                   remove_unused_resized_minimum_age_seconds=600,
                   group='image_cache')

    def age_file(self, name, seconds):
        then = time.time() - seconds
        os.utime(os.path.join(self.base_dir, name), (then, then))

    def test_grown_copy_ages_by_the_resized_minimum_age(self):
        unused = self.cached('vhd')
        original = unused.image_ref + '.vhd'
        grown = unused.image_ref + '_1.vhd'
        self.age_file(original, 1800)
        self.age_file(grown, 1800)

        self.update()

        # Older than the resized copies' 600 s, younger than 3600 s.
        self.assertEqual([original], self.cached_files())

    def test_unused_iso_image_ages_like_an_original(self):
        old_iso = self.instance('iso', 'iso')
        young_iso = self.instance('iso', 'iso')
        self.get(old_iso)
        self.get(young_iso)
        self.age_file(old_iso.image_ref + '.iso', 7200)

        self.update()

        self.assertEqual([young_iso.image_ref + '.iso'], self.cached_files())

    def test_used_iso_image_is_touched(self):
        in_use = self.instance('iso', 'iso')
        self.get(in_use)
        self.age(7200)

        self.update(in_use)

        self.assertEqual([in_use.image_ref + '.iso'], self.cached_files())
        self.assertLess(time.time() - os.path.getmtime(
            os.path.join(self.base_dir, in_use.image_ref + '.iso')), 60)

    def test_grown_copy_without_its_original_is_still_aged(self):
        unused = self.cached('vhd')
        os.remove(os.path.join(self.base_dir, unused.image_ref + '.vhd'))
        self.age(7200)

        self.update()

        self.assertEqual([], self.cached_files())

    def test_a_boot_from_the_cache_makes_its_files_young(self):
        instance = self.cached('vhd')
        self.age(7200)

        # Booted again (another server of the same image and flavor),
        # before the periodic task lists that server.
        self.get(self.instance('vhd', 'vhd', image_id=instance.image_ref))
        self.update()

        self.assertEqual(sorted([instance.image_ref + '.vhd',
                                 instance.image_ref + '_1.vhd']),
                         self.cached_files())
