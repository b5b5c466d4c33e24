"""Disks and images through nova's API, read back on the simulated host.

Disk QoS from the flavor, boot from an ISO image, image pre-caching and
trusted image certificates, each as a user or operator asks for it.
"""

import os

from os_win import constants as os_win_const

from tests.fixtures import trusted_certs
from tests.functional import base


class DiskQoSTest(base.HyperVOVSTestBase):
    """``quota:disk_total_*`` limits the server's disks on Hyper-V."""

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.image = self.images.create_image('vhdx')
        self.limited_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=2, ephemeral=1,
            extra_spec={'quota:disk_total_iops_sec': '500'})
        # 4 MiB/s is 512 normalised (8 KB) IOPS.
        self.other_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=3, ephemeral=1,
            extra_spec={'quota:disk_total_bytes_sec': str(4 * 1024 * 1024)})

    def disk_qos(self, server, hostname=None):
        """{file name: (minimum, maximum) IOPS} of the VM's disks."""
        vm = self.vm_of(server, hostname)
        self.assertEqual(2, len(vm.disks))  # root and ephemeral
        return {os.path.basename(path): qos
                for path, qos in vm.disk_qos.items()}

    def test_boot_limits_root_and_ephemeral_disks(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)

        self.assertEqual({'root.vhdx': (0, 500), 'eph0.vhdx': (0, 500)},
                         self.disk_qos(server))

    def test_resize_applies_the_new_limit_and_revert_the_old(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)

        server = self._resize_server(server, self.other_flavor_id)

        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual({'root.vhdx': (0, 512), 'eph0.vhdx': (0, 512)},
                         self.disk_qos(server))

        server = self._revert_resize(server)

        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual({'root.vhdx': (0, 500), 'eph0.vhdx': (0, 500)},
                         self.disk_qos(server))

    def test_resize_to_a_flavor_without_quota_lifts_the_limit(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)
        unlimited = self._create_flavor(memory_mb=1024, vcpu=2, disk=3,
                                        ephemeral=1)

        server = self._resize_server(server, unlimited)
        server = self._confirm_resize(server)

        self.assertEqual({}, self.disk_qos(server))


class ISOBootTest(base.HyperVOVSTestBase):
    """A server boots from an ISO image on a DVD drive, CD/DVD first."""

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        # Only hosts whose driver reports COMPUTE_IMAGE_TYPE_ISO get ISO
        # images (nova's image type prefilter).
        self.flags(query_placement_for_image_type_support=True,
                   group='scheduler')
        self.start_compute('host1')
        self.start_compute('host2')
        self.iso = self.images.create_image('iso')
        self.iso_gen2 = self.images.create_image(
            'iso', properties={'hw_machine_type': 'hyperv-gen2'})
        self.installer_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=2, ephemeral=1)

    def files_of(self, server, hostname=None):
        return sorted(f for f in os.listdir(self.instance_dir(server,
                                                              hostname))
                      if not f.startswith('console'))

    def test_hosts_report_the_iso_image_type(self):
        for hostname in ('host1', 'host2'):
            traits = self._get_provider_traits(
                self._get_provider_uuid_by_host(hostname))
            self.assertIn('COMPUTE_IMAGE_TYPE_ISO', traits)

    def test_generation1_boots_the_cd_first(self):
        server, _port = self.boot(self.iso, flavor_id=self.installer_flavor_id)

        vm = self.vm_of(server)
        root_iso = os.path.join(self.instance_dir(server), 'root.iso')
        self.assertEqual([(root_iso, 'IDE', 0, 0)],
                         [(d.path, d.controller, d.controller_addr, d.slot)
                          for d in vm.dvds])
        self.assertEqual('CD', {
            os_win_const.BOOT_DEVICE_CDROM: 'CD',
            os_win_const.BOOT_DEVICE_HARDDISK: 'HDD'}[vm.boot_order[0]])
        self.assertEqual(['eph0.vhdx'],
                         [os.path.basename(d.path) for d in vm.disks])
        self.assertEqual(['eph0.vhdx', 'root.iso'], self.files_of(server))
        self.assertTrue(os.path.isfile(os.path.join(
            self.base_dir(server['OS-EXT-SRV-ATTR:host']),
            self.iso + '.iso')))

    def test_generation2_boots_the_dvd_first(self):
        server, _port = self.boot(self.iso_gen2,
                                  flavor_id=self.installer_flavor_id)

        vm = self.vm_of(server)
        self.assertEqual(2, vm.generation)
        self.assertEqual(['SCSI'], [d.controller for d in vm.dvds])
        self.assertEqual(['root.iso', 'eph0.vhdx'],
                         [os.path.basename(p) for p in vm.boot_order])

    def test_snapshot_is_the_medium_and_boots_the_same_way(self):
        server, _port = self.boot(self.iso_gen2,
                                  flavor_id=self.installer_flavor_id)

        resp = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'snap'}})
        snap_id = resp['image_id']
        self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})

        snap = self.glance.show(None, snap_id)
        self.assertEqual(('iso', 'active'),
                         (snap['disk_format'], snap['status']))
        self.assertEqual(self.glance._imagedata[self.iso_gen2],
                         self.glance._imagedata[snap_id])
        self.assertEqual((), self.vm_of(server).checkpoints)
        again, _port = self.boot(snap_id, flavor_id=self.installer_flavor_id)
        vm = self.vm_of(again)
        self.assertEqual(2, vm.generation)
        self.assertEqual(['root.iso', 'eph0.vhdx'],
                         [os.path.basename(p) for p in vm.boot_order])

    def test_shelve_and_unshelve_boot_the_medium_again(self):
        server, _port = self.boot(self.iso,
                                  flavor_id=self.installer_flavor_id)

        self.api.post_server_action(server['id'], {'shelve': None})
        server = self._wait_for_state_change(server, 'SHELVED_OFFLOADED')
        self.api.post_server_action(server['id'], {'unshelve': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        vm = self.vm_of(server)
        self.assertEqual('Running', vm.power_state_name)
        self.assertEqual(['root.iso'],
                         [os.path.basename(d.path) for d in vm.dvds])
        self.assertEqual(os_win_const.BOOT_DEVICE_CDROM, vm.boot_order[0])

    def test_resize_moves_the_medium_and_boots_it_first_again(self):
        server, _port = self.boot(self.iso, host='host1',
                                  flavor_id=self.installer_flavor_id)
        bigger = self._create_flavor(memory_mb=2048, vcpu=2, disk=2,
                                     ephemeral=2)

        server = self._resize_server(server, bigger)

        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        vm = self.vm_of(server)
        self.assertEqual(['root.iso'],
                         [os.path.basename(d.path) for d in vm.dvds])
        self.assertEqual(os_win_const.BOOT_DEVICE_CDROM, vm.boot_order[0])
        self.assertEqual(['eph0.vhdx', 'root.iso'], self.files_of(server))
        server = self._confirm_resize(server)
        self.assertEqual('Running', self.vm_of(server).power_state_name)


class ImagePreCacheTest(base.HyperVOVSTestBase):
    """``POST /os-aggregates/{id}/images`` fills the hosts' ``_base``."""

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.aggregate = self.admin_api.post_aggregate(
            {'aggregate': {'name': 'precache'}})
        self.admin_api.add_host_to_aggregate(self.aggregate['id'], 'host1')

    def cached_files(self, hostname):
        base_dir = self.base_dir(hostname)
        if not os.path.isdir(base_dir):
            return []
        return sorted(f for f in os.listdir(base_dir)
                      if not f.endswith('.lock'))

    def precache(self, *image_ids):
        """Ask for the images; returns the host's progress payload."""
        self.notifier.reset()
        self.admin_api.api_post(
            '/os-aggregates/%s/images' % self.aggregate['id'],
            {'cache': [{'id': image_id} for image_id in image_ids]},
            check_response_status=[202])
        self.notifier.wait_for_versioned_notifications(
            'aggregate.cache_images.end')
        progress, = [n for n in self.notifier.versioned_notifications
                     if n['event_type'] == 'aggregate.cache_images.progress']
        return progress['payload']['nova_object.data']

    def test_images_cached_on_the_aggregates_hosts_only(self):
        vhdx = self.images.create_image('vhdx')
        iso = self.images.create_image('iso')

        progress = self.precache(vhdx, iso)

        self.assertEqual('host1', progress['host'])
        self.assertEqual(sorted([vhdx, iso]),
                         sorted(progress['images_cached']))
        self.assertEqual([], progress['images_failed'])
        self.assertEqual(sorted([vhdx + '.vhdx', iso + '.iso']),
                         self.cached_files('host1'))
        self.assertEqual([], self.cached_files('host2'))
        self.assertIn('2 cached, 0 existing, 0 errors',
                      self.stdlog.logger.output)

    def test_second_request_finds_them_existing(self):
        vhdx = self.images.create_image('vhdx')
        self.precache(vhdx)

        self.precache(vhdx)

        self.assertIn('0 cached, 1 existing, 0 errors',
                      self.stdlog.logger.output)
        self.assertEqual([vhdx + '.vhdx'], self.cached_files('host1'))

    def test_image_hyperv_cannot_boot_fails_leaving_nothing(self):
        qcow2 = self.images.create_image('qcow2')

        progress = self.precache(qcow2)

        self.assertEqual([qcow2], progress['images_failed'])
        self.assertEqual([], self.cached_files('host1'))

    def test_a_boot_uses_the_pre_cached_image(self):
        vhdx = self.images.create_image('vhdx')
        self.precache(vhdx)
        cached = os.path.join(self.base_dir('host1'), vhdx + '.vhdx')
        inode = os.stat(cached).st_ino

        server, _port = self.boot(vhdx, host='host1')

        root = os.path.join(self.instance_dir(server), 'root.vhdx')
        self.assertEqual(cached, self.host('host1').disks[root].parent)
        self.assertEqual(inode, os.stat(cached).st_ino)


class TrustedCertsTest(base.HyperVOVSTestBase):
    """Trusted image certificates reach nova's verified image download."""

    def setUp(self):
        super().setUp()
        self.certs = self.useFixture(trusted_certs.CertificatesFixture())
        self.start_compute('host1')
        self.signed = self.images.create_image('vhdx', signed_by=self.certs)

    def boot_trusting(self, cert_ids, image_id=None,
                      expected_state='ACTIVE'):
        port = self.create_port()
        request = self._build_server(
            image_uuid=image_id or self.signed, flavor_id=self.flavor_id,
            networks=[{'port': port['id']}])
        request['trusted_image_certificates'] = cert_ids
        server = self.api.post_server({'server': request})
        return self._wait_for_state_change(server, expected_state), port

    def cached_files(self):
        base_dir = self.base_dir('host1')
        if not os.path.isdir(base_dir):
            return []
        return sorted(f for f in os.listdir(base_dir)
                      if not f.endswith('.lock'))

    def assert_nothing_left(self, server, port):
        self.assertEqual({}, dict(self.host('host1').vms))
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host1')))
        self.assertEqual([], self.cached_files())
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports('br-int'))

    def test_host_reports_trusted_certs_support(self):
        traits = self._get_provider_traits(
            self._get_provider_uuid_by_host('host1'))
        self.assertIn('COMPUTE_TRUSTED_CERTS', traits)

    def test_boot_trusting_the_issuer_verifies_and_boots(self):
        server, _port = self.boot_trusting([self.certs.ca_id])

        self.assertIn((self.signed, [self.certs.ca_id]),
                      self.glance.download_requests)
        self.assertEqual('Running', self.vm_of(server).power_state_name)
        self.assertEqual([self.signed + '.vhdx'], self.cached_files())

    def test_certificate_not_issued_by_a_trusted_one_fails_the_boot(self):
        server, port = self.boot_trusting([self.certs.other_ca_id],
                                          expected_state='ERROR')

        self.assertIn((self.signed, [self.certs.other_ca_id]),
                      self.glance.download_requests)
        self.assertIn('certificate validation failed',
                      server['fault']['message'].lower())
        self.assert_nothing_left(server, port)

    def test_data_not_matching_its_signature_fails_the_boot(self):
        forged = self.images.create_image(
            'vhdx', properties=self.certs.signature_properties(b'other'))

        server, port = self.boot_trusting([self.certs.ca_id], forged,
                                          expected_state='ERROR')

        self.assertIn((forged, [self.certs.ca_id]),
                      self.glance.download_requests)
        self.assert_nothing_left(server, port)
