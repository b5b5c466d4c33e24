"""nova's block device mapping, placed on a Hyper-V VM's controllers.

Where each local disk of an instance goes, decided before anything is
created so that a mapping Hyper-V cannot hold is refused up front (nova 28
``nova/virt/hyperv/block_device_manager.py``):

* generation 1 (BIOS) VMs have two IDE controllers of two slots each and
  boot from IDE; generation 2 (UEFI) VMs have no IDE at all and boot from
  SCSI.  vmops gives every VM one SCSI controller (64 slots).
* the root disk takes the first slot of the boot controller: IDE 0:0, or
  SCSI slot 0; the config drive, when there is one, takes IDE 1:0 on
  generation 1 and the next SCSI slot after the other disks on generation
  2 (vmops ``attach_config_drive``).
* ephemeral disks go where their mapping asks (``disk_bus`` ``ide`` or
  ``scsi``, any case), SCSI when it does not say.

``validate_and_update_bdi`` writes the result into the driver's block
device info: ``root_disk`` and each ephemeral get ``disk_bus`` (os-win's
controller type), ``drive_addr`` (the controller's number) and
``ctrl_disk_addr`` (the slot on it), the keys vmops attaches them by.

Cinder volumes get slots the same way (``disk_bus``, ``drive_addr``,
``ctrl_disk_addr`` on each entry of ``block_device_mapping``): a root
volume (booting from a volume) takes the root disk's slot and makes
``root_disk`` a ``VOLUME`` carrying its connection info; the others go on
the bus their mapping asks for, SCSI by default.  In the generation 2 boot
order a volume is named by its disk's resource path, which volumeops
gives (nova 28 ``block_device_manager._get_boot_order_gen2``).
"""

from nova import block_device
from nova import exception
from nova.i18n import _
from nova import objects
from nova.virt import configdrive
from nova.virt import driver
from os_win import constants as os_win_const
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import constants

LOG = logging.getLogger(__name__)

IDE = constants.CTRL_TYPE_IDE
SCSI = constants.CTRL_TYPE_SCSI

# The buses a VM of each generation has, and the one the root disk (and a
# generation 1 config drive) sits on.
BUSES = {constants.VM_GEN_1: (IDE, SCSI), constants.VM_GEN_2: (SCSI,)}
BOOT_BUS = {constants.VM_GEN_1: IDE, constants.VM_GEN_2: SCSI}
# Ephemerals whose mapping names no bus.
DEFAULT_BUS = SCSI

# nova's name for the root device when the request gives none.
DEFAULT_ROOT_DEVICE_NAME = '/dev/sda'

_IDE_CONTROLLERS = 2
_SCSI_CONTROLLERS = 1
_SLOTS_PER_CONTROLLER = {IDE: os_win_const.IDE_CONTROLLER_SLOTS_NUMBER,
                         SCSI: os_win_const.SCSI_CONTROLLER_SLOTS_NUMBER}
# Where vmops attaches a generation 1 config drive (controller, slot).
GEN1_CONFIG_DRIVE_SLOT = (1, 0)

# The drive type of an image-backed root disk, by glance disk_format.
_ROOT_DRIVE_TYPE = {constants.DISK_FORMAT_VHD.lower(): constants.DISK,
                    constants.DISK_FORMAT_VHDX.lower(): constants.DISK,
                    constants.CONFIG_DRIVE_DVD_FORMAT.lower(): constants.DVD}

# The only device type Hyper-V attaches for an ephemeral disk.
_DISK_DEVICE_TYPE = 'disk'

# Generation 1 BIOS boot orders (os-win BOOT_DEVICE_*): the root disk's
# kind first, then the rest in Hyper-V's default order.
_GEN1_BOOT_ORDER = {
    constants.DISK: [os_win_const.BOOT_DEVICE_HARDDISK,
                     os_win_const.BOOT_DEVICE_CDROM,
                     os_win_const.BOOT_DEVICE_NETWORK,
                     os_win_const.BOOT_DEVICE_FLOPPY],
    constants.DVD: [os_win_const.BOOT_DEVICE_CDROM,
                    os_win_const.BOOT_DEVICE_HARDDISK,
                    os_win_const.BOOT_DEVICE_NETWORK,
                    os_win_const.BOOT_DEVICE_FLOPPY],
}


def _bus_of(requested, vm_gen, what):
    """os-win's controller type for a mapping's ``disk_bus``.

    nova's buses are lower case (``objects.fields.DiskBus``); nova 28
    compared them with os-win's upper case names, so ``disk_bus=scsi``
    was refused.

    :raises nova.exception.InvalidBDMFormat: a bus this generation lacks.
    """
    if not requested:
        return DEFAULT_BUS
    bus = requested.upper()
    if bus not in BUSES[vm_gen]:
        raise exception.InvalidBDMFormat(details=_(
            '%(what)s asks for disk_bus %(bus)s, but a generation '
            '%(gen)d Hyper-V VM has only %(buses)s; use one of those') % {
                'what': what, 'bus': requested, 'gen': vm_gen,
                'buses': ', '.join(b.lower() for b in BUSES[vm_gen])})
    return bus


class _FreeSlots(object):
    """The free (controller, slot) pairs of one VM, handed out in order."""

    def __init__(self, vm_gen):
        self._vm_gen = vm_gen
        counts = {IDE: _IDE_CONTROLLERS if IDE in BUSES[vm_gen] else 0,
                  SCSI: _SCSI_CONTROLLERS}
        self._free = {
            bus: [(ctrl, slot) for ctrl in range(count)
                  for slot in range(_SLOTS_PER_CONTROLLER[bus])]
            for bus, count in counts.items()}

    def reserve(self, bus, address):
        self._free[bus].remove(address)

    def take(self, bus, what):
        """The next free slot on ``bus``: (controller, slot).

        :raises nova.exception.InvalidBDMFormat: none is left.
        """
        if not self._free[bus]:
            raise exception.InvalidBDMFormat(details=_(
                'no free %(bus)s slot is left for %(what)s on a generation '
                '%(gen)d Hyper-V VM; ask for fewer ephemeral disks or put '
                'them on another bus') % {
                    'bus': bus, 'what': what, 'gen': self._vm_gen})
        return self._free[bus].pop(0)


class BlockDeviceInfoManager(object):
    """Controller slots and boot order of a VM's local disks."""

    def is_boot_from_volume(self, block_device_info):
        """Whether the root device is a volume of the mapping (bool)."""
        if not block_device_info:
            return False
        root_name = (driver.block_device_info_get_root_device(
            block_device_info) or DEFAULT_ROOT_DEVICE_NAME)
        return bool(block_device.volume_in_mapping(root_name,
                                                   block_device_info))

    def validate_and_update_bdi(self, instance, image_meta, vm_gen,
                                block_device_info):
        """Check the mapping and write each disk's controller slot into it.

        Adds ``block_device_info['root_disk']`` = ``{'type': DISK|DVD,
        'path': None, 'connection_info': None, 'disk_bus', 'drive_addr',
        'ctrl_disk_addr', 'boot_index': 0, 'mount_device'}`` and sets
        ``disk_bus``, ``device_type``, ``drive_addr``, ``ctrl_disk_addr``
        and ``boot_index`` on each of ``block_device_info['ephemerals']``
        (a list, made if missing), and ``disk_bus``, ``drive_addr`` and
        ``ctrl_disk_addr`` on each volume of ``block_device_mapping``.
        With a root volume, ``root_disk`` is ``{'type': VOLUME,
        'connection_info': ...}``.  vmops fills in the paths.

        :param vm_gen: 1 or 2 (``constants.VM_GEN_*``).
        :param block_device_info: the driver's block device info (dict);
            changed in place.
        :raises nova.exception.InvalidBDMFormat: a bus the generation lacks,
            a device type other than disk, an encrypted ephemeral, or more
            disks than free slots.
        :raises nova.exception.InvalidImageFormat: the image's disk format
            is neither VHD, VHDX nor ISO.
        """
        if block_device_info is None:
            raise ValueError('validate_and_update_bdi needs the driver\'s '
                             'block device info dict (nova passes one to '
                             'spawn); got None')
        self._warn_of_swap(instance, block_device_info)
        slots = _FreeSlots(vm_gen)
        needs_config_drive = configdrive.required_by(instance)
        if needs_config_drive and vm_gen == constants.VM_GEN_1:
            slots.reserve(IDE, GEN1_CONFIG_DRIVE_SLOT)
        root_volume = self._root_volume(block_device_info)
        if root_volume is not None:
            block_device_info['root_disk'] = self._volume_root_disk(
                root_volume, vm_gen, block_device_info, slots)
        else:
            block_device_info['root_disk'] = self._root_disk(
                image_meta, vm_gen, block_device_info, slots)
        ephemerals = block_device_info.setdefault('ephemerals', [])
        for index, eph in enumerate(ephemerals):
            self._place_ephemeral(eph, index, vm_gen, slots)
        for vol in driver.block_device_info_get_mapping(block_device_info):
            if vol is not root_volume:
                self._place_volume(vol, vm_gen, slots)
        if needs_config_drive and vm_gen == constants.VM_GEN_2:
            # Attached after the other disks: one SCSI slot must be left.
            slots.take(SCSI, _('the config drive'))

    @staticmethod
    def _root_volume(block_device_info):
        """The mapping's volume that is the root device, or None."""
        root_name = (driver.block_device_info_get_root_device(
            block_device_info) or DEFAULT_ROOT_DEVICE_NAME)
        for vol in driver.block_device_info_get_mapping(block_device_info):
            if vol.get('boot_index') == 0 or (
                    vol.get('mount_device') == root_name):
                return vol
        return None

    @staticmethod
    def _volume_root_disk(vol, vm_gen, block_device_info, slots):
        bus = BOOT_BUS[vm_gen]
        requested = vol.get('disk_bus')
        if requested and requested.upper() != bus:
            raise exception.InvalidBDMFormat(details=_(
                'the root volume asks for disk_bus %(asked)s, but a '
                'generation %(gen)d Hyper-V VM boots only from %(bus)s') % {
                    'asked': requested, 'gen': vm_gen, 'bus': bus.lower()})
        controller, slot = slots.take(bus, _('the root volume'))
        vol['disk_bus'], vol['drive_addr'], vol['ctrl_disk_addr'] = (
            bus, controller, slot)
        return {
            'type': constants.VOLUME,
            'path': None,
            'connection_info': vol['connection_info'],
            'disk_bus': bus,
            'drive_addr': controller,
            'ctrl_disk_addr': slot,
            'boot_index': 0,
            'mount_device': vol.get('mount_device') or (
                driver.block_device_info_get_root_device(block_device_info)
                or DEFAULT_ROOT_DEVICE_NAME),
        }

    @staticmethod
    def _place_volume(vol, vm_gen, slots):
        what = _('volume %s') % (vol.get('connection_info') or {}).get(
            'serial', vol.get('mount_device'))
        if vol.get('device_type') not in (None, _DISK_DEVICE_TYPE):
            raise exception.InvalidBDMFormat(details=_(
                '%(what)s asks for device_type %(type)s; Hyper-V attaches '
                'volumes only as disks') % {'what': what,
                                            'type': vol['device_type']})
        bus = _bus_of(vol.get('disk_bus'), vm_gen, what)
        vol['disk_bus'] = bus
        vol['drive_addr'], vol['ctrl_disk_addr'] = slots.take(bus, what)

    @staticmethod
    def _warn_of_swap(instance, block_device_info):
        swap = driver.block_device_info_get_swap(block_device_info)
        if driver.swap_is_usable(swap):
            # nova 28's Hyper-V driver made no swap disk either; refusing
            # would break flavors that ran on it.
            LOG.warning('The flavor asks for a %d MiB swap disk; Hyper-V '
                        'VMs get no swap disk from this driver',
                        swap['swap_size'], instance=instance)

    def _root_disk(self, image_meta, vm_gen, block_device_info, slots):
        disk_format = (image_meta.disk_format
                       if image_meta.obj_attr_is_set('disk_format') else None)
        drive_type = _ROOT_DRIVE_TYPE.get(disk_format)
        if drive_type is None:
            raise exception.InvalidImageFormat(format=disk_format)
        bus = BOOT_BUS[vm_gen]
        controller, slot = slots.take(bus, _('the root disk'))
        return {
            'type': drive_type,
            'path': None,
            'connection_info': None,
            'disk_bus': bus,
            'drive_addr': controller,
            'ctrl_disk_addr': slot,
            'boot_index': 0,
            'mount_device': (driver.block_device_info_get_root_device(
                block_device_info) or DEFAULT_ROOT_DEVICE_NAME),
        }

    @staticmethod
    def _place_ephemeral(eph, index, vm_gen, slots):
        what = _('ephemeral disk %(index)d (%(name)s)') % {
            'index': index, 'name': eph.get('device_name') or _('unnamed')}
        if eph.get('encrypted'):
            raise exception.InvalidBDMFormat(details=_(
                '%s asks for encryption, which this Hyper-V driver does not '
                'offer') % what)
        device_type = eph.get('device_type') or _DISK_DEVICE_TYPE
        if device_type != _DISK_DEVICE_TYPE:
            raise exception.InvalidBDMFormat(details=_(
                '%(what)s asks for device_type %(type)s; Hyper-V ephemeral '
                'disks can only be of type disk') % {
                    'what': what, 'type': device_type})
        bus = _bus_of(eph.get('disk_bus'), vm_gen, what)
        eph['disk_bus'] = bus
        eph['device_type'] = device_type
        eph['drive_addr'], eph['ctrl_disk_addr'] = slots.take(bus, what)
        eph['boot_index'] = eph.get('boot_index')

    # -- boot order -------------------------------------------------------

    def get_boot_order(self, vm_gen, block_device_info):
        """The VM's boot order, as os-win's ``set_boot_order`` takes it.

        Generation 1: the BIOS's device classes (os-win BOOT_DEVICE_*), the
        root disk's kind first (nova 28 compared the root's type with
        ``'iso'``, which it never was, so an ISO root booted the hard disk
        first).  Generation 2: the disks' paths by ``boot_index``, the root
        disk first and disks without an index last.

        :param block_device_info: as :meth:`validate_and_update_bdi` left
            it, with the paths vmops filled in.
        :returns: list.
        """
        root = block_device_info['root_disk']
        if vm_gen == constants.VM_GEN_1:
            return list(_GEN1_BOOT_ORDER[
                constants.DISK if root['type'] == constants.VOLUME
                else root['type']])
        disks = [root] + list(driver.block_device_info_get_ephemerals(
            block_device_info))
        disks.sort(key=lambda disk: (disk.get('boot_index') is None,
                                     disk.get('boot_index') or 0))
        return [self._boot_device_path(disk) for disk in disks
                if self._boot_device_path(disk)]

    @staticmethod
    def _boot_device_path(disk):
        """The path Hyper-V boots a disk by (a volume's: its resource)."""
        return disk.get('path')

    # -- device metadata --------------------------------------------------

    @staticmethod
    def _device_bus(disk):
        """The guest's view of a disk's address (nova device metadata).

        SCSI ``0:0:<controller>:<slot>`` and IDE ``<controller>:<slot>``,
        as nova 28 ``_get_device_bus`` reported them.
        """
        if disk['disk_bus'] == SCSI:
            return objects.SCSIDeviceBus(address='0:0:%d:%d' % (
                disk['drive_addr'], disk['ctrl_disk_addr']))
        return objects.IDEDeviceBus(address='%d:%d' % (
            disk['drive_addr'], disk['ctrl_disk_addr']))

    def get_bdm_metadata(self, context, instance, block_device_info):
        """Device metadata of the tagged disks, for the guest's metadata.

        The tags are in nova's BlockDeviceMapping records, not in the
        driver's block device info; they are matched by device name.

        :param block_device_info: as :meth:`validate_and_update_bdi` left
            it.
        :returns: list of ``nova.objects.DiskMetadata``.
        """
        tags = {bdm.device_name: bdm.tag
                for bdm in objects.BlockDeviceMappingList.get_by_instance_uuid(
                    context, instance.uuid)
                if bdm.device_name and 'tag' in bdm and bdm.tag}
        disks = [block_device_info['root_disk']] + list(
            driver.block_device_info_get_ephemerals(block_device_info))
        root = block_device_info['root_disk']
        disks += [vol for vol in driver.block_device_info_get_mapping(
            block_device_info)
            if vol.get('disk_bus') and vol.get('mount_device') != (
                root.get('mount_device') if root['type'] == constants.VOLUME
                else None)]
        metadata = []
        for disk in disks:
            name = disk.get('mount_device') or disk.get('device_name')
            if name in tags:
                metadata.append(objects.DiskMetadata(
                    bus=self._device_bus(disk), tags=[tags[name]]))
        return metadata
