"""Cinder volumes through nova's API on a simulated Hyper-V host.

nova's Cinder fixture (``nova.tests.fixtures.CinderFixture``) plays
Cinder: it hands nova, for each volume, the connection info a Cinder
back end would (here iSCSI targets and RBD images that exist on the
simulated storage network, ``tests.fixtures.hyperv.storage.SAN``).  The
driver connects them through os-brick's Windows connectors, and each
test reads back what the Hyper-V host holds: the VM's passthrough disks
with their serials, the host's iSCSI sessions and WNBD mappings.
"""

import os
import subprocess
import time

import fixtures
from nova import context as nova_context
from nova import objects
from nova.tests.functional.api import client
from os_win import constants as os_win_const

from tests.fixtures.hyperv import storage
from tests.functional import test_restart

PORTAL = '192.0.2.200:3260'
VOL1 = '11111111-1111-4111-8111-111111111111'
VOL2 = '22222222-2222-4222-8222-222222222222'
BOOT_VOL = '33333333-3333-4333-8333-333333333333'
RBD_VOL = '44444444-4444-4444-8444-444444444444'
SMB_VOL = '55555555-5555-4555-8555-555555555555'


class VolumeHelpers(object):
    """Volumes on the simulated storage network, as Cinder exports them."""

    def setUp(self):
        # Failures should show at once, not after nova 28's 10 x 5 s.
        self.flags(volume_attach_retry_count=0,
                   mounted_disk_query_retry_count=1,
                   mounted_disk_query_retry_interval=0, group='hyperv')
        super().setUp()
        self.san = storage.SAN
        self.cinder.VOLUME_CONNECTION_INFO = dict(
            self.cinder.VOLUME_CONNECTION_INFO)
        self.luns = {}

    def iscsi_volume(self, volume_id, chap=None, auth=None):
        """A volume Cinder exports over iSCSI (one target per volume)."""
        iqn = 'iqn.2010-10.org.openstack:volume-%s' % volume_id
        self.luns[volume_id] = self.san.add_iscsi_target(
            iqn, [PORTAL], luns=[1], chap=chap)[1]
        data = {'target_iqn': iqn, 'target_portal': PORTAL,
                'target_lun': 1, 'target_discovered': False}
        if auth:
            data.update(auth_method='CHAP', auth_username=auth[0],
                        auth_password=auth[1])
        self.cinder.VOLUME_CONNECTION_INFO[volume_id] = {
            'driver_volume_type': 'iscsi', 'data': data}

    def rbd_volume(self, volume_id):
        name = 'volumes/volume-%s' % volume_id
        self.luns[volume_id] = self.san.add_rbd_image(name)
        self.cinder.VOLUME_CONNECTION_INFO[volume_id] = {
            'driver_volume_type': 'rbd',
            'data': {'name': name, 'hosts': ['127.0.0.1'],
                     'ports': ['6789'], 'auth_username': 'cinder',
                     'auth_enabled': True}}

    def smb_volume(self, volume_id, qos_specs=None):
        """A VHDX on an SMB share, as Cinder's SMB driver exports it."""
        directory = self.useFixture(fixtures.TempDir()).path
        self.san.add_smb_share(r'\\fs1\cinder', directory,
                               credentials=('cinder', 'pw'))
        name = 'volume-%s.vhdx' % volume_id
        subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'vhdx',
                               os.path.join(directory, name), '16M'])
        data = {'export': '//fs1/cinder', 'name': name,
                'options': '-o username=cinder,password=pw'}
        if qos_specs:
            data['qos_specs'] = qos_specs
        self.cinder.VOLUME_CONNECTION_INFO[volume_id] = {
            'driver_volume_type': 'smbfs', 'data': data}

    def volumes_of(self, server):
        """{serial: SAN volume uid} of the VM's passthrough disks now."""
        return {v.serial: v.volume_uid for v in self.vm_of(server).volumes}

    def sessions(self, hostname='host1'):
        return {s.iqn for s in self.host(hostname).storage.iscsi_sessions}

    def detach(self, server, volume_id):
        self.api.delete_server_volume(server['id'], volume_id)
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_detach.end')
        self._wait_for_volume_detach(server['id'], volume_id)

    def attachments(self, server):
        return [a['volumeId'] for a in
                self.api.get_server_volumes(server['id'])]

    def wait_until(self, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out waiting for ' + what)
            time.sleep(0.1)


class VolumeTestBase(VolumeHelpers, test_restart.RestartTestBase):
    pass


class AttachDetachTest(VolumeTestBase):

    def test_attach_and_detach_on_a_running_server(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        self._attach_volume(server, VOL1)
        self.assertEqual({VOL1: self.luns[VOL1].uid},
                         self.volumes_of(server))
        (vol,) = self.vm_of(server).volumes
        self.assertEqual('SCSI', vol.controller)
        self.assertEqual('Running', self.vm_of(server).power_state_name)
        # Cinder got this host's initiator in the connector.
        (attachment,) = self.cinder.volume_to_attachment[VOL1].values()
        self.assertEqual('iqn.1991-05.com.microsoft:host1',
                         attachment['connector']['initiator'])
        self.assertEqual('win32', attachment['connector']['os_type'])

        self.detach(server, VOL1)
        self.assertEqual({}, self.volumes_of(server))
        self.assertEqual(set(), self.sessions())
        self.assertEqual({}, self.host('host1').storage.disks)

    def test_attach_to_a_stopped_server_then_start_it(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        server = self._stop_server(server)
        self._attach_volume(server, VOL1)
        self.assertEqual({VOL1: self.luns[VOL1].uid},
                         self.volumes_of(server))
        self._start_server(server)
        self.assertEqual('Running', self.vm_of(server).power_state_name)

    def test_attach_to_a_shelved_offloaded_server_then_unshelve(self):
        # nova's API attaches to a shelved-offloaded server without any
        # host (the attachment has no connector yet); the host that
        # unshelves it connects the volume before the VM starts.  tempest's
        # AttachVolumeShelveTestJSON does this but skips on the hv hosts
        # (compute_volume_common_az: tools/tempest/hyperv-volume.txt).
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        server = self._shelve_server(server, 'SHELVED_OFFLOADED')
        self.assertEqual({}, self.host('host1').vms)
        self.api.post_server_volume(
            server['id'], {'volumeAttachment': {'volumeId': VOL1}})
        self.wait_until(lambda: VOL1 in self.attachments(server),
                        'the attachment of the shelved server')
        self.assertEqual(set(), self.sessions())

        server = self._unshelve_server(server)
        self.assertEqual({VOL1: self.luns[VOL1].uid},
                         self.volumes_of(server))
        self.assertEqual('Running', self.vm_of(server).power_state_name)
        self.assertEqual({'iqn.2010-10.org.openstack:volume-%s' % VOL1},
                         self.sessions())

    def test_rbd_volume(self):
        self.rbd_volume(RBD_VOL)
        server, _port = self.boot(self.image)
        self._attach_volume(server, RBD_VOL)
        self.assertEqual({RBD_VOL: self.luns[RBD_VOL].uid},
                         self.volumes_of(server))
        self.detach(server, RBD_VOL)
        self.assertEqual({}, self.host('host1').storage.rbd_mappings)

    def test_smb_volume_with_qos(self):
        self.smb_volume(SMB_VOL, qos_specs={'total_iops_sec': '300'})
        server, _port = self.boot(self.image)
        self._attach_volume(server, SMB_VOL)
        vm = self.vm_of(server)
        (disk,) = [d for d in vm.disks if 'fs1' in d.path]
        self.assertTrue(disk.path.endswith('volume-%s.vhdx' % SMB_VOL))
        self.assertEqual((0, 300), vm.disk_qos[disk.path])
        self.assertEqual({'\\\\fs1\\cinder'},
                         set(self.host('host1').storage.smb_mappings))
        self.detach(server, SMB_VOL)
        self.assertNotIn(disk.path, [d.path for d in
                                     self.vm_of(server).disks])
        self.assertEqual({}, self.host('host1').storage.smb_mappings)

    def test_tagged_volume_in_device_metadata(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        self.api.post_server_volume(
            server['id'], {'volumeAttachment': {'volumeId': VOL1,
                                                'tag': 'data'}})
        self._wait_for_volume_attach(server['id'], VOL1)
        self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.end')
        inst = objects.Instance.get_by_uuid(
            nova_context.get_admin_context(), server['id'],
            expected_attrs=['device_metadata'])
        disks = [d for d in inst.device_metadata.devices
                 if isinstance(d, objects.DiskMetadata)]
        self.assertEqual([(VOL1, ['data'], '0:0:0:0')],
                         [(d.serial, d.tags, d.bus.address) for d in disks])
        self.detach(server, VOL1)
        inst.refresh()
        self.assertEqual([], [d for d in inst.device_metadata.devices
                              if isinstance(d, objects.DiskMetadata)])

    def test_extended_volume_is_seen_at_its_new_size(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        self._attach_volume(server, VOL1)
        volume = self.luns[VOL1]
        disk = self.host('host1').storage.disks[volume.uid]
        old_size = disk.size
        # Cinder grows the LUN and tells nova (volume-extended).
        self.san.extend(volume, 2 * old_size)
        self.api.api_post('/os-server-external-events', {'events': [
            {'name': 'volume-extended', 'server_uuid': server['id'],
             'tag': VOL1}]})
        self.wait_until(lambda: disk.size == 2 * old_size,
                        'Windows to see the new size')

    def test_delete_disconnects_the_volumes(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        self._attach_volume(server, VOL1)
        self._delete_server(server)
        self.assertEqual(set(), self.sessions())

    def test_delete_disconnects_even_when_the_vm_is_gone(self):
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        self._attach_volume(server, VOL1)
        # Remove-VM by hand: the host still has the session.
        self.host('host1').remove_vm(
            server['OS-EXT-SRV-ATTR:instance_name'], turn_off=True)
        self.assertEqual({'iqn.2010-10.org.openstack:volume-%s' % VOL1},
                         self.sessions())
        self._delete_server(server)
        self.assertEqual(set(), self.sessions())


class AttachFailureTest(VolumeTestBase):
    """Each failure: a clear fault, nothing left connected or attached."""

    def attach_fails(self, server, volume_id):
        # The functional stack runs nova's casts as calls: the compute's
        # failure reaches the API request.
        exc = self.assertRaises(
            client.OpenStackApiException, self.api.post_server_volume,
            server['id'], {'volumeAttachment': {'volumeId': volume_id}})
        self.assertIn('VolumeAttachFailed', str(exc))
        notification = self.notifier.wait_for_versioned_notifications(
            'instance.volume_attach.error')[0]
        fault = notification['payload']['nova_object.data']['fault']
        self.wait_until(lambda: not self.attachments(server),
                        'the failed attachment to go')
        self.assertEqual({}, self.volumes_of(server))
        self.assertEqual(set(), self.sessions())
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])[
            'status'])
        return fault['nova_object.data']['exception_message']

    def test_wrong_chap_secret(self):
        self.iscsi_volume(VOL1, chap=('cinder', 'right'),
                          auth=('cinder', 'wrong'))
        server, _port = self.boot(self.image)
        message = self.attach_fails(server, VOL1)
        self.assertIn(VOL1, message)
        self.assertIn('Could not connect volume', message)
        # The fault names no secret.
        self.assertNotIn('wrong', message)

    def test_target_unreachable(self):
        self.cinder.VOLUME_CONNECTION_INFO[VOL1] = {
            'driver_volume_type': 'iscsi',
            'data': {'target_iqn': 'iqn.2010-10.org.openstack:gone',
                     'target_portal': '198.51.100.7:3260',
                     'target_lun': 1}}
        server, _port = self.boot(self.image)
        self.attach_fails(server, VOL1)

    def test_san_policy_online_all(self):
        self.iscsi_volume(VOL1)
        self.host('host1').storage.san_policy = (
            os_win_const.DISK_POLICY_ONLINE_ALL)
        server, _port = self.boot(self.image)
        message = self.attach_fails(server, VOL1)
        self.assertIn('SAN policy', message)

    def test_rbd_image_that_does_not_exist(self):
        self.rbd_volume(RBD_VOL)
        self.san.remove_rbd_image('volumes/volume-%s' % RBD_VOL)
        server, _port = self.boot(self.image)
        message = self.attach_fails(server, RBD_VOL)
        self.assertIn('No such file or directory', message)
        self.assertEqual({}, self.host('host1').storage.rbd_mappings)

    def test_multipath_without_mpio(self):
        # nova asks the driver for the host's connector first: refused.
        self.flags(use_multipath_io=True, group='hyperv')
        self.iscsi_volume(VOL1)
        server, _port = self.boot(self.image)
        exc = self.assertRaises(
            client.OpenStackApiException, self.api.post_server_volume,
            server['id'], {'volumeAttachment': {'volumeId': VOL1}})
        self.assertEqual(500, exc.response.status_code)
        self.assertEqual({}, self.volumes_of(server))
        self.assertEqual(set(), self.sessions())


class BootFromVolumeTest(VolumeTestBase):

    def boot_from_volume(self, properties=None):
        self.iscsi_volume(BOOT_VOL)
        self.cinder.volumes[BOOT_VOL] = {
            'id': BOOT_VOL, 'display_name': 'boot', 'size': 1,
            'multiattach': False, 'availability_zone': 'nova',
            'bootable': True,
            'volume_image_metadata': dict(properties or {})}
        server = self._build_server(networks=[
            {'port': self.create_port()['id']}])
        server.pop('imageRef')
        server['block_device_mapping_v2'] = [{
            'source_type': 'volume', 'destination_type': 'volume',
            'boot_index': 0, 'uuid': BOOT_VOL}]
        server = self.api.post_server({'server': server})
        return self._wait_for_state_change(server, 'ACTIVE')

    def test_generation_1_boots_from_the_volume_on_ide(self):
        server = self.boot_from_volume()
        vm = self.vm_of(server)
        (vol,) = vm.volumes
        self.assertEqual((BOOT_VOL, self.luns[BOOT_VOL].uid),
                         (vol.serial, vol.volume_uid))
        self.assertEqual(('IDE', 0, 0), (vol.controller,
                                         vol.controller_addr, vol.slot))
        self.assertEqual((), vm.disks)
        self.assertEqual(os_win_const.BOOT_DEVICE_HARDDISK,
                         vm.boot_order[0])
        self.assertEqual('Running', vm.power_state_name)
        self._delete_server(server)
        self.assertEqual(set(), self.sessions())

    def test_generation_2_boots_from_the_volume_on_scsi(self):
        server = self.boot_from_volume({'hw_machine_type': 'hyperv-gen2'})
        vm = self.vm_of(server)
        self.assertEqual(2, vm.generation)
        (vol,) = vm.volumes
        self.assertEqual(('SCSI', 0), (vol.controller, vol.slot))
        self.assertEqual(
            storage.disk_drive_path('host1', vol.disk_number),
            vm.boot_order[0])


class HostRebootTest(VolumeTestBase):

    def test_disk_numbers_change_and_the_vm_gets_its_own_volumes(self):
        self.flags(resume_guests_state_on_host_boot=True)
        self.iscsi_volume(VOL1)
        self.iscsi_volume(VOL2)
        server, _port = self.boot(self.image)
        self._attach_volume(server, VOL1)
        self._attach_volume(server, VOL2)
        expected = {VOL1: self.luns[VOL1].uid, VOL2: self.luns[VOL2].uid}
        self.assertEqual(expected, self.volumes_of(server))
        self.stop_compute('host1')
        self.host('host1').reboot()
        # Windows numbered the disks the other way round.
        self.assertNotEqual(expected, self.volumes_of(server))
        self.start_compute_again('host1')
        self.assertEqual('Running', self.vm_of(server).power_state_name)
        self.assertEqual(expected, self.volumes_of(server))
