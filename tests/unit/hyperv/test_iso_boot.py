"""Boot from an ISO image: a DVD in the root disk's place, booted first."""

import os

from nova.compute import task_states
from nova import context as nova_context
from nova import exception as nova_exception
from os_win import constants as os_win_const

from compute_hyperv_ovs import exception
from tests.fixtures import images
from tests.unit.hyperv import core_host

GEN1, GEN2 = 'hyperv-gen1', 'hyperv-gen2'


class ISOBootTestCase(core_host.CoreSpawnTestBase):

    def setUp(self):
        super().setUp()
        self.iso_image = self.add_image('iso')

    def instance_dir(self, instance):
        return os.path.join(self.tmp, instance.name)

    def cached_files(self):
        """The image files in ``_base`` (not the images' lock files)."""
        return sorted(f for f in os.listdir(os.path.join(self.tmp, '_base'))
                      if not f.endswith('.lock'))

    def test_generation1_boots_the_cd_first_from_ide(self):
        instance = self.instance(self.iso_image, 'iso',
                                 core_host.flavor(ephemeral_gb=1))

        vm = self.spawn(instance, ephemerals=[1])

        root_iso = os.path.join(self.instance_dir(instance), 'root.iso')
        self.assertEqual([(root_iso, 'IDE', 0, 0)],
                         [(d.path, d.controller, d.controller_addr, d.slot)
                          for d in vm.dvds])
        self.assertEqual(os_win_const.BOOT_DEVICE_CDROM, vm.boot_order[0])
        self.assertEqual('Running', vm.power_state_name)
        # The instance's own copy of the cached image, byte for byte.
        cached = os.path.join(self.tmp, '_base', self.iso_image + '.iso')
        with open(cached, 'rb') as a, open(root_iso, 'rb') as b:
            self.assertEqual(a.read(), b.read())
        # No root disk: only the flavor's ephemeral disk.
        self.assertEqual(['eph0.vhdx'],
                         [os.path.basename(d.path) for d in vm.disks])
        self.assertEqual(
            sorted(['root.iso', 'eph0.vhdx']),
            sorted(f for f in os.listdir(self.instance_dir(instance))
                   if not f.startswith('console')))

    def test_generation2_boots_the_dvd_first_from_scsi(self):
        instance = self.instance(self.iso_image, 'iso',
                                 core_host.flavor(ephemeral_gb=1),
                                 machine_type=GEN2)

        vm = self.spawn(instance, ephemerals=[1])

        root_iso = os.path.join(self.instance_dir(instance), 'root.iso')
        self.assertEqual(2, vm.generation)
        self.assertEqual([(root_iso, 'SCSI')],
                         [(d.path, d.controller) for d in vm.dvds])
        self.assertEqual(
            (root_iso, os.path.join(self.instance_dir(instance),
                                    'eph0.vhdx')),
            vm.boot_order)

    def test_iso_content_is_not_resized_or_grown_in_the_cache(self):
        instance = self.instance(self.iso_image, 'iso',
                                 core_host.flavor(root_gb=5))

        self.spawn(instance)

        self.assertEqual([self.iso_image + '.iso'], self.cached_files())
        self.assertEqual(os.path.getsize(self.glance_files[self.iso_image]),
                         os.path.getsize(os.path.join(
                             self.instance_dir(instance), 'root.iso')))

    def test_disk_declared_iso_refused_leaving_nothing(self):
        vhdx_image = self.add_image('vhdx')
        instance = self.instance(vhdx_image, 'iso')

        exc = self.assertRaises(exception.ImageNotISO, self.spawn, instance)

        self.assertIsInstance(exc, nova_exception.ImageUnacceptable)
        self.assertIn(vhdx_image, exc.format_message())
        self.assertEqual({}, dict(self.sim.vms))
        self.assertEqual([], self.cached_files())
        self.assertFalse(os.path.exists(self.instance_dir(instance)))

    def test_iso_declared_vhdx_refused_leaving_nothing(self):
        instance = self.instance(self.iso_image, 'vhdx')

        exc = self.assertRaises(exception.ImageNotVHD, self.spawn, instance)

        self.assertIn('neither VHD nor VHDX', exc.format_message())
        self.assertEqual([], self.cached_files())
        self.assertEqual({}, dict(self.sim.vms))

    def test_snapshot_uploads_the_medium_as_an_iso_image(self):
        instance = self.instance(self.iso_image, 'iso')
        self.spawn(instance)
        glance = self.useFixture(images.GlanceFixture(self))
        context = nova_context.get_admin_context()
        snap_id = glance.create(context, {'name': 'snap',
                                          'status': 'queued'})['id']
        states = []

        self.snapshotops.snapshot(
            context, instance, snap_id,
            lambda **kw: states.append(kw['task_state']))

        image = glance.show(context, snap_id)
        self.assertEqual(('iso', 'bare', 'active'),
                         (image['disk_format'], image['container_format'],
                          image['status']))
        with open(self.glance_files[self.iso_image], 'rb') as iso:
            self.assertEqual(iso.read(), glance._imagedata[snap_id])
        self.assertEqual([task_states.IMAGE_PENDING_UPLOAD,
                          task_states.IMAGE_UPLOADING], states)
        vm = self.sim.vms[instance.name]
        self.assertEqual((), vm.checkpoints)
        self.assertEqual('Running', vm.power_state_name)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'export')))

    def test_rescue_from_a_cached_iso_refused(self):
        vhdx_image = self.add_image('vhdx')
        instance = self.instance(vhdx_image, 'vhdx')
        self.spawn(self.instance(self.iso_image, 'iso'))

        exc = self.assertRaises(
            nova_exception.ImageUnacceptable,
            self.image_cache.get_cached_image, self.context, instance,
            rescue_image_id=self.iso_image)

        self.assertIn('rescue boots from a VHD or VHDX', exc.format_message())
