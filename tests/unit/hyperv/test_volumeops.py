"""VolumeOps on a simulated Hyper-V host: volumes as Hyper-V ends up with
them, and what is left on the host when an attach fails."""

import os
import subprocess
import threading
import warnings

import fixtures
from nova import exception as nova_exception
from nova import test
from os_win import constants as os_win_const
from os_win import utilsfactory

from compute_hyperv_ovs.hyperv import volumeops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import storage

IQN = 'iqn.2010-10.org.openstack:volume-%d'
PORTAL = '192.0.2.200:3260'
VM = 'instance-00000001'


def iscsi_info(n=1, **data):
    info = {'driver_volume_type': 'iscsi', 'serial': 'vol-%d' % n,
            'data': {'target_iqn': IQN % n, 'target_portal': PORTAL,
                     'target_lun': 0}}
    info['data'].update(data)
    return info


def rbd_info(name, serial):
    return {'driver_volume_type': 'rbd', 'serial': serial,
            'data': {'name': name, 'hosts': ['127.0.0.1'],
                     'ports': ['6789'], 'auth_username': 'cinder'}}


class VolumeOpsTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        warnings.simplefilter('ignore', DeprecationWarning)
        self.flags(volume_attach_retry_count=0,
                   mounted_disk_query_retry_count=1,
                   mounted_disk_query_retry_interval=0, group='hyperv')
        self.flags(my_block_storage_ip='192.0.2.10', host='host1')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('host1')
        with self.hosts.building('host1'):
            self.ops = volumeops.VolumeOps()
            self.vmutils = utilsfactory.get_vmutils()
        path = self.useFixture(fixtures.TempDir()).path
        self.vmutils.create_vm(VM, False, os_win_const.VM_GEN_2, path,
                               ['5a2bd4aa-0000-4000-8000-000000000001'])
        self.vmutils.create_scsi_controller(VM)
        self.san = storage.SAN

    def target(self, n=1, **kwargs):
        return self.san.add_iscsi_target(IQN % n, [PORTAL], luns=[0],
                                         **kwargs)[0]

    def volumes(self):
        return self.host.vms[VM].volumes

    def start(self):
        self.vmutils.set_vm_state(VM, hyperv_const.RUNNING)

    # ---- attach / detach ----
    def test_attach_to_a_running_vm_tags_the_serial(self):
        volume = self.target()
        self.start()
        self.ops.attach_volume(iscsi_info(), VM)
        (vol,) = self.volumes()
        self.assertEqual('vol-1', vol.serial)
        self.assertEqual(volume.uid, vol.volume_uid)
        self.assertEqual(('SCSI', 0), (vol.controller, vol.slot))

    def test_attach_to_a_stopped_vm_then_it_starts(self):
        self.target()
        self.ops.attach_volume(iscsi_info(), VM)
        self.start()
        self.assertEqual('Running', self.host.vms[VM].power_state_name)

    def test_detach_takes_the_disk_off_and_logs_out(self):
        self.target()
        self.start()
        self.ops.attach_volume(iscsi_info(), VM)
        self.ops.detach_volume(iscsi_info(), VM)
        self.assertEqual((), self.volumes())
        self.assertEqual([], self.host.storage.iscsi_sessions)
        self.assertEqual({}, self.host.storage.disks)

    def test_two_volumes_take_two_slots(self):
        self.target(1)
        self.target(2)
        self.ops.attach_volume(iscsi_info(1), VM)
        self.ops.attach_volume(iscsi_info(2), VM)
        self.assertEqual([('vol-1', 0), ('vol-2', 1)],
                         [(v.serial, v.slot) for v in self.volumes()])

    def test_unknown_protocol(self):
        self.assertRaises(nova_exception.VolumeDriverNotFound,
                          self.ops.attach_volume,
                          {'driver_volume_type': 'nfs', 'serial': 'v',
                           'data': {}}, VM)

    # ---- failures leave nothing behind ----
    def test_wrong_chap_fails_clearly_and_leaves_no_session(self):
        self.target(chap=('user', 'secret'))
        exc = self.assertRaises(
            nova_exception.VolumeAttachFailed, self.ops.attach_volume,
            iscsi_info(auth_username='user', auth_password='nope'), VM)
        self.assertIn('vol-1', str(exc))
        self.assertEqual([], self.host.storage.iscsi_sessions)
        self.assertEqual((), self.volumes())

    def test_unreachable_target(self):
        self.assertRaises(nova_exception.VolumeAttachFailed,
                          self.ops.attach_volume, iscsi_info(), VM)
        self.assertEqual([], self.host.storage.iscsi_sessions)

    def test_san_policy_online_all_is_refused_before_connecting(self):
        self.target()
        self.host.storage.san_policy = os_win_const.DISK_POLICY_ONLINE_ALL
        exc = self.assertRaises(nova_exception.VolumeAttachFailed,
                                self.ops.attach_volume, iscsi_info(), VM)
        self.assertIn('SAN policy', str(exc))
        self.assertEqual([], self.host.storage.iscsi_sessions)

    def test_multipath_without_mpio_is_refused(self):
        self.flags(use_multipath_io=True, group='hyperv')
        self.target()
        exc = self.assertRaises(nova_exception.VolumeAttachFailed,
                                self.ops.attach_volume, iscsi_info(), VM)
        self.assertIn('Multipath I/O', str(exc))
        self.assertEqual([], self.host.storage.iscsi_sessions)
        self.assertRaises(nova_exception.InvalidConfiguration,
                          self.ops.get_volume_connector)

    def test_no_free_slot_is_refused_before_connecting(self):
        self.target(1, **{})
        self.san.add_iscsi_target(IQN % 9, [PORTAL], luns=range(64))
        with self.hosts.building('host1'):
            utilsfactory.get_iscsi_initiator_utils().login_storage_target(
                0, IQN % 9, PORTAL)
        ctrl = self.vmutils.get_vm_scsi_controller(VM)
        for slot, disk in enumerate(list(self.host.storage.disks.values())):
            self.vmutils.attach_volume_to_controller(
                VM, ctrl, slot, storage.disk_drive_path('host1',
                                                        disk.number),
                serial='filler-%d' % slot)
        exc = self.assertRaises(nova_exception.VolumeAttachFailed,
                                self.ops.attach_volume, iscsi_info(1), VM)
        self.assertIn('no free slot', str(exc))
        self.assertEqual({IQN % 9},
                         {s.iqn for s in self.host.storage.iscsi_sessions})

    def test_a_failing_volume_at_spawn_undoes_the_ones_before(self):
        self.target(1)
        bdi = {'block_device_mapping': [
            {'connection_info': iscsi_info(1), 'disk_bus': 'SCSI',
             'drive_addr': 0, 'ctrl_disk_addr': 0},
            {'connection_info': iscsi_info(2), 'disk_bus': 'SCSI',
             'drive_addr': 0, 'ctrl_disk_addr': 1}]}
        self.assertRaises(nova_exception.VolumeAttachFailed,
                          self.ops.attach_volumes, bdi, VM)
        self.assertEqual((), self.volumes())
        self.assertEqual([], self.host.storage.iscsi_sessions)

    # ---- connector, extend, host reboot ----
    def test_volume_connector(self):
        self.host.storage.fc_hba_ports = [
            {'node_name': '20000000C9AAAA00', 'port_name': '10000000C9AAAA01'}]
        conn = self.ops.get_volume_connector()
        self.assertEqual('iqn.1991-05.com.microsoft:host1',
                         conn['initiator'])
        self.assertEqual(['10000000C9AAAA01'], conn['wwpns'])
        self.assertEqual('192.0.2.10', conn['ip'])
        self.assertEqual('host1', conn['host'])
        self.assertEqual('win32', conn['os_type'])
        self.assertFalse(conn['multipath'])

    def test_extend_makes_windows_see_the_new_size(self):
        volume = self.target()
        self.ops.attach_volume(iscsi_info(), VM)
        self.san.extend(volume, 2 * volume.size)
        disk = self.host.storage.disks[volume.uid]
        self.assertEqual(volume.size // 2, disk.size)
        self.ops.extend_volume(iscsi_info())
        self.assertEqual(volume.size, disk.size)

    def test_disk_paths_fixed_after_a_host_reboot(self):
        self.target(1)
        self.target(2)
        bdi = {'block_device_mapping': [
            {'connection_info': iscsi_info(1)},
            {'connection_info': iscsi_info(2)}]}
        self.ops.attach_volume(iscsi_info(1), VM)
        self.ops.attach_volume(iscsi_info(2), VM)
        before = {v.serial: v.volume_uid for v in self.volumes()}
        self.host.reboot()
        self.assertNotEqual(
            before, {v.serial: v.volume_uid for v in self.volumes()})
        self.ops.fix_instance_volume_disk_paths(VM, bdi)
        self.assertEqual(
            before, {v.serial: v.volume_uid for v in self.volumes()})

    # ---- RBD ----
    def test_rbd_volume(self):
        volume = self.san.add_rbd_image('volumes/volume-r')
        self.start()
        self.ops.attach_volume(rbd_info('volumes/volume-r', 'vol-r'), VM)
        (vol,) = self.volumes()
        self.assertEqual(volume.uid, vol.volume_uid)
        self.ops.detach_volume(rbd_info('volumes/volume-r', 'vol-r'), VM)
        self.assertEqual({}, self.host.storage.rbd_mappings)

    def test_rbd_image_missing(self):
        self.assertRaises(nova_exception.VolumeAttachFailed,
                          self.ops.attach_volume,
                          rbd_info('volumes/nope', 'vol-x'), VM)
        self.assertEqual({}, self.host.storage.rbd_mappings)

    def test_rbd_attach_from_another_thread(self):
        # nova 34 calls the driver from its worker threads.
        self.san.add_rbd_image('volumes/volume-r')
        errors = []

        def attach():
            try:
                self.ops.attach_volume(rbd_info('volumes/volume-r', 'v'), VM)
            except Exception as exc:
                errors.append(exc)
        worker = threading.Thread(target=attach)
        worker.start()
        worker.join()
        self.assertEqual([], errors)
        self.assertEqual(1, len(self.volumes()))

    # ---- FC ----
    def fc_info(self):
        return {'driver_volume_type': 'fibre_channel', 'serial': 'vol-fc',
                'data': {'target_wwn': ['50060e8000000001'],
                         'target_lun': 3, 'initiator_target_map': {}}}

    def test_fc_volume_zoned_to_the_host(self):
        self.host.storage.fc_hba_ports = [
            {'node_name': '20000000C9AAAA00', 'port_name': '10000000C9AAAA01'}]
        volume = self.san.add_fc_lun('50060E8000000001', 3,
                                     ['10000000C9AAAA01'])
        self.start()
        self.ops.attach_volume(self.fc_info(), VM)
        (vol,) = self.volumes()
        self.assertEqual(('vol-fc', volume.uid), (vol.serial,
                                                  vol.volume_uid))
        self.ops.detach_volume(self.fc_info(), VM)
        self.assertEqual((), self.volumes())

    def test_fc_lun_not_zoned_to_the_host(self):
        self.host.storage.fc_hba_ports = [
            {'node_name': '20000000C9AAAA00', 'port_name': '10000000C9AAAA01'}]
        self.san.add_fc_lun('50060E8000000001', 3, ['10000000C9FFFF01'])
        self.assertRaises(nova_exception.VolumeAttachFailed,
                          self.ops.attach_volume, self.fc_info(), VM)
        self.assertEqual((), self.volumes())

    # ---- SMB ----
    def smb(self, qos=None):
        directory = self.useFixture(fixtures.TempDir()).path
        self.san.add_smb_share(r'\\fs\cinder', directory)
        subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'vhdx',
                               os.path.join(directory, 'volume-s.vhdx'),
                               '16M'])
        info = {'driver_volume_type': 'smbfs', 'serial': 'vol-s',
                'data': {'export': '//fs/cinder', 'name': 'volume-s.vhdx'}}
        if qos:
            info['data']['qos_specs'] = qos
        return info

    def test_smb_volume_attaches_the_file_with_its_qos(self):
        info = self.smb(qos={'total_bytes_sec': 10 * 8192 + 1})
        self.start()
        path = self.ops.attach_volume(info, VM)
        (disk,) = self.host.vms[VM].disks
        self.assertEqual(path, disk.path)
        # 8 KiB normalised IOPS, rounded up.
        self.assertEqual((0, 11), self.host.vms[VM].disk_qos[path])
        self.ops.detach_volume(info, VM)
        self.assertEqual((), self.host.vms[VM].disks)
        self.assertFalse(self.host.storage.smb_mappings)

    def test_smb_total_iops_wins(self):
        info = self.smb(qos={'total_iops_sec': 500,
                             'total_bytes_sec': 8192})
        path = self.ops.attach_volume(info, VM)
        self.assertEqual((0, 500), self.host.vms[VM].disk_qos[path])
