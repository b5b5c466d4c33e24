#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The simulated host's storage, driven through os-brick's Windows connectors.

The connectors (os-brick 6.14 ``os_brick.initiator.windows``) are the
real ones; what they call is the simulated host's os-win utils and Ceph
tools.
"""

import json
import os
import subprocess
import sys
import warnings

import fixtures
from os_brick import exception as brick_exc
from os_brick.initiator.windows import fibre_channel
from os_brick.initiator.windows import iscsi
from os_brick.initiator.windows import rbd
from os_brick.initiator.windows import smbfs
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_concurrency import processutils
import testtools

from compute_hyperv_ovs.hyperv import volumeops
from tests.fixtures.hyperv import ceph_cluster
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import storage

IQN = 'iqn.2010-10.org.openstack:volume-1'
PORTAL = '192.0.2.200:3260'
IMAGE = 'volumes/volume-1'
FAKE_RBD = '''#!%(python)s
import json, os, sys
args = sys.argv[1:]
opts = dict(zip(args[0:-4:2], args[1:-4:2]))
assert args[-4:-1] == ['info', '--format', 'json'], args
name = args[-1]
keyring = opts['--keyring']
client = '[client.%%s]' %% opts.get('--id', 'admin')
if not os.path.exists(keyring) or client not in open(keyring).read():
    sys.stderr.write("rbd: couldn't connect to the cluster!\\n")
    sys.exit(13)
images = json.load(open('%(images)s'))
if name not in images:
    sys.stderr.write('rbd: error opening image %%s: (2) No such file or '
                     'directory\\n' %% name.split('/')[-1])
    sys.exit(2)
image_id, size = images[name]
print(json.dumps({'name': name.split('/')[-1], 'id': image_id, 'size': size}))
'''
MONS = ['127.0.0.1']
PORTS = ['6789']


class StorageSimulationTestCase(testtools.TestCase):

    def setUp(self):
        super(StorageSimulationTestCase, self).setUp()
        warnings.simplefilter('ignore', DeprecationWarning)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host1 = self.hosts.add_host('host1')
        self.host2 = self.hosts.add_host('host2')
        self.san = storage.SAN

    def _connector(self, cls, host='host1', **kwargs):
        if cls is rbd.WindowsRBDConnector:
            # os-brick's own polls the disk in a looping call's thread with
            # the connector's os-win utils (see volumeops).
            cls = volumeops.RBDConnector
        with self.hosts.building(host):
            return cls(root_helper=None, device_scan_attempts=1,
                       device_scan_interval=0,
                       execute=volumeops.run_storage_command, **kwargs)

    def _utils(self, name, host='host1'):
        with self.hosts.building(host):
            return getattr(utilsfactory, 'get_' + name)()

    def _vm(self, name='vm1', host='host1', gen=os_win_const.VM_GEN_1):
        vmutils = self._utils('vmutils', host)
        vmutils.create_vm(name, False, gen,
                          self.useFixture(fixtures.TempDir()).path,
                          ['00000000-0000-0000-0000-000000000001'])
        vmutils.create_scsi_controller(name)
        return vmutils

    # ---- iSCSI ----
    def _iscsi_props(self, **extra):
        props = {'target_iqn': IQN, 'target_portal': PORTAL,
                 'target_lun': 1}
        props.update(extra)
        return props

    def test_iscsi_login_brings_an_offline_disk(self):
        luns = self.san.add_iscsi_target(IQN, [PORTAL], luns=[1])
        conn = self._connector(iscsi.WindowsISCSIConnector)
        info = conn.connect_volume(self._iscsi_props())
        self.assertEqual('block', info['type'])
        disk = self.host1.storage.disks[luns[1].uid]
        self.assertEqual(r'\\.\PHYSICALDRIVE%d' % disk.number, info['path'])
        # Windows Server's default SAN policy: shared disks come offline.
        self.assertFalse(disk.online)
        self.assertEqual('3' + luns[1].uid, info['scsi_wwn'])
        # The other host sees nothing of it.
        self.assertEqual({}, self.host2.storage.disks)

    def test_iscsi_second_login_to_the_same_portal_is_not_made(self):
        self.san.add_iscsi_target(IQN, [PORTAL])
        iscsi_utils = self._utils('iscsi_initiator_utils')
        iscsi_utils.login_storage_target(1, IQN, PORTAL)
        iscsi_utils.login_storage_target(1, IQN, PORTAL)
        self.assertEqual(1, len(self.host1.storage.iscsi_sessions))
        # Windows refuses a second session on the same path without the
        # multipath flag (what os-win's check avoids).
        exc = self.assertRaises(
            os_win_exc.ISCSIInitiatorAPIException,
            iscsi_utils._login, IQN, storage.normalise_portal(PORTAL),
            None, None, False, None)
        self.assertEqual(0xEFFF003F, exc.error_code)

    def test_iscsi_wrong_chap_is_refused_and_no_session_stays(self):
        self.san.add_iscsi_target(IQN, [PORTAL], chap=('user', 'secret'))
        conn = self._connector(iscsi.WindowsISCSIConnector)
        self.assertRaises(brick_exc.BrickException, conn.connect_volume,
                          self._iscsi_props(auth_username='user',
                                            auth_password='wrong'))
        self.assertEqual([], self.host1.storage.iscsi_sessions)
        self.assertEqual({}, self.host1.storage.disks)
        conn.connect_volume(self._iscsi_props(auth_username='user',
                                              auth_password='secret'))
        self.assertEqual(1, len(self.host1.storage.disks))

    def test_iscsi_unreachable_portal(self):
        iscsi_utils = self._utils('iscsi_initiator_utils')
        exc = self.assertRaises(os_win_exc.ISCSIInitiatorAPIException,
                                iscsi_utils.login_storage_target, 1, IQN,
                                '198.51.100.9:3260')
        self.assertEqual(0xEFFF0003, exc.error_code)

    def test_iscsi_disconnect_logs_out_and_the_disk_goes(self):
        self.san.add_iscsi_target(IQN, [PORTAL])
        conn = self._connector(iscsi.WindowsISCSIConnector)
        conn.connect_volume(self._iscsi_props())
        conn.disconnect_volume(self._iscsi_props())
        self.assertEqual([], self.host1.storage.iscsi_sessions)
        self.assertEqual({}, self.host1.storage.disks)

    def test_iscsi_logout_of_a_disk_in_use_is_refused(self):
        self.san.add_iscsi_target(IQN, [PORTAL])
        conn = self._connector(iscsi.WindowsISCSIConnector)
        info = conn.connect_volume(self._iscsi_props())
        vmutils = self._vm()
        drive = vmutils.get_mounted_disk_by_drive_number(info['number'])
        vmutils.attach_volume_to_controller(
            'vm1', vmutils.get_vm_scsi_controller('vm1'), 0, drive,
            serial='vol-1')
        # An Off VM holds no handle on the disk; a running one does.
        vmutils.set_vm_state('vm1', os_win_const.HYPERV_VM_STATE_ENABLED)
        exc = self.assertRaises(os_win_exc.ISCSIInitiatorAPIException,
                                conn.disconnect_volume, self._iscsi_props())
        self.assertEqual(0xEFFF0040, exc.error_code)
        vmutils.set_vm_state('vm1', os_win_const.HYPERV_VM_STATE_DISABLED)
        conn.disconnect_volume(self._iscsi_props())
        self.assertEqual([], self.host1.storage.iscsi_sessions)

    # ---- disks and passthrough ----
    def test_passthrough_needs_an_offline_disk(self):
        self.host1.storage.san_policy = os_win_const.DISK_POLICY_ONLINE_ALL
        self.san.add_iscsi_target(IQN, [PORTAL])
        info = self._connector(iscsi.WindowsISCSIConnector).connect_volume(
            self._iscsi_props())
        vmutils = self._vm()
        drive = vmutils.get_mounted_disk_by_drive_number(info['number'])
        ctrl = vmutils.get_vm_scsi_controller('vm1')
        exc = self.assertRaises(os_win_exc.HyperVException,
                                vmutils.attach_volume_to_controller,
                                'vm1', ctrl, 0, drive)
        self.assertIn('must be offline', str(exc))
        self._utils('diskutils').set_disk_offline(info['number'])
        vmutils.attach_volume_to_controller('vm1', ctrl, 0, drive,
                                            serial='vol-1')
        self.assertEqual(
            {'vol-1': drive},
            {k: v['mounted_disk_path'] for k, v in
             vmutils.get_vm_physical_disk_mapping('vm1').items()})
        # One disk, one VM.
        self._vm('vm2')
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.attach_volume_to_controller, 'vm2',
                          vmutils.get_vm_scsi_controller('vm2'), 0, drive)

    def test_no_free_slot(self):
        vmutils = self._vm()
        ctrl = vmutils.get_vm_scsi_controller('vm1')
        self.san.add_iscsi_target(IQN, [PORTAL], luns=range(64))
        self._utils('iscsi_initiator_utils').login_storage_target(
            0, IQN, PORTAL)
        for n, disk in enumerate(self.host1.storage.disks.values()):
            vmutils.attach_volume_to_controller(
                'vm1', ctrl, vmutils.get_free_controller_slot(ctrl),
                storage.disk_drive_path('host1', disk.number), serial=str(n))
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.get_free_controller_slot, ctrl)

    def test_ide_passthrough_only_while_off(self):
        self.san.add_iscsi_target(IQN, [PORTAL])
        info = self._connector(iscsi.WindowsISCSIConnector).connect_volume(
            self._iscsi_props())
        vmutils = self._vm()
        drive = vmutils.get_mounted_disk_by_drive_number(info['number'])
        vmutils.set_vm_state('vm1', os_win_const.HYPERV_VM_STATE_ENABLED)
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.attach_volume_to_controller, 'vm1',
                          vmutils.get_vm_ide_controller('vm1', 0), 1, drive)
        # SCSI takes it while the VM runs.
        vmutils.attach_volume_to_controller(
            'vm1', vmutils.get_vm_scsi_controller('vm1'), 0, drive,
            serial='vol-1')
        vmutils.detach_vm_disk('vm1', None, serial='vol-1')
        self.assertEqual((), self.host1.vms['vm1'].volumes)

    def test_reboot_renumbers_disks_and_the_vm_points_at_the_wrong_one(self):
        self.san.add_iscsi_target(IQN, [PORTAL], luns=[1, 2])
        conn = self._connector(iscsi.WindowsISCSIConnector)
        info = conn.connect_volume(self._iscsi_props())
        vmutils = self._vm()
        drive = vmutils.get_mounted_disk_by_drive_number(info['number'])
        vmutils.attach_volume_to_controller(
            'vm1', vmutils.get_vm_scsi_controller('vm1'), 0, drive,
            serial='vol-1')
        uid = self.host1.vms['vm1'].volumes[0].volume_uid
        self.host1.reboot()
        view = self.host1.vms['vm1'].volumes[0]
        self.assertNotEqual(uid, view.volume_uid)
        # The connector finds the volume's disk under its new number.
        new_path = conn.get_volume_paths(self._iscsi_props())[0]
        self.assertNotEqual(info['path'], new_path)

    # ---- FC ----
    def test_fc_lun_zoned_to_the_host(self):
        self.host1.storage.fc_hba_ports = [
            {'node_name': '20000000C9AAAA00', 'port_name': '10000000C9AAAA01'}]
        volume = self.san.add_fc_lun('50060E8000000001', 1,
                                     ['10000000C9AAAA01'])
        conn = self._connector(fibre_channel.WindowsFCConnector)
        props = {'target_wwn': ['50060e8000000001'], 'target_lun': 1,
                 'initiator_target_map': {}}
        info = conn.connect_volume(props)
        self.assertEqual(volume.uid,
                         self.host1.storage.disk_by_number(
                             info['number']).volume.uid)
        self.assertEqual({"wwpns": ["10000000C9AAAA01"],
                          'wwnns': ['20000000C9AAAA00']},
                         self._fc_props())
        # Not zoned to host2.
        self.host2.storage.fc_hba_ports = [
            {'node_name': '20000000C9BBBB00', 'port_name': '10000000C9BBBB01'}]
        self.assertRaises(brick_exc.NoFibreChannelVolumeDeviceFound,
                          self._connector(fibre_channel.WindowsFCConnector,
                                          host='host2').connect_volume, props)

    def _fc_props(self):
        with self.hosts.building('host1'):
            return fibre_channel.WindowsFCConnector.get_connector_properties()

    # ---- SMB ----
    def _smb_props(self):
        return {'export': '//fileserver/cinder', 'name': 'volume-1.vhdx',
                'options': '-o username=cinder,password=pw'}

    def _make_share(self):
        directory = self.useFixture(fixtures.TempDir()).path
        self.san.add_smb_share(r'\\fileserver\cinder', directory,
                               credentials=('cinder', 'pw'))
        subprocess.check_call(
            ['qemu-img', 'create', '-q', '-f', 'vhdx',
             os.path.join(directory, 'volume-1.vhdx'), '16M'])
        return directory

    def test_smb_share_mapped_and_file_attached(self):
        self._make_share()
        conn = self._connector(smbfs.WindowsSMBFSConnector)
        info = conn.connect_volume(self._smb_props())
        self.assertEqual('file', info['type'])
        self.assertTrue(self.host1.storage.share_mapped(info['path']))
        vmutils = self._vm()
        vmutils.attach_drive('vm1', info['path'],
                             vmutils.get_vm_scsi_controller('vm1'), 0)
        # In use: the share stays mapped through a non-forced unmount.
        conn.disconnect_volume(self._smb_props())
        self.assertTrue(self.host1.storage.share_mapped(info['path']))
        vmutils.detach_vm_disk('vm1', info['path'], is_physical=False)
        conn.disconnect_volume(self._smb_props())
        self.assertFalse(self.host1.storage.share_mapped(info['path']))

    def test_smb_share_not_mounted_is_refused(self):
        self._make_share()
        vmutils = self._vm()
        path = r'\\fileserver\cinder\volume-1.vhdx'
        exc = self.assertRaises(os_win_exc.HyperVException,
                                vmutils.attach_drive, 'vm1', path,
                                vmutils.get_vm_scsi_controller('vm1'), 0)
        self.assertIn('not mapped', str(exc))

    def test_smb_wrong_credentials(self):
        self._make_share()
        conn = self._connector(smbfs.WindowsSMBFSConnector)
        props = dict(self._smb_props(), options='-o username=cinder,'
                                                'password=bad')
        self.assertRaises(os_win_exc.SMBException, conn.connect_volume,
                          props)

    # ---- RBD ----
    def _rbd_props(self, name=IMAGE):
        return {'name': name, 'hosts': MONS, 'ports': PORTS,
                'auth_username': 'cinder'}

    def test_rbd_maps_only_images_that_exist(self):
        volume = self.san.add_rbd_image(IMAGE)
        conn = self._connector(rbd.WindowsRBDConnector)
        info = conn.connect_volume(self._rbd_props())
        disk = self.host1.storage.disks[volume.uid]
        self.assertEqual(r'\\.\PHYSICALDRIVE%d' % disk.number, info['path'])
        # WNBD ignores the SAN policy; the connector took it offline.
        self.assertFalse(disk.online)
        self.assertRaises(processutils.ProcessExecutionError,
                          conn.connect_volume,
                          self._rbd_props('volumes/volume-missing'))
        conn.disconnect_volume(self._rbd_props())
        self.assertEqual({}, self.host1.storage.disks)

    def _cluster(self, images):
        # A stand-in for Linux's rbd tool in front of a cluster holding
        # ``images`` ({name: (id, size)}), readable only with the host's
        # keyring for client.cinder: what ceph_cluster asks a real one.
        tmp = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(tmp, 'images.json'), 'w') as f:
            json.dump(images, f)
        tool = os.path.join(tmp, 'rbd')
        with open(tool, 'w') as f:
            f.write(FAKE_RBD % {'python': sys.executable,
                                'images': os.path.join(tmp, 'images.json')})
        os.chmod(tool, 0o755)
        conf_dir = os.path.join(tmp, 'ProgramData-ceph')
        os.makedirs(conf_dir)
        with open(os.path.join(conf_dir, 'keyring'), 'w') as f:
            f.write('[client.cinder]\n\tkey = AQB=\n')
        self.san.rbd_cluster = ceph_cluster.CephCluster(rbd_cmd=tool)
        self.host1.storage.ceph_conf_dir = conf_dir
        self.cluster_images = os.path.join(tmp, 'images.json')
        return tool

    def test_rbd_rescan_reads_the_grown_image_in_a_new_process(self):
        # Cinder extends the volume after nova-compute restarted (a new
        # process, a new CephCluster): the rescan still finds the image's
        # new size, from the options the mapping was made with.
        tool = self._cluster({IMAGE: ['10f3a6b2c9d1', 1024 ** 3]})
        self._connector(rbd.WindowsRBDConnector).connect_volume(
            self._rbd_props())
        self.san.rbd_cluster = ceph_cluster.CephCluster(rbd_cmd=tool)
        with open(self.cluster_images, 'w') as f:
            json.dump({IMAGE: ['10f3a6b2c9d1', 3 * 1024 ** 3]}, f)
        self._utils('diskutils').rescan_disks()
        volume = self.host1.storage.rbd_mappings[IMAGE]
        self.assertEqual(3 * 1024 ** 3,
                         self.host1.storage.disks[volume.uid].size)

    def test_rbd_maps_only_images_the_real_cluster_has(self):
        self._cluster({IMAGE: ['10f3a6b2c9d1', 2 * 1024 ** 3]})
        conn = self._connector(rbd.WindowsRBDConnector)
        conn.connect_volume(self._rbd_props())
        volume = self.host1.storage.rbd_mappings[IMAGE]
        self.assertEqual((2 * 1024 ** 3, '60014%027X' % 0x10f3a6b2c9d1),
                         (self.host1.storage.disks[volume.uid].size,
                          volume.uid))
        exc = self.assertRaises(processutils.ProcessExecutionError,
                                conn.connect_volume,
                                self._rbd_props('volumes/volume-missing'))
        self.assertEqual((2, 'rbd: error opening image volume-missing: (2) '
                             'No such file or directory'),
                         (exc.exit_code, exc.stderr))
        conn.disconnect_volume(self._rbd_props())
        self.assertEqual({}, self.host1.storage.disks)

    def test_rbd_cluster_refuses_a_host_without_the_key(self):
        self._cluster({IMAGE: ['10f3a6b2c9d1', 1024 ** 3]})
        os.remove(os.path.join(self.host1.storage.ceph_conf_dir, 'keyring'))
        conn = self._connector(rbd.WindowsRBDConnector)
        exc = self.assertRaises(processutils.ProcessExecutionError,
                                conn.connect_volume, self._rbd_props())
        self.assertIn("couldn't connect to the cluster", exc.stderr)
        self.assertEqual({}, self.host1.storage.rbd_mappings)

    def test_rbd_tools_missing(self):
        self.host1.storage.rbd_installed = False
        self.assertRaises(brick_exc.BrickException, self._connector,
                          rbd.WindowsRBDConnector)
