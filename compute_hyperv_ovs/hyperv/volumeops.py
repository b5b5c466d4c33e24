"""Cinder volumes on Hyper-V VMs, through os-brick's Windows connectors.

One small class per storage protocol (:class:`ISCSIVolumeDriver`,
:class:`FCVolumeDriver`, :class:`RBDVolumeDriver`,
:class:`SMBFSVolumeDriver`), each over the os-brick 6.x Windows connector
of that protocol (``os_brick.initiator.windows.*``), and
:class:`VolumeOps`, which picks the class by the connection info's
``driver_volume_type`` and is what the rest of the driver calls.  The
behaviour follows nova 28's ``nova/virt/hyperv/volumeops.py`` (what
Hyper-V needs) and compute-hyperv 16's ``compute_hyperv/nova/
volumeops.py`` (the SAN policy check, LP #1727257):

* iSCSI, FC and RBD volumes become *passthrough disks*: the host disk the
  connector brings up (``\\\\.\\PHYSICALDRIVE<n>``) is attached to the VM by
  its ``Msvm_DiskDrive`` path, tagged with the volume id (the disk's
  ElementName) so that the VM's disks can be matched to volumes again
  after a live migration or a host reboot (disk numbers change:
  :meth:`VolumeOps.fix_instance_volume_disk_paths`).  Hyper-V passes
  through only a disk that is offline on the host, so the host's SAN
  policy must bring new SAN disks up offline ("Offline Shared" or
  "Offline All"); it is checked before connecting.
* SMB volumes are VHD/VHDX files on a share: the connector maps the
  share, the file is attached as a virtual disk, and the volume's
  ``qos_specs`` (``total_iops_sec``, ``total_bytes_sec``) become the
  disk's Hyper-V storage QoS maximum (normalised 8 KiB IOPS).

The connectors are chosen by class, not through os-brick's platform
lookup (``InitiatorConnector.factory`` answers by ``sys.platform``): the
driver runs only on Windows hosts, and the tests run it on Linux against
the simulated host.  A connector holds os-win utils objects, so each OS
thread gets its own (``osutils`` threading rule).

Every failure of an attach leaves nothing behind: what was connected is
disconnected, what was attached is detached, and nova gets
``VolumeAttachFailed`` saying what went wrong.
"""

import platform
import threading
import time

import nova.conf
from nova import exception
from nova.i18n import _
from nova.virt import driver
from os_brick import exception as brick_exception
from os_brick.initiator.windows import fibre_channel
from os_brick.initiator.windows import iscsi
from os_brick.initiator.windows import rbd
from os_brick.initiator.windows import smbfs
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import strutils

from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF

PROTOCOL_ISCSI = 'iscsi'
PROTOCOL_FC = 'fibre_channel'
PROTOCOL_SMBFS = 'smbfs'
PROTOCOL_RBD = 'rbd'

# Hyper-V storage QoS counts normalised IOPS of 8 KiB (Microsoft, "Storage
# Quality of Service for Hyper-V": "IOPS are normalized to 8KB").
IOPS_BASE_SIZE = 8 * 1024
SMB_QOS_SPECS = ('total_iops_sec', 'total_bytes_sec')

# SAN policies under which a new SAN disk comes up offline, ready to be
# passed through (os-win DISK_POLICY_*; compute-hyperv
# volumeops._check_san_policy).
PASSTHROUGH_SAN_POLICIES = (os_win_const.DISK_POLICY_OFFLINE_SHARED,
                            os_win_const.DISK_POLICY_OFFLINE_ALL)


def run_storage_command(*cmd, **kwargs):
    """Run a storage tool for os-brick (``rbd.exe``, ``rbd-wnbd.exe``).

    The executor the connectors are given; the Windows connectors need no
    root helper.

    :returns: (stdout, stderr).
    :raises oslo_concurrency.processutils.ProcessExecutionError: it failed.
    """
    return processutils.execute(*cmd, **kwargs)


def _masked(connection_info):
    return strutils.mask_dict_password(connection_info)


def _reason(exc):
    """Why an attach failed, for the fault nova records (no secrets).

    os-brick names the connection properties, CHAP secret included, in
    its "Could not connect volume" message; a failed command is reported
    with its stderr, which says more than processutils' own message.
    """
    if isinstance(exc, processutils.ProcessExecutionError):
        text = '%s: %s' % (exc.cmd, (exc.stderr or exc.description or
                                     '').strip())
    else:
        text = str(exc)
    return strutils.mask_password(text)


class BaseVolumeDriver(object):
    """What every protocol shares: connect, attach, detach, disconnect."""

    protocol = None
    # A host disk passed through (True) or a virtual disk file (False).
    is_block_dev = True
    connector_class = None

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._diskutils = osutils.per_thread(utilsfactory.get_diskutils)
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)
        self._migrutils = osutils.per_thread(
            utilsfactory.get_migrationutils)
        self._local = threading.local()

    # ---- the connector, one per thread ----
    def _connector_args(self):
        return {}

    @property
    def _connector(self):
        conn = getattr(self._local, 'connector', None)
        if conn is None:
            conn = self._local.connector = self.connector_class(
                root_helper=None,
                use_multipath=CONF.hyperv.use_multipath_io,
                device_scan_attempts=max(
                    1, CONF.hyperv.mounted_disk_query_retry_count),
                device_scan_interval=(
                    CONF.hyperv.mounted_disk_query_retry_interval),
                execute=run_storage_command,
                **self._connector_args())
        return conn

    # ---- host checks ----
    def validate_host_configuration(self):
        """Refuse, before connecting, a host that cannot take the volume.

        :raises nova.exception.InvalidConfiguration: naming the setting.
        """

    # ---- connect / disconnect ----
    def connect_volume(self, connection_info):
        """:returns: os-brick's device info ({'path': ..., 'type': ...})."""
        return self._connector.connect_volume(connection_info['data'])

    def disconnect_volume(self, connection_info, force=False):
        self._connector.disconnect_volume(connection_info['data'],
                                          force=force)

    def get_disk_resource_path(self, connection_info):
        """What Hyper-V attaches: the Msvm_DiskDrive path, or the file.

        :raises nova.exception.DiskNotFound: the volume is not connected.
        """
        paths = self._connector.get_volume_paths(connection_info['data'])
        if not paths:
            raise exception.DiskNotFound(location=_(
                'no disk of volume %s on this host') %
                connection_info.get('serial'))
        return self._disk_resource(paths[0], connection_info)

    def _disk_resource(self, device_path, connection_info):
        if not self.is_block_dev:
            return device_path
        number = self._diskutils.get_device_number_from_device_name(
            device_path)
        resource = self._vmutils.get_mounted_disk_by_drive_number(number)
        if not resource:
            raise exception.DiskNotFound(location=_(
                'Hyper-V sees no disk number %(n)s for volume %(vol)s') % {
                    'n': number, 'vol': connection_info.get('serial')})
        return resource

    # ---- attach / detach ----
    def attach_volume(self, connection_info, instance_name, ctrl_path,
                      slot):
        """Connect the volume and attach its disk at (controller, slot).

        :returns: the attached disk's resource path.
        """
        device_info = self.connect_volume(connection_info)
        resource = self._disk_resource(device_info['path'], connection_info)
        if self.is_block_dev:
            self._vmutils.attach_volume_to_controller(
                instance_name, ctrl_path, slot, resource,
                serial=connection_info['serial'])
        else:
            self._vmutils.attach_drive(instance_name, resource, ctrl_path,
                                       slot)
        return resource

    def detach_volume(self, connection_info, instance_name):
        """Take the volume's disk off the VM (the connection stays)."""
        if self._migrutils.planned_vm_exists(instance_name):
            LOG.warning('%s is a planned VM (a live migration is under '
                        'way); its disks cannot be changed', instance_name)
            return
        if self.is_block_dev:
            # By the serial: the disk number may have changed since.
            self._vmutils.detach_vm_disk(instance_name, None,
                                         is_physical=True,
                                         serial=connection_info['serial'])
        else:
            path = self.get_disk_resource_path(connection_info)
            self._vmutils.detach_vm_disk(instance_name, path,
                                         is_physical=False)

    def set_disk_qos_specs(self, connection_info, qos_specs):
        LOG.info('QoS specs of %(proto)s volumes are not applied by '
                 'Hyper-V; ignoring %(specs)s',
                 {'proto': self.protocol, 'specs': qos_specs})

    def extend_volume(self, connection_info):
        """Make Windows see the volume's new size."""
        self._connector.extend_volume(connection_info['data'])


class _PassthroughChecks(object):
    """The SAN policy and MPIO checks of iSCSI and FC volumes."""

    def validate_host_configuration(self):
        """Check the SAN policy and, if asked for, MPIO.

        compute-hyperv 16 ``volumeops._check_san_policy`` (LP #1727257):
        under "Online All" a new SAN disk comes up online on the host and
        Hyper-V refuses to pass it through.

        :raises nova.exception.InvalidConfiguration: wrong SAN policy, or
            ``[hyperv] use_multipath_io`` without Windows' MPIO feature.
        """
        policy = self._diskutils.get_new_disk_policy()
        if policy not in PASSTHROUGH_SAN_POLICIES:
            raise exception.InvalidConfiguration(_(
                'the host\'s SAN policy (%s) brings new SAN disks up online, '
                'and Hyper-V passes through only offline disks; set it '
                'with "Set-StorageSetting -NewDiskPolicy OfflineShared" '
                '(or OfflineAll) on the host') % policy)
        if CONF.hyperv.use_multipath_io and not (
                self._hostutils.check_server_feature(
                    self._hostutils.FEATURE_MPIO)):
            raise exception.InvalidConfiguration(_(
                '[hyperv] use_multipath_io is set but the Windows '
                'Multipath I/O feature is not installed on this host; '
                'install it (Install-WindowsFeature Multipath-IO) or unset '
                'use_multipath_io'))


class ISCSIVolumeDriver(_PassthroughChecks, BaseVolumeDriver):
    """iSCSI: a session through the Microsoft iSCSI initiator."""

    protocol = PROTOCOL_ISCSI
    connector_class = iscsi.WindowsISCSIConnector

    def _connector_args(self):
        return {'initiator_list': CONF.hyperv.iscsi_initiator_list}


class FCVolumeDriver(_PassthroughChecks, BaseVolumeDriver):
    """Fibre Channel: a LUN zoned to the host's HBA ports."""

    protocol = PROTOCOL_FC
    connector_class = fibre_channel.WindowsFCConnector


class RBDConnector(rbd.WindowsRBDConnector):
    """os-brick's Windows RBD connector, waiting on the calling thread.

    os-brick 6.14 ``WindowsRBDConnector._wait_for_volume`` polls for the
    mapped disk in an oslo.service ``FixedIntervalLoopingCall``, which
    under nova 34's threading mode runs in a thread of its own and calls
    the connector's os-win DiskUtils (a WMI connection of the connecting
    thread) from there: the COM wrong-thread case ``osutils`` exists to
    avoid.  This subclass polls the same way (``device_scan_attempts``
    looks, ``device_scan_interval`` s apart, the disk opened to see it is
    usable) on the thread that connects.
    """

    def _wait_for_volume(self, connection_properties):
        name = connection_properties['name']
        for attempt in range(max(1, self.device_scan_attempts)):
            if attempt:
                time.sleep(self.device_scan_interval)
            path = self.get_device_name(connection_properties, expect=False)
            if not path:
                continue
            try:
                with open(path, 'rb'):
                    return path
            except FileNotFoundError:
                LOG.debug('RBD image %(image)s is mapped to %(dev)s, which '
                          'cannot be opened yet', {'image': name,
                                                   'dev': path})
        raise brick_exception.VolumeDeviceNotFound(
            _('RBD image %s was mapped but its disk did not appear') % name)


class RBDVolumeDriver(BaseVolumeDriver):
    """Ceph RBD: an image mapped by Ceph for Windows (rbd-wnbd).

    WNBD disks ignore the SAN policy; os-brick takes them offline itself.
    """

    protocol = PROTOCOL_RBD
    connector_class = RBDConnector

    def _connector_args(self):
        return {'do_local_attach': True}

    def disconnect_volume(self, connection_info, force=False):
        # rbd device unmap fails on an image that is not mapped; a
        # disconnect of a volume that is not connected here (a failed
        # spawn, a destroy after a host reboot) has nothing to do.
        if self._connector.get_device_name(connection_info['data'],
                                           expect=False) is None:
            LOG.debug('RBD image %s is not mapped here',
                      connection_info['data'].get('name'))
            return
        super(RBDVolumeDriver, self).disconnect_volume(connection_info,
                                                       force=force)


class SMBFSVolumeDriver(BaseVolumeDriver):
    """SMB: a VHD/VHDX file on a share, attached as a virtual disk."""

    protocol = PROTOCOL_SMBFS
    is_block_dev = False
    connector_class = smbfs.WindowsSMBFSConnector

    def _connector_args(self):
        return {'local_path_for_loopback': True}

    @staticmethod
    def _share(connection_info):
        return connection_info['data']['export'].replace('/', '\\')

    def attach_volume(self, connection_info, *args, **kwargs):
        # A share must not be unmapped (by another volume's disconnect)
        # between mapping it and attaching the file on it.
        with lockutils.lock('smb-' + self._share(connection_info)):
            return super(SMBFSVolumeDriver, self).attach_volume(
                connection_info, *args, **kwargs)

    def disconnect_volume(self, connection_info, force=False):
        with lockutils.lock('smb-' + self._share(connection_info)):
            super(SMBFSVolumeDriver, self).disconnect_volume(
                connection_info, force=force)

    def set_disk_qos_specs(self, connection_info, qos_specs):
        """The volume's total IOPS / bytes per second as the disk's QoS.

        ``total_bytes_sec`` is turned into normalised 8 KiB IOPS, rounded
        up; ``total_iops_sec`` wins when both are given (nova 28
        ``SMBFSVolumeDriver.set_disk_qos_specs``).
        """
        unknown = set(qos_specs) - set(SMB_QOS_SPECS)
        if unknown:
            LOG.warning('Hyper-V applies only %(known)s to SMB volumes; '
                        'ignoring %(unknown)s',
                        {'known': ', '.join(SMB_QOS_SPECS),
                         'unknown': ', '.join(sorted(unknown))})
        iops = int(qos_specs.get('total_iops_sec') or 0)
        if not iops:
            bytes_sec = int(qos_specs.get('total_bytes_sec') or 0)
            iops = (bytes_sec + IOPS_BASE_SIZE - 1) // IOPS_BASE_SIZE
        if iops:
            self._vmutils.set_disk_qos_specs(
                self.get_disk_resource_path(connection_info), iops)

    def extend_volume(self, connection_info):
        # The file grows on the share; Hyper-V reads the new size of an
        # attached VHDX itself.  os-brick's SMB connector has nothing to do.
        LOG.debug('SMB volume %s extended on its share',
                  connection_info.get('serial'))


class VolumeOps(object):
    """The volumes of this host's VMs."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)
        self.volume_drivers = {
            PROTOCOL_ISCSI: ISCSIVolumeDriver(),
            PROTOCOL_FC: FCVolumeDriver(),
            PROTOCOL_RBD: RBDVolumeDriver(),
            PROTOCOL_SMBFS: SMBFSVolumeDriver(),
        }

    def _driver(self, connection_info):
        kind = connection_info.get('driver_volume_type')
        if kind not in self.volume_drivers:
            raise exception.VolumeDriverNotFound(driver_type=kind)
        return self.volume_drivers[kind]

    # ---- the host's connector ----
    def get_volume_connector(self):
        """What Cinder needs to export a volume to this host.

        Built from each Windows connector's own properties (iSCSI
        initiator name, FC WWPNs/WWNNs, multipath), with
        ``[DEFAULT] my_block_storage_ip`` as the address (nova 28
        ``get_volume_connector``).

        :raises nova.exception.InvalidConfiguration: multipath is asked
            for and the host lacks MPIO.
        """
        if CONF.hyperv.use_multipath_io and not (
                self._hostutils.check_server_feature(
                    self._hostutils.FEATURE_MPIO)):
            raise exception.InvalidConfiguration(_(
                '[hyperv] use_multipath_io is set but the Windows Multipath '
                'I/O feature is not installed on this host; install it '
                '(Install-WindowsFeature Multipath-IO) or unset '
                'use_multipath_io'))
        props = {'platform': platform.machine(), 'os_type': 'win32',
                 'ip': CONF.my_block_storage_ip, 'host': CONF.host}
        for cls in (iscsi.WindowsISCSIConnector,
                    fibre_channel.WindowsFCConnector,
                    RBDConnector,
                    smbfs.WindowsSMBFSConnector):
            props.update(cls.get_connector_properties(
                None, host=CONF.host,
                multipath=CONF.hyperv.use_multipath_io,
                enforce_multipath=True))
        return props

    # ---- attach ----
    def _controller(self, instance_name, disk_bus, ctrl_addr=None):
        if disk_bus == constants.CTRL_TYPE_IDE:
            return self._vmutils.get_vm_ide_controller(instance_name,
                                                       ctrl_addr or 0)
        return self._vmutils.get_vm_scsi_controller(instance_name)

    def choose_slot(self, instance_name, disk_bus, volume_id):
        """The controller and free slot a hot-attached volume goes to.

        :returns: (controller path, slot number).
        :raises nova.exception.VolumeAttachFailed: no slot is free.
        """
        try:
            ctrl_path = self._controller(instance_name, disk_bus)
            return ctrl_path, self._vmutils.get_free_controller_slot(
                ctrl_path)
        except os_win_exc.HyperVException as exc:
            raise exception.VolumeAttachFailed(volume_id=volume_id, reason=_(
                'no free slot on the VM\'s %(bus)s controller (%(exc)s); '
                'detach another volume first') % {'bus': disk_bus,
                                                  'exc': exc})

    def attach_volume(self, connection_info, instance_name,
                      disk_bus=constants.CTRL_TYPE_SCSI, ctrl_addr=None,
                      slot=None):
        """Connect a volume and attach it to the VM; undo all on failure.

        The controller slot is checked before anything is connected
        (``slot`` None: the next free one of the SCSI controller).  The
        attach is tried ``[hyperv] volume_attach_retry_count`` more times,
        ``volume_attach_retry_interval`` s apart (nova 28); a host that
        cannot take the volume (SAN policy, MPIO) is not retried.

        :returns: the disk's resource path on the VM.
        :raises nova.exception.VolumeAttachFailed: with the reason; the
            volume is disconnected again.
        :raises nova.exception.VolumeDriverNotFound: unknown protocol.
        """
        volume_id = connection_info.get('serial')
        vol_driver = self._driver(connection_info)
        try:
            vol_driver.validate_host_configuration()
        except exception.InvalidConfiguration as exc:
            raise exception.VolumeAttachFailed(volume_id=volume_id,
                                               reason=exc)
        if slot is None:
            ctrl_path, slot = self.choose_slot(instance_name, disk_bus,
                                               volume_id)
        else:
            ctrl_path = self._controller(instance_name, disk_bus, ctrl_addr)
        tries = CONF.hyperv.volume_attach_retry_count + 1
        for attempt in range(1, tries + 1):
            try:
                return self._attach(vol_driver, connection_info,
                                    instance_name, ctrl_path, slot)
            except Exception as exc:
                if attempt < tries:
                    LOG.warning('Attaching volume %(vol)s to %(vm)s failed '
                                '(%(exc)s); %(left)d tries left',
                                {'vol': volume_id, 'vm': instance_name,
                                 'exc': exc, 'left': tries - attempt})
                    time.sleep(CONF.hyperv.volume_attach_retry_interval)
                    continue
                LOG.error('Attaching volume %(info)s to %(vm)s failed',
                          {'info': _masked(connection_info),
                           'vm': instance_name})
                self._disconnect_quietly(vol_driver, connection_info)
                raise exception.VolumeAttachFailed(volume_id=volume_id,
                                                   reason=_reason(exc))

    def _attach(self, vol_driver, connection_info, instance_name, ctrl_path,
                slot):
        LOG.debug('Attaching volume %(info)s to %(vm)s',
                  {'info': _masked(connection_info), 'vm': instance_name})
        resource = vol_driver.attach_volume(connection_info, instance_name,
                                            ctrl_path, slot)
        qos_specs = connection_info['data'].get('qos_specs') or {}
        if qos_specs:
            try:
                vol_driver.set_disk_qos_specs(connection_info, qos_specs)
            except Exception:
                with excutils.save_and_reraise_exception():
                    vol_driver.detach_volume(connection_info, instance_name)
        return resource

    @staticmethod
    def _disconnect_quietly(vol_driver, connection_info):
        try:
            vol_driver.disconnect_volume(connection_info)
        except Exception:
            LOG.exception('Could not disconnect volume %s after a failed '
                          'attach', connection_info.get('serial'))

    def attach_volumes(self, block_device_info, instance_name):
        """Attach every volume of the mapping at the slot it was given.

        (``block_device.BlockDeviceInfoManager.validate_and_update_bdi``
        placed them.)  On failure the volumes attached so far are
        detached and disconnected again.

        :returns: {volume id: the disk's resource path on the VM}.
        """
        done = []
        resources = {}
        try:
            for vol in driver.block_device_info_get_mapping(
                    block_device_info):
                connection_info = vol['connection_info']
                resources[connection_info['serial']] = self.attach_volume(
                    connection_info, instance_name, vol['disk_bus'],
                    vol['drive_addr'], vol['ctrl_disk_addr'])
                done.append(connection_info)
            return resources
        except Exception:
            with excutils.save_and_reraise_exception():
                for connection_info in reversed(done):
                    try:
                        self.detach_volume(connection_info, instance_name)
                    except Exception:
                        LOG.exception('Could not undo the attach of volume '
                                      '%s', connection_info.get('serial'))

    # ---- detach / disconnect ----
    def detach_volume(self, connection_info, instance_name):
        """Detach the volume's disk from the VM, then disconnect it."""
        vol_driver = self._driver(connection_info)
        LOG.debug('Detaching volume %(info)s from %(vm)s',
                  {'info': _masked(connection_info), 'vm': instance_name})
        vol_driver.detach_volume(connection_info, instance_name)
        vol_driver.disconnect_volume(connection_info)

    def disconnect_volume(self, connection_info, force=False):
        self._driver(connection_info).disconnect_volume(connection_info,
                                                        force=force)

    def disconnect_volumes(self, block_device_info, force=False):
        """Disconnect every volume of the mapping (the VM may be gone).

        Goes on past a failure, so that one volume does not keep the
        others connected; the first failure is raised at the end.
        """
        first = None
        for vol in driver.block_device_info_get_mapping(block_device_info):
            try:
                self.disconnect_volume(vol['connection_info'], force=force)
            except Exception as exc:
                LOG.exception('Could not disconnect volume %s',
                              vol['connection_info'].get('serial'))
                first = first or exc
        if first is not None:
            raise first

    def connect_volumes(self, block_device_info):
        """Connect every volume of the mapping (a migration's destination).

        On failure the ones connected so far are disconnected again.
        """
        done = []
        try:
            for vol in driver.block_device_info_get_mapping(
                    block_device_info):
                self._driver(vol['connection_info']).connect_volume(
                    vol['connection_info'])
                done.append(vol['connection_info'])
        except Exception:
            with excutils.save_and_reraise_exception():
                for connection_info in done:
                    self._disconnect_quietly(self._driver(connection_info),
                                             connection_info)

    # ---- disk paths ----
    def get_disk_resource_path(self, connection_info):
        return self._driver(connection_info).get_disk_resource_path(
            connection_info)

    def get_disk_path_mapping(self, block_device_info, block_dev_only=True):
        """{volume id: this host's disk path} of the mapping's volumes."""
        mapping = {}
        for vol in driver.block_device_info_get_mapping(block_device_info):
            connection_info = vol['connection_info']
            vol_driver = self._driver(connection_info)
            if block_dev_only and not vol_driver.is_block_dev:
                continue
            mapping[connection_info['serial']] = (
                vol_driver.get_disk_resource_path(connection_info))
        return mapping

    def fix_instance_volume_disk_paths(self, instance_name,
                                       block_device_info):
        """Point the VM's passthrough disks at their volumes' disks again.

        Windows may number the disks differently after a reboot; the VM's
        passthrough disks still name the old numbers.  Each is found by
        its serial (the volume id) and pointed at the disk the connector
        finds for that volume now (nova 28
        ``fix_instance_volume_disk_paths``).
        """
        actual = self.get_disk_path_mapping(block_device_info)
        if not actual:
            return
        attached = self._vmutils.get_vm_physical_disk_mapping(instance_name)
        for serial, disk in attached.items():
            path = actual.get(serial)
            if path and disk['mounted_disk_path'] != path:
                LOG.info('Volume %(vol)s of %(vm)s moved to %(path)s',
                         {'vol': serial, 'vm': instance_name, 'path': path})
                self._vmutils.set_disk_host_res(disk['resource_path'], path)

    # ---- extend ----
    def extend_volume(self, connection_info):
        self._driver(connection_info).extend_volume(connection_info)
