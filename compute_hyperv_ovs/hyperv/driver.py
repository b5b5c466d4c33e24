"""HyperVDriver: nova 34's ComputeDriver for Hyper-V, as a thin facade.

Each method hands the call to the one object that owns the concern:

- :mod:`.vmops`: the VM itself (create, power, reboot, destroy, rescue,
  NICs);
- :mod:`.imagecache`: images on the host;
- :mod:`.snapshotops`, :mod:`.migrationops` (cold migration and resize),
  :mod:`.livemigrationops`;
- :mod:`.hostops`: the host's resources, address, uptime, power;
- :mod:`.maintenance`: maintenance mode (the host drained through nova's
  compute API);
- :mod:`.eventhandler`: Hyper-V's power state events, turned into nova's
  lifecycle events;
- :mod:`.serialconsole`: the VMs' console logs and serial consoles;
- :mod:`.diagnostics`: instance diagnostics and resource metering.

The driver follows nova 28's in-tree Hyper-V driver
(``nova/virt/hyperv/driver.py``, removed in nova 29) in what it does, and
nova 34's ComputeDriver interface in how it is called.  It knows nothing
of how a NIC reaches a network: the VIF driver is built by
:meth:`_build_vif_driver`, which a driver for a given network back end
provides (``compute_hyperv_ovs.driver.HyperVOVSDriver`` for Open vSwitch).
Cinder volumes (iSCSI, Fibre Channel, RBD, SMB) go through
:mod:`.volumeops` and os-brick's Windows connectors; :mod:`.block_device`
gives them their controller slots.

The ops objects turn the os-win errors an operator can act on into nova
exceptions that say what to do; any other os-win error becomes a nova
exception naming the driver method it came out of (:mod:`.boundary`,
applied to every public method of this class and of classes built on it).
"""

from nova.compute import task_states
from nova import exception
from nova.virt import driver
from nova.virt import node
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import boundary
from compute_hyperv_ovs.hyperv import diagnostics
from compute_hyperv_ovs.hyperv import eventhandler
from compute_hyperv_ovs.hyperv import hostops
from compute_hyperv_ovs.hyperv import imagecache
from compute_hyperv_ovs.hyperv import livemigrationops
from compute_hyperv_ovs.hyperv import maintenance
from compute_hyperv_ovs.hyperv import migrationops
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.hyperv import serialconsole
from compute_hyperv_ovs.hyperv import snapshotops
from compute_hyperv_ovs.hyperv import vmops
from compute_hyperv_ovs.hyperv import volumeattach

LOG = logging.getLogger(__name__)

# Windows Server 2012 (6.2): the oldest Windows os-win 5.9.0 has utils for
# (utilsfactory.DEFAULT_MIN_VERSION; VMUtils and NetworkUtils still have a
# 6.2 variant), and the oldest nova 28 accepted
# (driver._check_minimum_windows_version).
MIN_WINDOWS_VERSION = (6, 2)
# Older than this (Windows Server 2012 R2, 6.3) is accepted with a warning:
# nova 28 deprecated 6.2 in Queens; 6.2 runs only generation 1 VMs.
DEPRECATED_BELOW_WINDOWS_VERSION = (6, 3)


class HyperVDriver(boundary.ConvertsOSWinErrors, driver.ComputeDriver):
    """A Hyper-V host as a nova compute node."""

    # Each of nova 34's ComputeDriver.capabilities, set to what this driver
    # does (nova turns most into the compute node's placement traits,
    # nova.virt.driver.CAPABILITY_TRAITS_MAP); a key nova adds later is
    # False here until it is decided (tests/unit/hyperv/test_driver.py).
    capabilities = {
        # imagecache.ImageCache.update ages out _base.
        'has_imagecache': True,
        # spawn builds an evacuated VM on a shared instances path, or from
        # the image (no trait).
        'supports_evacuate': True,
        # A resize may stay on this host (allow_resize_to_same_host;
        # migrationops copies through <instance dir>_tmp), but a cold
        # migration onto the same host is not offered (nor in nova 28).
        'supports_migrate_to_same_host': False,
        # vmops.attach_interface / detach_interface (hot on generation 2
        # with Windows Server 2016 or later).
        'supports_attach_interface': True,
        # Tagged NICs go into the device metadata at spawn (vmops.
        # _save_device_metadata), but an attached NIC's tag does not.
        'supports_device_tagging': True,
        'supports_tagged_attach_interface': False,
        # Cinder volumes through volumeops; a tagged volume goes into the
        # device metadata on attach, and nova's volume-extended event
        # grows the disk.
        'supports_tagged_attach_volume': True,
        'supports_extend_volume': True,
        # A volume attached to two VMs would be one passthrough disk in
        # two VMs, which Hyper-V refuses.
        'supports_multiattach': False,
        'supports_bfv_rescue': False,
        # The image cache hands instance.trusted_certs to nova's download,
        # which validates the image's signing certificate against them.
        'supports_trusted_certs': True,
        # vmsettings refuses CPU pinning.
        'supports_pcpus': False,
        # PCI devices are assigned (pcidevices, Discrete Device
        # Assignment), but os-win does not say which NUMA node a device is
        # on, so no socket affinity (no trait); nova 34 has no capability
        # for PCI passthrough itself.
        'supports_socket_pci_numa_affinity': False,
        # vmsettings: os:secure_boot / os_secure_boot on generation 2.
        'supports_secure_boot': True,
        'supports_accelerators': False,
        'supports_vtpm': False,
        'supports_remote_managed_ports': False,
        'supports_address_space_passthrough': False,
        'supports_address_space_emulated': False,
        'supports_virtio_fs': False,
        'supports_mem_backing_file': False,
        'supports_ephemeral_encryption': False,
        'supports_ephemeral_encryption_luks': False,
        'supports_ephemeral_encryption_plain': False,
        # imagecache boots VHD and VHDX images, and ISO images from a DVD
        # drive (vmops._create_root_iso); any other disk_format is refused
        # (ImageNotVHD).
        'supports_image_type_vhd': True,
        'supports_image_type_vhdx': True,
        'supports_image_type_aki': False,
        'supports_image_type_ami': False,
        'supports_image_type_ari': False,
        'supports_image_type_iso': True,
        'supports_image_type_qcow2': False,
        'supports_image_type_raw': False,
        'supports_image_type_vdi': False,
        'supports_image_type_vmdk': False,
        'supports_image_type_ploop': False,
    }

    def __init__(self, virtapi):
        super().__init__(virtapi)
        osutils.use_thread_local_connections()
        self._hostops = hostops.HostOps()
        self._check_minimum_windows_version()
        self._pathutils = pathutils.PathUtils()
        self._imagecache = imagecache.ImageCache()
        self._serialconsoleops = serialconsole.SerialConsoleOps()
        self._vmops = self._build_vmops(virtapi)
        self._snapshotops = snapshotops.SnapshotOps()
        self._diagnosticsops = diagnostics.DiagnosticsOps()
        self._migrationops = self._build_migrationops()
        self._livemigrationops = self._build_livemigrationops()
        self._volumeattach = volumeattach.VolumeAttachOps(
            self._vmops.volumeops)
        self._maintenance = maintenance.HostMaintenance(
            self._vmops.list_instance_uuids)
        self._event_handler = eventhandler.InstanceEventHandler(
            state_change_callback=self.emit_event,
            vm_started_callback=self._vm_started,
            vm_stopped_callback=self._serialconsoleops.stop_console_handler)

    def _vm_started(self, instance_name):
        """A VM started (power state event): its console and metering."""
        self._serialconsoleops.start_console_handler(instance_name)
        self._diagnosticsops.enable_metrics(instance_name)

    # ---- construction: what a network back end may replace ----

    def _build_vif_driver(self):
        """The object that connects and disconnects a VM's NICs.

        :returns: an object with ``plug(instance, vif)`` and
            ``unplug(instance, vif)``.
        """
        raise NotImplementedError(
            'HyperVDriver needs a VIF driver: use a driver built on it for '
            'a network back end, e.g. compute_hyperv_ovs.driver.'
            'HyperVOVSDriver')

    def _build_vmops(self, virtapi):
        return vmops.VMOps(virtapi, self._build_vif_driver(),
                           self._imagecache, self._serialconsoleops)

    def _build_migrationops(self):
        return migrationops.MigrationOps(self._vmops, self._imagecache)

    def _build_livemigrationops(self, destination_checks=()):
        return livemigrationops.LiveMigrationOps(
            self._vmops, self._imagecache, self._serialconsoleops,
            destination_checks)

    def _check_minimum_windows_version(self):
        """Refuse a Windows older than 6.2; warn on 6.2 (Server 2012).

        :raises nova.exception.HypervisorTooOld: older than
            ``MIN_WINDOWS_VERSION``; nova-compute does not start.
        """
        minimum = '.'.join(map(str, MIN_WINDOWS_VERSION))
        if not self._hostops.is_windows_version_at_least(
                *MIN_WINDOWS_VERSION):
            LOG.error('Windows %(found)s is too old for this driver: it '
                      'needs Windows Server %(minimum)s (2012) or later, '
                      'and 2016 or later for all of its features.',
                      {'found': self._hostops.get_windows_version(),
                       'minimum': minimum})
            raise exception.HypervisorTooOld(version=minimum)
        if not self._hostops.is_windows_version_at_least(
                *DEPRECATED_BELOW_WINDOWS_VERSION):
            LOG.warning('Windows Server 2012 (%s) is deprecated for this '
                        'driver, as it was in nova 28, and Microsoft no '
                        'longer supports it; its VMs are generation 1 only. '
                        'Move this host to Windows Server 2016 or later: a '
                        'later release will refuse 2012.',
                        self._hostops.get_windows_version())

    # ---- service life ----

    def init_host(self, host):
        self._serialconsoleops.start_console_handlers()
        self._event_handler.start()

    def cleanup_host(self, host):
        self._event_handler.stop()
        self._serialconsoleops.stop_console_handlers()

    # ---- inventory ----

    def list_instance_uuids(self):
        return self._vmops.list_instance_uuids()

    def list_instances(self):
        return self._vmops.list_instances()

    def instance_exists(self, instance):
        return self._vmops.instance_exists(instance)

    def get_info(self, instance, use_cache=True):
        return self._vmops.get_info(instance)

    def get_available_nodes(self, refresh=False):
        return [self._hostops.get_hostname()]

    def get_nodenames_by_uuid(self, refresh=False):
        return {node.get_local_node_uuid(): self._hostops.get_hostname()}

    def get_available_resource(self, nodename):
        return self._hostops.get_available_resource()

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        inventory = provider_tree.data(nodename).inventory
        self._hostops.update_provider_tree(
            provider_tree, nodename, self._get_allocation_ratios(inventory),
            allocations)

    def get_host_ip_addr(self):
        return self._hostops.get_host_ip_addr()

    def get_host_uptime(self):
        return self._hostops.get_host_uptime()

    def host_power_action(self, action):
        return self._hostops.host_power_action(action)

    def host_maintenance_mode(self, host, mode):
        return self._maintenance.host_maintenance_mode(host, mode)

    # ---- the VM ----

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """Build and start the VM (a new server, a rebuild or an evacuation).

        nova 34 evacuates through ``ComputeManager._rebuild_default_impl``
        (this driver has no ``rebuild`` of its own): on the destination it
        calls this method with the instance in ``REBUILD_SPAWNING``.  When
        the instance's disks are on this host's instances path then (shared
        with the failed host, :meth:`instance_on_disk`), the VM is built on
        them; otherwise they are made from the image.  A rebuild on the same
        host destroyed the disks before, so it always starts from the image.
        """
        reuse_disks = (instance.task_state == task_states.REBUILD_SPAWNING
                       and self.instance_on_disk(instance))
        self._vmops.spawn(context, instance, image_meta, injected_files,
                          admin_password, network_info, block_device_info,
                          power_on=power_on, reuse_disks=reuse_disks)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._vmops.destroy(instance, network_info, block_device_info,
                            destroy_disks)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        """Take away what is left of a VM that is already gone.

        nova calls this e.g. on a failed migration's source; only the VIFs
        are left there.
        """
        if destroy_vifs:
            self._vmops.unplug_vifs(instance, network_info)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        self._vmops.reboot(instance, network_info, reboot_type)

    def pause(self, instance):
        self._vmops.pause(instance)

    def unpause(self, instance):
        self._vmops.unpause(instance)

    def suspend(self, context, instance):
        self._vmops.suspend(instance)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._vmops.resume(instance, network_info)

    def power_off(self, instance, timeout=0, retry_interval=0):
        self._vmops.power_off(instance, timeout, retry_interval)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        self._vmops.power_on(instance, block_device_info, network_info)

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info, block_device_info=None):
        self._vmops.resume_state_on_host_boot(instance, network_info,
                                              block_device_info)

    def rescue(self, context, instance, network_info, image_meta,
               rescue_password, block_device_info, share_info):
        self._vmops.rescue_instance(context, instance, network_info,
                                    image_meta, rescue_password)

    def unrescue(self, context, instance):
        self._vmops.unrescue_instance(instance)

    def plug_vifs(self, instance, network_info):
        self._vmops.plug_vifs(instance, network_info)

    def unplug_vifs(self, instance, network_info):
        self._vmops.unplug_vifs(instance, network_info)

    def attach_interface(self, context, instance, image_meta, vif):
        self._vmops.attach_interface(instance, vif)

    def detach_interface(self, context, instance, vif):
        self._vmops.detach_interface(instance, vif)

    # ---- volumes ----

    def get_volume_connector(self, instance):
        return self._vmops.volumeops.get_volume_connector()

    @staticmethod
    def _refuse_encryption(connection_info, encryption):
        if encryption and encryption.get('provider'):
            raise exception.VolumeAttachFailed(
                volume_id=connection_info.get('serial'),
                reason='the volume is encrypted (%s); this Hyper-V driver '
                       'has no volume encryption' % encryption['provider'])

    def attach_volume(self, context, connection_info, instance, mountpoint,
                      disk_bus=None, device_type=None, encryption=None):
        self._refuse_encryption(connection_info, encryption)
        self._volumeattach.attach(context, connection_info, instance,
                                  mountpoint, disk_bus, device_type)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        self._volumeattach.detach(context, connection_info, instance)

    def extend_volume(self, context, connection_info, instance,
                      requested_size):
        self._vmops.volumeops.extend_volume(connection_info)

    def get_diagnostics(self, instance):
        return self._diagnosticsops.get_diagnostics(instance)

    def get_instance_diagnostics(self, instance):
        return self._diagnosticsops.get_instance_diagnostics(instance)

    def get_console_output(self, context, instance):
        return self._serialconsoleops.get_console_output(instance.name)

    def get_serial_console(self, context, instance):
        return self._serialconsoleops.get_serial_console(instance.name)

    # ---- images and snapshots ----

    def snapshot(self, context, instance, image_id, update_task_state):
        self._snapshotops.snapshot(context, instance, image_id,
                                   update_task_state)

    def manage_image_cache(self, context, all_instances):
        self._imagecache.update(context, all_instances)

    def cache_image(self, context, image_id):
        return self._imagecache.cache_image(context, image_id)

    # ---- cold migration and resize ----

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        return self._migrationops.migrate_disk_and_power_off(
            context, instance, dest, flavor, network_info,
            block_device_info, timeout, retry_interval)

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        self._migrationops.finish_migration(
            context, migration, instance, disk_info, network_info,
            image_meta, resize_instance, block_device_info, power_on)

    def confirm_migration(self, context, migration, instance, network_info):
        self._migrationops.confirm_migration(context, migration, instance,
                                             network_info)

    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        self._migrationops.finish_revert_migration(
            context, instance, network_info, block_device_info, power_on)

    # ---- live migration ----

    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        return self._livemigrationops.check_can_live_migrate_destination(
            context, instance, src_compute_info, dst_compute_info,
            block_migration, disk_over_commit)

    def cleanup_live_migration_destination_check(self, context,
                                                 dest_check_data):
        self._livemigrationops.cleanup_live_migration_destination_check(
            context, dest_check_data)

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        return self._livemigrationops.check_can_live_migrate_source(
            context, instance, dest_check_data)

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        return self._livemigrationops.pre_live_migration(
            context, instance, block_device_info, network_info,
            migrate_data)

    def live_migration(self, context, instance, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        self._livemigrationops.live_migration(
            context, instance, dest, post_method, recover_method,
            block_migration, migrate_data)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        self.destroy(context, instance, network_info, block_device_info,
                     destroy_disks=destroy_disks)

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        self._livemigrationops.post_live_migration(
            context, instance, block_device_info, migrate_data)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        self._livemigrationops.post_live_migration_at_destination(
            context, instance, network_info, block_migration)

    # ---- evacuation: whose files are they? ----

    def instance_on_disk(self, instance):
        """Whether this host sees the instance's root disk (bool).

        nova asks on an evacuation's destination (``ComputeManager.
        _do_rebuild_instance``) and keeps the disks when True.
        """
        return self._pathutils.instance_files_here(instance.name)

    def check_instance_shared_storage_local(self, context, instance):
        return self._pathutils.check_instance_shared_storage_local(instance)

    def check_instance_shared_storage_remote(self, context, data):
        return self._pathutils.check_instance_shared_storage_remote(data)

    def check_instance_shared_storage_cleanup(self, context, data):
        self._pathutils.check_instance_shared_storage_cleanup(data)

    def get_instance_disk_info(self, instance, block_device_info=None):
        # Hyper-V moves the disks itself (shared-nothing live migration);
        # nova needs no list of them.
        return None
