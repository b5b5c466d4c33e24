"""The Hyper-V image cache, refusing images that are not what they claim.

Each failure has its own error: a fetched file that is not a VHD/VHDX (or
not the declared one) is a bad image (``ImageNotVHD``); copying the cached
VHD for the flavor's root disk size (``ImageCopyFailed``) or resizing that
copy (``ImageResizeFailed``) is not, and says what failed.
"""

import os

from nova import exception as nova_exception
from nova.virt.hyperv import imagecache
from os_win import exceptions as os_win_exc
from oslo_log import log as logging

from compute_hyperv_ovs import exception

LOG = logging.getLogger(__name__)


class ImageCache(imagecache.ImageCache):

    def get_cached_image(self, context, instance, rescue_image_id=None):
        """Return the cached base VHD/VHDX path of the instance's image.

        On top of the base cache: a file that is neither VHD nor VHDX, or
        whose format differs from the image's declared ``disk_format``, is
        removed from the cache and refused.

        :raises compute_hyperv_ovs.exception.ImageNotVHD: as above.
        :raises compute_hyperv_ovs.exception.ImageCopyFailed: see
            :meth:`_resize_and_cache_vhd`.
        :raises compute_hyperv_ovs.exception.ImageResizeFailed: idem.
        :raises nova.exception.FlavorDiskSmallerThanImage: a VHD base image
            larger than the flavor's root disk.
        """
        image_id = rescue_image_id or instance.image_ref
        try:
            path = super().get_cached_image(context, instance,
                                            rescue_image_id)
        except os_win_exc.VHDException:
            # The base class already removed the fetched file.
            raise exception.ImageNotVHD(
                image_id=image_id,
                reason='its content is neither VHD nor VHDX')
        if rescue_image_id:
            return path

        declared = instance.image_meta.disk_format
        actual = path.rsplit('.', 1)[-1].lower()
        if declared != actual:
            self._forget(image_id, path)
            raise exception.ImageNotVHD(
                image_id=image_id,
                reason='it is declared disk_format=%s but its content is %s'
                % (declared, actual.upper()))
        return path

    def _resize_and_cache_vhd(self, instance, vhd_path):
        """Cache a copy of a VHD image grown to the flavor's root disk.

        The base copies ``<image>.vhd`` to ``<image>_<root_gb>.vhd`` and
        resizes the copy (removing it when either fails); its failures are
        told apart here: os-win's copy raises ``IOError`` (``PathUtils.copy``
        on a ``CopyFileW`` failure), its VHD calls raise ``VHDException``,
        which ``get_cached_image`` would otherwise take for a file that is
        not a VHD.

        :returns: the resized copy's path, or None when the image already
            has the flavor's size.
        :raises compute_hyperv_ovs.exception.ImageCopyFailed: the copy
            failed (e.g. ``ERROR_DISK_FULL``).
        :raises compute_hyperv_ovs.exception.ImageResizeFailed: reading the
            VHD's size or resizing the copy failed (e.g. a differencing
            VHD, which Hyper-V cannot resize).
        :raises nova.exception.FlavorDiskSmallerThanImage: as the base.
        """
        root, ext = os.path.splitext(vhd_path)
        image_id = os.path.basename(root)
        root_gb = self._get_root_vhd_size_gb(instance)
        resized_path = '%s_%s%s' % (root, root_gb, ext)
        try:
            return super()._resize_and_cache_vhd(instance, vhd_path)
        except nova_exception.FlavorDiskSmallerThanImage:
            raise
        except os_win_exc.VHDException as exc:
            LOG.error('Could not resize the cached image %(path)s: %(err)s',
                      {'path': resized_path, 'err': exc}, instance=instance)
            raise exception.ImageResizeFailed(
                image_id=image_id, size_gb=root_gb, path=resized_path,
                reason=exc) from exc
        except OSError as exc:
            LOG.error('Could not copy the cached image %(src)s to %(path)s: '
                      '%(err)s', {'src': vhd_path, 'path': resized_path,
                                  'err': exc}, instance=instance)
            raise exception.ImageCopyFailed(
                image_id=image_id, path=resized_path, reason=exc) from exc

    def _forget(self, image_id, path):
        # The file was fetched for an image whose metadata lies; keeping it
        # would let the next boot of that image skip the check's fetch.
        for stale in {path, self._pathutils.get_image_path(image_id)}:
            if stale and self._pathutils.exists(stale):
                LOG.info('Removing %s from the image cache', stale)
                self._pathutils.remove(stale)
