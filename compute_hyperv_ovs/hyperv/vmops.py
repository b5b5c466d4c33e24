"""The VM itself: create it, start and stop it, rescue it, change its NICs.

Behaviour follows nova 28's ``nova/virt/hyperv/vmops.py`` (removed in nova
29) unless a docstring says otherwise; the differences are the project's
fixes:

- images Hyper-V cannot boot and config drive formats it cannot build are
  refused before anything is created (nova 28 created the VM first and
  the compute manager then rescheduled an error every host repeats);
- the wait for ``network-vif-plugged`` uses nova 34's
  ``wait_for_instance_event(timeout=...)``, and a network back end may
  start the VM before that wait (:meth:`VMOps._power_on_before_vif_events`:
  on OVS for Windows a port comes up only once its VM runs);
- a NIC change Hyper-V would refuse is refused before anything changes,
  with the reason (nova 28 logged it at debug level and raised a bare
  "Failed to attach network adapter device").

What flavor and image ask of the VM's definition (secure boot, virtual
NUMA, nested virtualization, dynamic memory) is checked before anything is
created (``vmsettings``); requests this driver cannot honour (PCI devices
for neutron ports, CPU pinning, vTPM, RemoteFX) are refused, with the
reason, rather than ignored.  The PCI devices of a flavor's
``pci_passthrough:alias`` are assigned by Discrete Device Assignment
(``pcidevices``); such a VM is not suspended (Hyper-V cannot save it).

Every VM is named after ``instance.name`` and carries the instance uuid in
its notes (how :meth:`VMOps.list_instance_uuids` finds the instances).
"""

import contextlib
import time

from nova.api.metadata import base as instance_metadata
from nova.compute import vm_states
import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from nova import version
from nova.virt import configdrive
from nova.virt import driver
from nova.virt import hardware
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import fileutils
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import block_device
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import disk_qos
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.hyperv import pcidevices
from compute_hyperv_ovs.hyperv import serialports
from compute_hyperv_ovs.hyperv import vmsettings
from compute_hyperv_ovs.hyperv import volumeops

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

REBOOT_TYPE_SOFT = 'SOFT'
# How often a soft shutdown is asked again, and the VM's state polled,
# while the guest turns itself off (seconds).
SHUTDOWN_RETRY_INTERVAL = 5
POWER_OFF_POLL_INTERVAL = 0.5

# The root disk's and the config drive's places on the boot controller.
ROOT_DISK_SLOT = (0, 0)
CONFIG_DRIVE_SLOT = (1, 0)

BOOT_CONTROLLER = {constants.VM_GEN_1: constants.CTRL_TYPE_IDE,
                   constants.VM_GEN_2: constants.CTRL_TYPE_SCSI}

HYPERV_DISK_FORMATS = (constants.DISK_FORMAT_VHD.lower(),
                       constants.DISK_FORMAT_VHDX.lower(),
                       constants.DISK_FORMAT_ISO.lower())

# Hyper-V's EnabledState values, for messages.
STATE_NAMES = {
    os_win_const.HYPERV_VM_STATE_ENABLED: 'running',
    os_win_const.HYPERV_VM_STATE_DISABLED: 'off',
    os_win_const.HYPERV_VM_STATE_PAUSED: 'paused',
    os_win_const.HYPERV_VM_STATE_SUSPENDED: 'saved',
}

# Windows Server 2016: the first release that adds and removes NICs of a
# running (generation 2) VM (Microsoft, "Hot add and remove network
# adapters and memory in Hyper-V").
NIC_HOTPLUG_MIN_WINDOWS = (10, 0)


class VMOps(object):
    """Operations on this host's VMs.

    :param virtapi: nova's ``ComputeVirtAPI`` (network-vif-plugged waits).
    :param vif_driver: connects a VM's NICs to the network: an object with
        ``plug(instance, vif)`` and ``unplug(instance, vif)``.
    :param image_cache: the host's ``imagecache.ImageCache``.
    :param serial_console_ops: the host's
        ``serialconsole.SerialConsoleOps``.
    """

    def __init__(self, virtapi, vif_driver, image_cache, serial_console_ops):
        self._virtapi = virtapi
        self._vif_driver = vif_driver
        self._imagecache = image_cache
        self._serial_console_ops = serial_console_ops
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._vhdutils = osutils.per_thread(utilsfactory.get_vhdutils)
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)
        self._metricsutils = osutils.per_thread(
            utilsfactory.get_metricsutils)
        self._migrutils = osutils.per_thread(utilsfactory.get_migrationutils)
        self._pathutils = pathutils.PathUtils()
        self._block_dev_man = block_device.BlockDeviceInfoManager()
        self._volumeops = volumeops.VolumeOps()
        self._settings_builder = vmsettings.VMSettingsBuilder()
        self._pci_ops = pcidevices.PCIDeviceOps()

    @property
    def vif_driver(self):
        return self._vif_driver

    @property
    def volumeops(self):
        """The host's ``volumeops.VolumeOps``."""
        return self._volumeops

    # ---- inventory ----

    def list_instance_uuids(self):
        """The uuids in the notes of this host's VMs (nova's instances)."""
        uuids = []
        for vm_name, notes in self._vmutils.list_instance_notes():
            if notes and uuidutils.is_uuid_like(notes[0]):
                uuids.append(str(notes[0]))
            else:
                LOG.debug('VM %s has no instance uuid in its notes: not '
                          'an instance of nova', vm_name)
        return uuids

    def list_instances(self):
        return self._vmutils.list_instances()

    def instance_exists(self, instance):
        return self._vmutils.vm_exists(instance.name)

    def get_info(self, instance):
        """:raises nova.exception.InstanceNotFound: no such VM here."""
        if not self._vmutils.vm_exists(instance.name):
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid)
        summary = self._vmutils.get_vm_summary_info(instance.name)
        return hardware.InstanceInfo(
            state=constants.POWER_STATE[summary['EnabledState']])

    # ---- refusals before anything is created ----

    def get_image_vm_generation(self, instance_id, image_meta):
        """The VM generation the image asks for (``hw_machine_type``).

        :returns: 1 or 2; the host's default when the image does not say.
        :raises nova.exception.InstanceUnacceptable: the host does not
            support that generation.
        """
        default = self._hostutils.get_default_vm_generation()
        requested = image_meta.properties.get('hw_machine_type', default)
        if requested not in self._hostutils.get_supported_vm_types():
            raise nova_exception.InstanceUnacceptable(
                instance_id=instance_id,
                reason=_('this host does not run VMs of type %s (image '
                         'property hw_machine_type); it runs %s') % (
                    requested,
                    ', '.join(self._hostutils.get_supported_vm_types())))
        return constants.IMAGE_PROP_VM_GEN[requested]

    def check_image(self, instance, image_meta, block_device_info):
        """Refuse, before anything is created, an image Hyper-V cannot boot.

        Only the image's declared metadata is read here; the file itself is
        checked once fetched (``imagecache.ImageCache``).

        :raises compute_hyperv_ovs.exception.ImageNotVHD: disk_format is
            not vhd, vhdx or iso.
        :raises compute_hyperv_ovs.exception.Generation2NeedsVHDX: a
            generation 2 image whose disk_format is vhd (generation 2 VMs
            boot only from VHDX).
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

        nova 28 found out only after creating the VM.

        :raises compute_hyperv_ovs.exception.ConfigDriveFormatUnsupported:
            a config drive is needed and ``[DEFAULT] config_drive_format``
            is not iso9660.
        """
        if (configdrive.required_by(instance) and
                CONF.config_drive_format != 'iso9660'):
            raise exception.ConfigDriveFormatUnsupported(
                format=CONF.config_drive_format)

    @staticmethod
    def check_not_yet_supported(instance, image_meta):
        """Refuse what this driver does not do.

        PCI devices for neutron ports (SR-IOV, ``vnic_type`` direct and
        the like): Hyper-V's SR-IOV goes through its vSwitch, not through
        nova's PCI tracker (neither nova 28 nor compute-hyperv 16 did it).

        :raises nova.exception.InstanceUnacceptable: naming the request.
        """
        if pcidevices.neutron_requests(instance):
            raise nova_exception.InstanceUnacceptable(
                instance_id=instance.uuid,
                reason=_('PCI devices for neutron ports (SR-IOV) are not '
                         'supported by this Hyper-V driver; use a normal '
                         'port'))

    def vm_settings(self, instance, image_meta, vm_gen, flavor=None):
        """The flavor's and image's VM settings; refuses what cannot be.

        See ``vmsettings.VMSettingsBuilder.settings``; nothing is created.

        :param flavor: the flavor to check, default ``instance.flavor``
            (a resize passes its new flavor).
        :returns: ``vmsettings.VMSettings``.
        :raises compute_hyperv_ovs.exception.VMRequestRefused: with what
            to change.
        """
        return self._settings_builder.settings(instance, image_meta, vm_gen,
                                               flavor=flavor)

    def check_resize_flavor(self, instance, flavor):
        """Refuse, before a resize moves anything, a flavor that cannot be.

        :raises compute_hyperv_ovs.exception.VMRequestRefused: with what
            to change.
        """
        self.vm_settings(instance, objects.ImageMeta.from_instance(instance),
                         self._vmutils.get_vm_generation(instance.name),
                         flavor=flavor)

    # ---- spawn ----

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, network_info, block_device_info=None,
              power_on=True, reuse_disks=False):
        """Create the VM with its disks and NICs and start it.

        Order: root and ephemeral disks, the VM, its NICs (plugged through
        the VIF driver), device metadata, config drive, boot order; then
        the VM is started, after ``network-vif-plugged`` for every port
        that is not active yet (unless the network back end starts it
        before that wait, :meth:`_power_on_before_vif_events`).  Whatever
        fails, the VM, its disks and its NICs are removed again.

        :param reuse_disks: the instance's root and ephemeral disks are
            already in its directory (an evacuation onto an instances path
            shared with the failed host): the VM is built on them, only the
            config drive is made again, and a failure leaves them in place.
            compute-hyperv 16 ``vmops._create_root_vhd`` reused a root disk
            it found the same way.
        :raises nova.exception.InstanceExists: a VM of that name exists.
        :raises nova.exception.VirtualInterfaceCreateException: no
            network-vif-plugged in time and ``vif_plugging_is_fatal``.
        """
        self.check_image(instance, image_meta, block_device_info)
        self.check_config_drive(instance)
        self.check_not_yet_supported(instance, image_meta)
        self._pci_ops.check_assignable(instance)
        serialports.port_pipe_types(instance)
        vm_gen = self.get_image_vm_generation(instance.uuid, image_meta)
        self.vm_settings(instance, image_meta, vm_gen)
        disk_qos.check_flavor(instance.uuid, instance.flavor)
        self._check_network(network_info)
        LOG.info('Spawning new instance', instance=instance)
        if self._vmutils.vm_exists(instance.name):
            raise nova_exception.InstanceExists(name=instance.name)
        if reuse_disks:
            LOG.info('Building the VM on the disks already in its '
                     'directory', instance=instance)
            self._remove_config_drives(instance.name)
        else:
            # Files left by an earlier attempt would end up in the new VM.
            self._delete_disk_files(instance.name)
        self._block_dev_man.validate_and_update_bdi(
            instance, image_meta, vm_gen, block_device_info)
        root_device = block_device_info['root_disk']
        try:
            if reuse_disks:
                self._use_existing_disks(instance, root_device, vm_gen,
                                         block_device_info['ephemerals'])
            else:
                self._create_root_device(context, instance, root_device,
                                         vm_gen)
                self._create_ephemerals(instance,
                                        block_device_info['ephemerals'])
            # The events are registered before the plug, so none is missed.
            with self.wait_vif_plug_events(instance, network_info):
                self.create_instance(instance, network_info, root_device,
                                     block_device_info, vm_gen, image_meta)
                self.plug_vifs(instance, network_info)
                self._save_device_metadata(context, instance,
                                           block_device_info)
                if configdrive.required_by(instance):
                    path = self._create_config_drive(
                        context, instance, injected_files, admin_password,
                        network_info)
                    self.attach_config_drive(instance, path, vm_gen)
                self.set_boot_order(instance.name, vm_gen,
                                    block_device_info)
                started = power_on and self._power_on_before_vif_events(
                    instance, network_info)
            if power_on and not started:
                self.power_on(instance, network_info=network_info,
                              should_plug_vifs=False)
        except Exception:
            with excutils.save_and_reraise_exception():
                self.destroy(instance, network_info, block_device_info,
                             destroy_disks=not reuse_disks)

    def _check_network(self, network_info):
        """Hook: refuse NICs the network back end cannot connect here."""

    def _power_on_before_vif_events(self, instance, network_info):
        """Hook: start the VM before the wait for network-vif-plugged.

        nova's order (wait, then start) needs the ports to be bound while
        the VM is off; a back end where that cannot happen starts the VM
        here and returns True.
        """
        return False

    @contextlib.contextmanager
    def wait_vif_plug_events(self, instance, network_info):
        """Wait, on leaving the block, for the ports' network-vif-plugged.

        Only ports that are not active yet are waited for (nova's
        ``ComputeManager._get_neutron_events_for_live_migration`` and the
        libvirt driver do the same: an active port sends no event).

        :raises nova.exception.VirtualInterfaceCreateException: no event in
            ``vif_plugging_timeout`` seconds with ``vif_plugging_is_fatal``,
            or neutron reported a failed plug.
        """
        events = [('network-vif-plugged', vif['id'])
                  for vif in network_info or ()
                  if vif.get('active') is False]
        if not CONF.vif_plugging_timeout:
            events = []
        try:
            with self._virtapi.wait_for_instance_event(
                    instance, events, timeout=CONF.vif_plugging_timeout,
                    error_callback=self._neutron_failed_callback):
                yield
        except nova_exception.InstanceEventTimeout:
            LOG.warning('Timed out waiting for network-vif-plugged for '
                        'port(s) %s', ', '.join(e[1] for e in events),
                        instance=instance)
            if CONF.vif_plugging_is_fatal:
                raise nova_exception.VirtualInterfaceCreateException()

    @staticmethod
    def _neutron_failed_callback(event_name, instance):
        LOG.error('neutron reported a failure for %s', event_name,
                  instance=instance)
        if CONF.vif_plugging_is_fatal:
            raise nova_exception.VirtualInterfaceCreateException()

    # ---- disks ----

    def _create_root_device(self, context, instance, root_device, vm_gen):
        if root_device['type'] == constants.DVD:
            root_device['path'] = self._create_root_iso(context, instance)
            return
        if root_device['type'] != constants.DISK:
            return
        root_device['path'] = self._create_root_vhd(context, instance)
        try:
            self.check_vm_image_type(instance.uuid, vm_gen,
                                     root_device['path'])
        except nova_exception.InstanceUnacceptable as exc:
            raise exception.Generation2NeedsVHDX(
                image_id=instance.image_ref) from exc

    def _create_root_vhd(self, context, instance, rescue_image_id=None):
        """The VM's root disk, from the cached image.

        With ``[DEFAULT] use_cow_images`` a differencing disk on the cached
        image (a VHD image is cached at the flavor's size already, a
        differencing VHDX is resized itself); else a full copy, resized to
        the flavor's root disk.  A rescue disk keeps the image's size.

        :returns: the disk's path.
        :raises compute_hyperv_ovs.exception.RootDiskTooSmall: the image is
            larger than the flavor's root disk.
        """
        rescue = rescue_image_id is not None
        base_path = self._imagecache.get_cached_image(context, instance,
                                                      rescue_image_id)
        base_size = self._vhdutils.get_vhd_info(base_path)['VirtualSize']
        disk_format = base_path.rsplit('.', 1)[-1]
        root_path = self._pathutils.get_root_vhd_path(
            instance.name, disk_format, rescue)
        try:
            if CONF.use_cow_images:
                self._vhdutils.create_differencing_vhd(root_path, base_path)
                if (self._vhdutils.get_vhd_format(base_path) ==
                        constants.DISK_FORMAT_VHD):
                    return root_path
            else:
                self._pathutils.copyfile(base_path, root_path)
            if rescue:
                return root_path
            wanted = self._vhdutils.get_internal_vhd_size_by_file_size(
                base_path, instance.flavor.root_gb * units.Gi)
            if wanted < base_size:
                raise exception.RootDiskTooSmall(flavor_size=wanted,
                                                 image_size=base_size)
            if wanted > base_size:
                LOG.debug('Growing root disk %(path)s to %(size)s bytes',
                          {'path': root_path, 'size': wanted},
                          instance=instance)
                self._vhdutils.resize_vhd(root_path, wanted,
                                          is_file_max_size=False)
        except Exception:
            with excutils.save_and_reraise_exception():
                if self._pathutils.exists(root_path):
                    self._pathutils.remove(root_path)
        return root_path

    def _use_existing_disks(self, instance, root_device, vm_gen,
                            ephemerals):
        """Point the mapping at the disks in the instance's directory.

        :raises nova.exception.DiskNotFound: the root disk (for an image
            backed instance) or an ephemeral disk is missing.
        """
        if root_device['type'] == constants.DISK:
            path = self._pathutils.lookup_root_vhd_path(instance.name)
            if path is None:
                raise nova_exception.DiskNotFound(location=_(
                    'the root disk in the directory of %s') % instance.name)
            root_device['path'] = path
            self.check_vm_image_type(instance.uuid, vm_gen, path)
        for index, eph in enumerate(ephemerals):
            path = self._pathutils.lookup_ephemeral_vhd_path(
                instance.name, 'eph%d' % index)
            if path is None:
                raise nova_exception.DiskNotFound(location=_(
                    'ephemeral disk eph%(index)d in the directory of '
                    '%(name)s') % {'index': index, 'name': instance.name})
            eph['path'] = path

    def _remove_config_drives(self, instance_name):
        # The config drive is made again from the instance's current
        # metadata and network; an old one would be attached in its place.
        for rescue in (False, True):
            path = self._pathutils.lookup_configdrive_path(instance_name,
                                                           rescue=rescue)
            if path:
                self._pathutils.remove(path)

    def _create_root_iso(self, context, instance):
        """``root.iso``: the instance's own copy of its cached ISO image.

        The VM boots it from a DVD drive in the root disk's place
        (compute-hyperv 16 ``VMOps._create_root_iso``; nova 28 left such
        a VM without a root device).  The flavor's root disk is not
        created, as compute-hyperv did not: the ISO is the boot medium
        and an installer writes to the flavor's ephemeral disks.  A copy,
        not the cached file, so that the cache can age the image while
        the server keeps its medium.

        :returns: the copy's path.
        """
        cached = self._imagecache.get_cached_image(context, instance)
        iso_path = self._pathutils.get_root_vhd_path(
            instance.name, constants.DISK_FORMAT_ISO)
        try:
            self._pathutils.copyfile(cached, iso_path)
        except Exception:
            with excutils.save_and_reraise_exception():
                if self._pathutils.exists(iso_path):
                    self._pathutils.remove(iso_path)
        return iso_path

    def check_vm_image_type(self, instance_id, vm_gen, root_vhd_path):
        """Refuse a generation 2 VM on a VHD root disk.

        :raises nova.exception.InstanceUnacceptable: generation 2 boots
            only from VHDX.
        """
        if (vm_gen != constants.VM_GEN_1 and root_vhd_path and
                self._vhdutils.get_vhd_format(root_vhd_path) ==
                constants.DISK_FORMAT_VHD):
            raise nova_exception.InstanceUnacceptable(
                instance_id=instance_id,
                reason=_('generation %s VMs boot only from VHDX, not '
                         'VHD') % vm_gen)

    def _create_ephemerals(self, instance, ephemerals):
        for index, eph in enumerate(ephemerals):
            eph['format'] = self._vhdutils.get_best_supported_vhd_format()
            eph['path'] = self._pathutils.get_ephemeral_vhd_path(
                instance.name, eph['format'], 'eph%d' % index)
            self.create_ephemeral_disk(instance.name, eph)

    def create_ephemeral_disk(self, instance_name, eph_info):
        """A dynamic disk of ``eph_info['size']`` GiB at its ``path``."""
        self._vhdutils.create_dynamic_vhd(eph_info['path'],
                                          eph_info['size'] * units.Gi)

    def _delete_disk_files(self, instance_name):
        # The console log handler holds the VM's log files open: stop it
        # first, or the directory cannot go (nova bug #1556189).
        self._serial_console_ops.stop_console_handler(instance_name)
        self._pathutils.get_instance_dir(instance_name, create_dir=False,
                                         remove_dir=True)

    # ---- the VM and its devices ----

    def create_instance(self, instance, network_info, root_device,
                        block_device_info, vm_gen, image_meta):
        """Create the VM with its devices, disks, COM port pipes and vNICs.

        The VM stays off.  The vNICs are created here, named after their
        neutron port ids; the VIF driver connects them (:meth:`plug_vifs`).
        Memory, processors, virtual NUMA, nested virtualization and secure
        boot follow :meth:`vm_settings`, checked before the VM is defined.
        The PCI devices nova claimed (:mod:`.pcidevices`) come first after
        the VM's settings, with its automatic stop action set to turn
        off, as Hyper-V requires for DDA.  A failure may
        leave the VM defined; callers destroy it.

        :raises compute_hyperv_ovs.exception.VMRequestRefused: the flavor
            or image asks for what this host cannot give (nothing
            created).
        """
        name = instance.name
        settings = self.vm_settings(instance, image_meta, vm_gen)
        self._vmutils.create_vm(name, settings.vnuma_enabled, vm_gen,
                                self._pathutils.get_instance_dir(name),
                                [instance.uuid])
        pci_devices = pcidevices.claimed_devices(instance)
        self._vmutils.update_vm(
            name, instance.flavor.memory_mb, settings.memory_per_numa_node,
            instance.flavor.vcpus, settings.vcpus_per_numa_node,
            CONF.hyperv.limit_cpu_features, settings.dynamic_memory_ratio,
            host_shutdown_action=(pcidevices.DDA_HOST_SHUTDOWN_ACTION
                                  if pci_devices else None),
            chassis_asset_tag=version.product_string())
        if pci_devices:
            self._pci_ops.attach(instance, pci_devices)
        if settings.nested_virtualization:
            self._vmutils.set_nested_virtualization(name, True)
        if settings.secure_boot:
            self._vmutils.enable_secure_boot(
                name, msft_ca_required=settings.secure_boot_msft_ca)
        self._vmutils.create_scsi_controller(name)
        if root_device['type'] in (constants.DISK, constants.DVD):
            self._attach_drive(name, root_device['path'],
                               root_device['drive_addr'],
                               root_device['ctrl_disk_addr'],
                               root_device['disk_bus'], root_device['type'])
        local_disks = []
        if root_device['type'] == constants.DISK:
            local_disks.append(root_device['path'])
        for eph in block_device_info['ephemerals']:
            # An ephemeral without a path was dropped by a resize.
            if eph.get('path'):
                self._attach_drive(name, eph['path'], eph['drive_addr'],
                                   eph['ctrl_disk_addr'], eph['disk_bus'],
                                   constants.DISK)
                local_disks.append(eph['path'])
        self._set_disk_qos(instance, local_disks)
        # Volumes (the root volume too) at the slots block_device gave
        # them; a volume that fails undoes the ones before it.
        resources = self._volumeops.attach_volumes(block_device_info, name)
        if root_device['type'] == constants.VOLUME:
            root_device['path'] = resources[
                root_device['connection_info']['serial']]
        self._create_com_port_pipes(instance)
        for vif in network_info or ():
            self._vmutils.create_nic(name, vif['id'], vif['address'])
        if CONF.hyperv.enable_instance_metrics_collection:
            self._metricsutils.enable_vm_metrics_collection(name)

    def _set_disk_qos(self, instance, disk_paths):
        """Limit the root and ephemeral disks to the flavor's disk quota.

        Every path through here creates a new VM (spawn, and the
        re-created VM of a resize and of its revert), which Hyper-V starts
        without limits; so a flavor without a disk quota needs nothing
        set, and a resize or a revert gets the limits of the flavor the
        instance has then (compute-hyperv 16 reset them on the VM it kept).
        The config drive is not limited.  Rescue and unrescue, which
        attach the disks anew, set the limits again.  See :mod:`.disk_qos`.
        """
        limit = disk_qos.max_iops(instance.uuid, instance.flavor)
        if not limit:
            return
        for path in disk_paths:
            LOG.debug('Limiting %(path)s to %(iops)d normalised IOPS',
                      {'path': path, 'iops': limit}, instance=instance)
            self._vmutils.set_disk_qos_specs(path, limit)

    def _create_com_port_pipes(self, instance):
        # Each COM port the image chose goes to a named pipe: the serial
        # console handler logs the read-only one (else the read-write one)
        # and joins the interactive console to the read-write one.
        for port, pipe_type in sorted(
                serialports.port_pipe_types(instance).items()):
            self._vmutils.set_vm_serial_port_connection(
                instance.name, port,
                serialports.pipe_path(instance, pipe_type))

    def _attach_drive(self, instance_name, path, drive_addr, ctrl_disk_addr,
                      controller_type, drive_type):
        if controller_type == constants.CTRL_TYPE_SCSI:
            self._vmutils.attach_scsi_drive(instance_name, path, drive_type)
        else:
            self._vmutils.attach_ide_drive(instance_name, path, drive_addr,
                                           ctrl_disk_addr, drive_type)

    def set_boot_order(self, instance_name, vm_gen, block_device_info):
        self._vmutils.set_boot_order(
            instance_name,
            self._block_dev_man.get_boot_order(vm_gen, block_device_info))

    def _save_device_metadata(self, context, instance, block_device_info):
        """Tagged NICs and disks, for the guest's metadata (device roles)."""
        devices = [
            objects.NetworkInterfaceMetadata(
                mac=vif.address, bus=objects.PCIDeviceBus(), tags=[vif.tag])
            for vif in objects.VirtualInterfaceList.get_by_instance_uuid(
                context, instance.uuid)
            if 'tag' in vif and vif.tag]
        if block_device_info:
            devices.extend(self._block_dev_man.get_bdm_metadata(
                context, instance, block_device_info))
        if devices:
            instance.device_metadata = objects.InstanceDeviceMetadata(
                devices=devices)

    # ---- config drive ----

    def _create_config_drive(self, context, instance, injected_files,
                             admin_password, network_info, rescue=False):
        """Build the config drive with nova's builder.

        ISO 9660 with ``[DEFAULT] mkisofs_cmd``; with ``[hyperv]
        config_drive_cdrom = False`` the ISO is converted to a VHD with
        ``[hyperv] qemu_img_cmd`` and removed.  The admin password goes in
        only with ``[hyperv] config_drive_inject_password``.

        :returns: the drive's path.
        """
        extra_md = {}
        if admin_password and CONF.hyperv.config_drive_inject_password:
            extra_md['admin_pass'] = admin_password
        metadata = instance_metadata.InstanceMetadata(
            instance, content=injected_files, extra_md=extra_md,
            network_info=network_info)
        iso_path = self._pathutils.get_configdrive_path(
            instance.name, constants.CONFIG_DRIVE_DVD_FORMAT, rescue=rescue)
        LOG.info('Creating config drive at %s', iso_path, instance=instance)
        with configdrive.ConfigDriveBuilder(instance_md=metadata) as builder:
            builder.make_drive(iso_path)
        if CONF.hyperv.config_drive_cdrom:
            return iso_path
        vhd_path = self._pathutils.get_configdrive_path(
            instance.name, constants.CONFIG_DRIVE_DISK_FORMAT, rescue=rescue)
        processutils.execute(CONF.hyperv.qemu_img_cmd, 'convert', '-f',
                             'raw', '-O', 'vpc', iso_path, vhd_path,
                             attempts=1)
        self._pathutils.remove(iso_path)
        return vhd_path

    def attach_config_drive(self, instance, configdrive_path, vm_gen):
        """Attach the drive in the boot controller's second slot.

        A DVD for an ISO, a disk for a VHD.

        :raises nova.exception.InvalidDiskFormat: neither.
        """
        extension = configdrive_path.rsplit('.', 1)[-1].upper()
        drive_type = {constants.CONFIG_DRIVE_DVD_FORMAT: constants.DVD,
                      constants.CONFIG_DRIVE_DISK_FORMAT: constants.DISK,
                      }.get(extension)
        if drive_type is None:
            raise nova_exception.InvalidDiskFormat(disk_format=extension)
        self._attach_drive(instance.name, configdrive_path,
                           CONFIG_DRIVE_SLOT[0], CONFIG_DRIVE_SLOT[1],
                           BOOT_CONTROLLER[vm_gen], drive_type)

    def _detach_config_drive(self, instance_name, rescue=False,
                             delete=False):
        path = self._pathutils.lookup_configdrive_path(instance_name,
                                                       rescue=rescue)
        if path:
            self._vmutils.detach_vm_disk(instance_name, path,
                                         is_physical=False)
            if delete:
                self._pathutils.remove(path)

    def copy_vm_dvd_disks(self, vm_name, dest_host):
        """Copy the VM's DVD images (its config drive) to ``dest_host``."""
        dest_dir = self._pathutils.get_instance_dir(vm_name,
                                                    remote_server=dest_host)
        for path in self._vmutils.get_vm_dvd_disk_paths(vm_name):
            self._pathutils.copyfile(path, dest_dir)

    # ---- destroy ----

    def destroy(self, instance, network_info, block_device_info,
                destroy_disks=True):
        """Remove the VM (or a planned VM), its NICs and its files.

        The NICs are unplugged even when the VM is already gone, so nothing
        is left on the network back end.
        """
        name = instance.name
        LOG.info('Destroying instance', instance=instance)
        try:
            if self._vmutils.vm_exists(name):
                self._vmutils.stop_vm_jobs(name)
                self.power_off(instance)
                self._vmutils.destroy_vm(name)
            elif self._migrutils.planned_vm_exists(name):
                self._migrutils.destroy_existing_planned_vm(name)
            else:
                LOG.debug('No VM to destroy', instance=instance)
            # Even when the VM is gone: the host keeps the sessions and
            # mappings of its volumes until they are disconnected.
            self._disconnect_volumes(instance, block_device_info)
            self.unplug_vifs(instance, network_info)
            if destroy_disks:
                self._delete_disk_files(name)
            else:
                # The files stay (they may be another host's now, on shared
                # storage); this host stops writing the console log.
                self._serial_console_ops.stop_console_handler(name)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.exception('Failed to destroy instance %s', name)

    def _disconnect_volumes(self, instance, block_device_info):
        if not driver.block_device_info_get_mapping(block_device_info):
            return
        try:
            self._volumeops.disconnect_volumes(block_device_info)
        except Exception:
            # The VM is gone either way; what could not be disconnected is
            # logged for the operator (nova retries on the next delete).
            LOG.exception('Could not disconnect every volume of the '
                          'instance', instance=instance)

    # ---- power ----

    def reboot(self, instance, network_info, reboot_type):
        """Reboot the VM, softly or hard.

        A soft reboot asks the guest to turn off, then starts the VM; when
        the guest does not in ``[hyperv] wait_soft_reboot_seconds``, or for
        a hard reboot, Hyper-V resets the VM.
        """
        if reboot_type == REBOOT_TYPE_SOFT and self._soft_shutdown(
                instance, CONF.hyperv.wait_soft_reboot_seconds):
            self.power_on(instance, network_info=network_info)
            return
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_REBOOT)

    def _soft_shutdown(self, instance, timeout,
                       retry_interval=SHUTDOWN_RETRY_INTERVAL):
        """Ask the guest to turn off, again every ``retry_interval`` s.

        A guest that is still booting refuses the request (Hyper-V's
        shutdown integration service is not up yet); it is asked again.

        :returns: True when the VM turned off within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(retry_interval, remaining)
            try:
                self._vmutils.soft_shutdown_vm(instance.name)
            except os_win_exc.HyperVException as exc:
                LOG.debug('The guest refused to shut down: %s', exc,
                          instance=instance)
                time.sleep(wait)
                continue
            if self._wait_for_power_off(instance.name, wait):
                LOG.info('The guest shut down', instance=instance)
                return True
        LOG.warning('The guest did not shut down within %s s', timeout,
                    instance=instance)
        return False

    def _wait_for_power_off(self, instance_name, time_limit):
        """:returns: True when the VM is off within ``time_limit`` s."""
        deadline = time.monotonic() + time_limit
        while True:
            if (self._get_vm_state(instance_name) ==
                    os_win_const.HYPERV_VM_STATE_DISABLED):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(POWER_OFF_POLL_INTERVAL, remaining))

    def _get_vm_state(self, instance_name):
        return self._vmutils.get_vm_summary_info(
            instance_name)['EnabledState']

    def _set_vm_state(self, instance, req_state):
        try:
            self._vmutils.set_vm_state(instance.name, req_state)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Hyper-V could not put the VM in state %s',
                          req_state, instance=instance)

    def pause(self, instance):
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_PAUSED)

    def unpause(self, instance):
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_ENABLED)

    def suspend(self, instance):
        """Save the VM's state (Hyper-V's Saved).

        :raises nova.exception.InstanceFaultRollback: with
            ``InstanceSuspendFailure``: the VM holds PCI devices, which
            Hyper-V cannot save (Microsoft, "Plan for deploying devices by
            using Discrete Device Assignment"); the VM keeps running, and
            the rollback makes nova's compute manager leave the server
            ACTIVE (``_error_out_instance_on_exception``) with the reason
            as its fault.
        """
        if pcidevices.claimed_devices(instance):
            raise nova_exception.InstanceFaultRollback(
                nova_exception.InstanceSuspendFailure(reason=_(
                    'Hyper-V cannot save a VM with PCI devices assigned '
                    '(Discrete Device Assignment); stop the server '
                    'instead')))
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_SUSPENDED)

    def resume(self, instance, network_info=None):
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_ENABLED)
        self._vm_started(instance, network_info)

    def power_off(self, instance, timeout=0, retry_interval=0):
        """Turn the VM off: softly first when ``timeout`` is given.

        A VM that no longer exists is not an error: nova may stop an
        instance on its power-off event while it is being deleted.
        """
        # The console log handler must let go of the log files, which a
        # delete or a migration then removes or moves.
        self._serial_console_ops.stop_console_handler(instance.name)
        try:
            if timeout and self._soft_shutdown(
                    instance, timeout,
                    retry_interval if retry_interval > 0
                    else SHUTDOWN_RETRY_INTERVAL):
                return
            self._set_vm_state(instance,
                               os_win_const.HYPERV_VM_STATE_DISABLED)
        except os_win_exc.HyperVVMNotFoundException:
            LOG.debug('The VM is gone already', instance=instance)

    def power_on(self, instance, block_device_info=None, network_info=None,
                 should_plug_vifs=True):
        if should_plug_vifs:
            self.plug_vifs(instance, network_info)
        if driver.block_device_info_get_mapping(block_device_info):
            # Disk numbers may have changed since the VM last ran (a host
            # reboot): its passthrough disks are pointed at their volumes.
            self._volumeops.fix_instance_volume_disk_paths(
                instance.name, block_device_info)
        self._start_vm(instance)
        self._vm_started(instance, network_info)

    def _start_vm(self, instance):
        self._set_vm_state(instance, os_win_const.HYPERV_VM_STATE_ENABLED)

    def _vm_started(self, instance, network_info):
        """Hook: the VM has just started.

        Any way but spawn's start in :meth:`_power_on_before_vif_events`.
        """

    def resume_state_on_host_boot(self, instance, network_info,
                                  block_device_info=None):
        self.power_on(instance, block_device_info, network_info)

    # ---- NICs ----

    def pre_plug_vifs(self, instance, network_info):
        """Hook: prepare the network for VIFs whose VM is about to arrive.

        Called on a live migration's destination before the VM moves
        (nova 28 plugged only after it arrived, LP #1551222); nothing to
        do unless the network back end needs its ports beforehand.
        """

    def plug_vifs(self, instance, network_info):
        for vif in network_info or ():
            self._vif_driver.plug(instance, vif)

    def unplug_vifs(self, instance, network_info):
        for vif in network_info or ():
            self._vif_driver.unplug(instance, vif)

    _HOTPLUG_VERBS = {'add': _('cannot add a NIC to'),
                      'remove': _('cannot remove a NIC from')}

    def _check_nic_hotplug(self, instance, vif, operation):
        """Refuse a NIC change Hyper-V would refuse; say why.

        Hyper-V changes the NICs of an off VM of either generation, and of
        a running generation 2 VM on Windows Server 2016 (10.0) and later
        (nova 28 ``vmops._check_hotplug_available``).

        :param operation: ``'add'`` or ``'remove'``.
        :returns: True when the VM runs (a hot-plug), False when it is off.
        :raises compute_hyperv_ovs.exception.NICHotplugRefused: anything
            else (paused or saved VM, generation 1, older Windows).
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
                                'state': STATE_NAMES.get(state, state)}
        elif not self._hostutils.check_min_windows_version(
                *NIC_HOTPLUG_MIN_WINDOWS):
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
        """Add a vNIC for ``vif`` and plug it.

        On a running VM the attach waits for ``network-vif-plugged`` as a
        spawn does (nova's compute manager does not); on an off VM the
        port comes up at its next start.  Whatever fails, the vNIC and the
        plug are undone.

        :raises compute_hyperv_ovs.exception.NICHotplugRefused: Hyper-V
            cannot add a NIC to this VM now (nothing changed).
        :raises compute_hyperv_ovs.exception.NICHotplugFailed: Hyper-V
            refused the vNIC.
        :raises compute_hyperv_ovs.exception.AttachNoVifPlugged: no
            network-vif-plugged in time.
        :raises nova.exception.InstanceNotFound: no such VM.
        """
        try:
            running = self._check_nic_hotplug(instance, vif, 'add')
        except os_win_exc.HyperVVMNotFoundException as exc:
            raise nova_exception.InstanceNotFound(
                instance_id=instance.uuid) from exc
        self._check_network([vif])
        created = []
        try:
            if running:
                with self._wait_attach_event(instance, vif):
                    self._add_vnic(instance, vif, created)
                    self._attached_to_running_vm(instance, vif)
            else:
                self._add_vnic(instance, vif, created)
        except Exception:
            with excutils.save_and_reraise_exception():
                if created:
                    self._remove_attached(instance, vif)

    def _attached_to_running_vm(self, instance, vif):
        """Hook: a new NIC of a running VM was just plugged."""

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

    @contextlib.contextmanager
    def _wait_attach_event(self, instance, vif):
        try:
            with self.wait_vif_plug_events(instance, [vif]):
                yield
        except nova_exception.VirtualInterfaceCreateException as exc:
            raise exception.AttachNoVifPlugged(
                port=vif['id'], timeout=CONF.vif_plugging_timeout) from exc

    def _remove_attached(self, instance, vif):
        """Undo a failed attach (plug, then vNIC); never raises."""
        self._vif_driver.unplug(instance, vif)
        try:
            self._vmutils.destroy_nic(instance.name, vif['id'])
        except Exception:
            LOG.exception('Could not remove vNIC %(port)s after the failed '
                          'attach; remove it with Remove-VMNetworkAdapter',
                          {'port': vif['id']}, instance=instance)

    def detach_interface(self, instance, vif):
        """Remove the vNIC of ``vif``, then unplug it.

        The vNIC goes first: when Hyper-V refuses, nothing has changed.

        :raises compute_hyperv_ovs.exception.NICHotplugRefused: Hyper-V
            cannot remove a NIC from this VM now.
        :raises compute_hyperv_ovs.exception.NICHotplugFailed: Hyper-V
            refused to remove the vNIC.
        :raises nova.exception.InterfaceDetachFailed: no such VM.
        """
        try:
            self._check_nic_hotplug(instance, vif, 'remove')
            try:
                self._vmutils.destroy_nic(instance.name, vif['id'])
            except os_win_exc.HyperVVMNotFoundException:
                raise
            except os_win_exc.HyperVException as exc:
                raise exception.NICHotplugFailed(
                    port=vif['id'], operation='remove',
                    instance=instance.name, reason=exc) from exc
        except os_win_exc.HyperVVMNotFoundException:
            LOG.debug('The VM is gone: nothing to detach', instance=instance)
            raise nova_exception.InterfaceDetachFailed(
                instance_uuid=instance.uuid)
        self._vif_driver.unplug(instance, vif)

    # ---- rescue ----

    def rescue_instance(self, context, instance, network_info, image_meta,
                        rescue_password):
        """Boot the VM from the rescue image, its own disk second.

        A failed rescue is undone (:meth:`unrescue_instance`).

        :raises nova.exception.ImageUnacceptable: the rescue image needs
            another VM generation than the VM's.
        :raises nova.exception.InstanceNotRescuable: the VM has no root
            disk file (booted from a volume).
        """
        try:
            self._rescue(context, instance, network_info, image_meta,
                         rescue_password)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Rescue failed; restoring the instance',
                          instance=instance)
                self.unrescue_instance(instance)

    def _rescue(self, context, instance, network_info, image_meta,
                rescue_password):
        rescue_image_id = image_meta.id or instance.image_ref
        rescue_path = self._create_root_vhd(context, instance,
                                            rescue_image_id=rescue_image_id)
        vm_gen = self._vmutils.get_vm_generation(instance.name)
        rescue_gen = self.get_image_vm_generation(instance.uuid, image_meta)
        if rescue_gen != vm_gen:
            raise nova_exception.ImageUnacceptable(
                image_id=rescue_image_id,
                reason=_('the rescue image is for generation %(rescue)s '
                         'VMs, the instance is generation %(vm)s') % {
                    'rescue': rescue_gen, 'vm': vm_gen})
        root_path = self._pathutils.lookup_root_vhd_path(instance.name)
        if not root_path:
            raise nova_exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason=_('the instance has no root disk file (rescuing an '
                         'instance booted from a volume is not supported)'))
        self._vmutils.detach_vm_disk(instance.name, root_path,
                                     is_physical=False)
        self._attach_drive(instance.name, rescue_path, ROOT_DISK_SLOT[0],
                           ROOT_DISK_SLOT[1], BOOT_CONTROLLER[vm_gen],
                           constants.DISK)
        # The instance's own disk stays reachable from the rescue system.
        self._vmutils.attach_scsi_drive(instance.name, root_path,
                                        drive_type=constants.DISK)
        # A disk's QoS goes with its drive: both drives are new.
        self._set_disk_qos(instance, [rescue_path, root_path])
        if configdrive.required_by(instance):
            self._detach_config_drive(instance.name)
            path = self._create_config_drive(
                context, instance, injected_files=None,
                admin_password=rescue_password, network_info=network_info,
                rescue=True)
            self.attach_config_drive(instance, path, vm_gen)
        self.power_on(instance, network_info=network_info)

    def unrescue_instance(self, instance):
        """Put the instance's own disk and config drive back and start it.

        :raises nova.exception.InstanceNotRescuable: a rescued instance
            whose root or rescue disk is missing.
        """
        self.power_off(instance)
        root_path = self._pathutils.lookup_root_vhd_path(instance.name)
        rescue_path = self._pathutils.lookup_root_vhd_path(instance.name,
                                                           rescue=True)
        if (instance.vm_state == vm_states.RESCUED and
                not (root_path and rescue_path)):
            raise nova_exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason=_('its root or rescue disk is missing'))
        vm_gen = self._vmutils.get_vm_generation(instance.name)
        if root_path:
            self._vmutils.detach_vm_disk(instance.name, root_path,
                                         is_physical=False)
        if rescue_path:
            self._vmutils.detach_vm_disk(instance.name, rescue_path,
                                         is_physical=False)
            fileutils.delete_if_exists(rescue_path)
        if root_path:
            self._attach_drive(instance.name, root_path, ROOT_DISK_SLOT[0],
                               ROOT_DISK_SLOT[1], BOOT_CONTROLLER[vm_gen],
                               constants.DISK)
            self._set_disk_qos(instance, [root_path])
        self._detach_config_drive(instance.name, rescue=True, delete=True)
        drive = self._pathutils.lookup_configdrive_path(instance.name)
        if drive and not self._vmutils.is_disk_attached(drive,
                                                        is_physical=False):
            self.attach_config_drive(instance, drive, vm_gen)
        self.power_on(instance)
