"""The host's cache of glance images: fetch, check, grow and age them.

Layout (``<instances_path>/_base``, :meth:`PathUtils.get_base_vhd_dir`):

- ``<image id>.vhd`` / ``<image id>.vhdx``: an image as glance served it,
  named after the format Hyper-V reads from its content;
- ``<image id>.iso``: an ISO image (``disk_format`` iso), which a server
  boots from a DVD drive (compute-hyperv 16 ``ImageCache.cache_image``);
  it is never grown;
- ``<image id>_<root_gb>.vhd``: a VHD image grown to a flavor's root disk.
  Hyper-V cannot resize a differencing VHD (a VHDX it can), so a VHD
  server's copy-on-write root disk is made on a grown copy of its image
  (nova 28 ``ImageCache._resize_and_cache_vhd``).

Refused, with the cache left as it was (the fetched file removed):

- content that is neither VHD nor VHDX, and content that is not the
  image's declared ``disk_format`` (:class:`~compute_hyperv_ovs.exception.
  ImageNotVHD`; nova 28 took a VHDX declared VHD and failed a VHD declared
  VHDX only later, in Hyper-V); an image declared ``iso`` whose content is
  no ISO 9660/UDF image (:class:`~compute_hyperv_ovs.exception.
  ImageNotISO`; compute-hyperv 16 cached any content as ``.iso``);
- an image whose virtual disk is larger than the flavor's root disk
  (:class:`~compute_hyperv_ovs.exception.RootDiskTooSmall`);
- a rescue image larger than the flavor's root disk (nova 28
  ``ImageCache._verify_rescue_image``).

A failed copy or resize inside the cache is not a bad image and says so
(``ImageCopyFailed``, ``ImageResizeFailed``): the compute manager
reschedules those.

Every step on one image (fetch, grown copy, ageing) holds that image's
lock (``<image id>-cache.lock`` in ``_base``, external, so other
processes sharing the instances path respect it).  nova 28 removed aged
files under a lock named after the file, which a fetch of the same image
did not take.
"""

import os
import re

from nova.compute import utils as compute_utils
import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from nova import utils
from nova.virt import imagecache
from nova.virt import images
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_utils.imageutils import format_inspector
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# File extensions of cached disk images, as os-win names the formats, and
# of cached ISO images.
VHD_EXTENSIONS = (constants.DISK_FORMAT_VHD.lower(),
                  constants.DISK_FORMAT_VHDX.lower())
ISO_EXTENSION = constants.DISK_FORMAT_ISO.lower()
IMAGE_EXTENSIONS = VHD_EXTENSIONS + (ISO_EXTENSION,)


def _lock_name(image_id):
    return '%s-cache.lock' % image_id


def _extension(path):
    return os.path.splitext(path)[1].lstrip('.').lower()


class ImageCache(imagecache.ImageCacheManager):
    """Fetch, check, grow and age the images of this host's cache."""

    def __init__(self):
        super().__init__()
        self._pathutils = pathutils.PathUtils()
        self._vhdutils = osutils.per_thread(utilsfactory.get_vhdutils)

    # ---- getting an image ----

    def get_cached_image(self, context, instance, rescue_image_id=None):
        """The cached file to make the instance's root (or rescue) disk on.

        Fetches the image on first use (``nova.virt.images.fetch``).  With
        ``[DEFAULT] use_cow_images`` a VHD boot image is returned grown to
        the root disk size (``old_flavor``'s during a resize, whose disk
        was made on that size); a VHDX one, and any image without
        copy-on-write, as cached: the root disk itself is resized then.

        :param instance: ``nova.objects.Instance``; its ``image_ref`` and
            declared ``disk_format`` (``image_meta``) name the image.
        :param rescue_image_id: fetch this image instead, for a rescue
            disk: neither grown nor compared with a declared format.
        :returns: the absolute path of a ``.vhd``, ``.vhdx`` or (an image
            declared ``iso``) ``.iso`` file.
        :raises compute_hyperv_ovs.exception.ImageNotVHD: bad content.
        :raises compute_hyperv_ovs.exception.ImageNotISO: an image declared
            ``iso`` that is not one.
        :raises compute_hyperv_ovs.exception.RootDiskTooSmall: a VHD image
            larger than the root disk.
        :raises compute_hyperv_ovs.exception.ImageCopyFailed: the grown
            copy could not be written (e.g. the disk is full).
        :raises compute_hyperv_ovs.exception.ImageResizeFailed: Hyper-V
            could not grow the copy (e.g. a differencing VHD image).
        :raises nova.exception.ImageUnacceptable: a rescue image larger
            than the flavor's root disk.
        """
        image_id = rescue_image_id or instance.image_ref
        declared = None if rescue_image_id else self._declared_format(
            instance)
        base_dir = self._pathutils.get_base_vhd_dir()

        @utils.synchronized(_lock_name(image_id), external=True,
                            lock_path=base_dir)
        def get_under_lock():
            path = self._pathutils.get_image_path(image_id)
            if path is None:
                path = self._fetch(context, image_id, declared,
                                   os.path.join(base_dir, image_id),
                                   self._trusted_certs(instance), instance)
            else:
                self._mark_used(path)
            if rescue_image_id or not CONF.use_cow_images:
                return path
            if _extension(path) != VHD_EXTENSIONS[0]:
                return path
            return self._grown_copy(instance, path)

        path = get_under_lock()
        if rescue_image_id:
            self._check_rescue_image(instance, rescue_image_id, path)
        return path

    def cache_image(self, context, image_id):
        """Fetch an image into the cache ahead of any boot (pre-caching).

        nova's ``cache_images`` (``POST /os-aggregates/{id}/images``,
        microversion 2.81) asks each compute host of the aggregate; this
        is the same fetch and checks as a boot's (compute-hyperv 16
        ``ImageCache.cache_image``), under the same lock.  A VHD image is
        cached as glance serves it: its grown copies depend on the flavor
        and are made by the first boot that needs one.

        :returns: True if the image was fetched, False if it was cached
            already (nova's ``ComputeDriver.cache_image``).
        :raises nova.exception.ImageNotFound: glance has no such image.
        :raises compute_hyperv_ovs.exception.ImageNotVHD: the image is not
            one Hyper-V boots (declared or actual content); nothing is
            left in the cache.
        :raises compute_hyperv_ovs.exception.ImageNotISO: an image declared
            ``iso`` that is not one.
        """
        base_dir = self._pathutils.get_base_vhd_dir()

        @utils.synchronized(_lock_name(image_id), external=True,
                            lock_path=base_dir)
        def cache_under_lock():
            path = self._pathutils.get_image_path(image_id)
            if path is not None:
                # Asked for again: it is to stay, so it ages from now.
                self._mark_used(path)
                return False
            declared = images.get_info(context, image_id).get('disk_format')
            if (declared or '').lower() not in IMAGE_EXTENSIONS:
                raise exception.ImageNotVHD(
                    image_id=image_id,
                    reason=_('its disk_format is %s') % declared)
            self._fetch(context, image_id, declared,
                        os.path.join(base_dir, image_id))
            return True

        return cache_under_lock()

    @staticmethod
    def _trusted_certs(instance):
        """The instance's trusted image certificates, or None."""
        if instance.obj_attr_is_set('trusted_certs'):
            return instance.trusted_certs
        return None

    @staticmethod
    def _declared_format(instance):
        """The image's ``disk_format`` as glance has it, or None."""
        image_meta = instance.image_meta
        if not image_meta.obj_attr_is_set('disk_format'):
            return None
        return image_meta.disk_format or None

    def _fetch(self, context, image_id, declared, download_path,
               trusted_certs=None, instance=None):
        """Download, check and name a new image; nothing stays if refused.

        :param declared: the image's ``disk_format`` in glance, or None
            (a rescue image: VHD or VHDX content, whichever it is).
        :param trusted_certs: ``nova.objects.TrustedCerts`` that glance's
            download verifies the image's signature against, or None.
        :param instance: for the log only.
        :returns: ``download_path`` plus the extension of its format.
        """
        try:
            with compute_utils.disk_ops_semaphore:
                images.fetch(context, image_id, download_path,
                             trusted_certs)
            if declared is not None and declared.lower() == ISO_EXTENSION:
                self._check_iso(image_id, download_path)
                actual = ISO_EXTENSION
            else:
                actual = self._content_format(image_id, download_path)
            if declared is not None and declared.lower() != actual:
                raise exception.ImageNotVHD(
                    image_id=image_id,
                    reason=_('it is declared disk_format=%(declared)s but '
                             'its content is %(actual)s') % {
                        'declared': declared, 'actual': actual.upper()})
            cached_path = '%s.%s' % (download_path, actual)
            self._pathutils.rename(download_path, cached_path)
        except Exception:
            if self._pathutils.exists(download_path):
                self._pathutils.remove(download_path)
            raise
        LOG.info('Cached image %(image)s as %(path)s',
                 {'image': image_id, 'path': cached_path}, instance=instance)
        return cached_path

    @staticmethod
    def _check_iso(image_id, path):
        """Refuse a file declared ``iso`` that is no ISO 9660/UDF image.

        oslo.utils' format inspector looks for the volume descriptor after
        the 32 KB system area, as nova's own image checks do
        (``nova.virt.images.do_image_deep_inspection``).
        """
        try:
            format_inspector.ISOInspector.from_file(path)
        except format_inspector.ImageFormatError as exc:
            raise exception.ImageNotISO(image_id=image_id) from exc

    def _content_format(self, image_id, path):
        """``vhd`` or ``vhdx``, as Hyper-V reads the file's content."""
        try:
            actual = self._vhdutils.get_vhd_format(path).lower()
        except os_win_exc.VHDException:
            actual = None
        if actual not in VHD_EXTENSIONS:
            raise exception.ImageNotVHD(
                image_id=image_id,
                reason=_('its content is neither VHD nor VHDX'))
        return actual

    def _root_gb(self, instance):
        # During a resize the disk being re-parented was made on the old
        # flavor's size (nova 28 ImageCache._get_root_vhd_size_gb).
        flavor = instance.old_flavor or instance.flavor
        return flavor.root_gb

    def _grown_copy(self, instance, image_path):
        """``<image>_<root_gb>.vhd``: the VHD image grown to the root disk.

        :returns: that path, or ``image_path`` when the image already has
            the root disk's size.
        """
        root_gb = self._root_gb(instance)
        image_size = self._vhdutils.get_vhd_size(image_path)['VirtualSize']
        wanted = self._vhdutils.get_internal_vhd_size_by_file_size(
            image_path, root_gb * units.Gi)
        if wanted < image_size:
            raise exception.RootDiskTooSmall(image_size=image_size,
                                             flavor_size=root_gb * units.Gi)
        if wanted == image_size:
            return image_path
        stem, ext = os.path.splitext(image_path)
        grown_path = '%s_%s%s' % (stem, root_gb, ext)
        if self._pathutils.exists(grown_path):
            self._mark_used(grown_path)
            return grown_path
        image_id = os.path.basename(stem)
        try:
            self._pathutils.copyfile(image_path, grown_path)
        except OSError as exc:
            self._remove_quietly(grown_path)
            LOG.error('Could not copy the cached image %(src)s to %(dest)s: '
                      '%(err)s', {'src': image_path, 'dest': grown_path,
                                  'err': exc}, instance=instance)
            raise exception.ImageCopyFailed(
                image_id=image_id, path=grown_path, reason=exc) from exc
        try:
            self._vhdutils.resize_vhd(grown_path, wanted,
                                      is_file_max_size=False)
        except os_win_exc.VHDException as exc:
            self._remove_quietly(grown_path)
            LOG.error('Could not resize the cached image %(path)s: %(err)s',
                      {'path': grown_path, 'err': exc}, instance=instance)
            raise exception.ImageResizeFailed(
                image_id=image_id, size_gb=root_gb, path=grown_path,
                reason=exc) from exc
        return grown_path

    @staticmethod
    def _mark_used(path):
        """Set the cached file's modification time to now.

        The cache ages a file from its last use (see :meth:`update`); a
        file found in the cache by a boot or a pre-cache request is in use
        now (compute-hyperv 16 ``cache_image``, which nova 28 did not do:
        an image fetched long ago could be removed right after a boot
        whose instance the periodic task did not list yet).
        """
        os.utime(path, None)

    def _remove_quietly(self, path):
        # Clean-up after a failure: the failure is what the caller reports.
        try:
            if self._pathutils.exists(path):
                self._pathutils.remove(path)
        except OSError:
            LOG.exception('Could not remove %s; remove it by hand', path)

    def _check_rescue_image(self, instance, rescue_image_id, path):
        if _extension(path) == ISO_EXTENSION:
            raise nova_exception.ImageUnacceptable(
                image_id=rescue_image_id,
                reason=_('it is an ISO image; rescue boots from a VHD or '
                         'VHDX image only'))
        image_size = self._vhdutils.get_vhd_size(path)['VirtualSize']
        root_size = instance.flavor.root_gb * units.Gi
        if image_size > root_size:
            raise nova_exception.ImageUnacceptable(
                image_id=rescue_image_id,
                reason=_('the rescue image\'s virtual disk (%(image)d '
                         'bytes) is larger than the flavor\'s root disk '
                         '(%(root)d bytes); use a smaller rescue image') % {
                    'image': image_size, 'root': root_size})

    def get_image_details(self, context, instance):
        """glance's metadata of the instance's image (``images.get_info``).

        :returns: a dict of the image's fields (``disk_format``, ``size``,
            ``properties`` ...).
        :raises nova.exception.ImageNotFound: glance has no such image.
        """
        return images.get_info(context, instance.image_ref)

    # ---- ageing ----

    def update(self, context, all_instances):
        """Age the cache: touch images in use, remove old unused ones.

        nova's compute manager calls this every ``[image_cache]
        manager_interval`` seconds (``manage_image_cache``).  An image
        some instance of ``all_instances`` (any host's, sharing this
        instances path or not) boots from has its files' modification
        time set to now, its grown copies included.  With ``[image_cache]
        remove_unused_base_images``, each file of an image no instance
        uses is removed once it was last used (or fetched) more than
        ``remove_unused_original_minimum_age_seconds`` ago, and each grown
        copy ``<id>_<size>`` more than ``remove_unused_resized_minimum_
        age_seconds`` ago, as nova 34 documents the two options (nova 28
        and compute-hyperv 16 ``ImageCache._remove_if_old_image`` aged
        grown copies as originals).  Cached ISO images (``<id>.iso``) age
        like any original (both anchors listed only VHD/VHDX files and
        kept every ISO for ever), and a grown copy whose original is gone
        is still aged (the anchors found grown copies only through their
        original).  Files whose name is not a cached image's are left
        alone.

        :param all_instances: ``nova.objects.InstanceList``.
        """
        used = set(self._list_running_instances(
            context, all_instances)['used_images'])
        base_dir = self._pathutils.get_base_vhd_dir()
        for image_id, files in sorted(self._cached_files(base_dir).items()):
            if image_id in used:
                for path, _is_grown in files:
                    self._mark_used(path)
            elif CONF.image_cache.remove_unused_base_images:
                self._remove_if_old(base_dir, image_id, files)

    @staticmethod
    def _cached_files(base_dir):
        """{image id: [(its cached file, whether a grown copy)]}."""
        grown = re.compile(r'^(?P<image>.+)_[0-9]+$')
        files = {}
        for entry in os.listdir(base_dir):
            stem, ext = os.path.splitext(entry)
            if ext.lstrip('.').lower() not in IMAGE_EXTENSIONS:
                continue
            match = grown.match(stem)
            image_id = match.group('image') if match else stem
            if not uuidutils.is_uuid_like(image_id):
                continue
            files.setdefault(image_id, []).append(
                (os.path.join(base_dir, entry), bool(match)))
        return files

    def _remove_if_old(self, base_dir, image_id, files):
        options = CONF.image_cache
        min_ages = {
            False: options.remove_unused_original_minimum_age_seconds,
            True: options.remove_unused_resized_minimum_age_seconds}

        @utils.synchronized(_lock_name(image_id), external=True,
                            lock_path=base_dir)
        def remove_under_lock():
            for path, is_grown in files:
                if not self._pathutils.exists(path):
                    continue
                min_age = min_ages[is_grown]
                if self._pathutils.get_age_of_file(path) > min_age:
                    LOG.info('Removing %s from the image cache: unused for '
                             'more than %d s', path, min_age)
                    self._pathutils.remove(path)

        remove_under_lock()
