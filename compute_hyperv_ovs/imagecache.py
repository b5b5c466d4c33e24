"""The Hyper-V image cache, refusing images that are not what they claim."""

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

    def _forget(self, image_id, path):
        # The file was fetched for an image whose metadata lies; keeping it
        # would let the next boot of that image skip the check's fetch.
        for stale in {path, self._pathutils.get_image_path(image_id)}:
            if stale and self._pathutils.exists(stale):
                LOG.info('Removing %s from the image cache', stale)
                self._pathutils.remove(stale)
