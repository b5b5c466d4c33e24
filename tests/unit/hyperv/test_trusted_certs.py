"""The instance's trusted image certificates go with each image download."""

from nova import objects

from tests.unit.hyperv import core_host


class TrustedCertsFetchTestCase(core_host.CoreSpawnTestBase):

    def setUp(self):
        super().setUp()
        self.image_id = self.add_image('vhdx')

    def test_spawn_downloads_with_the_instances_certificates(self):
        instance = self.instance(self.image_id, 'vhdx')
        instance.trusted_certs = objects.TrustedCerts(ids=['ca-1', 'ca-2'])

        self.spawn(instance)

        self.assertEqual([self.image_id], self.downloads.fetched)
        self.assertEqual([['ca-1', 'ca-2']],
                         [certs.ids for certs in self.downloads.trusted_certs])

    def test_no_certificates_requested_downloads_without(self):
        instance = self.instance(self.image_id, 'vhdx')
        instance.trusted_certs = None

        self.spawn(instance)

        self.assertEqual([None], self.downloads.trusted_certs)

    def test_a_rescue_image_is_downloaded_with_them_too(self):
        rescue_id = self.add_image('vhdx')
        instance = self.instance(self.image_id, 'vhdx')
        instance.trusted_certs = objects.TrustedCerts(ids=['ca-1'])

        self.image_cache.get_cached_image(self.context, instance,
                                          rescue_image_id=rescue_id)

        self.assertEqual([rescue_id], self.downloads.fetched)
        self.assertEqual(['ca-1'], self.downloads.trusted_certs[0].ids)
