"""BlockDeviceInfoManager: where a VM's disks go, and what it boots."""

import os

import fixtures
from nova import context as nova_context
from nova import exception
from nova import objects
from nova import test
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import block_device
from tests.fixtures.hyperv import fixture as hyperv_fixture

GEN1 = 1
GEN2 = 2
IDE = 'IDE'
SCSI = 'SCSI'


def _instance(config_drive=False):
    # Instance.config_drive is a string field: '' means none.
    return objects.Instance(uuid=uuidutils.generate_uuid(),
                            config_drive='True' if config_drive else '',
                            launched_at=None,
                            system_metadata={}, image_ref='')


def _image(disk_format='vhdx'):
    return objects.ImageMeta.from_dict({'disk_format': disk_format})


def _bdi(ephemerals=(), volumes=(), root_device_name='/dev/sda', swap=None):
    return {'root_device_name': root_device_name,
            'ephemerals': [dict(eph) for eph in ephemerals],
            'block_device_mapping': list(volumes),
            'swap': swap}


def _eph(name, **fields):
    eph = {'device_name': name, 'size': 1}
    eph.update(fields)
    return eph


def _slots(bdi):
    """(bus, controller, slot) of the root disk, then of each ephemeral."""
    disks = [bdi['root_disk']] + bdi['ephemerals']
    return [(d['disk_bus'], d['drive_addr'], d['ctrl_disk_addr'])
            for d in disks]


class PlacementTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.manager = block_device.BlockDeviceInfoManager()

    def _place(self, vm_gen, bdi, config_drive=False, disk_format='vhdx'):
        self.manager.validate_and_update_bdi(
            _instance(config_drive), _image(disk_format), vm_gen, bdi)
        return bdi

    def test_gen1_root_on_ide_ephemerals_on_scsi_by_default(self):
        bdi = self._place(GEN1, _bdi([_eph('/dev/sdb'), _eph('/dev/sdc')]))
        self.assertEqual([(IDE, 0, 0), (SCSI, 0, 0), (SCSI, 0, 1)],
                         _slots(bdi))
        root = bdi['root_disk']
        self.assertEqual('VHD', root['type'])
        self.assertEqual(0, root['boot_index'])
        self.assertEqual('/dev/sda', root['mount_device'])
        self.assertEqual('disk', bdi['ephemerals'][0]['device_type'])

    def test_gen1_ide_ephemerals_leave_the_config_drive_its_slot(self):
        bdi = self._place(GEN1, _bdi([_eph('/dev/sdb', disk_bus='ide'),
                                      _eph('/dev/sdc', disk_bus='ide')]),
                          config_drive=True)
        # IDE 1:0 is the config drive's.
        self.assertEqual([(IDE, 0, 0), (IDE, 0, 1), (IDE, 1, 1)],
                         _slots(bdi))

    def test_gen1_ide_is_full_after_four_disks(self):
        ephs = [_eph('/dev/sd%s' % c, disk_bus='ide') for c in 'bcd']
        bdi = self._place(GEN1, _bdi(ephs))
        self.assertEqual([(IDE, 0, 0), (IDE, 0, 1), (IDE, 1, 0),
                          (IDE, 1, 1)], _slots(bdi))

        exc = self.assertRaises(exception.InvalidBDMFormat, self._place,
                                GEN1, _bdi(ephs), config_drive=True)
        self.assertIn('ephemeral disk 2 (/dev/sdd)', str(exc))
        self.assertIn('IDE', str(exc))

    def test_gen2_everything_on_scsi(self):
        bdi = self._place(GEN2, _bdi([_eph('/dev/sdb'),
                                      _eph('/dev/sdc', disk_bus='SCSI')]))
        self.assertEqual([(SCSI, 0, 0), (SCSI, 0, 1), (SCSI, 0, 2)],
                         _slots(bdi))

    def test_gen2_has_no_ide(self):
        exc = self.assertRaises(
            exception.InvalidBDMFormat, self._place, GEN2,
            _bdi([_eph('/dev/sdb', disk_bus='ide')]))
        self.assertIn('generation 2', str(exc))
        self.assertIn('scsi', str(exc))

    def test_bus_hyperv_lacks(self):
        exc = self.assertRaises(
            exception.InvalidBDMFormat, self._place, GEN1,
            _bdi([_eph('/dev/vdb', disk_bus='virtio')]))
        self.assertIn('virtio', str(exc))

    def test_gen2_config_drive_needs_a_scsi_slot(self):
        slots = os_win_const.SCSI_CONTROLLER_SLOTS_NUMBER
        fits = [_eph('/dev/e%d' % i) for i in range(slots - 2)]
        self._place(GEN2, _bdi(fits), config_drive=True)

        exc = self.assertRaises(
            exception.InvalidBDMFormat, self._place, GEN2,
            _bdi(fits + [_eph('/dev/last')]), config_drive=True)
        self.assertIn('config drive', str(exc))

    def test_only_disks_can_be_ephemerals(self):
        exc = self.assertRaises(
            exception.InvalidBDMFormat, self._place, GEN1,
            _bdi([_eph('/dev/sdb', device_type='cdrom')]))
        self.assertIn('cdrom', str(exc))

    def test_encrypted_ephemerals_are_refused(self):
        exc = self.assertRaises(
            exception.InvalidBDMFormat, self._place, GEN2,
            _bdi([_eph('/dev/sdb', encrypted=True)]))
        self.assertIn('encryption', str(exc))

    def test_volumes_get_scsi_slots_after_the_local_disks(self):
        volume = {'mount_device': '/dev/sdb', 'boot_index': None,
                  'connection_info': {'serial': 'vol-1'}}
        bdi = self._place(GEN1, _bdi(ephemerals=[_eph('/dev/sdc')],
                                     volumes=[volume]))
        self.assertEqual('VHD', bdi['root_disk']['type'])
        self.assertEqual((SCSI, 0, 1), (volume['disk_bus'],
                                        volume['drive_addr'],
                                        volume['ctrl_disk_addr']))

    def test_root_volume_takes_the_boot_slot_gen1(self):
        volume = {'mount_device': '/dev/sda', 'boot_index': 0,
                  'connection_info': {'serial': 'vol-root'}}
        bdi = self._place(GEN1, _bdi(volumes=[volume]))
        self.assertEqual('VOLUME', bdi['root_disk']['type'])
        self.assertEqual({'serial': 'vol-root'},
                         bdi['root_disk']['connection_info'])
        self.assertEqual((IDE, 0, 0), (volume['disk_bus'],
                                       volume['drive_addr'],
                                       volume['ctrl_disk_addr']))

    def test_root_volume_takes_the_boot_slot_gen2(self):
        volume = {'mount_device': '/dev/sda', 'boot_index': 0,
                  'connection_info': {'serial': 'vol-root'}}
        bdi = self._place(GEN2, _bdi(volumes=[volume]))
        self.assertEqual('VOLUME', bdi['root_disk']['type'])
        self.assertEqual((SCSI, 0, 0), (volume['disk_bus'],
                                        volume['drive_addr'],
                                        volume['ctrl_disk_addr']))

    def test_root_volume_on_a_bus_the_vm_cannot_boot_from(self):
        volume = {'mount_device': '/dev/sda', 'boot_index': 0,
                  'disk_bus': 'scsi', 'connection_info': {'serial': 'v'}}
        exc = self.assertRaises(exception.InvalidBDMFormat, self._place,
                                GEN1, _bdi(volumes=[volume]))
        self.assertIn('boots only from ide', str(exc))

    def test_volume_as_cdrom_is_refused(self):
        volume = {'mount_device': '/dev/sdb', 'device_type': 'cdrom',
                  'connection_info': {'serial': 'v'}}
        self.assertRaises(exception.InvalidBDMFormat, self._place, GEN1,
                          _bdi(volumes=[volume]))

    def test_iso_root_is_a_dvd(self):
        bdi = self._place(GEN1, _bdi(), disk_format='iso')
        self.assertEqual('DVD', bdi['root_disk']['type'])

    def test_image_format_hyperv_cannot_boot(self):
        self.assertRaises(exception.InvalidImageFormat, self._place, GEN1,
                          _bdi(), disk_format='qcow2')

    def test_no_block_device_info_is_a_caller_bug(self):
        self.assertRaises(ValueError, self.manager.validate_and_update_bdi,
                          _instance(), _image(), GEN1, None)

    def test_swap_is_not_made_but_does_not_fail(self):
        bdi = self._place(GEN1, _bdi(swap={'device_name': '/dev/sdz',
                                           'swap_size': 512}))
        self.assertEqual([(IDE, 0, 0)], _slots(bdi))

    def test_boot_from_volume(self):
        volume = {'mount_device': '/dev/vda', 'connection_info': {}}
        self.assertTrue(self.manager.is_boot_from_volume(
            _bdi(volumes=[volume], root_device_name='/dev/vda')))
        self.assertFalse(self.manager.is_boot_from_volume(
            _bdi(volumes=[volume], root_device_name='/dev/sda')))
        self.assertFalse(self.manager.is_boot_from_volume(_bdi()))
        self.assertFalse(self.manager.is_boot_from_volume(None))

    def test_gen1_boots_its_root_kind_first(self):
        disk = self._place(GEN1, _bdi())
        self.assertEqual(os_win_const.BOOT_DEVICE_HARDDISK,
                         self.manager.get_boot_order(GEN1, disk)[0])
        dvd = self._place(GEN1, _bdi(), disk_format='iso')
        self.assertEqual(os_win_const.BOOT_DEVICE_CDROM,
                         self.manager.get_boot_order(GEN1, dvd)[0])

    def test_gen2_boots_the_root_disk_then_indexed_disks(self):
        bdi = self._place(GEN2, _bdi([_eph('/dev/sdb'), _eph('/dev/sdc')]))
        bdi['root_disk']['path'] = r'C:\i\root.vhdx'
        bdi['ephemerals'][0]['path'] = r'C:\i\eph0.vhdx'
        bdi['ephemerals'][1]['path'] = r'C:\i\eph1.vhdx'
        bdi['ephemerals'][1]['boot_index'] = 1
        self.assertEqual(
            [r'C:\i\root.vhdx', r'C:\i\eph1.vhdx', r'C:\i\eph0.vhdx'],
            self.manager.get_boot_order(GEN2, bdi))


class OnTheHostTestCase(test.NoDBTestCase):
    """The placement, attached as vmops attaches it, on a simulated VM."""

    def setUp(self):
        super().setUp()
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = hosts.add_host('hv1')
        with hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()
        self.manager = block_device.BlockDeviceInfoManager()

    def _disk(self, name):
        path = os.path.join(self.instances_path, name + '.vhdx')
        self.vhdutils.create_dynamic_vhd(path, units.Gi)
        return path

    def _attach(self, disk, drive_type=os_win_const.DISK):
        # As vmops._attach_drive: SCSI takes the next free slot, IDE the
        # one asked for.
        if disk['disk_bus'] == SCSI:
            self.vmutils.attach_scsi_drive('instance-1', disk['path'],
                                           drive_type)
        else:
            self.vmutils.attach_ide_drive('instance-1', disk['path'],
                                          disk['drive_addr'],
                                          disk['ctrl_disk_addr'], drive_type)

    def _build(self, vm_gen, bdi, config_drive):
        """Root, ephemerals, then the config drive: vmops' order."""
        self.manager.validate_and_update_bdi(
            _instance(config_drive), _image(), vm_gen, bdi)
        self.vmutils.create_vm('instance-1', False, vm_gen,
                               self.instances_path,
                               [uuidutils.generate_uuid()])
        self.vmutils.create_scsi_controller('instance-1')
        disks = [bdi['root_disk']] + bdi['ephemerals']
        for index, disk in enumerate(disks):
            disk['path'] = self._disk('disk%d' % index)
            self._attach(disk)
        if config_drive:
            iso = os.path.join(self.instances_path, 'configdrive.iso')
            with open(iso, 'wb') as f:
                f.write(b'\0' * 2048)
            ctrl, slot = block_device.GEN1_CONFIG_DRIVE_SLOT
            self._attach({'disk_bus': block_device.BOOT_BUS[vm_gen],
                          'path': iso, 'drive_addr': ctrl,
                          'ctrl_disk_addr': slot}, os_win_const.DVD)
        self.vmutils.set_boot_order(
            'instance-1', self.manager.get_boot_order(vm_gen, bdi))
        return disks

    def assertPlacedAsPredicted(self, disks):
        attached = {d.path: (d.controller, d.controller_addr, d.slot)
                    for d in self.host.vms['instance-1'].disks}
        self.assertEqual(
            {d['path']: (d['disk_bus'], d['drive_addr'], d['ctrl_disk_addr'])
             for d in disks},
            attached)

    def test_gen1_disks_and_config_drive_all_fit(self):
        disks = self._build(GEN1, _bdi([_eph('/dev/sdb', disk_bus='ide'),
                                        _eph('/dev/sdc', disk_bus='ide'),
                                        _eph('/dev/sdd')]),
                            config_drive=True)
        self.assertPlacedAsPredicted(disks)
        (dvd,) = self.host.vms['instance-1'].dvds
        self.assertEqual(('IDE', 1, 0), (dvd.controller, dvd.controller_addr,
                                         dvd.slot))
        self.assertEqual(os_win_const.BOOT_DEVICE_HARDDISK,
                         self.host.vms['instance-1'].boot_order[0])

    def test_gen2_boots_from_its_root_disk(self):
        disks = self._build(GEN2, _bdi([_eph('/dev/sdb'), _eph('/dev/sdc')]),
                            config_drive=True)
        self.assertPlacedAsPredicted(disks)
        self.assertEqual(tuple(d['path'] for d in disks),
                         self.host.vms['instance-1'].boot_order)


class DeviceMetadataTestCase(test.TestCase):
    """Tagged disks are described to the guest at their Hyper-V address."""

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.instance = objects.Instance(
            context=self.context, uuid=uuidutils.generate_uuid(),
            project_id='p', user_id='u', config_drive='',
            launched_at=None, system_metadata={}, image_ref='')
        self.instance.create()
        self.manager = block_device.BlockDeviceInfoManager()

    def _bdm(self, device_name, tag=None, boot_index=None, source='blank'):
        objects.BlockDeviceMapping(
            context=self.context, instance_uuid=self.instance.uuid,
            device_name=device_name, source_type=source,
            destination_type='local', boot_index=boot_index, tag=tag,
            delete_on_termination=True).create()

    def test_tagged_disks_get_their_bus_address(self):
        self._bdm('/dev/sda', tag='os', boot_index=0, source='image')
        self._bdm('/dev/sdb', tag='scratch')
        self._bdm('/dev/sdc')
        bdi = _bdi([_eph('/dev/sdb'), _eph('/dev/sdc')])
        self.manager.validate_and_update_bdi(self.instance, _image(), GEN1,
                                             bdi)

        metadata = self.manager.get_bdm_metadata(self.context,
                                                 self.instance, bdi)

        described = {tuple(m.tags): (type(m.bus).__name__, m.bus.address)
                     for m in metadata}
        self.assertEqual({('os',): ('IDEDeviceBus', '0:0'),
                          ('scratch',): ('SCSIDeviceBus', '0:0:0:0')},
                         described)
