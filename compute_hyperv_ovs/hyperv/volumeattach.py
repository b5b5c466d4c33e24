"""A volume attached to or detached from an existing VM, running or off.

What nova's ``attach_volume`` / ``detach_volume`` ask of the driver: the
volume goes to the next free slot of the VM's SCSI controller (Hyper-V
adds and removes SCSI disks while a VM runs; IDE disks only while it is
off, so IDE is used only when the mapping asks for it), and the guest's
device metadata gains or loses the volume's disk (nova 34's libvirt
driver rebuilds ``instance.device_metadata`` on both).
"""

from nova import exception
from nova import objects
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import constants

LOG = logging.getLogger(__name__)


class VolumeAttachOps(object):
    """Hot attach and detach of volumes, with their device metadata."""

    def __init__(self, volume_ops):
        self._volumeops = volume_ops

    def attach(self, context, connection_info, instance, mountpoint,
               disk_bus=None, device_type=None):
        """Attach a volume to the instance's VM.

        :raises nova.exception.VolumeAttachFailed: nothing is left
            connected or attached.
        """
        volume_id = connection_info['serial']
        bus = (constants.CTRL_TYPE_IDE if (disk_bus or '').lower() == 'ide'
               else constants.CTRL_TYPE_SCSI)
        ctrl_path, slot = self._volumeops.choose_slot(instance.name, bus,
                                                      volume_id)
        self._volumeops.attach_volume(connection_info, instance.name, bus,
                                      slot=slot, ctrl_addr=0)
        self._add_metadata(context, instance, volume_id, bus, slot)

    def detach(self, context, connection_info, instance):
        """Detach the volume from the VM and disconnect it from the host."""
        self._volumeops.detach_volume(connection_info, instance.name)
        self._remove_metadata(instance, connection_info['serial'])

    @staticmethod
    def _add_metadata(context, instance, volume_id, bus, slot):
        try:
            bdm = objects.BlockDeviceMapping.get_by_volume_and_instance(
                context, volume_id, instance.uuid)
        except exception.VolumeBDMNotFound:
            LOG.debug('No block device mapping for volume %s', volume_id,
                      instance=instance)
            return
        if not ('tag' in bdm and bdm.tag):
            return
        if bus == constants.CTRL_TYPE_SCSI:
            address = objects.SCSIDeviceBus(address='0:0:0:%d' % slot)
        else:
            address = objects.IDEDeviceBus(address='0:%d' % slot)
        disk = objects.DiskMetadata(bus=address, serial=volume_id,
                                    tags=[bdm.tag])
        devices = list(instance.device_metadata.devices
                       if instance.device_metadata else [])
        devices.append(disk)
        instance.device_metadata = objects.InstanceDeviceMetadata(
            devices=devices)
        instance.save()

    @staticmethod
    def _remove_metadata(instance, volume_id):
        if not instance.device_metadata:
            return
        devices = instance.device_metadata.devices
        kept = [d for d in devices
                if not (isinstance(d, objects.DiskMetadata) and
                        'serial' in d and d.serial == volume_id)]
        if len(kept) != len(devices):
            instance.device_metadata = objects.InstanceDeviceMetadata(
                devices=kept)
            instance.save()
