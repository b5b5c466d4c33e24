"""Shared-nothing live migration of a Hyper-V VM (the Hyper-V part).

Where each step runs and what it does (nova 34's order,
``ComputeManager.live_migration`` and friends; the Hyper-V steps follow
nova 28 ``nova.virt.hyperv.livemigrationops``):

- destination, :meth:`LiveMigrationOps.check_can_live_migrate_destination`:
  the VM holds no PCI device (Hyper-V cannot live migrate a VM with
  devices assigned by Discrete Device Assignment; nova's conductor lets
  one through when the operator tagged the devices ``live_migratable``),
  Hyper-V live migration is enabled here, this CPU can run the VM, the
  extra checks a network back end adds (``destination_checks``), and
  whether both hosts share the instances path;
- source, :meth:`~LiveMigrationOps.check_can_live_migrate_source`: Hyper-V
  live migration is enabled here too (nova 28 found out only when the move
  started, after the destination was prepared);
- destination, :meth:`~LiveMigrationOps.pre_live_migration`: the checks
  again with the destination's port bindings, the instance directory and
  the cached image the VM's differencing disk needs at the same path;
- source, :meth:`~LiveMigrationOps.live_migration`: stop the console log
  handler (it holds the log files open), copy the console logs and DVD
  images (the config drive ISO) unless the instances path is shared, and
  have Hyper-V move the VM and its disks.  A failed move is rolled back
  through nova's ``recover_method`` with the migration set to ``error``
  and the reason recorded as an instance action event
  (:data:`FAILURE_EVENT`) worded for the operator;
- source, :meth:`~LiveMigrationOps.post_live_migration`: drop the source's
  instance directory; destination,
  :meth:`~LiveMigrationOps.post_live_migration_at_destination`: plug the
  VIFs and start the console log handler.

Volumes (nova 28 ``livemigrationops.pre_live_migration`` /
``post_live_migration``): the destination connects the VM's volumes in
``pre_live_migration``, before the VM arrives, and makes a *planned VM*
whose passthrough disks name its own disks of those volumes (Hyper-V
moves a VM with passthrough disks only into such a planned VM); the
source disconnects them in ``post_live_migration``, once the VM has left.
A rollback destroys the planned VM and disconnects what the destination
connected (the driver's ``rollback_live_migration_at_destination``, a
destroy).

The seam for a network back end: ``destination_checks``, callables
``check(context, instance, dest_hostname, network_info, migrate_data)``
that raise ``nova.exception.MigrationPreCheckError`` to refuse a
destination.  They run in ``check_can_live_migrate_destination`` (with
the instance's network info and no migrate data yet) and again in
``pre_live_migration`` (with what nova passes there), before this module
changes anything.  A back end may also subclass :class:`LiveMigrationOps`
and extend a step, calling ``super()`` first.
"""

import sys
import traceback

import nova.conf
from nova import exception
from nova.i18n import _
from nova import objects
from nova.objects import migrate_data as migrate_data_obj
from nova.virt import driver
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_serialization import jsonutils

from compute_hyperv_ovs.hyperv import block_device
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.hyperv import pcidevices

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Name of the instance action event that records why Hyper-V failed a move.
FAILURE_EVENT = 'hyperv_live_migrate_vm'

# Hyper-V's wording when a VM whose processor features are not limited
# cannot run on the destination's CPU ("The virtual machine '<vm>' is using
# processor-specific features not supported on physical computer
# '<host>'", learn.microsoft.com/en-us/windows-server/virtualization/
# hyper-v/manage/processor-compatibility-mode-hyper-v).
PROCESSOR_REFUSAL = 'processor-specific features'

# nova keeps 255 characters of an event's details: advice before data.
LIMIT_CPU_FEATURES_ADVICE = _(
    'set [hyperv] limit_cpu_features = True on all hosts, then '
    'cold-migrate or resize the server once to re-create its VM')


class LiveMigrationOps(object):
    """The Hyper-V steps of a live migration, on both hosts.

    :param vmops: the driver's ``VMOps`` (plugs VIFs, copies DVD images).
    :param image_cache: the driver's ``ImageCache``.
    :param serial_console_ops: the driver's ``SerialConsoleOps``, whose
        handlers hold the VMs' console logs open.
    :param destination_checks: the back end's extra destination checks
        (see the module docstring).
    """

    def __init__(self, vmops, image_cache, serial_console_ops,
                 destination_checks=()):
        self._vmops = vmops
        self._imagecache = image_cache
        self._serial_console_ops = serial_console_ops
        self._destination_checks = tuple(destination_checks)
        self._livemigrutils = osutils.per_thread(
            utilsfactory.get_livemigrationutils)
        self._pathutils = pathutils.PathUtils()
        self._block_dev_man = block_device.BlockDeviceInfoManager()

    # ---- pre-checks ----

    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        """Refuse, on the destination, a move that cannot work.

        :param src_compute_info: the source's ComputeNode as a dict
            (``cpu_info`` is nova's JSON with a ``features`` list).
        :param dst_compute_info: this host's ComputeNode as a dict.
        :returns: ``HyperVLiveMigrateData`` with ``is_shared_instance_path``
            (nova 34's object, version 1.5).
        :raises nova.exception.MigrationPreCheckError: why, and what to do.
        """
        dest = dst_compute_info.get('hypervisor_hostname')
        self._refuse_pci_devices(instance)
        self._check_live_migration_enabled(dest)
        self._run_destination_checks(context, instance, dest,
                                     instance.get_network_info(), None)
        self._check_cpu_features(src_compute_info, dst_compute_info)
        try:
            shared = self._pathutils.check_remote_instances_dir_shared(
                instance.host)
        except (exception.FileNotFound, OSError) as exc:
            # nova 28 caught only FileNotFound; a share that cannot be
            # reached at all raises OSError (compute-hyperv 16).
            raise exception.MigrationPreCheckError(reason=_(
                'the instances share of %(src)s cannot be reached from '
                '%(dest)s (%(err)s); check [hyperv] instances_path_share '
                'and the account nova-compute runs as') % {
                    'src': instance.host, 'dest': dest, 'err': exc})
        return migrate_data_obj.HyperVLiveMigrateData(
            is_shared_instance_path=shared)

    def cleanup_live_migration_destination_check(self, context,
                                                 dest_check_data):
        """Nothing to undo: the destination checks change nothing."""
        LOG.debug('No destination check state to clean up')

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data):
        """Refuse when Hyper-V live migration is disabled on the source.

        :returns: ``dest_check_data``, unchanged.
        :raises nova.exception.MigrationPreCheckError: as above.
        """
        self._check_live_migration_enabled(instance.host)
        return dest_check_data

    @staticmethod
    def _refuse_pci_devices(instance):
        """Refuse a VM with PCI devices: Hyper-V cannot live migrate it.

        "VMs using [DDA] don't support ... Live migration of a VM"
        (Microsoft, "Plan for deploying devices by using Discrete Device
        Assignment"); Hyper-V would fail the move only once the
        destination is prepared.

        :raises nova.exception.MigrationPreCheckError: naming the devices.
        """
        devices = pcidevices.claimed_devices(instance)
        if devices:
            raise exception.MigrationPreCheckError(reason=_(
                'the server holds PCI device(s) %s (Discrete Device '
                'Assignment), which Hyper-V cannot live migrate; cold '
                'migrate it (openstack server migrate) instead') %
                ', '.join(dev.address for dev in devices))

    def _check_live_migration_enabled(self, hostname):
        try:
            self._livemigrutils.check_live_migration_config()
        except os_win_exc.HyperVException as exc:
            raise exception.MigrationPreCheckError(reason=_(
                'Hyper-V on %(host)s cannot live-migrate (%(err)s); enable '
                'it there with Enable-VMMigration and '
                'Set-VMMigrationNetwork') % {'host': hostname, 'err': exc})

    def _run_destination_checks(self, context, instance, dest, network_info,
                                migrate_data):
        for check in self._destination_checks:
            check(context, instance, dest, network_info, migrate_data)

    @staticmethod
    def _cpu_features(compute_info):
        try:
            return frozenset(
                jsonutils.loads(compute_info['cpu_info'])['features'])
        except (KeyError, TypeError, ValueError):
            return None

    def _check_cpu_features(self, src_compute_info, dst_compute_info):
        """Refuse a destination lacking CPU features of the source.

        A VM whose processor features are not limited uses every feature
        of its host's processor, so Hyper-V moves it live only to a host
        whose processor has all of them; a destination with more features
        takes it (Microsoft, "Processor compatibility mode in Hyper-V",
        learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/
        manage/processor-compatibility-mode-hyper-v).  With limited
        processor features (processor compatibility mode), which VMs get
        when created with ``[hyperv] limit_cpu_features = True``, it moves
        between any processors of the same vendor.  os-win cannot read a
        VM's setting back, so this check trusts the destination's option
        as the deployment's (nova's Hyper-V guide asks for it on every
        host): it refuses only when the destination lacks a feature and
        the option is off.  A VM created before the option was turned on
        passes, and Hyper-V's own refusal is then reported by
        :meth:`live_migration`.  Compute nodes without a feature list are
        not compared.

        :raises nova.exception.MigrationPreCheckError: naming the missing
            features and ``limit_cpu_features``.
        """
        src = self._cpu_features(src_compute_info)
        dst = self._cpu_features(dst_compute_info)
        if src is None or dst is None or src <= dst:
            return
        if CONF.hyperv.limit_cpu_features:
            return
        raise exception.MigrationPreCheckError(reason=_(
            '%(dst)s lacks processor features of %(src)s and VMs here do '
            'not limit theirs; %(advice)s (%(dst)s lacks %(missing)s)') % {
                'src': src_compute_info.get('hypervisor_hostname'),
                'dst': dst_compute_info.get('hypervisor_hostname'),
                'missing': ', '.join(sorted(src - dst)),
                'advice': LIMIT_CPU_FEATURES_ADVICE})

    # ---- destination, before the move ----

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, migrate_data):
        """Get this host ready to receive the VM.

        Checks again (Hyper-V live migration enabled, the back end's
        ``destination_checks``), connects the volumes and makes the
        planned VM for their passthrough disks, then makes the instance
        directory and, with ``[DEFAULT] use_cow_images``, caches the image
        the VM's root disk is a child of: Hyper-V moves the child to the
        same path here and needs its parent there.  If caching fails, an
        instance directory made here is removed again.

        :param network_info: the VIFs as nova passes them.
        :param migrate_data: this move's ``HyperVLiveMigrateData``.
        :returns: ``migrate_data`` (nova 34 takes the driver's answer).
        :raises nova.exception.MigrationPreCheckError: a check failed;
            nothing was changed.  A volume that does not connect raises
            what the connector raises, with the volumes connected here
            disconnected again.
        :raises: what ``ImageCache.get_cached_image`` raises.
        """
        dest = self._destination_name(migrate_data)
        self._check_live_migration_enabled(dest)
        self._run_destination_checks(context, instance, dest, network_info,
                                     migrate_data)
        self._prepare_volumes(instance, block_device_info)
        instance_dir = self._pathutils.get_instance_dir(instance.name,
                                                        create_dir=False)
        made_dir = not self._pathutils.exists(instance_dir)
        self._pathutils.get_instance_dir(instance.name)
        try:
            if (CONF.use_cow_images and instance.image_ref and
                    not self._block_dev_man.is_boot_from_volume(
                        block_device_info)):
                self._imagecache.get_cached_image(context, instance)
        except Exception:
            if made_dir:
                self._pathutils.check_remove_dir(instance_dir)
            raise
        return migrate_data

    def _prepare_volumes(self, instance, block_device_info):
        """Connect the volumes here; a planned VM for passthrough disks."""
        if not driver.block_device_info_get_mapping(block_device_info):
            return
        volumeops = self._vmops.volumeops
        volumeops.connect_volumes(block_device_info)
        try:
            disk_paths = volumeops.get_disk_path_mapping(block_device_info)
            if disk_paths:
                self._livemigrutils.create_planned_vm(
                    instance.name, instance.host, disk_paths)
        except Exception:
            LOG.error('Could not prepare the volumes for the incoming VM; '
                      'disconnecting them here', instance=instance)
            volumeops.disconnect_volumes(block_device_info)
            raise

    @staticmethod
    def _destination_name(migrate_data):
        # The destination's service host, as the migration record names it
        # (nova sets migrate_data.migration before pre_live_migration).
        if (migrate_data is not None and
                migrate_data.obj_attr_is_set('migration')):
            return migrate_data.migration.dest_compute
        return CONF.host

    # ---- source: the move ----

    def live_migration(self, context, instance, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        """Have Hyper-V move the running VM to ``dest``.

        Success calls ``post_method(context, instance, dest,
        block_migration, migrate_data)``.  Any failure (copying the console
        logs or DVD images, or the move itself) leaves the VM running here,
        restarts its console log handler, records why (instance action
        event :data:`FAILURE_EVENT`; a CPU refusal names
        ``limit_cpu_features``) and calls ``recover_method(context,
        instance, dest, migrate_data, migration_status='error')``; it
        does not raise.

        :param dest: the destination's host name.
        :param migrate_data: ``HyperVLiveMigrateData``; when it does not say
            whether the instances path is shared, that is checked and set.
        """
        name = instance.name
        if migrate_data is None:
            migrate_data = migrate_data_obj.HyperVLiveMigrateData()
        try:
            if not migrate_data.obj_attr_is_set('is_shared_instance_path'):
                migrate_data.is_shared_instance_path = (
                    self._pathutils.check_remote_instances_dir_shared(dest))
            shared = migrate_data.is_shared_instance_path
            # The handler holds the console log files open; Hyper-V and
            # the copies below need them closed.
            self._serial_console_ops.stop_console_handler(name)
            if not shared:
                self._pathutils.copy_vm_console_logs(name, dest)
                self._vmops.copy_vm_dvd_disks(name, dest)
            self._livemigrutils.live_migrate_vm(name, dest,
                                                migrate_disks=not shared)
        except Exception:
            self._recover(context, instance, dest, migrate_data,
                          recover_method, sys.exc_info())
            return
        post_method(context, instance, dest, block_migration, migrate_data)

    def _recover(self, context, instance, dest, migrate_data,
                 recover_method, exc_info):
        reason = self._failure_reason(exc_info[1], dest)
        LOG.error('Live migration to %(dest)s failed: %(reason)s',
                  {'dest': dest, 'reason': reason}, instance=instance)
        # Recorded first, so the reason is there once the migration shows
        # the error; recording never stops the rollback.
        self._record_failure(context, instance, reason, exc_info)
        self._serial_console_ops.start_console_handler(instance.name)
        recover_method(context, instance, dest, migrate_data,
                       migration_status='error')

    @staticmethod
    def _failure_reason(exc, dest):
        """The operator's reading of why Hyper-V did not move the VM."""
        if exc is not None and PROCESSOR_REFUSAL in str(exc):
            return _('Hyper-V refused to move the VM to %(dest)s: its '
                     'processor features are not limited and that CPU '
                     'lacks some of them; %(advice)s (%(err)s)') % {
                         'dest': dest, 'err': exc,
                         'advice': LIMIT_CPU_FEATURES_ADVICE}
        return _('Hyper-V could not live-migrate the VM to %(dest)s: '
                 '%(err)s') % {'dest': dest, 'err': exc}

    @staticmethod
    def _record_failure(context, instance, reason, exc_info):
        """Add a failed :data:`FAILURE_EVENT` to the instance's action.

        nova's rollback records nothing of the driver's error; the event
        makes it visible in ``openstack server event show``.
        """
        tb = (''.join(traceback.format_exception(*exc_info))
              if exc_info[0] else reason)
        try:
            objects.InstanceActionEvent.event_start(
                context, instance.uuid, FAILURE_EVENT, want_result=False,
                host=instance.host)
            objects.InstanceActionEvent.event_finish_with_failure(
                context, instance.uuid, FAILURE_EVENT, exc_val=reason,
                exc_tb=tb, want_result=False)
        except Exception:
            # The rollback matters more than the record of why.
            LOG.exception('Could not record why the live migration failed',
                          instance=instance)

    # ---- after the move ----

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        """Source: disconnect the VM's volumes, remove its directory.

        The volumes are disconnected here once the VM runs on the
        destination (nova passes this host's connection info).  The
        instance directory goes only without a shared instances path (with
        one, the destination uses the same directory); without
        ``migrate_data`` nothing is removed, as it cannot be told.
        """
        if driver.block_device_info_get_mapping(block_device_info):
            self._vmops.volumeops.disconnect_volumes(block_device_info)
        if (migrate_data is None or
                not migrate_data.obj_attr_is_set('is_shared_instance_path')
                or migrate_data.is_shared_instance_path):
            return
        self._pathutils.get_instance_dir(instance.name, create_dir=False,
                                         remove_dir=True)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False):
        """Destination: plug the arrived VM's VIFs, log its console."""
        self._vmops.plug_vifs(instance, network_info)
        self._serial_console_ops.start_console_handler(instance.name)
