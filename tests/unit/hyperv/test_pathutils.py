"""PathUtils: where an instance's files are, on this host and on others."""

import os
import time
import types

import fixtures
from nova import exception
from nova import test

from compute_hyperv_ovs.hyperv import pathutils
from tests.fixtures.hyperv import fixture as hyperv_fixture


def _touch(path):
    with open(path, 'wb') as f:
        f.write(b'x')
    return path


class InstanceFilesTestCase(test.NoDBTestCase):
    """One host whose instances path is CONF.instances_path."""

    def setUp(self):
        super().setUp()
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        hosts.add_host('host1')
        with hosts.building('host1'):
            self.paths = pathutils.PathUtils()
        self.instance_dir = os.path.join(self.instances_path, 'instance-1')

    def test_instance_dir_is_made_under_the_instances_path(self):
        self.assertEqual(self.instance_dir,
                         self.paths.get_instance_dir('instance-1'))
        self.assertTrue(os.path.isdir(self.instance_dir))

    def test_instance_dir_not_made_when_asked_not_to(self):
        self.paths.get_instance_dir('instance-1', create_dir=False)
        self.assertFalse(os.path.exists(self.instance_dir))

    def test_instance_dir_emptied_on_request(self):
        os.makedirs(self.instance_dir)
        old = _touch(os.path.join(self.instance_dir, 'root.vhdx'))
        self.paths.get_instance_dir('instance-1', remove_dir=True)
        self.assertTrue(os.path.isdir(self.instance_dir))
        self.assertFalse(os.path.exists(old))

    def test_root_disk_names(self):
        self.assertEqual(os.path.join(self.instance_dir, 'root.vhdx'),
                         self.paths.get_root_vhd_path('instance-1', 'VHDX'))
        self.assertEqual(
            os.path.join(self.instance_dir, 'root-rescue.vhd'),
            self.paths.get_root_vhd_path('instance-1', 'vhd', rescue=True))

    def test_lookup_root_disk_finds_the_format_on_disk(self):
        self.assertIsNone(self.paths.lookup_root_vhd_path('instance-1'))
        vhdx = _touch(self.paths.get_root_vhd_path('instance-1', 'vhdx'))
        self.assertEqual(vhdx, self.paths.lookup_root_vhd_path('instance-1'))
        self.assertIsNone(
            self.paths.lookup_root_vhd_path('instance-1', rescue=True))
        # Both present: the VHD is the one nova 28 would have found.
        vhd = _touch(self.paths.get_root_vhd_path('instance-1', 'vhd'))
        self.assertEqual(vhd, self.paths.lookup_root_vhd_path('instance-1'))

    def test_lookup_ephemeral_disk(self):
        self.assertIsNone(
            self.paths.lookup_ephemeral_vhd_path('instance-1', 'eph0'))
        eph = _touch(self.paths.get_ephemeral_vhd_path('instance-1', 'VHDX',
                                                       'eph0'))
        self.assertEqual(os.path.join(self.instance_dir, 'eph0.vhdx'), eph)
        self.assertEqual(
            eph, self.paths.lookup_ephemeral_vhd_path('instance-1', 'eph0'))
        self.assertIsNone(
            self.paths.lookup_ephemeral_vhd_path('instance-1', 'eph1'))

    def test_lookup_config_drive_iso_or_vhd(self):
        self.assertIsNone(self.paths.lookup_configdrive_path('instance-1'))
        iso = _touch(self.paths.get_configdrive_path('instance-1', 'ISO'))
        self.assertEqual(os.path.join(self.instance_dir, 'configdrive.iso'),
                         iso)
        self.assertEqual(iso,
                         self.paths.lookup_configdrive_path('instance-1'))
        rescue = _touch(self.paths.get_configdrive_path(
            'instance-1', 'vhd', rescue=True))
        self.assertEqual(
            os.path.join(self.instance_dir, 'configdrive-rescue.vhd'),
            rescue)
        self.assertEqual(rescue, self.paths.lookup_configdrive_path(
            'instance-1', rescue=True))

    def test_revert_dir_is_made_only_on_request(self):
        revert = os.path.join(self.instances_path, 'instance-1_revert')
        self.assertEqual(
            revert, self.paths.get_instance_migr_revert_dir('instance-1'))
        self.assertFalse(os.path.exists(revert))
        self.paths.get_instance_migr_revert_dir('instance-1',
                                                create_dir=True)
        self.assertTrue(os.path.isdir(revert))

    def test_export_dir_starts_empty(self):
        export = os.path.join(self.instances_path, 'export', 'instance-1')
        os.makedirs(export)
        leftover = _touch(os.path.join(export, 'root.vhdx'))
        self.assertEqual(export, self.paths.get_export_dir('instance-1'))
        self.assertTrue(os.path.isdir(export))
        self.assertFalse(os.path.exists(leftover))

    def test_cached_image_lookup(self):
        base = self.paths.get_base_vhd_dir()
        self.assertEqual(os.path.join(self.instances_path, '_base'), base)
        self.assertTrue(os.path.isdir(base))
        self.assertIsNone(self.paths.get_image_path('image-1'))
        image = _touch(os.path.join(base, 'image-1.vhdx'))
        self.assertEqual(image, self.paths.get_image_path('image-1'))

    def test_age_of_file(self):
        path = _touch(os.path.join(self.instances_path, 'old'))
        an_hour_ago = time.time() - 3600
        os.utime(path, (an_hour_ago, an_hour_ago))
        self.assertAlmostEqual(3600, self.paths.get_age_of_file(path),
                               delta=60)

    def test_console_log_paths(self):
        self.assertEqual(
            (os.path.join(self.instance_dir, 'console.log'),
             os.path.join(self.instance_dir, 'console.log.1')),
            self.paths.get_vm_console_log_paths('instance-1'))
        # Asking where the log would be leaves no directory behind.
        self.assertFalse(os.path.exists(self.instance_dir))

    def test_unwritable_destination_is_file_not_found(self):
        missing = os.path.join(self.instances_path, 'no-such-dir')
        self.assertRaises(exception.FileNotFound,
                          self.paths.check_dirs_shared_storage,
                          self.instances_path, missing)


class TwoHostsTestCase(test.NoDBTestCase):
    """Files between hosts: shared instances path, or one each."""

    def setUp(self):
        super().setUp()
        self.shared = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.shared)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())

    def _paths(self, hostname, **host_kwargs):
        self.hosts.add_host(hostname, **host_kwargs)
        with self.hosts.building(hostname):
            return pathutils.PathUtils()

    def test_hosts_on_one_share_see_shared_storage(self):
        paths1 = self._paths('host1')
        self._paths('host2')
        self.assertTrue(paths1.check_remote_instances_dir_shared('host2'))

    def test_hosts_with_own_disks_do_not(self):
        own1 = self.useFixture(fixtures.TempDir()).path
        own2 = self.useFixture(fixtures.TempDir()).path
        paths1 = self._paths('host1', instances_path=own1)
        self._paths('host2', instances_path=own2)
        self.assertFalse(paths1.check_remote_instances_dir_shared('host2'))
        self.assertEqual(os.path.join(own2, 'instance-1'),
                         paths1.get_instance_dir('instance-1',
                                                 remote_server='host2'))

    def test_console_log_copy_makes_the_destination_dir(self):
        own1 = self.useFixture(fixtures.TempDir()).path
        own2 = self.useFixture(fixtures.TempDir()).path
        paths1 = self._paths('host1', instances_path=own1)
        self._paths('host2', instances_path=own2)
        paths1.get_instance_dir('instance-1')
        log, _ = paths1.get_vm_console_log_paths('instance-1')
        with open(log, 'w') as f:
            f.write('login:\n')

        paths1.copy_vm_console_logs('instance-1', 'host2')

        self.assertTrue(os.path.isfile(
            os.path.join(own2, 'instance-1', 'console.log')))

    def test_console_logs_follow_the_vm_to_another_host(self):
        own1 = self.useFixture(fixtures.TempDir()).path
        own2 = self.useFixture(fixtures.TempDir()).path
        paths1 = self._paths('host1', instances_path=own1)
        paths2 = self._paths('host2', instances_path=own2)
        paths1.get_instance_dir('instance-1')
        log, archived = paths1.get_vm_console_log_paths('instance-1')
        with open(log, 'w') as f:
            f.write('login:\n')
        # A stale log from an earlier stay on host2 is replaced.
        paths2.get_instance_dir('instance-1')
        stale, _ = paths2.get_vm_console_log_paths('instance-1')
        with open(stale, 'w') as f:
            f.write('old boot\n')

        paths1.copy_vm_console_logs('instance-1', 'host2')

        copied, copied_archive = paths2.get_vm_console_log_paths(
            'instance-1')
        self.assertEqual(os.path.join(own2, 'instance-1', 'console.log'),
                         copied)
        with open(copied) as f:
            self.assertEqual('login:\n', f.read())
        self.assertFalse(os.path.exists(copied_archive))


class InstanceSharedStorageTestCase(TwoHostsTestCase):
    """nova's three-step question: is this instance's directory shared?

    Asked by a returning evacuation source (nova 34 ComputeManager.
    _is_instance_storage_shared): the probe is made on one host, looked for
    on the other, removed on the first.
    """

    def _instance(self, name='instance-1'):
        return types.SimpleNamespace(name=name)

    def _ask(self, source, dest, instance):
        data = source.check_instance_shared_storage_local(instance)
        try:
            return data, dest.check_instance_shared_storage_remote(data)
        finally:
            source.check_instance_shared_storage_cleanup(data)

    def test_one_share_is_shared_and_the_probe_goes(self):
        paths1 = self._paths('host1')
        paths2 = self._paths('host2')
        instance_dir = paths1.get_instance_dir('instance-1')

        data, shared = self._ask(paths1, paths2, self._instance())

        self.assertTrue(shared)
        # The other host is told a name, not a path on this host's disk.
        self.assertEqual('instance-1', data['instance_name'])
        self.assertEqual(os.path.basename(data['filename']),
                         data['filename'])
        self.assertEqual([], os.listdir(instance_dir))

    def test_own_disks_are_not_shared(self):
        paths1 = self._paths(
            'host1', instances_path=self.useFixture(fixtures.TempDir()).path)
        paths2 = self._paths(
            'host2', instances_path=self.useFixture(fixtures.TempDir()).path)
        instance_dir = paths1.get_instance_dir('instance-1')
        # host2 has a directory of its own for the instance (say, from an
        # evacuation there): still not the same storage.
        paths2.get_instance_dir('instance-1')

        data, shared = self._ask(paths1, paths2, self._instance())

        self.assertFalse(shared)
        self.assertEqual([], os.listdir(instance_dir))

    def test_no_directory_here_asks_nothing(self):
        paths1 = self._paths('host1')
        self.assertIsNone(
            paths1.check_instance_shared_storage_local(self._instance()))
        self.assertFalse(os.path.exists(
            paths1.get_instance_dir('instance-1', create_dir=False)))

    def test_cleanup_of_a_probe_already_gone(self):
        paths1 = self._paths('host1')
        paths1.get_instance_dir('instance-1')
        data = paths1.check_instance_shared_storage_local(self._instance())
        paths1.check_instance_shared_storage_cleanup(data)
        paths1.check_instance_shared_storage_cleanup(data)
        self.assertEqual(
            [], os.listdir(paths1.get_instance_dir('instance-1')))

    def test_instance_files_here_needs_the_root_disk(self):
        paths1 = self._paths('host1')
        paths2 = self._paths('host2')
        self.assertFalse(paths2.instance_files_here('instance-1'))
        paths1.get_instance_dir('instance-1')
        # A directory alone (a console log, say) is no disk to boot.
        self.assertFalse(paths2.instance_files_here('instance-1'))
        _touch(paths1.get_root_vhd_path('instance-1', 'vhdx'))
        self.assertTrue(paths2.instance_files_here('instance-1'))


class RemoteInstancesDirTestCase(test.NoDBTestCase):
    """The UNC path of another host's instances path (no host needed).

    The simulated host replaces get_instances_dir (UNC paths mean nothing
    on Linux), so these run without it, on the path strings alone.
    """

    def setUp(self):
        super().setUp()
        self.paths = pathutils.PathUtils()

    def test_local_dir_is_the_configured_path(self):
        self.flags(instances_path=r'C:\OpenStack\Instances')
        self.assertEqual(r'C:\OpenStack\Instances',
                         self.paths.get_instances_dir())

    def test_administrative_share_by_default(self):
        self.flags(instances_path=r'C:\OpenStack\Instances')
        self.assertEqual(r'\\host2\C$\OpenStack\Instances',
                         self.paths.get_instances_dir('host2'))

    def test_configured_share(self):
        self.flags(instances_path=r'D:\Instances')
        self.flags(instances_path_share='instances', group='hyperv')
        self.assertEqual(r'\\192.0.2.11\instances',
                         self.paths.get_instances_dir('192.0.2.11'))

    def test_unc_instances_path_is_the_same_everywhere(self):
        self.flags(instances_path=r'\\fileserver\instances')
        self.assertEqual(r'\\fileserver\instances',
                         self.paths.get_instances_dir('host2'))

    def test_no_drive_letter_and_no_share_is_refused(self):
        self.flags(instances_path=r'\OpenStack\Instances')
        exc = self.assertRaises(exception.InvalidInput,
                                self.paths.get_instances_dir, 'host2')
        self.assertIn('instances_path_share', str(exc))
