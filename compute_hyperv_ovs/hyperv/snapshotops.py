"""Server snapshots: a Hyper-V checkpoint, a flat copy of the root disk,
and its upload to glance in the disk's own format.

While a checkpoint exists Hyper-V writes the VM's changes to a separate
AVHD(X) file, so the root disk file stays still and can be copied while
the guest runs.  A root disk that is a differencing disk (the default,
``[DEFAULT] use_cow_images``) is copied together with its parent, the
copy is re-parented onto the parent's copy and merged into it: the result
is one self-contained disk.  This is what nova 28 did
(``nova.virt.hyperv.snapshotops.SnapshotOps.snapshot``) and compute-hyperv
16 still does.

The one change (the project's fix, as compute-hyperv's
``_save_glance_image``): nova 28 declared every upload ``disk_format=vhd``,
also a VHDX disk's, and glance keeps what it is told; this driver's image
cache then refuses that image, whose content is not its declared format,
so a VHDX server's snapshot could not be booted, unshelved or rebuilt
from.  Here the upload declares the format read from the file.
"""

import os

from nova.compute import task_states
from nova import exception
from nova.image import glance
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils

LOG = logging.getLogger(__name__)

# The container of every upload: a bare disk file, as glance expects for
# VHD/VHDX images.
CONTAINER_FORMAT = 'bare'
# glance's disk_format of an ISO-booted server's snapshot.
ISO_FORMAT = constants.DISK_FORMAT_ISO.lower()


class SnapshotOps(object):
    """Snapshots of this host's VMs into glance images."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._vhdutils = osutils.per_thread(utilsfactory.get_vhdutils)
        self._pathutils = pathutils.PathUtils()

    def snapshot(self, context, instance, image_id, update_task_state):
        """Upload the instance's root disk as the data of ``image_id``.

        The task state goes to ``image_pending_upload`` once the
        checkpoint exists and to ``image_uploading`` before the upload, as
        nova's compute manager expects (``ComputeDriver.snapshot``).  The
        checkpoint and the export directory (``<instances>/export/<vm>``)
        are removed whatever happens.

        :param image_id: the glance image nova created for the snapshot.
        :param update_task_state: nova's callback,
            ``update_task_state(task_state, expected_state=None)``.
        A server booted from an ISO image has no root disk: its snapshot
        is its medium, see :meth:`_snapshot_iso_server`.

        :raises nova.exception.InstanceNotFound: no VM of that name here.
        :raises nova.exception.DiskNotFound: the VM has no root disk file
            in its instance directory (nothing to snapshot).
        :raises os_win.exceptions.VHDException: Hyper-V could not merge
            the copy (the facade maps it).
        """
        root_iso = self._pathutils.lookup_root_iso_path(instance.name)
        if root_iso:
            self._snapshot_iso_server(context, instance, image_id,
                                      update_task_state, root_iso)
            return
        try:
            checkpoint = self._vmutils.take_vm_snapshot(instance.name)
        except os_win_exc.HyperVVMNotFoundException:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        export_dir = None
        try:
            root_path = self._pathutils.lookup_root_vhd_path(instance.name)
            if not root_path:
                raise exception.DiskNotFound(
                    location=self._pathutils.get_instance_dir(
                        instance.name, create_dir=False))
            export_dir = self._pathutils.get_export_dir(instance.name)
            image_path = self._flat_copy(root_path, export_dir)
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD)
            self._upload(context, image_id, image_path)
            LOG.info('Uploaded the root disk as image %s', image_id,
                     instance=instance)
        finally:
            self._remove_checkpoint(instance, checkpoint)
            if export_dir:
                self._pathutils.rmtree(export_dir)

    def _snapshot_iso_server(self, context, instance, image_id,
                             update_task_state, root_iso):
        """Upload an ISO-booted server's medium (``root.iso``) as the image.

        Such a server has no root disk (see ``VMOps._create_root_iso``):
        what it boots is the read-only ISO, which the snapshot keeps, as
        ``disk_format`` iso; its ephemeral disks, like any server's, are
        not part of a snapshot.  So shelving and unshelving it boots the
        same medium again (nova powers the server off before the
        snapshot of a shelve; refusing here would leave it off).  No
        checkpoint is needed: nothing writes to the ISO.
        """
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        self._upload(context, image_id, root_iso, disk_format=ISO_FORMAT)
        LOG.info('Uploaded the ISO medium as image %s', image_id,
                 instance=instance)

    def _flat_copy(self, root_path, export_dir):
        """Copy ``root_path`` into ``export_dir`` as one stand-alone disk.

        :returns: the path of the disk to upload.
        """
        root_copy = os.path.join(export_dir, os.path.basename(root_path))
        LOG.debug('Copying %(src)s to %(dest)s',
                  {'src': root_path, 'dest': root_copy})
        self._pathutils.copyfile(root_path, root_copy)
        parent_path = self._vhdutils.get_vhd_parent_path(root_path)
        if not parent_path:
            return root_copy
        # The child's changes go into a copy of its parent: the cached
        # image itself is shared by other VMs and must stay as it is.
        parent_copy = os.path.join(export_dir, os.path.basename(parent_path))
        self._pathutils.copyfile(parent_path, parent_copy)
        self._vhdutils.reconnect_parent_vhd(root_copy, parent_copy)
        LOG.debug('Merging %(child)s into %(parent)s',
                  {'child': root_copy, 'parent': parent_copy})
        self._vhdutils.merge_vhd(root_copy)
        return parent_copy

    def _upload(self, context, image_id, image_path, disk_format=None):
        """Send ``image_path`` to glance as image ``image_id``'s data.

        ``disk_format`` is the file's own format as Hyper-V reads it
        (os-win ``VHDUtils.get_vhd_format``: ``VHD`` or ``VHDX``, lower
        case for glance); ``container_format`` is ``bare``.  Other image
        properties stay as nova set them (``purge_props=False``).

        :param disk_format: glance's format, when the file is no VHD/VHDX.
        """
        disk_format = (disk_format or
                       self._vhdutils.get_vhd_format(image_path).lower())
        image_service, image_id = glance.get_remote_image_service(
            context, image_id)
        metadata = {'disk_format': disk_format,
                    'container_format': CONTAINER_FORMAT}
        LOG.debug('Uploading %(path)s to image %(image)s as %(format)s',
                  {'path': image_path, 'image': image_id,
                   'format': disk_format})
        # The builtin open: os-win's PathUtils.open imports six, which
        # os-win 5.9.0 does not declare.
        with open(image_path, 'rb') as data:
            image_service.update(context, image_id, metadata, data,
                                 purge_props=False)

    def _remove_checkpoint(self, instance, checkpoint):
        # A checkpoint left behind only costs disk space (its AVHDX grows
        # with the guest's writes); failing the snapshot for it would also
        # hide the upload's own result.
        try:
            self._vmutils.remove_vm_snapshot(checkpoint)
        except Exception:
            LOG.exception('Could not remove the checkpoint %s; remove it '
                          'with Remove-VMSnapshot', checkpoint,
                          instance=instance)
