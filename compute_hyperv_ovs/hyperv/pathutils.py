"""Where the Hyper-V driver keeps each instance's files on the host.

The layout, kept from nova 28 (``nova/virt/hyperv/pathutils.py``) so a host
upgraded from it finds its instances where they are::

    <instances_path>\\
        _base\\<image id>.vhd|.vhdx                 the image cache
        <instance name>\\
            root.vhd|.vhdx, root-rescue.vhd|.vhdx    root disks
            <ephemeral name>.vhd|.vhdx               ephemeral disks
            configdrive.vhd|.iso, configdrive-rescue.vhd|.iso
            console.log, console.log.1               serial console log
        <instance name>_revert\\                     a resize's originals
        export\\<instance name>\\                     snapshot staging

Another host's directories are reached over SMB: ``[hyperv]
instances_path_share`` names this path's share, else the administrative
share of its drive (``C:\\X`` is ``\\\\HOST\\C$\\X``) is used, which needs
the nova-compute service to run as an account that is an administrator on
both hosts.

File operations are os-win's (:class:`os_win.utils.pathutils.PathUtils`:
``copy`` is kernel32 ``CopyFileW``, ``rmtree`` and ``remove`` retry while a
file is in use), so callers never touch the file system directly.
"""

import ntpath
import os
import tempfile
import time

import nova.conf
from nova import exception
from nova.i18n import _
from os_win.utils import pathutils as os_win_pathutils
from oslo_log import log as logging

# Imported for its side effect: it registers the [hyperv] options.
from compute_hyperv_ovs import conf  # noqa: F401
from compute_hyperv_ovs.hyperv import constants

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Win32 ERROR_INVALID_NAME: what Windows answers for a UNC path to another
# host when the service's account cannot authenticate there (LocalSystem,
# for one); nova 28 _get_instances_sub_dir turned it into AdminRequired.
_ERROR_INVALID_NAME = 123

# Disk file extensions, in the order a lookup tries them.
_VHD_EXTENSIONS = (constants.DISK_FORMAT_VHD.lower(),
                   constants.DISK_FORMAT_VHDX.lower())
_CONFIG_DRIVE_EXTENSIONS = (constants.CONFIG_DRIVE_DISK_FORMAT.lower(),
                            constants.CONFIG_DRIVE_DVD_FORMAT.lower())
# An ISO image (glance disk_format iso), cached and booted from a DVD.
_ISO_EXTENSION = constants.DISK_FORMAT_ISO.lower()
_IMAGE_EXTENSIONS = _VHD_EXTENSIONS + (_ISO_EXTENSION,)

_BASE_DIR_NAME = '_base'
_EXPORT_DIR_NAME = 'export'
_REVERT_DIR_SUFFIX = '_revert'
_RESCUE_SUFFIX = '-rescue'
_ROOT_DISK_NAME = 'root'
_CONFIG_DRIVE_NAME = 'configdrive'
_CONSOLE_LOG_NAME = 'console.log'
# os-win's named pipe handler renames a full log to <log>.1 (its
# NamedPipeHandler._rotate_logs), so a log is at most two files.
_ARCHIVED_LOG_SUFFIX = '.1'


def _file_name(base, format_ext, rescue=False):
    if rescue:
        base += _RESCUE_SUFFIX
    return '%s.%s' % (base, format_ext.lower())


class PathUtils(os_win_pathutils.PathUtils):
    """Paths of the instances directory, and os-win's file operations.

    Every ``get_*_dir`` method creates the directory unless told not to;
    ``get_*_path`` methods only build a path, ``lookup_*`` methods return
    the path of a file that exists, or None.
    """

    def get_instances_dir(self, remote_server=None):
        """The instances directory, of this host or of ``remote_server``.

        As nova 28 ``PathUtils.get_instances_dir``: an instances path that
        is already a UNC path (one share for all hosts) is the same for
        every host; otherwise a remote host's is ``\\\\<host>\\<share>``,
        the share being ``[hyperv] instances_path_share`` or the
        administrative share of the instances path's drive.

        :param remote_server: a host name or address; None for this host.
        :returns: str, a local or UNC path.
        :raises nova.exception.InvalidInput: a remote host is asked for,
            no ``instances_path_share`` is set and ``instances_path`` has
            no drive letter, so there is no administrative share.
        """
        local_path = os.path.normpath(CONF.instances_path)
        if not remote_server or local_path.startswith('\\\\'):
            return local_path
        # A share name is a Windows path whatever the platform reading it.
        local_path = ntpath.normpath(local_path)
        share = CONF.hyperv.instances_path_share
        if not share:
            drive, rest = ntpath.splitdrive(local_path)
            if not drive.endswith(':'):
                raise exception.InvalidInput(reason=_(
                    'Cannot reach the instances path %(path)s of host '
                    '%(host)s: it has no drive letter, so it has no '
                    'administrative share. Set [hyperv] '
                    'instances_path_share to the share of instances_path.')
                    % {'path': local_path, 'host': remote_server})
            share = drive[:-1] + '$' + rest
        return '\\\\%s\\%s' % (remote_server, share.lstrip('\\'))

    def _instances_sub_dir(self, dir_name, remote_server=None,
                           create_dir=True, remove_dir=False):
        """``<instances dir>\\<dir_name>``, emptied and/or created.

        :raises nova.exception.AdminRequired: Windows refused the path
            (ERROR_INVALID_NAME): the service's account cannot reach a
            remote host's share.
        """
        instances_dir = self.get_instances_dir(remote_server)
        path = os.path.join(instances_dir, dir_name)
        try:
            if remove_dir:
                self.check_remove_dir(path)
            if create_dir:
                self.check_create_dir(path)
        except OSError as exc:
            if getattr(exc, 'winerror', None) != _ERROR_INVALID_NAME:
                raise
            raise exception.AdminRequired(_(
                'Cannot access %(path)s. Make sure the instances path '
                'exists and that nova-compute runs as an account that can '
                'authenticate on remote hosts (not LocalSystem), with '
                'rights on their instances share.') % {'path': path})
        return path

    def get_instance_dir(self, instance_name, remote_server=None,
                         create_dir=True, remove_dir=False):
        """``<instances dir>\\<instance name>``.

        :param remove_dir: remove the directory and its files first.
        :returns: str.
        :raises nova.exception.AdminRequired: see :meth:`get_instances_dir`.
        """
        return self._instances_sub_dir(instance_name, remote_server,
                                       create_dir, remove_dir)

    def get_instance_migr_revert_dir(self, instance_name, create_dir=False,
                                     remove_dir=False):
        """``<instances dir>\\<instance name>_revert``, this host only.

        Where a resize or cold migration keeps the instance's original
        files until it is confirmed or reverted (nova 28 migrationops).
        """
        return self._instances_sub_dir(instance_name + _REVERT_DIR_SUFFIX,
                                       None, create_dir, remove_dir)

    def get_root_vhd_path(self, instance_name, format_ext, rescue=False):
        """``<instance dir>\\root[-rescue].<format_ext>``.

        :param format_ext: ``vhd`` or ``vhdx``, or ``iso`` for the copy of
            an ISO image a server boots from (any case).
        """
        return os.path.join(self.get_instance_dir(instance_name),
                            _file_name(_ROOT_DISK_NAME, format_ext, rescue))

    def get_ephemeral_vhd_path(self, instance_name, format_ext, eph_name):
        """``<instance dir>\\<eph_name>.<format_ext>``.

        :param eph_name: the ephemeral disk's name, e.g. ``eph0``.
        """
        return os.path.join(self.get_instance_dir(instance_name),
                            _file_name(eph_name, format_ext))

    def get_configdrive_path(self, instance_name, format_ext,
                             remote_server=None, rescue=False):
        """``<instance dir>\\configdrive[-rescue].<format_ext>``.

        :param format_ext: ``iso`` (attached as a DVD) or ``vhd``.
        """
        instance_dir = self.get_instance_dir(instance_name, remote_server)
        return os.path.join(instance_dir, _file_name(
            _CONFIG_DRIVE_NAME, format_ext, rescue))

    def _first_existing(self, paths):
        for path in paths:
            if self.exists(path):
                return path
        return None

    def lookup_root_vhd_path(self, instance_name, rescue=False):
        """The instance's root disk file (VHD tried first), or None."""
        return self._first_existing(
            self.get_root_vhd_path(instance_name, ext, rescue)
            for ext in _VHD_EXTENSIONS)

    def lookup_root_iso_path(self, instance_name):
        """The ISO-booted server's ``<instance dir>\\root.iso``, or None.

        None also when the instance directory does not exist.
        """
        path = os.path.join(
            self.get_instance_dir(instance_name, create_dir=False),
            _file_name(_ROOT_DISK_NAME, _ISO_EXTENSION))
        return path if self.exists(path) else None

    def lookup_ephemeral_vhd_path(self, instance_name, eph_name):
        """The ephemeral disk file named ``eph_name``, or None."""
        return self._first_existing(
            self.get_ephemeral_vhd_path(instance_name, ext, eph_name)
            for ext in _VHD_EXTENSIONS)

    def lookup_configdrive_path(self, instance_name, rescue=False):
        """The instance's config drive file (VHD, then ISO), or None."""
        return self._first_existing(
            self.get_configdrive_path(instance_name, ext, rescue=rescue)
            for ext in _CONFIG_DRIVE_EXTENSIONS)

    def get_base_vhd_dir(self):
        """``<instances dir>\\_base``, the image cache (created)."""
        return self._instances_sub_dir(_BASE_DIR_NAME)

    def get_image_path(self, image_name):
        """The cached image ``_base\\<image_name>.vhd|.vhdx|.iso``, or None.

        :param image_name: the cache's name of the image (its glance id,
            or ``<id>_<size in GB>`` for a resized copy).
        """
        base_dir = self.get_base_vhd_dir()
        return self._first_existing(
            os.path.join(base_dir, _file_name(image_name, ext))
            for ext in _IMAGE_EXTENSIONS)

    def get_export_dir(self, instance_name):
        """``<instances dir>\\export\\<instance name>``, new and empty.

        A snapshot's disks are staged there (nova 28 snapshotops); what a
        failed snapshot left behind is removed first.
        """
        return self._instances_sub_dir(
            os.path.join(_EXPORT_DIR_NAME, instance_name),
            create_dir=True, remove_dir=True)

    def get_vm_console_log_paths(self, instance_name, remote_server=None):
        """The VM's console log and its archived half (no directory made).

        A reader (``get_console_output`` of an instance that never ran
        here) must not leave an empty instance directory behind, so unlike
        nova 28 this only builds the paths.

        :returns: (``<instance dir>\\console.log``,
            ``<instance dir>\\console.log.1``); the second is what os-win's
            named pipe handler moved aside when the log was full, so the
            console's output in order is the second, then the first.
        """
        log_path = os.path.join(
            self.get_instance_dir(instance_name, remote_server,
                                  create_dir=False),
            _CONSOLE_LOG_NAME)
        return log_path, log_path + _ARCHIVED_LOG_SUFFIX

    def copy_vm_console_logs(self, instance_name, dest_host):
        """Copy the VM's console log files into dest_host's instance dir.

        Before a live migration without shared storage (nova 28
        livemigrationops), so ``console log`` shows the VM's whole history
        on the destination.  The destination's instance directory is made
        if needed; missing files are skipped; a log already there (from an
        earlier stay of the VM) is replaced.

        :raises IOError: a copy failed (os-win ``PathUtils.copy``).
        """
        self.get_instance_dir(instance_name, remote_server=dest_host)
        local_paths = self.get_vm_console_log_paths(instance_name)
        remote_paths = self.get_vm_console_log_paths(
            instance_name, remote_server=dest_host)
        for local_path, remote_path in zip(local_paths, remote_paths):
            if self.exists(local_path):
                self.copy(local_path, remote_path, fail_if_exists=False)

    def get_age_of_file(self, file_name):
        """Seconds since the file was last modified (float).

        :raises OSError: the file does not exist.
        """
        return time.time() - os.path.getmtime(file_name)

    def check_dirs_shared_storage(self, src_dir, dest_dir):
        """Whether two directories are the same storage.

        A temporary file made in ``dest_dir`` is looked for in ``src_dir``
        (nova 28 ``check_dirs_shared_storage``); it is removed again.

        :returns: bool.
        :raises nova.exception.FileNotFound: ``dest_dir`` cannot be
            written (missing, unreachable share).
        """
        LOG.debug('Checking whether %(src)s and %(dest)s are the same '
                  'storage', {'src': src_dir, 'dest': dest_dir})
        try:
            with tempfile.NamedTemporaryFile(dir=dest_dir) as probe:
                return self.exists(os.path.join(
                    src_dir, os.path.basename(probe.name)))
        except OSError as exc:
            raise exception.FileNotFound(
                file_path='%s (%s)' % (dest_dir, exc))

    def check_remote_instances_dir_shared(self, dest):
        """Whether host ``dest``'s instances directory is this host's.

        :param dest: the other host's name or address.
        :returns: bool.
        :raises nova.exception.FileNotFound: its share cannot be written.
        """
        return self.check_dirs_shared_storage(
            self.get_instances_dir(), self.get_instances_dir(dest))

    # -- is an instance's directory shared with another host? ------------
    #
    # nova's compute manager asks these three in turn when it must know
    # whether another host sees this host's files of an instance (on a
    # returning evacuation source, ComputeManager._destroy_evacuated_
    # instances -> _is_instance_storage_shared): _local here, _remote over
    # RPC on the other host, _cleanup here again.  compute-hyperv 16 did
    # the same probe-file test (pathutils.check_instance_shared_storage_*)
    # but sent the probe's absolute path; that path names the other host's
    # own disk when nothing is shared and only works because both hosts
    # use the same instances_path.  Here the other host is told the
    # instance and the file name and looks in its own instance directory.

    def check_instance_shared_storage_local(self, instance):
        """Leave a probe file in this host's directory of ``instance``.

        :returns: ``{'instance_name': str, 'filename': str}`` (the probe's
            name, not its path) for :meth:`check_instance_shared_storage_
            remote` on the other host; None when this host has no directory
            for the instance (nothing here to keep or lose).
        """
        instance_dir = self.get_instance_dir(instance.name, create_dir=False)
        if not self.exists(instance_dir):
            LOG.debug('No instance directory %s here: nothing to compare '
                      'with another host', instance_dir, instance=instance)
            return None
        handle, probe_path = tempfile.mkstemp(dir=instance_dir,
                                              prefix='shared-check-')
        os.close(handle)
        LOG.debug('Probe file %s left for the other host to look for',
                  probe_path, instance=instance)
        return {'instance_name': instance.name,
                'filename': os.path.basename(probe_path)}

    def check_instance_shared_storage_remote(self, data):
        """Whether this host sees the other host's probe file.

        :param data: what :meth:`check_instance_shared_storage_local`
            returned on the other host.
        :returns: bool: True when the instance's directory is the same
            storage on both hosts.
        """
        instance_dir = self.get_instance_dir(data['instance_name'],
                                             create_dir=False)
        return self.exists(os.path.join(instance_dir, data['filename']))

    def check_instance_shared_storage_cleanup(self, data):
        """Remove the probe file; one already gone is fine.

        :param data: what :meth:`check_instance_shared_storage_local`
            returned here.
        """
        probe = os.path.join(
            self.get_instance_dir(data['instance_name'], create_dir=False),
            data['filename'])
        if self.exists(probe):
            self.remove(probe)

    def instance_files_here(self, instance_name):
        """Whether this host's instances path holds the instance's root disk.

        On an evacuation's destination that means the instances path is
        shared with the failed host and the disk can be used as it is.

        :returns: bool.
        """
        return self.lookup_root_vhd_path(instance_name) is not None
