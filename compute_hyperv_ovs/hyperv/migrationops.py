"""Cold migration and resize of a Hyper-V VM between (or on) hosts.

The steps follow nova 28 (``nova.virt.hyperv.migrationops``), which
compute-hyperv 16 keeps in substance:

1. source, ``migrate_disk_and_power_off``: refuse a flavor whose disks
   would shrink, turn the VM off, copy its disk files and console logs
   into the destination's instance directory (over its instances share; see
   ``PathUtils.get_instance_dir(remote_server=...)``), keep the source's
   own files in ``<instance>_revert`` and delete the VM, not its files;
2. destination, ``finish_migration``: re-parent the root disk onto this
   host's cached image, grow the disks to the new flavor, re-create the
   VM and start it;
3. source, ``confirm_migration``: drop ``<instance>_revert`` and the
   emptied instance directory (nova 28 left the latter behind);
   or ``finish_revert_migration``: put ``<instance>_revert`` back and
   re-create the VM there.

Hyper-V cannot shrink a virtual disk, so a smaller root (or ephemeral)
disk is refused on the source before anything changes, with nova's
``InstanceFaultRollback`` so that the server stays as it was (nova's
compute manager turns it back to its state and re-raises the reason).
A copy that fails puts the source's files back and the VM back in its
power state, and is reported the same way.

VIFs are plugged only through ``VMOps`` (``create_instance`` and
``power_on``), where a network back end hooks in.
"""

import os

from nova.compute import power_state
from nova import exception
from nova.i18n import _
from nova import objects
from nova.virt import configdrive
from nova.virt import driver
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_utils import units

from compute_hyperv_ovs import exception as hyperv_exception
from compute_hyperv_ovs.hyperv import block_device
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import disk_qos
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils

LOG = logging.getLogger(__name__)


def _shrink_refusal(what, current_gb, requested_gb):
    # The first sentences keep nova 28's wording, which operators' tooling
    # may match; the last says what to do instead.
    return exception.InstanceFaultRollback(exception.CannotResizeDisk(
        reason=_('Cannot resize the %(what)s to a smaller size. Current '
                 'size: %(current)s GB. Requested size: %(requested)s GB. '
                 'Hyper-V cannot shrink a virtual disk; choose a flavor '
                 'whose %(what)s is at least %(current)s GB') % {
            'what': what, 'current': current_gb,
            'requested': requested_gb}))


class MigrationOps(object):
    """Cold migration and resize, on the source and the destination.

    :param vmops: the driver's ``VMOps`` (creates, powers and deletes the
        VM, plugs its VIFs).
    :param image_cache: the driver's ``ImageCache`` (the destination's
        copy of the image a root disk is a child of).
    """

    def __init__(self, vmops, image_cache):
        self._vmops = vmops
        self._imagecache = image_cache
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._vhdutils = osutils.per_thread(utilsfactory.get_vhdutils)
        self._pathutils = pathutils.PathUtils()
        self._block_dev_man = block_device.BlockDeviceInfoManager()

    # ---- source ----

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        """Turn the VM off and copy its disks to ``dest``.

        :param dest: the destination's address (nova's
            ``migration.dest_host``); its instances share must be
            writable from here.
        :param flavor: the new ``nova.objects.Flavor``.
        :param timeout: seconds the guest gets to shut down (0: turn off).
        :param retry_interval: seconds between shutdown requests.
        :returns: ``''``: nova's ``disk_info``, which the destination does
            not need (the files are in place).
        :raises nova.exception.InstanceFaultRollback: with
            ``CannotResizeDisk`` (a disk would shrink; nothing changed) or
            ``ResizeError`` (copying failed; files and power state put
            back).
        """
        self._check_target_flavor(instance, flavor, block_device_info)
        was_running = (self._vmops.get_info(instance).state ==
                       power_state.RUNNING)
        self._vmops.power_off(instance, timeout, retry_interval)
        disk_files, _volume_drives = self._vmutils.get_vm_storage_paths(
            instance.name)
        if disk_files:
            try:
                self._move_disk_files(instance, disk_files, dest)
            except Exception as exc:
                LOG.exception('Could not copy the disks to %s; the server '
                              'stays here', dest, instance=instance)
                if was_running:
                    self._vmops.power_on(instance,
                                         block_device_info=block_device_info,
                                         network_info=network_info)
                raise exception.InstanceFaultRollback(exception.ResizeError(
                    reason=_('copying the disks to %(dest)s failed: '
                             '%(err)s; check that host\'s instances share '
                             'and free space') % {'dest': dest,
                                                  'err': exc})) from exc
        self._vmops.destroy(instance, network_info, block_device_info,
                            destroy_disks=False)
        return ''

    def _check_target_flavor(self, instance, flavor, block_device_info):
        """Refuse a flavor that would shrink a local disk.

        A server booted from a volume has no local root disk to shrink;
        a new flavor without ephemeral disk drops them, which is allowed
        (compute-hyperv 16 ``MigrationOps._check_target_flavor``).  A new
        flavor whose VM settings this host would refuse (``VMOps.
        check_resize_flavor``: RemoteFX, CPU pinning, uneven NUMA nodes
        ...) or whose disk quota Hyper-V cannot enforce
        (:func:`.disk_qos.check_flavor`) is refused here too, before the VM
        stops.
        """
        try:
            self._vmops.check_resize_flavor(instance, flavor)
            disk_qos.check_flavor(instance.uuid, flavor)
        except (hyperv_exception.VMRequestRefused,
                exception.InstanceUnacceptable) as exc:
            raise exception.InstanceFaultRollback(exc) from exc
        if (flavor.root_gb < instance.flavor.root_gb and
                not self._block_dev_man.is_boot_from_volume(
                    block_device_info)):
            raise _shrink_refusal(_('root disk'), instance.flavor.root_gb,
                                  flavor.root_gb)
        ephemerals = driver.block_device_info_get_ephemerals(
            block_device_info)
        current_eph_gb = (sum(eph['size'] for eph in ephemerals) or
                          instance.flavor.ephemeral_gb)
        if 0 < flavor.ephemeral_gb < current_eph_gb:
            raise _shrink_refusal(_('ephemeral disk'), current_eph_gb,
                                  flavor.ephemeral_gb)

    def _move_disk_files(self, instance, disk_files, dest):
        """Copy the disks and console logs to ``dest``, keep ours aside.

        The source's files end in ``<instance>_revert``.  When ``dest``'s
        instance directory is this one (a resize on this host, or a shared
        instances path; ``PathUtils.check_dirs_shared_storage``) the copies
        go through ``<instance dir>_tmp``.  On failure the copies are
        removed and the source's files put back before re-raising.
        """
        name = instance.name
        instance_dir = self._pathutils.get_instance_dir(name)
        dest_dir = self._pathutils.get_instance_dir(name, dest)
        revert_dir = self._pathutils.get_instance_migr_revert_dir(
            name, create_dir=True, remove_dir=True)
        shared = self._pathutils.check_dirs_shared_storage(instance_dir,
                                                           dest_dir)
        copy_dir = instance_dir + '_tmp' if shared else dest_dir
        try:
            self._pathutils.check_remove_dir(copy_dir)
            self._pathutils.makedirs(copy_dir)
            for path in list(disk_files) + self._console_logs(name):
                LOG.debug('Copying %(path)s to %(dir)s',
                          {'path': path, 'dir': copy_dir}, instance=instance)
                self._pathutils.copy(path, copy_dir)
            self._pathutils.move_folder_files(instance_dir, revert_dir)
            if shared:
                self._pathutils.move_folder_files(copy_dir, instance_dir)
                self._pathutils.rmtree(copy_dir)
        except Exception:
            self._undo_disk_move(instance, instance_dir, revert_dir, copy_dir)
            raise

    def _console_logs(self, instance_name):
        """The VM's console log files that exist (closed by power_off).

        They travel with the disks, so that ``console log show`` keeps the
        server's history on the new host, as a live migration keeps it
        (``PathUtils.copy_vm_console_logs``); nova 28 and compute-hyperv
        16 copied only the disks here, and the log started afresh.
        """
        return [path for path in
                self._pathutils.get_vm_console_log_paths(instance_name)
                if self._pathutils.exists(path)]

    def _undo_disk_move(self, instance, instance_dir, revert_dir, copy_dir):
        # Best effort: the copy's own error is what the caller reports.
        try:
            if self._pathutils.exists(copy_dir):
                self._pathutils.rmtree(copy_dir)
            if self._pathutils.exists(revert_dir):
                self._pathutils.move_folder_files(revert_dir, instance_dir)
                self._pathutils.rmtree(revert_dir)
        except Exception:
            LOG.exception('Could not put the disk files back from %s; move '
                          'them into %s by hand', revert_dir, instance_dir,
                          instance=instance)

    def confirm_migration(self, context, migration, instance, network_info):
        """Remove what the source kept for a revert.

        ``<instance>_revert`` goes, then the instance directory if it is
        empty (with a shared instances path, or a resize on this host, it
        holds the migrated disks and stays).
        """
        self._pathutils.get_instance_migr_revert_dir(instance.name,
                                                     remove_dir=True)
        instance_dir = self._pathutils.get_instance_dir(instance.name,
                                                        create_dir=False)
        # os.rmdir removes only an empty directory, in one step, so nothing
        # written there meanwhile is lost (RemoveDirectoryW on Windows).
        try:
            os.rmdir(instance_dir)
        except FileNotFoundError:
            return
        except OSError:
            LOG.debug('Keeping %s: it is not empty', instance_dir,
                      instance=instance)
            return
        LOG.debug('Removed the emptied %s', instance_dir, instance=instance)

    def finish_revert_migration(self, context, instance, network_info,
                                block_device_info=None, power_on=True):
        """Re-create the VM on the source from ``<instance>_revert``.

        :raises nova.exception.DiskNotFound: no root disk came back.
        :raises nova.exception.ConfigDriveNotFound: the instance needs a
            config drive and none came back.
        """
        name = instance.name
        instance_dir = self._pathutils.get_instance_dir(
            name, create_dir=False, remove_dir=True)
        revert_dir = self._pathutils.get_instance_migr_revert_dir(name)
        self._pathutils.rename(revert_dir, instance_dir)
        image_meta = objects.ImageMeta.from_instance(instance)
        self._recreate_vm(context, instance, network_info, image_meta,
                          block_device_info, power_on, resize=False)

    # ---- destination ----

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance=False,
                         block_device_info=None, power_on=True):
        """Adopt the copied disks and re-create the VM on this host.

        The root disk, when a differencing disk, is re-parented onto this
        host's cached image (fetched if needed, of the old flavor's size
        for a grown VHD, see ``ImageCache.get_cached_image``).  With
        ``resize_instance`` the root and ephemeral disks grow to the new
        flavor.  If re-creating the VM fails, the VM is deleted again and
        the disks stay for a revert.

        :param image_meta: ``nova.objects.ImageMeta`` of the instance.
        :raises nova.exception.DiskNotFound: the root (or an ephemeral)
            disk did not arrive.
        :raises nova.exception.CannotResizeDisk: a disk is larger than the
            new flavor's.
        """
        self._recreate_vm(context, instance, network_info, image_meta,
                          block_device_info, power_on,
                          resize=resize_instance, reparent=True)

    # ---- both ----

    def _recreate_vm(self, context, instance, network_info, image_meta,
                     block_device_info, power_on, resize, reparent=False):
        vm_gen = self._vmops.get_image_vm_generation(instance.uuid,
                                                     image_meta)
        self._block_dev_man.validate_and_update_bdi(
            instance, image_meta, vm_gen, block_device_info)
        root_device = block_device_info['root_disk']
        if root_device['type'] == constants.DISK:
            root_device['path'] = self._adopt_root_disk(
                context, instance, reparent, resize)
        elif root_device['type'] == constants.DVD:
            # An ISO-booted server's medium came with its other files
            # (Hyper-V lists DVD images among the VM's storage paths); it
            # is never resized.
            root_device['path'] = self._pathutils.lookup_root_iso_path(
                instance.name)
            if not root_device['path']:
                raise exception.DiskNotFound(
                    location=self._pathutils.get_instance_dir(instance.name))
        self._adopt_ephemeral_disks(instance, block_device_info['ephemerals'],
                                    resize)
        try:
            # Inside: a VM that create_instance leaves half made (a PCI
            # device Hyper-V refuses, a volume that fails) goes too.
            self._vmops.create_instance(instance, network_info, root_device,
                                        block_device_info, vm_gen,
                                        image_meta)
            self._attach_config_drive(instance, vm_gen)
            self._vmops.set_boot_order(instance.name, vm_gen,
                                       block_device_info)
            if power_on:
                self._vmops.power_on(instance,
                                     block_device_info=block_device_info,
                                     network_info=network_info)
        except Exception:
            LOG.error('Could not set up the re-created VM; deleting it, its '
                      'disks stay', instance=instance)
            # A failing destroy surfaces with the first error chained.
            self._vmops.destroy(instance, network_info, block_device_info,
                                destroy_disks=False)
            raise

    def _adopt_root_disk(self, context, instance, reparent, resize):
        root_path = self._pathutils.lookup_root_vhd_path(instance.name)
        if not root_path:
            raise exception.DiskNotFound(
                location=self._pathutils.get_instance_dir(instance.name))
        info = self._vhdutils.get_vhd_info(root_path)
        parent_path = info.get('ParentPath')
        if reparent and parent_path:
            local_parent = self._imagecache.get_cached_image(context,
                                                             instance)
            # Windows paths compare without case.
            if local_parent.lower() != parent_path.lower():
                LOG.debug('Re-parenting %(disk)s onto %(parent)s',
                          {'disk': root_path, 'parent': local_parent},
                          instance=instance)
                self._vhdutils.reconnect_parent_vhd(root_path, local_parent)
        if resize:
            self._grow_disk(root_path, info['VirtualSize'],
                            instance.flavor.root_gb * units.Gi)
        return root_path

    def _adopt_ephemeral_disks(self, instance, ephemerals, resize):
        """Find, grow, create or drop the ephemeral disks for the flavor.

        nova 28 ``MigrationOps._check_ephemeral_disks``: a single
        ephemeral disk takes the flavor's whole ``ephemeral_gb``; several
        keep their sizes (which disk would get what is not defined);
        an ephemeral disk whose size becomes 0 is removed.

        :param ephemerals: the block device info's ephemeral dicts
            (``size`` in GB), updated with ``path`` and ``format``.
        :raises nova.exception.DiskNotFound: without ``resize``, an
            ephemeral disk that should exist does not.
        """
        new_total_gb = instance.flavor.ephemeral_gb
        if len(ephemerals) == 1:
            ephemerals[0]['size'] = new_total_gb
        elif sum(eph['size'] for eph in ephemerals) != new_total_gb:
            LOG.warning('The ephemeral disks keep their sizes: several of '
                        'them cannot be fitted to the flavor\'s %s GB',
                        new_total_gb, instance=instance)
        for index, eph in enumerate(ephemerals):
            eph_name = 'eph%s' % index
            existing = self._pathutils.lookup_ephemeral_vhd_path(
                instance.name, eph_name)
            if existing and eph['size']:
                eph['path'] = existing
                self._grow_disk(
                    existing, self._vhdutils.get_vhd_size(
                        existing)['VirtualSize'], eph['size'] * units.Gi)
            elif existing:
                LOG.info('Removing %s: the flavor has no room for it',
                         existing, instance=instance)
                self._pathutils.remove(existing)
                eph['path'] = None
            else:
                eph['format'] = self._vhdutils.get_best_supported_vhd_format()
                eph['path'] = self._pathutils.get_ephemeral_vhd_path(
                    instance.name, eph['format'], eph_name)
                if not resize:
                    raise exception.DiskNotFound(location=eph['path'])
                if eph['size']:
                    self._vmops.create_ephemeral_disk(instance.name, eph)

    def _grow_disk(self, path, current_size, new_size):
        """Grow a disk to ``new_size`` bytes; refuse to shrink it."""
        if new_size < current_size:
            raise exception.CannotResizeDisk(reason=_(
                '%(path)s is %(current).1f GB and cannot shrink to '
                '%(new).1f GB; choose a flavor with disks at least as '
                'large') % {'path': path, 'current': current_size / units.Gi,
                            'new': new_size / units.Gi})
        if new_size == current_size:
            return
        parent_path = self._vhdutils.get_vhd_parent_path(path)
        if parent_path and path.lower().endswith('.vhd'):
            # Hyper-V grows a differencing VHDX but not a differencing VHD.
            self._flatten_vhd(path, parent_path)
        LOG.debug('Growing %(path)s to %(size)d bytes',
                  {'path': path, 'size': new_size})
        self._vhdutils.resize_vhd(path, new_size)

    def _flatten_vhd(self, child_path, parent_path):
        """Make the differencing ``child_path`` a stand-alone disk.

        The child is merged into a copy of its parent, which then takes the
        child's name.  The cached image itself is shared and stays as it
        is; a failure leaves the child as it was.
        """
        parent_copy = os.path.join(os.path.dirname(child_path),
                                   os.path.basename(parent_path))
        self._pathutils.copyfile(parent_path, parent_copy)
        try:
            self._vhdutils.reconnect_parent_vhd(child_path, parent_copy)
            try:
                self._vhdutils.merge_vhd(child_path)
            except Exception:
                # Not merged: the child goes back to the cached image.
                self._vhdutils.reconnect_parent_vhd(child_path, parent_path)
                raise
        except Exception:
            self._pathutils.remove(parent_copy)
            raise
        self._pathutils.rename(parent_copy, child_path)

    def _attach_config_drive(self, instance, vm_gen):
        if not configdrive.required_by(instance):
            return
        path = self._pathutils.lookup_configdrive_path(instance.name)
        if not path:
            raise exception.ConfigDriveNotFound(instance_uuid=instance.uuid)
        self._vmops.attach_config_drive(instance, path, vm_gen)
