"""Disk QoS from the flavor, on the simulated host's disks.

The flavor's ``quota:disk_total_*`` specs become each local disk's IOPS
limit at spawn, on a resize's destination and on a revert; the simulated
host keeps the limit per disk and refuses what Hyper-V refuses.
"""

import os

import fixtures
from nova.compute import vm_states
from nova import exception as nova_exception
from nova import objects
from nova import test
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory

from compute_hyperv_ovs.hyperv import disk_qos
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images
from tests.unit.hyperv import core_host
from tests.unit.hyperv import test_migrationops


flavor = core_host.flavor


class LimitTestCase(test.NoDBTestCase):
    """How the flavor's specs become one normalised IOPS limit."""

    def limit(self, **specs):
        return disk_qos.max_iops('uuid', flavor(**specs))

    def test_bytes_are_counted_in_8k_units_rounded_up(self):
        self.assertEqual(1, self.limit(**{disk_qos.TOTAL_BYTES: '1'}))
        self.assertEqual(1, self.limit(**{disk_qos.TOTAL_BYTES: '8192'}))
        self.assertEqual(2, self.limit(**{disk_qos.TOTAL_BYTES: '8193'}))
        self.assertEqual(1280, self.limit(
            **{disk_qos.TOTAL_BYTES: str(10 * 1024 * 1024)}))

    def test_iops_taken_as_they_are(self):
        self.assertEqual(500, self.limit(**{disk_qos.TOTAL_IOPS: '500'}))

    def test_with_both_the_stricter_one_holds(self):
        self.assertEqual(100, self.limit(**{
            disk_qos.TOTAL_IOPS: '100', disk_qos.TOTAL_BYTES: '8192000'}))
        self.assertEqual(10, self.limit(**{
            disk_qos.TOTAL_IOPS: '100', disk_qos.TOTAL_BYTES: '81920'}))

    def test_no_spec_or_zero_is_no_limit(self):
        self.assertEqual(0, self.limit())
        self.assertEqual(0, self.limit(**{disk_qos.TOTAL_IOPS: '0'}))

    def test_read_or_write_only_quota_refused_naming_the_alternative(self):
        for key in disk_qos.UNSUPPORTED:
            exc = self.assertRaises(
                nova_exception.InstanceUnacceptable, disk_qos.check_flavor,
                'uuid', flavor(**{key: '100'}))
            self.assertIn(key, exc.format_message())
            self.assertIn(disk_qos.TOTAL_IOPS, exc.format_message())

    def test_bad_values_refused(self):
        for value in ('-1', 'fast', '1.5'):
            exc = self.assertRaises(
                nova_exception.InstanceUnacceptable, disk_qos.check_flavor,
                'uuid', flavor(**{disk_qos.TOTAL_IOPS: value}))
            self.assertIn('%s=%s' % (disk_qos.TOTAL_IOPS, value),
                          exc.format_message())


class SimulatedQoSRulesTestCase(test.NoDBTestCase):
    """The simulated host refuses storage QoS that Hyper-V refuses."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.tmp)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.sim = self.hosts.add_host('host1')
        with self.hosts.building('host1'):
            self.vmutils = utilsfactory.get_vmutils()
        disk_images = self.useFixture(images.DiskImagesFixture(glance=None))
        self.disk = disk_images.make_file('vhdx', size_gb=0.01)
        self.iso = os.path.join(self.tmp, 'cd.iso')
        open(self.iso, 'wb').close()
        self.vmutils.create_vm('vm1', False, 1, self.tmp, ['u'])
        self.vmutils.attach_ide_drive('vm1', self.disk, 0, 0)
        self.vmutils.attach_ide_drive('vm1', self.iso, 1, 0,
                                      os_win_const.DVD)

    def qos(self):
        return dict(self.sim.vms['vm1'].disk_qos)

    def test_limit_and_reservation_kept_per_disk(self):
        self.vmutils.set_disk_qos_specs(self.disk, 300)
        self.vmutils.set_disk_qos_specs(self.disk, min_iops=100)

        self.assertEqual({self.disk: (100, 300)}, self.qos())

    def test_minimum_above_maximum_refused_and_nothing_changes(self):
        self.vmutils.set_disk_qos_specs(self.disk, 300)

        exc = self.assertRaises(os_win_exc.HyperVException,
                                self.vmutils.set_disk_qos_specs,
                                self.disk, 200, 250)

        self.assertIn('cannot be higher than its maximum', str(exc))
        self.assertEqual({self.disk: (0, 300)}, self.qos())

    def test_detaching_a_disk_drops_its_qos(self):
        self.vmutils.set_disk_qos_specs(self.disk, 300)

        self.vmutils.detach_vm_disk('vm1', self.disk, is_physical=False)
        self.vmutils.attach_ide_drive('vm1', self.disk, 0, 0)

        self.assertEqual({}, self.qos())

    def test_negative_refused(self):
        self.assertRaises(os_win_exc.HyperVException,
                          self.vmutils.set_disk_qos_specs, self.disk, -5)

    def test_dvd_and_detached_disk_refused(self):
        self.assertRaises(os_win_exc.HyperVException,
                          self.vmutils.set_disk_qos_specs, self.iso, 10)
        self.assertRaises(os_win_exc.DiskNotFound,
                          self.vmutils.set_disk_qos_specs,
                          os.path.join(self.tmp, 'other.vhdx'), 10)
        self.assertEqual({}, self.qos())


class SpawnQoSTestCase(core_host.CoreSpawnTestBase):
    """A spawn limits the root and ephemeral disks, not the config drive."""

    def setUp(self):
        super().setUp()
        self.image_id = self.add_image('vhdx')

    def instance(self, the_flavor):
        return super().instance(self.image_id, 'vhdx', the_flavor)

    def test_root_and_ephemeral_disks_limited(self):
        instance = self.instance(flavor(
            ephemeral_gb=1, **{disk_qos.TOTAL_BYTES: str(1024 * 1024)}))

        vm = self.spawn(instance, ephemerals=[1])

        self.assertEqual(2, len(vm.disks))
        self.assertEqual({d.path: (0, 128) for d in vm.disks},
                         dict(vm.disk_qos))

    def test_flavor_without_quota_sets_nothing(self):
        vm = self.spawn(self.instance(flavor()))

        self.assertEqual({}, dict(vm.disk_qos))

    def test_unsupported_quota_refused_before_anything_is_created(self):
        instance = self.instance(flavor(
            **{'quota:disk_read_iops_sec': '100'}))

        self.assertRaises(nova_exception.InstanceUnacceptable,
                          self.spawn, instance)

        self.assertEqual({}, dict(self.sim.vms))
        self.assertFalse(os.path.exists(os.path.join(self.tmp,
                                                     instance.name)))


class ResizeQoSTestCase(test_migrationops.MigrationOpsTestBase):
    """A resize limits the disks by the new flavor, a revert by the old."""

    def setUp(self):
        super().setUp()
        self.instance.flavor = flavor(**{disk_qos.TOTAL_IOPS: '400'})
        self.src_root = self.running_vm_on_source()

    def test_resize_applies_the_new_flavors_limit(self):
        new = flavor(root_gb=2, **{disk_qos.TOTAL_IOPS: '150'})
        self.migrate_away(new)

        self.finish(new_flavor=new)

        vm = self.dest.sim.vms[self.name]
        self.assertEqual({vm.disks[0].path: (0, 150)}, dict(vm.disk_qos))

    def test_resize_to_a_flavor_without_quota_lifts_the_limit(self):
        new = flavor(root_gb=2)
        self.migrate_away(new)

        self.finish(new_flavor=new)

        self.assertEqual({}, dict(self.dest.sim.vms[self.name].disk_qos))

    def test_revert_applies_the_old_flavors_limit(self):
        self.migrate_away(flavor(root_gb=2))

        # nova puts the old flavor back before the driver's revert.
        self.src.ops.finish_revert_migration(
            self.context, self.instance, self.network_info,
            test_migrationops.block_device_info())

        vm = self.src.sim.vms[self.name]
        self.assertEqual({self.src_root: (0, 400)}, dict(vm.disk_qos))

    def test_unsupported_quota_in_new_flavor_refused_before_power_off(self):
        new = flavor(root_gb=2, **{'quota:disk_write_bytes_sec': '1000'})

        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.migrate_away, new)

        self.assertIsInstance(exc.inner_exception,
                              nova_exception.InstanceUnacceptable)
        self.assertEqual('Running',
                         self.src.sim.vms[self.name].power_state_name)
        self.assertIsNone(self.files(self.dest, self.name))


class RescueQoSTestCase(core_host.CoreSpawnTestBase):
    """Rescue and unrescue attach disks anew; the limits follow them."""

    def test_limits_survive_rescue_and_unrescue(self):
        image_id = self.add_image('vhdx')
        rescue_id = self.add_image('vhdx')
        instance = self.instance(image_id, 'vhdx', core_host.flavor(
            **{disk_qos.TOTAL_IOPS: '300'}))
        vm = self.spawn(instance)
        root = vm.disks[0].path
        rescue_meta = objects.ImageMeta.from_dict(
            {'id': rescue_id, 'disk_format': 'vhdx', 'properties': {}})

        self.vmops.rescue_instance(self.context, instance, [], rescue_meta,
                                   None)

        vm = self.sim.vms[instance.name]
        self.assertEqual(2, len(vm.disks))
        self.assertEqual({d.path: (0, 300) for d in vm.disks},
                         dict(vm.disk_qos))

        instance.vm_state = vm_states.RESCUED  # as nova sets it
        self.vmops.unrescue_instance(instance)

        vm = self.sim.vms[instance.name]
        self.assertEqual({root: (0, 300)}, dict(vm.disk_qos))
