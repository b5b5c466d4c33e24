"""LiveMigrationOps between two simulated Hyper-V hosts (shared-nothing).

host1 is the source, host2 the destination, each with its own instances
path and the core's own VMOps, ImageCache and SerialConsoleOps.  The VIF
driver is a recorder; the OVS checks of the project's back end are not
here (they plug in through ``destination_checks``, tested as a seam).
"""

import os

import fixtures
from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova.objects import migrate_data as migrate_data_obj
from nova import test
from os_brick import exception as brick_exception
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import imagecache
from compute_hyperv_ovs.hyperv import livemigrationops
from compute_hyperv_ovs.hyperv import serialconsole
from compute_hyperv_ovs.hyperv import vmops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import storage
from tests.fixtures import images
from tests.unit.hyperv import recording_vif

MAC = recording_vif.MAC


class RecordingCheck(object):
    """A back end's destination check: records its calls, may refuse."""

    def __init__(self, refusal=None):
        self.calls = []
        self.refusal = refusal

    def __call__(self, context, instance, dest, network_info, migrate_data):
        self.calls.append((instance.uuid, dest, network_info, migrate_data))
        if self.refusal:
            raise nova_exception.MigrationPreCheckError(reason=self.refusal)


def compute_info(hostname, features):
    """A ComputeNode as nova hands it to the driver (obj_to_primitive)."""
    return {'hypervisor_hostname': hostname,
            'cpu_info': jsonutils.dumps({'features': sorted(features)})}


class Host(object):
    """One simulated host with the core's ops built on it."""

    def __init__(self, hosts, name, instances_path, checks=()):
        self.name = name
        self.sim = hosts.add_host(name, instances_path=instances_path)
        self.vifs = recording_vif.RecordingVIFDriver()
        with hosts.building(name):
            self.image_cache = imagecache.ImageCache()
            self.console = serialconsole.SerialConsoleOps()
            self.vmops = vmops.VMOps(None, self.vifs, self.image_cache,
                                     self.console)
            self.ops = livemigrationops.LiveMigrationOps(
                self.vmops, self.image_cache, self.console, checks)
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()

    def path(self, *parts):
        return os.path.join(self.sim.instances_path, *parts)

    def console_logs(self):
        """Log files this host's running console handlers write."""
        return [h.log_file for h in self.sim.serial_pipe_handlers
                if h.running]


class LiveMigrationOpsTestBase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.root)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.check = RecordingCheck()
        self.src = Host(self.hosts, 'host1', os.path.join(self.root, 'host1'))
        self.dest = Host(self.hosts, 'host2',
                         os.path.join(self.root, 'host2'), [self.check])
        self.context = nova_context.get_admin_context()
        self.image_id = uuidutils.generate_uuid()
        disk_images = self.useFixture(images.DiskImagesFixture(glance=None))
        self.glance_file = disk_images.make_file('vhdx', size_gb=0.0625)
        self.downloads = self.useFixture(images.ImageDownloadsFixture(
            {self.image_id: self.glance_file}))
        self.fetched = self.downloads.fetched
        self.vif = recording_vif.ovs_vif()
        self.network_info = network_model.NetworkInfo([self.vif])
        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', image_ref=self.image_id,
            flavor=objects.Flavor(root_gb=1, ephemeral_gb=0, swap=0,
                                  memory_mb=1024, vcpus=2, extra_specs={}),
            old_flavor=None, system_metadata={'image_disk_format': 'vhdx'},
            pci_requests=objects.InstancePCIRequests(requests=[]))
        self.instance.info_cache = objects.InstanceInfoCache(
            network_info=self.network_info)
        self.name = self.instance.name

    def running_vm_on_source(self, limit_cpu_features=False):
        """The VM as a boot on host1 leaves it, its console logged."""
        base = self.src.image_cache.get_cached_image(self.context,
                                                     self.instance)
        os.makedirs(self.src.path(self.name))
        self.root_disk = self.src.path(self.name, 'root.vhdx')
        self.src.vhdutils.create_differencing_vhd(self.root_disk, base)
        vmutils = self.src.vmutils
        vmutils.create_vm(self.name, False, 1, self.src.path(self.name),
                          [self.instance.uuid])
        vmutils.update_vm(self.name, 1024, None, 2, None,
                          limit_cpu_features, 1.0)
        ctrl = vmutils.get_vm_ide_controller(self.name, 0)
        vmutils.attach_drive(self.name, self.root_disk, ctrl, 0)
        vmutils.create_nic(self.name, self.vif['id'], MAC)
        vmutils.set_vm_serial_port_connection(
            self.name, 1, r'\\.\pipe\%s_rw' % self.instance.uuid)
        vmutils.set_vm_state(self.name, hyperv_const.RUNNING)
        self.assertTrue(self.src.console.start_console_handler(self.name))

    def migrate_data(self, **kwargs):
        data = migrate_data_obj.HyperVLiveMigrateData(**kwargs)
        data.migration = objects.Migration(source_compute='host1',
                                           dest_compute='host2')
        return data


class DestinationCheckTest(LiveMigrationOpsTestBase):

    def check_dest(self, src_features=hyperv_const.DEFAULT_CPU_FEATURES,
                   dst_features=hyperv_const.DEFAULT_CPU_FEATURES):
        return self.dest.ops.check_can_live_migrate_destination(
            self.context, self.instance,
            compute_info('host1', src_features),
            compute_info('host2', dst_features))

    def refused(self, **kwargs):
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.check_dest, **kwargs)
        return exc.format_message()

    def test_ready_destination_answers_not_shared(self):
        data = self.check_dest()

        self.assertIsInstance(data, migrate_data_obj.HyperVLiveMigrateData)
        self.assertFalse(data.is_shared_instance_path)
        # Checking creates nothing.
        self.assertEqual([], os.listdir(self.dest.sim.instances_path))

    def test_live_migration_disabled_here(self):
        self.dest.sim.live_migration_enabled = False

        message = self.refused()

        self.assertIn('Hyper-V on host2 cannot live-migrate', message)
        self.assertIn('Enable-VMMigration', message)

    def test_different_cpus_refused_without_limit_cpu_features(self):
        message = self.refused(
            dst_features=hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'})

        self.assertIn('host2 lacks processor features of host1', message)
        self.assertIn('[hyperv] limit_cpu_features = True', message)
        self.assertIn('(host2 lacks sse3)', message)

    def test_different_cpus_pass_with_limit_cpu_features(self):
        self.flags(limit_cpu_features=True, group='hyperv')

        self.check_dest(
            dst_features=hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'})

    def test_more_cpu_features_here_pass(self):
        self.check_dest(
            src_features=hyperv_const.DEFAULT_CPU_FEATURES - {'sse3'})

    def test_back_end_check_gets_the_instance_and_its_vifs(self):
        self.check_dest()

        self.assertEqual(
            [(self.instance.uuid, 'host2', self.network_info, None)],
            self.check.calls)

    def test_back_end_check_refusal_is_the_answer(self):
        self.check.refusal = 'no bridge br-int on host2'

        message = self.refused()

        self.assertIn('no bridge br-int on host2', message)

    def test_unreachable_source_share(self):
        self.instance.host = 'host9'

        message = self.refused()

        self.assertIn('the instances share of host9 cannot be reached from '
                      'host2', message)
        self.assertIn('instances_path_share', message)

    def test_shared_instances_path_is_reported(self):
        # Two more hosts on CONF.instances_path, as on an SMB share.
        self.hosts.add_host('host3')
        host4 = Host(self.hosts, 'host4', None)
        self.instance.host = 'host3'

        data = host4.ops.check_can_live_migrate_destination(
            self.context, self.instance,
            compute_info('host3', hyperv_const.DEFAULT_CPU_FEATURES),
            compute_info('host4', hyperv_const.DEFAULT_CPU_FEATURES))

        self.assertTrue(data.is_shared_instance_path)


class SourceCheckTest(LiveMigrationOpsTestBase):

    def test_returns_destination_data(self):
        data = self.migrate_data(is_shared_instance_path=False)

        self.assertIs(data, self.src.ops.check_can_live_migrate_source(
            self.context, self.instance, data))

    def test_live_migration_disabled_on_source(self):
        self.src.sim.live_migration_enabled = False

        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            self.src.ops.check_can_live_migrate_source, self.context,
            self.instance, self.migrate_data())

        self.assertIn('Hyper-V on host1 cannot live-migrate',
                      exc.format_message())


class PreLiveMigrationTest(LiveMigrationOpsTestBase):

    def pre(self, bdi=None, data=None):
        data = data or self.migrate_data(is_shared_instance_path=False)
        return self.dest.ops.pre_live_migration(
            self.context, self.instance, bdi, self.network_info, data)

    def test_caches_the_image_and_makes_the_instance_dir(self):
        data = self.migrate_data(is_shared_instance_path=False)

        self.assertIs(data, self.pre(data=data))

        self.assertTrue(os.path.isfile(
            self.dest.path('_base', self.image_id + '.vhdx')))
        self.assertTrue(os.path.isdir(self.dest.path(self.name)))
        self.assertEqual([self.image_id], self.fetched)
        self.assertEqual({}, self.dest.sim.vms)
        self.assertEqual(
            [(self.instance.uuid, 'host2', self.network_info, data)],
            self.check.calls)

    def test_without_cow_images_nothing_is_fetched(self):
        self.flags(use_cow_images=False)

        self.pre()

        self.assertEqual([], self.fetched)

    def test_live_migration_disabled_here_changes_nothing(self):
        self.dest.sim.live_migration_enabled = False

        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.pre)

        self.assertIn('Hyper-V on host2 cannot live-migrate',
                      exc.format_message())
        self.assertEqual([], os.listdir(self.dest.sim.instances_path))
        self.assertEqual([], self.check.calls)

    def test_back_end_refusal_changes_nothing(self):
        self.check.refusal = 'OVSDB on host2 did not answer'

        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                self.pre)

        self.assertIn('OVSDB on host2 did not answer', exc.format_message())
        self.assertEqual([], os.listdir(self.dest.sim.instances_path))

    @staticmethod
    def volume_bdi(*numbers):
        return {'block_device_mapping': [
            {'connection_info': {
                'driver_volume_type': 'iscsi', 'serial': 'vol-%d' % n,
                'data': {'target_iqn': 'iqn.2010-10.org.openstack:v%d' % n,
                         'target_portal': '192.0.2.200:3260',
                         'target_lun': 0}},
             'mount_device': '/dev/sd%s' % 'bcd'[n]} for n in numbers],
            'ephemerals': [], 'swap': None, 'root_device_name': None}

    def test_volumes_are_connected_and_a_planned_vm_made(self):
        self.flags(mounted_disk_query_retry_count=1,
                   mounted_disk_query_retry_interval=0, group='hyperv')
        self.running_vm_on_source()
        volume = storage.SAN.add_iscsi_target(
            'iqn.2010-10.org.openstack:v1', ['192.0.2.200:3260'],
            luns=[0])[0]

        self.pre(self.volume_bdi(1))

        disk = self.dest.sim.storage.disks[volume.uid]
        self.assertEqual({self.name}, self.dest.sim.planned_vms)
        self.assertEqual(
            {'vol-1': storage.disk_drive_path('host2', disk.number)},
            self.dest.sim.planned_vm_records[self.name])

    def test_a_volume_that_does_not_connect_leaves_nothing(self):
        self.flags(mounted_disk_query_retry_count=1,
                   mounted_disk_query_retry_interval=0, group='hyperv')
        self.running_vm_on_source()
        storage.SAN.add_iscsi_target('iqn.2010-10.org.openstack:v1',
                                     ['192.0.2.200:3260'], luns=[0])

        self.assertRaises(brick_exception.BrickException, self.pre,
                          self.volume_bdi(1, 2))

        self.assertEqual([], self.dest.sim.storage.iscsi_sessions)
        self.assertEqual(frozenset(), self.dest.sim.planned_vms)
        self.assertEqual([], os.listdir(self.dest.sim.instances_path))

    def test_bad_image_leaves_no_instance_dir(self):
        with open(self.glance_file, 'wb') as f:
            f.write(b'not a disk' * 100)

        self.assertRaises(exception.ImageNotVHD, self.pre)

        self.assertFalse(os.path.exists(self.dest.path(self.name)))
        self.assertEqual([], [f for f in os.listdir(self.dest.path('_base'))
                              if not f.endswith('.lock')])


class LiveMigrationTest(LiveMigrationOpsTestBase):
    """live_migration on the source, with nova's callbacks recorded."""

    def setUp(self):
        super().setUp()
        self.calls = []
        objects.InstanceAction.action_start(
            self.context, self.instance.uuid, 'live-migration',
            want_result=False)
        self.running_vm_on_source()
        self.data = self.migrate_data(is_shared_instance_path=False)
        self.dest.ops.pre_live_migration(self.context, self.instance, None,
                                         self.network_info, self.data)

    def post_method(self, context, instance, dest, block_migration,
                    migrate_data):
        self.calls.append(('post', dest, migrate_data))

    def recover_method(self, context, instance, dest, migrate_data,
                       migration_status='failed'):
        self.calls.append(('recover', dest, migrate_data, migration_status))

    def migrate(self, data='default'):
        self.src.ops.live_migration(
            self.context, self.instance, 'host2', self.post_method,
            self.recover_method,
            migrate_data=self.data if data == 'default' else data)

    def failure_events(self):
        action = objects.InstanceAction.get_by_request_id(
            self.context, self.instance.uuid, self.context.request_id)
        return [e for e in objects.InstanceActionEventList.get_by_action(
            self.context, action.id)
            if e.event == livemigrationops.FAILURE_EVENT]

    def test_success_moves_vm_disk_and_console_log(self):
        self.migrate()

        self.assertEqual([('post', 'host2', self.data)], self.calls)
        self.assertNotIn(self.name, self.src.sim.vms)
        vm = self.dest.sim.vms[self.name]
        dest_root = self.dest.path(self.name, 'root.vhdx')
        self.assertEqual([dest_root], [d.path for d in vm.disks])
        self.assertEqual(self.dest.path('_base', self.image_id + '.vhdx'),
                         self.dest.sim.disks[dest_root].parent)
        self.assertTrue(os.path.isfile(
            self.dest.path(self.name, 'console.log')))
        # The source's handler let go of the log before the move.
        self.assertEqual([], self.src.console_logs())
        self.assertEqual([], self.failure_events())

    def test_shared_path_is_checked_when_nova_did_not_say(self):
        self.migrate(data=None)

        verb, dest, data = self.calls[0]
        self.assertEqual(('post', 'host2'), (verb, dest))
        self.assertFalse(data.is_shared_instance_path)

    def test_failure_rolls_back_as_error_and_records_why(self):
        self.src.sim.fail_next_live_migration = os_win_exc.HyperVException(
            'migration job failed (simulated)')

        self.migrate()

        self.assertEqual([('recover', 'host2', self.data, 'error')],
                         self.calls)
        self.assertEqual('Running',
                         self.src.sim.vms[self.name].power_state_name)
        self.assertTrue(os.path.isfile(self.root_disk))
        # The VM still runs here: its console is logged here again.
        self.assertEqual([self.src.path(self.name, 'console.log')],
                         self.src.console_logs())
        event, = self.failure_events()
        self.assertEqual('Error', event.result)
        self.assertIn('Hyper-V could not live-migrate the VM to host2: '
                      'migration job failed (simulated)', event.details)
        self.assertIn('HyperVException', event.traceback)

    def test_hyperv_cpu_refusal_names_limit_cpu_features(self):
        self.dest.sim.cpu_features = (hyperv_const.DEFAULT_CPU_FEATURES -
                                      {'sse3'})

        self.migrate()

        self.assertEqual('error', self.calls[0][3])
        event, = self.failure_events()
        self.assertIn('Hyper-V refused to move the VM to host2: its '
                      'processor features are not limited', event.details)
        self.assertIn('[hyperv] limit_cpu_features = True', event.details)

    def test_rollback_happens_even_if_the_reason_cannot_be_recorded(self):
        self.src.sim.fail_next_live_migration = os_win_exc.HyperVException(
            'x')
        # No instance action for this instance: nowhere to store the event.
        self.instance.uuid = uuidutils.generate_uuid()

        self.migrate()

        self.assertEqual('error', self.calls[0][3])
        self.assertIn('Could not record why the live migration failed',
                      self.stdlog.logger.output)


class LimitedCPUTest(LiveMigrationOpsTestBase):

    def test_limited_vm_moves_to_different_cpu(self):
        self.dest.sim.cpu_features = (hyperv_const.DEFAULT_CPU_FEATURES -
                                      {'sse3'})
        self.running_vm_on_source(limit_cpu_features=True)
        data = self.migrate_data(is_shared_instance_path=False)
        self.dest.ops.pre_live_migration(self.context, self.instance, None,
                                         self.network_info, data)
        calls = []

        self.src.ops.live_migration(
            self.context, self.instance, 'host2',
            lambda *args: calls.append('post'),
            lambda *args, **kwargs: calls.append('recover'),
            migrate_data=data)

        self.assertEqual(['post'], calls)
        self.assertTrue(self.dest.sim.vms[self.name].limit_cpu_features)


class PostLiveMigrationTest(LiveMigrationOpsTestBase):

    def setUp(self):
        super().setUp()
        self.running_vm_on_source()
        self.data = self.migrate_data(is_shared_instance_path=False)
        self.dest.ops.pre_live_migration(self.context, self.instance, None,
                                         self.network_info, self.data)
        self.src.ops.live_migration(
            self.context, self.instance, 'host2', lambda *a: None,
            lambda *a, **k: self.fail('the move failed'),
            migrate_data=self.data)

    def test_source_instance_dir_is_removed(self):
        self.src.ops.post_live_migration(self.context, self.instance, None,
                                         self.data)

        self.assertFalse(os.path.exists(self.src.path(self.name)))
        # Its cached image stays for other VMs (ageing removes it).
        self.assertTrue(os.path.isfile(
            self.src.path('_base', self.image_id + '.vhdx')))

    def test_source_dir_kept_when_the_path_is_shared_or_unknown(self):
        for data in (self.migrate_data(is_shared_instance_path=True),
                     self.migrate_data(), None):
            self.src.ops.post_live_migration(self.context, self.instance,
                                             None, data)

            self.assertTrue(os.path.isdir(self.src.path(self.name)))

    def test_destination_plugs_vifs_and_logs_the_console(self):
        self.dest.ops.post_live_migration_at_destination(
            self.context, self.instance, self.network_info)

        self.assertEqual([('plug', self.vif['id'])], self.dest.vifs.calls)
        self.assertEqual([self.dest.path(self.name, 'console.log')],
                         self.dest.console_logs())

    def test_cleanup_of_the_destination_check_changes_nothing(self):
        before = sorted(os.listdir(self.dest.sim.instances_path))

        self.dest.ops.cleanup_live_migration_destination_check(
            self.context, self.data)

        self.assertEqual(before, sorted(os.listdir(
            self.dest.sim.instances_path)))
        self.assertIn(self.name, self.dest.sim.vms)
