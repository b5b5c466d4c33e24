"""VM operations of the base driver, with OVS VIFs and checked images."""

import nova.conf
from nova import exception as nova_exception
from nova.virt import configdrive
from nova.virt.hyperv import constants
from nova.virt.hyperv import vmops

from compute_hyperv_ovs import exception
from compute_hyperv_ovs import imagecache
from compute_hyperv_ovs import vif

CONF = nova.conf.CONF

HYPERV_DISK_FORMATS = (constants.DISK_FORMAT_VHD.lower(),
                       constants.DISK_FORMAT_VHDX.lower())


class VMOps(vmops.VMOps):
    """nova 28's ``VMOps`` with this driver's VIF driver and image cache.

    :param virtapi: nova's ``ComputeVirtAPI``, for network-vif-plugged
        waits.
    :param vif_plugin: the driver's ``HyperVOvsPlugin``.
    """

    def __init__(self, virtapi, vif_plugin):
        super().__init__(virtapi)
        self._vif_driver = vif.HyperVOVSVIFDriver(vif_plugin)
        self._imagecache = imagecache.ImageCache()

    def check_image(self, instance, image_meta, block_device_info):
        """Refuse, before anything is created, an image Hyper-V cannot boot.

        Only the declared metadata is checked here; the image file itself
        is checked once fetched (``imagecache.ImageCache``).

        :raises compute_hyperv_ovs.exception.ImageNotVHD: disk_format is
            not vhd or vhdx.
        :raises compute_hyperv_ovs.exception.Generation2NeedsVHDX: a
            generation 2 image whose disk_format is vhd.
        """
        if self._block_dev_man.is_boot_from_volume(block_device_info):
            return
        disk_format = image_meta.disk_format
        if disk_format not in HYPERV_DISK_FORMATS:
            raise exception.ImageNotVHD(
                image_id=image_meta.id,
                reason='its disk_format is %s' % disk_format)
        vm_gen = self.get_image_vm_generation(instance.uuid, image_meta)
        if (vm_gen == constants.VM_GEN_2 and
                disk_format == constants.DISK_FORMAT_VHD.lower()):
            raise exception.Generation2NeedsVHDX(image_id=image_meta.id)

    @staticmethod
    def check_config_drive(instance):
        """Refuse a config drive format the driver cannot build.

        nova 28's ``_create_config_drive`` raises the same refusal only after
        the VM exists, as an error the compute manager reschedules.

        :raises compute_hyperv_ovs.exception.ConfigDriveFormatUnsupported:
            the instance needs a config drive and ``[DEFAULT]
            config_drive_format`` is not iso9660.
        """
        if (configdrive.required_by(instance) and
                CONF.config_drive_format != 'iso9660'):
            raise exception.ConfigDriveFormatUnsupported(
                format=CONF.config_drive_format)

    def _create_root_device(self, context, instance, root_disk_info, vm_gen):
        try:
            super()._create_root_device(context, instance, root_disk_info,
                                        vm_gen)
        except nova_exception.FlavorDiskSmallerThanImage as exc:
            raise exception.RootDiskTooSmall(**exc.kwargs) from exc
        except nova_exception.InstanceUnacceptable as exc:
            # The base check_vm_image_type() raises this for a generation 2
            # VM on a VHD root, which the compute manager would reschedule;
            # every host would refuse it the same way.
            raise exception.Generation2NeedsVHDX(
                image_id=instance.image_ref) from exc

    @property
    def vif_driver(self):
        """This VMOps' VIF driver (the driver's port sync uses it too)."""
        return self._vif_driver

    def pre_plug_vifs(self, instance, network_info):
        """Register the OVS ports of VIFs whose vNICs are not here yet.

        For a live migration's destination, before the VM arrives (see
        ``HyperVOVSVIFDriver.pre_plug``).

        :param network_info: ``nova.network.model.NetworkInfo`` as bound on
            this host.
        :raises nova.exception.VirtualInterfacePlugException: OVSDB
            unreachable.
        """
        for nw_vif in network_info or ():
            self._vif_driver.pre_plug(instance, nw_vif)
