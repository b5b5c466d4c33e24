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

NIC hot-plug (``server add port`` / ``remove port``).  Hyper-V adds or
removes a NIC of a running VM only when the VM is generation 2 and the
host runs Windows Server 2016 (10.0) or later; an Off VM of either
generation takes the change (Microsoft, "Hot add and remove network
adapters and memory in Hyper-V").  Anything else is refused before
anything changes, with a message that says why.  nova 28's compute
manager does not wait for ``network-vif-plugged`` on an attach, so the
attach to a running VM waits here, as spawn does, after the port came up
(the running VM's switch port exists at once, so its OVS port gets an
ofport); a stopped VM's port comes up at its next start.  A failed attach
removes the vNIC and the OVS port again.
"""

import contextlib

import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from nova.virt import configdrive
from nova.virt.hyperv import constants
from nova.virt.hyperv import vmops
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from oslo_log import log as logging
from oslo_utils import excutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs import imagecache
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vif

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Hyper-V's EnabledState values, for messages.
HYPERV_STATE_NAMES = {
    os_win_const.HYPERV_VM_STATE_PAUSED: 'paused',
    os_win_const.HYPERV_VM_STATE_SUSPENDED: 'saved',
}

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

    # ---- NIC hot-plug ----

    _HOTPLUG_VERBS = {'add': _('cannot add a NIC to'),
                      'remove': _('cannot remove a NIC from')}

    def _check_nic_hotplug(self, instance, vif, operation):
        """Refuse a NIC change Hyper-V would refuse; say why.

        :param operation: ``'add'`` or ``'remove'``.
        :returns: True when the VM runs (a hot-plug), False when it is off.
        :raises compute_hyperv_ovs.exception.NICHotplugRefused: the VM
            runs and is generation 1, or the host is older than Windows
            Server 2016, or the VM is neither running nor off (paused,
            saved).
        :raises os_win.exceptions.HyperVVMNotFoundException: no such VM.
        """
        cannot = self._HOTPLUG_VERBS[operation]
        state = self._get_vm_state(instance.name)
        if state == os_win_const.HYPERV_VM_STATE_DISABLED:
            return False
        if state != os_win_const.HYPERV_VM_STATE_ENABLED:
            reason = _('%(cannot)s VM %(vm)s while it is %(state)s: '
                       'Hyper-V changes NICs only of a running or an off '
                       'VM') % {'cannot': cannot, 'vm': instance.name,
                                'state': HYPERV_STATE_NAMES.get(state,
                                                                state)}
        elif not self._hostutils.check_min_windows_version(10, 0):
            reason = _('%(cannot)s running VM %(vm)s: Hyper-V hot-plugs '
                       'NICs from Windows Server 2016 (10.0) on, this host '
                       'runs Windows %(version)s') % {
                           'cannot': cannot, 'vm': instance.name,
                           'version': self._hostutils.get_windows_version()}
        elif (self._vmutils.get_vm_generation(instance.name) ==
                constants.VM_GEN_1):
            reason = _('%(cannot)s generation 1 VM %(vm)s while it runs: '
                       'Hyper-V hot-plugs NICs of generation 2 VMs '
                       'only') % {'cannot': cannot, 'vm': instance.name}
        else:
            return True
        LOG.error('Refusing to %(operation)s NIC %(port)s: %(reason)s',
                  {'operation': operation, 'port': vif['id'],
                   'reason': reason}, instance=instance)
        raise exception.NICHotplugRefused(port=vif['id'], reason=reason,
                                          operation=operation)

    def attach_interface(self, instance, vif):
        """Add a vNIC for ``vif``, register its OVS port, wait for neutron.

        On a running VM (generation 2, Windows Server 2016+) the VM's OVS
        port must come up (``[os_vif_hyperv_ovs] timeout``) and, as in
        spawn, ``network-vif-plugged`` must come within
        ``vif_plugging_timeout`` when ``vif_plugging_is_fatal``.  On an
        off VM the port is registered and comes up at the next start.
        Whatever fails, the vNIC and the OVS port are removed again; nova's
        compute manager then unbinds the port.

        :param vif: ``nova.network.model.VIF`` bound to this host.
        :raises compute_hyperv_ovs.exception.NICHotplugRefused: Hyper-V
            cannot add a NIC to this VM now (nothing changed).
        :raises compute_hyperv_ovs.exception.VswitchNotFound (and the
            other refusals of ``HyperVOVSVIFDriver.check_vswitch``).
        :raises compute_hyperv_ovs.exception.NICHotplugFailed: Hyper-V
            refused the vNIC.
        :raises nova.exception.VirtualInterfacePlugException: the OVS port
            could not be written or did not come up.
        :raises nova.exception.InstanceNotFound: the VM does not exist.
        :raises compute_hyperv_ovs.exception.AttachNoVifPlugged: no
            network-vif-plugged in time.
        """
        try:
            running = self._check_nic_hotplug(instance, vif, 'add')
        except os_win_exc.HyperVVMNotFoundException as exc:
            raise nova_exception.InstanceNotFound(
                instance_id=instance.uuid) from exc
        self._vif_driver.check_vswitch([vif])
        LOG.debug('Attaching vif %(port)s to the %(state)s VM',
                  {'port': vif['id'],
                   'state': 'running' if running else 'stopped'},
                  instance=instance)
        created = []
        try:
            if running:
                with self._wait_attach_event(instance, vif):
                    self._add_vnic(instance, vif, created)
                    self._wait_attached_port_up(instance, vif)
            else:
                self._add_vnic(instance, vif, created)
        except Exception:
            with excutils.save_and_reraise_exception():
                if created:
                    self._remove_attached(instance, vif)

    def _add_vnic(self, instance, vif, created):
        try:
            self._vmutils.create_nic(instance.name, vif['id'],
                                     vif['address'])
        except os_win_exc.HyperVException as exc:
            raise exception.NICHotplugFailed(
                port=vif['id'], operation='add', instance=instance.name,
                reason=exc) from exc
        created.append(vif['id'])
        self._vif_driver.plug(instance, vif)

    def _wait_attached_port_up(self, instance, vif):
        """Wait for a running VM's new OVS port to come up.

        The vNIC was connected before the OVS port was added, and a running
        VM's switch port exists at once, so ovs-vswitchd adds the interface
        in the plug's own reconfiguration: no replug first (replacing a
        port that is coming up only tears it down again).  A port still not
        up after ``[os_vif_hyperv_ovs] timeout`` is added again once (the
        OVSDB change on which OVS for Windows retries it) and waited for
        as long again.

        :raises nova.exception.VirtualInterfacePlugException: still not up
            (the message gives its ofport and ``Interface.error``), or
            OVSDB did not answer.
        """
        timeout = CONF[plugin.CONFIG_GROUP].timeout
        try:
            self._vif_driver.wait_for_port_up(instance, vif, timeout)
        except nova_exception.VirtualInterfacePlugException:
            LOG.warning('Adding OVS port %s again so that ovs-vswitchd '
                        'retries it', vif['id'], instance=instance)
            self._vif_driver.replug(instance, vif)
            self._vif_driver.wait_for_port_up(instance, vif, timeout)

    @contextlib.contextmanager
    def _wait_attach_event(self, instance, vif):
        """nova's spawn wait for network-vif-plugged, for one port."""
        try:
            with self.wait_vif_plug_events(instance, [vif]):
                yield
        except nova_exception.VirtualInterfaceCreateException as exc:
            raise exception.AttachNoVifPlugged(
                port=vif['id'], timeout=CONF.vif_plugging_timeout) from exc

    def _remove_attached(self, instance, vif):
        """Undo a failed attach (OVS port, then vNIC); never raises."""
        self._vif_driver.unplug(instance, vif)
        try:
            self._vmutils.destroy_nic(instance.name, vif['id'])
        except Exception:
            LOG.exception('Could not remove vNIC %(port)s after the failed '
                          'attach; remove it with Remove-VMNetworkAdapter',
                          {'port': vif['id']}, instance=instance)

    def detach_interface(self, instance, vif):
        """Remove the vNIC of ``vif`` and then its OVS port.

        The vNIC goes first: when Hyper-V refuses, nothing has changed.

        :raises compute_hyperv_ovs.exception.NICHotplugRefused: Hyper-V
            cannot remove a NIC from this VM now (nothing changed).
        :raises compute_hyperv_ovs.exception.NICHotplugFailed: Hyper-V
            refused to remove the vNIC.
        :raises nova.exception.InterfaceDetachFailed: the VM does not
            exist (as in nova 28).
        """
        try:
            self._check_nic_hotplug(instance, vif, 'remove')
            LOG.debug('Detaching vif %s', vif['id'], instance=instance)
            try:
                self._vmutils.destroy_nic(instance.name, vif['id'])
            except os_win_exc.HyperVVMNotFoundException:
                raise
            except os_win_exc.HyperVException as exc:
                raise exception.NICHotplugFailed(
                    port=vif['id'], operation='remove',
                    instance=instance.name, reason=exc) from exc
        except os_win_exc.HyperVVMNotFoundException:
            LOG.debug('Instance not found during detach interface. It '
                      'might have been destroyed beforehand.',
                      instance=instance)
            raise nova_exception.InterfaceDetachFailed(
                instance_uuid=instance.uuid)
        # Never raises: a port OVSDB cannot remove now goes to the port
        # sync.
        self._vif_driver.unplug(instance, vif)
