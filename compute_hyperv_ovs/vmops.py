"""VM operations of the base driver, with OVS VIFs and checked images.

Spawn order.  nova 28's Hyper-V spawn plugs the VIFs, waits for
``network-vif-plugged`` and only then powers the VM on.  On OVS for Windows
the port of a VM that is not running has ``ofport -1`` (its Hyper-V switch
port exists only while the VM runs: neutron 451c2157, LP #1843870), and
neutron-openvswitch-agent >= 28.0.1 does not bind such a port (bug
#2155883), so that wait can only time out.  Here the order depends on what
the plug saw: every OVS port up (valid ofport) -> nova's order; otherwise
the VM is started first, then the driver waits for its ports to come up
(bounded by ``[os_vif_hyperv_ovs] timeout``; a port that does not is a
failed build whose fault says what OVS reports) and then for the events.
Either way a timeout with ``vif_plugging_is_fatal`` removes the VM and its
ports, as any failed build.

Ports after a start.  OVS for Windows re-attaches, when a VM starts, only a
datapath port that existed before (``HvCreatePort``, OVS 25f44d58); an
interface it failed to add while the switch port was missing is retried
only at ovs-vswitchd's next reconfiguration, i.e. the next OVSDB change
(openvswitch/ovs-issues #343).  So whenever a VM has just started (spawn,
power-on, soft reboot, cold migration and its revert, resume, the end of a
live migration) a port that is not up is plugged again, which makes that
change (the rows are replaced: an unchanged plug changes nothing), and
the driver waits for it to come up.  Outside spawn a port that
still does not come up is logged as an error, with what OVS reports.
"""

import nova.conf
from nova import exception as nova_exception
from nova.virt import configdrive
from nova.virt.hyperv import constants
from nova.virt.hyperv import vmops
from oslo_log import log as logging
from oslo_utils import excutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs import imagecache
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vif

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

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

    @vmops.check_admin_permissions
    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, network_info, block_device_info=None):
        """Create the VM, plug its VIFs and start it without deadlocking.

        The steps and their clean-up are nova 28's (``vmops.spawn``); the
        vSwitch is checked before anything is created, and the VM is
        started before the wait for ``network-vif-plugged`` when a plugged
        OVS port is not up (see the module docstring).

        :raises compute_hyperv_ovs.exception.VswitchNotFound (and the other
            vSwitch refusals of ``HyperVOVSVIFDriver.check_vswitch``).
        :raises nova.exception.VirtualInterfacePlugException: a plug failed,
            or a port did not come up once the VM ran (the message says
            what OVS reports).
        :raises nova.exception.VirtualInterfaceCreateException: no
            network-vif-plugged in time with ``vif_plugging_is_fatal``.
        """
        self._vif_driver.check_vswitch(network_info)
        LOG.info("Spawning new instance", instance=instance)
        if self._vmutils.vm_exists(instance.name):
            raise nova_exception.InstanceExists(name=instance.name)
        # Leftovers of an earlier attempt would be attached to the new VM.
        self._delete_disk_files(instance.name)
        vm_gen = self.get_image_vm_generation(instance.uuid, image_meta)
        self._block_dev_man.validate_and_update_bdi(
            instance, image_meta, vm_gen, block_device_info)
        root_device = block_device_info['root_disk']
        self._create_root_device(context, instance, root_device, vm_gen)
        self._create_ephemerals(instance, block_device_info['ephemerals'])

        try:
            # Events are registered before the plug, so none is missed.
            with self.wait_vif_plug_events(instance, network_info):
                self.create_instance(instance, network_info, root_device,
                                     block_device_info, vm_gen, image_meta)
                self.plug_vifs(instance, network_info)
                self._save_device_metadata(context, instance,
                                           block_device_info)
                self._attach_config_drive_if_required(
                    context, instance, injected_files, admin_password,
                    network_info, vm_gen)
                self.set_boot_order(instance.name, vm_gen,
                                    block_device_info)
                started = self._start_if_ports_down(instance, network_info)
            if not started:
                # The VIFs were plugged above: do not plug them again.
                self.power_on(instance, network_info=network_info,
                              should_plug_vifs=False)
        except Exception:
            with excutils.save_and_reraise_exception():
                self.destroy(instance, network_info, block_device_info)

    def _attach_config_drive_if_required(self, context, instance,
                                         injected_files, admin_password,
                                         network_info, vm_gen):
        if configdrive.required_by(instance):
            path = self._create_config_drive(context, instance,
                                             injected_files, admin_password,
                                             network_info)
            self.attach_config_drive(instance, path, vm_gen)

    def _start_if_ports_down(self, instance, network_info):
        """Start the VM now if a plugged OVS port is not up yet.

        :returns: True when the VM was started (and its ports came up).
        :raises nova.exception.VirtualInterfacePlugException: a port did
            not come up within ``[os_vif_hyperv_ovs] timeout`` after the
            VM started.
        """
        down = []
        for vif_ in network_info or ():
            status = self._vif_driver.port_status(instance, vif_)
            if status is not None and not status.is_up:
                down.append(vif_)
        if not down:
            return False
        LOG.debug('OVS port(s) %s not up while the VM is off (the Hyper-V '
                  'switch port exists only while it runs): starting it '
                  'before waiting for network-vif-plugged',
                  ', '.join(v['id'] for v in down), instance=instance)
        super().power_on(instance, network_info=network_info,
                         should_plug_vifs=False)
        self._bring_ports_up(instance, down,
                             fatal=CONF.vif_plugging_is_fatal)
        return True

    def _bring_ports_up(self, instance, network_info, fatal):
        """Make sure each OVS port of a VM that just started comes up.

        A port not up yet is added again (the OVSDB change on which OVS
        for Windows retries it, see the module docstring), then waited for
        up to ``[os_vif_hyperv_ovs] timeout`` seconds.

        :param fatal: raise when a port does not come up (or OVSDB does
            not answer); otherwise log it and go on.
        :raises nova.exception.VirtualInterfacePlugException: only when
            ``fatal``.
        """
        timeout = CONF[plugin.CONFIG_GROUP].timeout
        for vif_ in network_info or ():
            try:
                status = self._vif_driver.port_status(instance, vif_)
                if status is None or status.is_up:
                    continue
                self._vif_driver.replug(instance, vif_)
                self._vif_driver.wait_for_port_up(instance, vif_, timeout)
            except nova_exception.VirtualInterfacePlugException as exc:
                if fatal:
                    raise
                LOG.error('Port %(port)s of the running VM is not wired: '
                          '%(err)s', {'port': vif_['id'], 'err': exc},
                          instance=instance)

    def ensure_ports_up(self, instance, network_info):
        """After a VM started outside spawn: its OVS ports come up.

        Nothing nova 28 does here waits for network-vif-plugged, so a port
        that does not come up is logged (with its ofport and
        ``Interface.error``), not raised.
        """
        self._bring_ports_up(instance, network_info, fatal=False)

    def power_on(self, instance, block_device_info=None, network_info=None,
                 should_plug_vifs=True):
        """nova 28's power-on, then the VM's OVS ports are brought up.

        Used by power-on, soft reboot, cold migration and its revert, and
        the host-boot resume (see the module docstring).
        """
        super().power_on(instance, block_device_info, network_info,
                         should_plug_vifs)
        self.ensure_ports_up(instance, network_info)
