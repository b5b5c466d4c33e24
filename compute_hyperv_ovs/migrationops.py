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

nova 28 already refuses, on the source and before anything changes, a
resize to a smaller root disk ("Cannot resize the root disk to a smaller
size", ``MigrationOps._check_target_flavor``); Hyper-V cannot shrink a
virtual disk either.  Changed here: confirm removes the source's emptied
instance directory, which nova 28 leaves behind.
"""

import errno
import os

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

    def confirm_migration(self, context, migration, instance, network_info):
        """Remove the source's files once the migration is confirmed.

        The base removes ``<instance>_revert``; the instance directory it
        moved the files out of stays behind, empty.  It is removed only if
        empty: with a shared instances path it holds the migrated disks.
        """
        super().confirm_migration(context, migration, instance, network_info)
        instance_dir = self._pathutils.get_instance_dir(instance.name,
                                                        create_dir=False)
        # One step, so nothing written in between is lost.  os-win's
        # PathUtils has no remove-if-empty (check_remove_dir and rmtree
        # remove the whole tree); os.rmdir is RemoveDirectoryW on Windows,
        # which fails with ERROR_DIR_NOT_EMPTY (errno ENOTEMPTY) or
        # ERROR_PATH_NOT_FOUND (FileNotFoundError).
        try:
            os.rmdir(instance_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            LOG.debug('Keeping the instance directory %s: it is not empty',
                      instance_dir, instance=instance)
            return
        LOG.debug('Removed the emptied instance directory %s', instance_dir,
                  instance=instance)
