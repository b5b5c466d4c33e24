"""Servers with volumes moving between two simulated Hyper-V hosts.

Live migration: the destination connects the volume and makes the
planned VM before the VM arrives (checked at the moment Hyper-V moves
it), the source disconnects after; a failed move leaves nothing
connected on the destination.  Resize: the source disconnects when its
VM goes, the destination connects when it re-creates the VM, and a
revert brings the volume back to the source.
"""

from os_win import exceptions as os_win_exc

from tests.functional import test_migration
from tests.functional import test_volumes

VOL1 = test_volumes.VOL1
IQN1 = 'iqn.2010-10.org.openstack:volume-%s' % VOL1


class VolumeMigrationTestBase(test_volumes.VolumeHelpers,
                              test_migration.MigrationTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.iscsi_volume(VOL1)
        self.server, self.port = self.boot(self.image, host='host1')
        self._attach_volume(self.server, VOL1)
        self.expected = {VOL1: self.luns[VOL1].uid}

    def volumes_on(self, hostname):
        vm = self.vm_of(self.server, hostname)
        return {v.serial: v.volume_uid for v in vm.volumes} if vm else None


class LiveMigrationWithVolumeTest(VolumeMigrationTestBase):

    def test_volume_is_ready_on_the_destination_before_the_vm_arrives(self):
        at_cutover = {}

        def cutover(vm_name, source, destination):
            at_cutover['sessions'] = self.sessions('host2')
            at_cutover['planned'] = vm_name in self.host('host2').planned_vms

        self.host('host2').on_live_migration = cutover
        server, migration = self.live_migrate(self.server, 'host2')

        self.assertEqual({'sessions': {IQN1}, 'planned': True}, at_cutover)
        self.assertEqual('completed', migration['status'])
        self.assert_runs_on('host2', server, self.port)
        self.assertEqual(self.expected, self.volumes_on('host2'))
        # The source let go of the volume once the VM had left.
        self.assertEqual(set(), self.sessions('host1'))
        self.assertEqual({}, self.host('host1').storage.disks)
        (attachment,) = [
            a for a in self.cinder.volume_to_attachment[VOL1].values()
            if a['connector']]
        self.assertEqual('host2', attachment['connector']['host'])

    def test_failed_move_disconnects_what_the_destination_connected(self):
        def fail_at_cutover(vm_name, source, destination):
            raise os_win_exc.HyperVException(
                'Virtual machine migration operation failed (simulated)')

        self.host('host2').on_live_migration = fail_at_cutover
        server, _migration = self.live_migrate(self.server, 'host2',
                                               migration_status='error')

        self.assert_runs_on('host1', server, self.port)
        self.assertEqual(self.expected, self.volumes_on('host1'))
        self.assertEqual({IQN1}, self.sessions('host1'))
        self.assertEqual(set(), self.sessions('host2'))
        self.assertEqual(frozenset(), self.host('host2').planned_vms)


class ResizeWithVolumeTest(VolumeMigrationTestBase):

    def setUp(self):
        super().setUp()
        self.bigger_flavor_id = self._create_flavor(
            memory_mb=2048, vcpu=4, disk=3, ephemeral=0)

    def test_resize_moves_the_volume_then_confirm(self):
        server = self._resize_server(self.server, self.bigger_flavor_id)
        self.assert_runs_on('host2', server, self.port, 'VERIFY_RESIZE')
        self.assertEqual(self.expected, self.volumes_on('host2'))
        self.assertEqual(set(), self.sessions('host1'))
        self.assertEqual({IQN1}, self.sessions('host2'))
        server = self._confirm_resize(server)
        self.assertEqual(self.expected, self.volumes_on('host2'))
        self.assertEqual(set(), self.sessions('host1'))

    def test_resize_then_revert_brings_the_volume_back(self):
        server = self._resize_server(self.server, self.bigger_flavor_id)
        server = self._revert_resize(server)
        self.assert_runs_on('host1', server, self.port)
        self.assertEqual(self.expected, self.volumes_on('host1'))
        self.assertEqual({IQN1}, self.sessions('host1'))
        self.assertEqual(set(), self.sessions('host2'))
