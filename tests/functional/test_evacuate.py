"""Evacuation of a server from a failed simulated Hyper-V host.

The source host "fails": its nova-compute stops, nova's API is told it is
down, and its VMs are off (the host lost power; Hyper-V keeps the VMs'
definitions).  The server is evacuated to the other host; then the
source's nova-compute starts again and must remove its stale copy of the
VM without touching what the destination now runs on.

Two layouts: an instances path both hosts share (an SMB share or cluster
storage: the simulated hosts are started without an instances path of
their own), where the evacuated VM keeps its disk; and shared-nothing,
where the disk is made again from the image on the destination.
"""

import os

from os_win import constants as os_win_const

from tests.functional import base
from tests.functional import test_migration

OFF = os_win_const.HYPERV_VM_STATE_DISABLED
RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED


class EvacuateTestBase(test_migration.MigrationTestBase):

    SHARED_INSTANCES_PATH = None

    def setUp(self):
        super().setUp()
        extra = ({'instances_path': None} if self.SHARED_INSTANCES_PATH
                 else {})
        self.start_compute('host1', **extra)
        self.start_compute('host2', **extra)

    def service_id(self, hostname):
        return self.admin_api.get_services(
            binary='nova-compute', host=hostname)[0]['id']

    def fail_host(self, hostname, servers):
        """The host goes down with its VMs; nova's API is told so."""
        self.computes[hostname].stop()
        for server in servers:
            self.host(hostname).turn_off_by_hand(
                server['OS-EXT-SRV-ATTR:instance_name'])
        self.admin_api.put_service_force_down(self.service_id(hostname),
                                              True)

    def recover_host(self, hostname):
        """A new nova-compute on the same simulated host, then back up."""
        self.flags(ovsdb_connection=self.ovs[hostname].connection,
                   group=base.OVSDB_GROUP)
        with self.hyperv.building(hostname):
            self.computes[hostname] = self.start_service('compute',
                                                         host=hostname)
        self.admin_api.put_service_force_down(self.service_id(hostname),
                                              False)

    def evacuate(self, server, expected_state):
        return self._evacuate_server(server, expected_host='host2',
                                     expected_state=expected_state)

    def root_file(self, server, hostname):
        path, disk = self.root_disk(server, hostname)
        return path, os.stat(path).st_ino, disk


class SharedInstancesPathEvacuateTest(EvacuateTestBase):

    SHARED_INSTANCES_PATH = True

    def setUp(self):
        super().setUp()
        # 2.94: the last microversion that keeps an evacuated server's
        # state (from 2.95 on it arrives stopped).
        self.api.microversion = self.admin_api.microversion = '2.94'

    def test_evacuated_vm_keeps_its_disk_and_source_copy_goes(self):
        server, port = self.boot(self.image, host='host1')
        name = server['OS-EXT-SRV-ATTR:instance_name']
        path, inode, disk = self.root_file(server, 'host1')
        self.fail_host('host1', [server])

        server = self.evacuate(server, 'ACTIVE')

        vm = self.assert_runs_on('host2', server, port)
        # The VM on host2 runs from the very file host1's VM used: the disk
        # was not made again from the image.
        self.assertEqual([path], [d.path for d in vm.disks])
        self.assertEqual((inode, disk), self.root_file(server, 'host2')[1:])
        # host1 is still down: its VM (off) is still defined there.
        self.assertEqual(OFF, self.host('host1').vms[name].power_state)

        self.recover_host('host1')

        self._wait_for_migration_status(server, ['completed'])
        self.assertNotIn(name, self.host('host1').vms)
        self.assert_no_ovs_port('host1', port)
        # host1 kept its hands off the shared files: host2's VM runs on.
        server = self.api.get_server(server['id'])
        vm = self.assert_runs_on('host2', server, port)
        self.assertEqual([path], [d.path for d in vm.disks])
        self.assertEqual(inode, os.stat(path).st_ino)
        self.assertEqual([], [f for f in os.listdir(os.path.dirname(path))
                              if f.startswith('shared-check-')])
        self.assert_allocated_on('host2', server)


class FailedEvacuationOnSharedStorageTest(EvacuateTestBase):

    SHARED_INSTANCES_PATH = True

    def setUp(self):
        super().setUp()
        # host2's Windows keeps nearly all of its memory for itself: nova's
        # inventory has room for the server, Hyper-V cannot start it.
        host2 = self.host('host2')
        host2.host_os_memory_mb = host2.memory_mb - 512

    def test_failed_spawn_leaves_the_shared_disk(self):
        server, port = self.boot(self.image, host='host1')
        name = server['OS-EXT-SRV-ATTR:instance_name']
        path, inode, disk = self.root_file(server, 'host1')
        self.fail_host('host1', [server])

        self._evacuate_server(server, expected_state='ERROR',
                              expected_migration_status='failed')

        self.assertNotIn(name, self.host('host2').vms)
        self.assert_no_ovs_port('host2', port)
        # The server's disk is still there, the same file, for the
        # operator to evacuate again or for host1 when it comes back.
        self.assertEqual((inode, disk), self.root_file(server, 'host1')[1:])


class SharedNothingEvacuateTest(EvacuateTestBase):

    SHARED_INSTANCES_PATH = False

    def test_evacuated_vm_is_rebuilt_and_source_files_are_removed(self):
        server, port = self.boot(self.image, host='host1')
        name = server['OS-EXT-SRV-ATTR:instance_name']
        source_path, source_disk = self.root_disk(server, 'host1')
        self.fail_host('host1', [server])

        # Latest microversion: the evacuated server arrives stopped.
        server = self.evacuate(server, 'SHUTOFF')

        vm = self.vm_of(server, 'host2')
        self.assertEqual(OFF, vm.power_state)
        dest_path, dest_disk = self.root_disk(server, 'host2')
        self.assertEqual([dest_path], [d.path for d in vm.disks])
        self.assertNotEqual(source_path, dest_path)
        # Made from the image at the flavor's size, as on host1.
        self.assertEqual(source_disk.virtual_size, dest_disk.virtual_size)
        self.assertIsNotNone(dest_disk.parent)

        self.recover_host('host1')

        self._wait_for_migration_status(server, ['completed'])
        self.assertNotIn(name, self.host('host1').vms)
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host1')))
        self.assertTrue(os.path.exists(dest_path))
        self.assertIn(name, self.host('host2').vms)
        self.assert_allocated_on('host2', server)

        server = self._start_server(server)
        self.assert_runs_on('host2', server, port)
