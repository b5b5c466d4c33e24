"""Cold migration and resize of the base driver, with this driver's VIFs.

nova 28's ``MigrationOps`` already does what a shared-nothing cold
migration needs: the source powers the VM off, copies its disks to the
destination's instances share, keeps its own files in
``<instance>_revert`` and destroys the VM (which unplugs its OVS port);
the destination re-parents the root disk onto its own image cache,
resizes it, re-creates the VM and powers it on, which plugs the NIC into
its vSwitch and OVSDB (LP #1657424, nova 568a682e).  Confirm and revert
are the base's too.  Through the driver's ``VMOps`` every plug and unplug
goes through this driver's VIF driver.

Changed here: a resize that would shrink the root disk says what to do,
and confirm removes the source's emptied instance directory, which nova
28 leaves behind.
"""

import os

from nova import exception
from nova.i18n import _
from nova.virt.hyperv import migrationops
from oslo_log import log as logging

from compute_hyperv_ovs import imagecache

LOG = logging.getLogger(__name__)


class MigrationOps(migrationops.MigrationOps):
    """nova 28's ``MigrationOps`` with the driver's VMOps and image cache.

    :param vmops: the driver's :class:`compute_hyperv_ovs.vmops.VMOps`.
    """

    def __init__(self, vmops):
        super().__init__()
        self._vmops = vmops
        self._imagecache = imagecache.ImageCache()

    def _check_target_flavor(self, instance, flavor):
        """Refuse a flavor whose root disk is smaller than the current one.

        Runs on the source before anything changes.  Hyper-V cannot shrink
        a virtual disk (``ResizeVirtualDisk`` only grows it; os-win
        ``vhdutils._check_resize_needed``).  nova's API already refuses
        flavors smaller than the one the server was booted with (the
        image's ``min_disk`` in the instance's system metadata); this
        catches a server grown by an earlier resize.

        :raises nova.exception.InstanceFaultRollback: wrapping
            ``CannotResizeDisk``; nova keeps the server as it was.
        """
        new_root_gb = flavor.root_gb
        curr_root_gb = instance.flavor.root_gb
        if new_root_gb < curr_root_gb:
            raise exception.InstanceFaultRollback(
                exception.CannotResizeDisk(reason=_(
                    'the root disk of %(curr)s GB cannot shrink to %(new)s '
                    'GB, Hyper-V cannot shrink a virtual disk; resize to a '
                    'flavor with a root disk of at least %(curr)s GB') % {
                        'curr': curr_root_gb, 'new': new_root_gb}))

    def confirm_migration(self, context, migration, instance, network_info):
        """Remove the source's files once the migration is confirmed.

        The base removes ``<instance>_revert``; the instance directory it
        moved the files out of stays behind, empty.  It is removed only if
        empty: with a shared instances path it holds the migrated disks.
        """
        super().confirm_migration(context, migration, instance, network_info)
        instance_dir = self._pathutils.get_instance_dir(instance.name,
                                                        create_dir=False)
        if self._pathutils.exists(instance_dir) and not os.listdir(
                instance_dir):
            LOG.debug('Removing the emptied instance directory %s',
                      instance_dir, instance=instance)
            self._pathutils.check_remove_dir(instance_dir)
