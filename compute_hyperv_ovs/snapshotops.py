"""Snapshots of the base driver, uploaded with their real disk format.

nova 28's ``SnapshotOps`` takes a Hyper-V checkpoint, copies the root disk
(merged with its base image when it is a differencing disk), uploads the
copy to glance and removes the checkpoint.  It declares every upload
``disk_format=vhd`` (``SnapshotOps._save_glance_image``), also the copy of
a VHDX root disk.  glance keeps what it is told, so a snapshot of a VHDX
server could not be booted again: the image cache refuses an image whose
content is not its declared format (unshelve, a server from the snapshot).
Here the upload declares the file's own format.
"""

from nova.image import glance
from nova.virt.hyperv import snapshotops
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class SnapshotOps(snapshotops.SnapshotOps):

    def _save_glance_image(self, context, image_id, image_vhd_path):
        """Upload ``image_vhd_path`` as the data of glance image ``image_id``.

        :param image_vhd_path: the merged copy of the root disk, a VHD or
            VHDX file; its format (read from the file by os-win's
            ``VHDUtils.get_vhd_format``) becomes the image's
            ``disk_format`` (``vhd`` or ``vhdx``), container ``bare``.
        :raises os_win.exceptions.VHDException: the file is neither.
        """
        disk_format = self._vhdutils.get_vhd_format(image_vhd_path).lower()
        image_service, image_id = glance.get_remote_image_service(
            context, image_id)
        metadata = {'disk_format': disk_format, 'container_format': 'bare'}
        LOG.debug('Uploading %(path)s to image %(image)s as %(format)s',
                  {'path': image_vhd_path, 'image': image_id,
                   'format': disk_format})
        with self._pathutils.open(image_vhd_path, 'rb') as f:
            image_service.update(context, image_id, metadata, f,
                                 purge_props=False)
