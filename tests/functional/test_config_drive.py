"""Config drives a Hyper-V guest on a VXLAN network can use.

The drive is built by nova's own ConfigDriveBuilder with genisoimage, and
read back here from the real file with pycdlib (through qemu-img for the VHD
form), the way cloud-init or cloudbase-init would find it.
"""

import base64
import io
import json
import os

import fixtures
from oslo_concurrency import processutils
import pycdlib

from tests.functional import base

USER_DATA = b'#cloud-config\nhostname: vxlan-guest\n'
PASSWORD = 'Hyper-V-s3cret'


def read_iso(path):
    """{path inside the ISO: bytes} of the drive's openstack/latest files."""
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        files = {}
        for name in ('meta_data.json', 'network_data.json', 'user_data'):
            data = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(
                    data, rr_path='/openstack/latest/' + name)
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            files[name] = data.getvalue()
        return files
    finally:
        iso.close()


class ConfigDriveTestBase(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.flags(mkisofs_cmd='genisoimage')
        self.flags(qemu_img_cmd='qemu-img', group='hyperv')
        self.start_compute('host1')
        self.scratch = self.useFixture(fixtures.TempDir()).path

    def boot_with_drive(self, image_id, expected_state='ACTIVE', host=None,
                        **fields):
        """Boot with user data and a known password; returns (server, port)."""
        port = self.create_port()
        body = self._build_server(image_uuid=image_id,
                                  flavor_id=self.flavor_id,
                                  networks=[{'port': port['id']}], host=host)
        body.update({'user_data': base64.b64encode(USER_DATA).decode(),
                     'adminPass': PASSWORD})
        body.update(fields)
        server = self.api.post_server({'server': body})
        return self._wait_for_state_change(server, expected_state), port

    def drive_path(self, server):
        vm = self.vm_of(server)
        paths = [d.path for d in vm.dvds + vm.disks
                 if os.path.basename(d.path).startswith('configdrive')]
        self.assertEqual(1, len(paths), 'config drives attached: %s' % paths)
        return paths[0]

    def drive_files(self, server):
        path = self.drive_path(server)
        if path.endswith('.vhd'):
            raw = os.path.join(self.scratch, 'configdrive.iso')
            processutils.execute('qemu-img', 'convert', '-f', 'vpc',
                                 '-O', 'raw', path, raw)
            path = raw
        return read_iso(path)

    def assert_drive_describes(self, server, port, files):
        meta = json.loads(files['meta_data.json'])
        self.assertEqual(server['id'], meta['uuid'])
        self.assertEqual(server['name'], meta['name'])
        links = json.loads(files['network_data.json'])['links']
        self.assertEqual([(port['mac_address'], 1450)],
                         [(link['ethernet_mac_address'], link['mtu'])
                          for link in links])
        self.assertEqual(USER_DATA, files['user_data'])


class ConfigDriveTest(ConfigDriveTestBase):

    def test_forced_drive_is_iso_dvd_on_ide_for_generation1(self):
        self.flags(force_config_drive=True)
        self.flags(config_drive_cdrom=True, group='hyperv')
        server, port = self.boot_with_drive(self.images.create_image('vhd'))

        vm = self.vm_of(server)
        drive = [d for d in vm.dvds if d.path == self.drive_path(server)][0]
        self.assertEqual('IDE', drive.controller)
        self.assertTrue(drive.path.endswith('.iso'))
        files = self.drive_files(server)
        self.assert_drive_describes(server, port, files)
        self.assertNotIn('admin_pass', json.loads(files['meta_data.json']))

    def test_requested_drive_is_iso_dvd_on_scsi_for_generation2(self):
        self.flags(config_drive_cdrom=True, group='hyperv')
        image = self.images.create_image(
            'vhdx', properties={'hw_machine_type': 'hyperv-gen2'})

        server, port = self.boot_with_drive(image, config_drive=True)

        drive = [d for d in self.vm_of(server).dvds
                 if d.path == self.drive_path(server)][0]
        self.assertEqual('SCSI', drive.controller)
        self.assert_drive_describes(server, port, self.drive_files(server))

    def test_no_drive_unless_requested_or_forced(self):
        server, _ = self.boot_with_drive(self.images.create_image('vhdx'))

        vm = self.vm_of(server)
        self.assertEqual([], [d.path for d in vm.dvds + vm.disks
                              if 'configdrive' in d.path])

    def test_cdrom_false_converts_the_iso_to_a_vhd_disk(self):
        self.flags(force_config_drive=True)
        self.flags(config_drive_cdrom=False, group='hyperv')
        server, port = self.boot_with_drive(self.images.create_image('vhdx'))

        path = self.drive_path(server)
        self.assertTrue(path.endswith('.vhd'))
        self.assertIn(path, [d.path for d in self.vm_of(server).disks])
        self.assertFalse(os.path.exists(path[:-len('.vhd')] + '.iso'))
        self.assert_drive_describes(server, port, self.drive_files(server))

    def test_admin_password_only_when_injection_is_enabled(self):
        self.flags(force_config_drive=True)
        self.flags(config_drive_inject_password=True, group='hyperv')

        server, _ = self.boot_with_drive(self.images.create_image('vhdx'))

        meta = json.loads(self.drive_files(server)['meta_data.json'])
        self.assertEqual(PASSWORD, meta['admin_pass'])

    def test_drive_survives_reboot_and_goes_with_the_server(self):
        self.flags(force_config_drive=True)
        server, port = self.boot_with_drive(self.images.create_image('vhdx'))
        path = self.drive_path(server)

        self._reboot_server(server, hard=True)
        self._reboot_server(server, hard=False)

        self.assertEqual(path, self.drive_path(server))
        self.assert_drive_describes(server, port, self.drive_files(server))

        self._delete_server(server)
        self.assertFalse(os.path.exists(path))
        self.assertIsNone(self.vm_of(server, 'host1'))

    def test_rescue_keeps_the_drive_and_unrescue_restores_it(self):
        self.flags(force_config_drive=True)
        image = self.images.create_image('vhdx')
        server, port = self.boot_with_drive(image)
        path = self.drive_path(server)

        self.api.post_server_action(
            server['id'], {'rescue': {'rescue_image_ref': image}})
        server = self._wait_for_state_change(server, 'RESCUE')
        self.assertTrue(os.path.exists(path))
        self.api.post_server_action(server['id'], {'unrescue': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        self.assertEqual(path, self.drive_path(server))
        self.assert_drive_describes(server, port, self.drive_files(server))

    def test_vfat_is_refused_before_anything_is_created(self):
        self.flags(force_config_drive=True, config_drive_format='vfat')

        server, port = self.boot_with_drive(self.images.create_image('vhdx'),
                                            expected_state='ERROR')

        fault = server['fault']['message']
        self.assertIn('config_drive_format=vfat is not supported', fault)
        self.assertIn('config_drive_format = iso9660', fault)
        self.assertEqual({}, self.host('host1').vms)
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports('br-int'))
        self.assertFalse(os.path.exists(self.instance_dir(server)))
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            server['id']))


class ConfigDriveMigrationTest(ConfigDriveTestBase):
    """The drive moves with the instance files to the destination host."""

    def setUp(self):
        super().setUp()
        self.start_compute('host2')
        self.flags(force_config_drive=True)

    def assert_drive_moved(self, server, port, old_path):
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        path = self.drive_path(server)
        self.assertEqual(self.instance_dir(server, 'host2'),
                         os.path.dirname(path))
        self.assert_drive_describes(server, port, self.drive_files(server))
        self.assertFalse(os.path.exists(old_path))
        self.assertIsNone(self.vm_of(server, 'host1'))

    def test_iso_drive_moves_with_live_migration(self):
        self.flags(config_drive_cdrom=True, group='hyperv')
        server, port = self.boot_with_drive(self.images.create_image('vhdx'),
                                            host='host1')
        old_path = self.drive_path(server)

        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': 'host2', 'block_migration': 'auto'}})
        self._wait_for_migration_status(server, ['completed'])
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-SRV-ATTR:host': 'host2', 'status': 'ACTIVE'})

        self.assert_drive_moved(server, port, old_path)

    def test_vhd_drive_moves_with_cold_migration(self):
        self.flags(config_drive_cdrom=False, group='hyperv')
        server, port = self.boot_with_drive(self.images.create_image('vhdx'),
                                            host='host1')
        old_path = self.drive_path(server)

        self.api.post_server_action(server['id'], {'migrate': None})
        server = self._wait_for_state_change(server, 'VERIFY_RESIZE')
        self.api.post_server_action(server['id'], {'confirmResize': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        self.assert_drive_moved(server, port, old_path)
