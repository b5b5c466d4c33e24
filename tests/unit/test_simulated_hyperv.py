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

"""Tests of the simulated Hyper-V host, driven through nova's real driver."""

import contextlib
import io
import json
import os
import subprocess
import threading
import time

import fixtures
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win.utils.io import ioutils
from os_win import utilsfactory
from oslo_config import fixture as config_fixture
from oslo_utils import units
from oslo_utils import uuidutils
import testtools

import nova.conf
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova.tests import fixtures as nova_fixtures
import nova.virt.node

from compute_hyperv_ovs import driver
from compute_hyperv_ovs.hyperv import serialconsole
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import guest as hyperv_guest
from tests.fixtures import waiting

CONF = nova.conf.CONF

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED
OFF = os_win_const.HYPERV_VM_STATE_DISABLED


class FakeVirtAPI(object):
    """The two things nova's Hyper-V driver asks of its virtapi."""

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield

    def exit_wait_early(self, events):
        pass


def qemu_img(*args):
    subprocess.check_call(('qemu-img',) + args, stdout=subprocess.DEVNULL)


def qemu_virtual_size(path, fmt):
    out = subprocess.check_output(
        ['qemu-img', 'info', '-f', fmt, '--output=json', path])
    return json.loads(out)['virtual-size']


class SimulatedHyperVTestCase(testtools.TestCase):

    def setUp(self):
        super(SimulatedHyperVTestCase, self).setUp()
        objects.register_all()
        # The driver's power state events go through nova's executors;
        # nova's fixture gives this test its own and ends them with it, so
        # none is left for the next test (nova's fixtures assert that).
        self.useFixture(nova_fixtures.IsolatedExecutorFixture(self.id()))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.instances_path = os.path.join(self.tmp, 'instances')
        os.makedirs(self.instances_path)
        # As nova's ConfFixture does: parse no files, so that
        # CONF.find_file() (nova.version, policy) works.
        CONF([], default_config_files=[])
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.conf.config(instances_path=self.instances_path)
        self.conf.config(vswitch_name='external', group='hyperv')
        self.conf.config(lock_path=os.path.join(self.tmp, 'locks'),
                         group='oslo_concurrency')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host1 = self.hosts.add_host('host1', vswitch_name='external')
        self.host2 = self.hosts.add_host('host2', vswitch_name='external')

    def _driver(self, hostname):
        with self.hosts.building(hostname):
            return driver.HyperVOVSDriver(FakeVirtAPI())

    def _utils(self, hostname, kind):
        with self.hosts.building(hostname):
            return getattr(utilsfactory, 'get_%s' % kind)()

    def _vhdx(self, name, size='16M'):
        path = os.path.join(self.tmp, name)
        qemu_img('create', '-f', 'vhdx', path, size)
        return path

    def _vhd(self, name, size='16M'):
        path = os.path.join(self.tmp, name)
        qemu_img('create', '-f', 'vpc', '-o', 'subformat=dynamic', path, size)
        return path

    def _new_vm(self, vmutils, name='instance-1', gen=1, vcpus=2):
        vmutils.create_vm(name, False, gen, self.instances_path,
                          [uuidutils.generate_uuid()])
        vmutils.update_vm(name, 1024, None, vcpus, None, False, 1.0)
        vmutils.create_scsi_controller(name)

    # ---- driver construction and host facts ----

    def test_driver_construction_and_available_resource(self):
        drv = self._driver('host1')
        res = drv.get_available_resource('host1')
        self.assertEqual('host1', res['hypervisor_hostname'])
        self.assertEqual(['host1'], drv.get_available_nodes())
        self.assertEqual(16, res['vcpus'])
        self.assertEqual(64 * 1024, res['memory_mb'])
        self.assertEqual(2048, res['memory_mb_used'])
        self.assertEqual(1024, res['local_gb'])
        self.assertEqual(10000, res['hypervisor_version'])
        cpu_info = json.loads(res['cpu_info'])
        self.assertEqual('x86_64', cpu_info['arch'])
        self.assertIn('sse2', cpu_info['features'])
        self.assertEqual([], drv.list_instances())
        self.assertEqual([], drv.list_instance_uuids())

    def test_two_hosts_have_separate_identity(self):
        drv1 = self._driver('host1')
        drv2 = self._driver('host2')
        self.assertEqual(['host2'], drv2.get_available_nodes())
        self.assertEqual(['host1'], drv1.get_available_nodes())
        uuids1 = drv1.get_nodenames_by_uuid()
        uuids2 = drv2.get_nodenames_by_uuid()
        self.assertEqual({self.host1.node_uuid: 'host1'}, uuids1)
        self.assertEqual({self.host2.node_uuid: 'host2'}, uuids2)
        self.assertNotEqual(self.host1.node_uuid, self.host2.node_uuid)

    def test_identity_without_a_host_is_loud(self):
        self.assertRaises(RuntimeError, nova.virt.node.get_local_node_uuid)

    def test_too_old_windows_refused(self):
        self.hosts.add_host('old', windows_version='6.1.7601')
        self.assertRaises(nova_exception.HypervisorTooOld, self._driver, 'old')

    def test_init_host_listener_is_inert(self):
        drv = self._driver('host1')
        drv.init_host('host1')
        self.addCleanup(drv.cleanup_host, 'host1')
        # The listener runs in a thread of its own that init_host starts.
        for _ in range(50):
            if self.host1.has_power_state_listener:
                break
            time.sleep(0.01)
        self.assertTrue(self.host1.has_power_state_listener)

    def test_utilsfactory_outside_building_is_loud(self):
        self.assertRaises(RuntimeError, utilsfactory.get_vmutils)

    def test_unknown_method_not_implemented(self):
        vmutils = self._utils('host1', 'vmutils')
        exc = self.assertRaises(NotImplementedError, getattr, vmutils,
                                'enable_remotefx_video_adapter')
        self.assertIn('SimulatedVMUtils.enable_remotefx_video_adapter',
                      str(exc))
        self.assertRaises(NotImplementedError,
                          lambda: self._utils('host1', 'vhdutils').flatten_vhd)
        with self.hosts.building('host1'):
            self.assertRaises(NotImplementedError,
                              utilsfactory.get_clusterutils)

    def test_two_hosts_keep_separate_state(self):
        vm1 = self._utils('host1', 'vmutils')
        vm2 = self._utils('host2', 'vmutils')
        self._new_vm(vm1, 'instance-a')
        self.assertEqual(['instance-a'], vm1.list_instances())
        self.assertEqual([], vm2.list_instances())
        self.assertIn('instance-a', self.host1.vms)
        self.assertNotIn('instance-a', self.host2.vms)
        # Same name on the other host is fine, twice on one is not.
        self._new_vm(vm2, 'instance-a')
        self.assertRaises(os_win_exc.HyperVException, vm1.create_vm,
                          'instance-a', False, 1, self.instances_path, [])

    # ---- os-win level rules ----

    def test_gen2_refuses_ide_and_booting_vhd(self):
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, gen=2)
        vhd = self._vhd('root.vhd')
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.attach_ide_drive, 'instance-1', vhd, 0, 0)
        vmutils.attach_scsi_drive('instance-1', vhd)
        exc = self.assertRaises(os_win_exc.HyperVException,
                                vmutils.set_boot_order, 'instance-1', [vhd])
        self.assertIn('only from VHDX', str(exc))
        vhdx = self._vhdx('root.vhdx')
        vmutils.detach_vm_disk('instance-1', vhd, is_physical=False)
        vmutils.attach_scsi_drive('instance-1', vhdx)
        vmutils.set_boot_order('instance-1', [vhdx])
        vm = self.host1.vms['instance-1']
        self.assertEqual((vhdx,), vm.boot_order)
        self.assertEqual([(vhdx, 'SCSI', 0)],
                         [(d.path, d.controller, d.slot) for d in vm.disks])

    def test_attach_needs_existing_file(self):
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils)
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.attach_ide_drive, 'instance-1',
                          os.path.join(self.tmp, 'missing.vhdx'), 0, 0)
        iso = os.path.join(self.tmp, 'cd.iso')
        open(iso, 'wb').close()
        vmutils.attach_ide_drive('instance-1', iso, 1, 0, os_win_const.DVD)
        self.assertEqual([iso], vmutils.get_vm_dvd_disk_paths('instance-1'))
        dvds = self.host1.vms['instance-1'].dvds
        self.assertEqual('IDE', dvds[0].controller)
        # slot taken
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.attach_ide_drive, 'instance-1',
                          self._vhdx('x.vhdx'), 1, 0)

    def test_nic_needs_existing_vswitch_and_vnic(self):
        vmutils = self._utils('host1', 'vmutils')
        netutils = self._utils('host1', 'networkutils')
        self._new_vm(vmutils)
        port = uuidutils.generate_uuid()
        self.assertRaises(os_win_exc.HyperVvNicNotFound,
                          netutils.connect_vnic_to_vswitch, 'external', port)
        vmutils.create_nic('instance-1', port, 'fa:16:3e:00:00:01')
        self.assertRaises(os_win_exc.HyperVvSwitchNotFound,
                          netutils.connect_vnic_to_vswitch, 'missing', port)
        netutils.connect_vnic_to_vswitch('external', port)
        nic = self.host1.vms['instance-1'].nics[port]
        self.assertEqual(('fa:16:3e:00:00:01', 'external', port),
                         (nic.mac, nic.vswitch, nic.switch_port))
        netutils.remove_switch_port(port)
        self.assertIsNone(self.host1.vms['instance-1'].nics[port].vswitch)
        vmutils.destroy_nic('instance-1', port)
        self.assertEqual({}, dict(self.host1.vms['instance-1'].nics))

    def test_nic_hotplug_rules(self):
        # Microsoft, "Hot add and remove network adapters and memory in
        # Hyper-V": running generation 2 VMs on Windows Server 2016+ only;
        # an Off VM of either generation takes the change.
        old = self.hosts.add_host('old', vswitch_name='external',
                                  windows_version='6.3.9600')
        for hostname, gen, allowed in (('host1', 2, True),
                                       ('host1', 1, False),
                                       ('old', 2, False)):
            vmutils = self._utils(hostname, 'vmutils')
            name = 'instance-gen%d-%s' % (gen, hostname)
            self._new_vm(vmutils, name=name, gen=gen)
            off_nic = uuidutils.generate_uuid()
            vmutils.create_nic(name, off_nic, 'fa:16:3e:00:00:01')
            vmutils.set_vm_state(name, RUNNING)
            hot_nic = uuidutils.generate_uuid()
            if allowed:
                vmutils.create_nic(name, hot_nic, 'fa:16:3e:00:00:02')
                vmutils.destroy_nic(name, hot_nic)
                vmutils.destroy_nic(name, off_nic)
                self.assertEqual({}, dict(self.hosts[hostname].vms[name].nics))
                continue
            self.assertRaises(os_win_exc.WMIJobFailed, vmutils.create_nic,
                              name, hot_nic, 'fa:16:3e:00:00:02')
            self.assertRaises(os_win_exc.WMIJobFailed, vmutils.destroy_nic,
                              name, off_nic)
            self.assertEqual({off_nic},
                             set(self.hosts[hostname].vms[name].nics))
            vmutils.set_vm_state(name, os_win_const.HYPERV_VM_STATE_PAUSED)
            self.assertRaises(os_win_exc.WMIJobFailed, vmutils.create_nic,
                              name, hot_nic, 'fa:16:3e:00:00:02')
            vmutils.set_vm_state(name, RUNNING)
            vmutils.set_vm_state(name, OFF)
            vmutils.destroy_nic(name, off_nic)
            self.assertEqual({}, dict(self.hosts[hostname].vms[name].nics))
        self.assertIsNotNone(old)

    def test_running_vm_cannot_be_destroyed(self):
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils)
        vmutils.set_vm_state('instance-1', RUNNING)
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.destroy_vm, 'instance-1')
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.update_vm, 'instance-1', 2048, None, 2,
                          None, False, 1.0)
        vmutils.set_vm_state('instance-1', OFF)
        vmutils.destroy_vm('instance-1')
        self.assertFalse(vmutils.vm_exists('instance-1'))
        self.assertRaises(os_win_exc.HyperVVMNotFoundException,
                          vmutils.get_vm_summary_info, 'instance-1')

    def test_invalid_power_transition(self):
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils)
        self.assertRaises(os_win_exc.HyperVException, vmutils.set_vm_state,
                          'instance-1', os_win_const.HYPERV_VM_STATE_PAUSED)
        vmutils.set_vm_state('instance-1', OFF)  # already off: no-op
        vmutils.set_vm_state('instance-1', RUNNING)
        vmutils.set_vm_state('instance-1', os_win_const.HYPERV_VM_STATE_PAUSED)
        self.assertEqual('Paused',
                         self.host1.vms['instance-1'].power_state_name)

    def test_too_many_vcpus_refused(self):
        vmutils = self._utils('host1', 'vmutils')
        vmutils.create_vm('big', False, 1, self.instances_path, [])
        self.assertRaises(os_win_exc.HyperVException, vmutils.update_vm,
                          'big', 1024, None, 17, None, False, 1.0)

    def test_differencing_disk_records_parent(self):
        vhdutils = self._utils('host1', 'vhdutils')
        base = self._vhdx('base.vhdx', '20M')
        child = os.path.join(self.tmp, 'child.vhdx')
        vhdutils.create_differencing_vhd(child, base)
        info = vhdutils.get_vhd_info(child)
        self.assertEqual(base, info['ParentPath'])
        self.assertEqual(os_win_const.VHD_TYPE_DIFFERENCING,
                         info['ProviderSubtype'])
        self.assertEqual(20 * units.Mi, info['VirtualSize'])
        self.assertEqual(20 * units.Mi, qemu_virtual_size(child, 'vhdx'))
        self.assertEqual(base, self.host1.disks[child].parent)
        self.assertEqual(base, vhdutils.get_vhd_parent_path(child))
        self.assertIsNone(vhdutils.get_vhd_parent_path(base))
        # A VHDX child of a VHD parent is refused.
        vhd = self._vhd('base.vhd')
        self.assertRaises(os_win_exc.VHDException,
                          vhdutils.create_differencing_vhd,
                          os.path.join(self.tmp, 'bad.vhdx'), vhd)

    def test_resize_grows_and_refuses_shrink(self):
        vhdutils = self._utils('host1', 'vhdutils')
        base = self._vhdx('base.vhdx', '20M')
        child = os.path.join(self.tmp, 'child.vhdx')
        vhdutils.create_differencing_vhd(child, base)
        vhdutils.resize_vhd(child, 64 * units.Mi, is_file_max_size=False)
        self.assertEqual(64 * units.Mi, qemu_virtual_size(child, 'vhdx'))
        self.assertEqual(base, vhdutils.get_vhd_parent_path(child))
        self.assertRaises(os_win_exc.VHDException, vhdutils.resize_vhd,
                          child, 32 * units.Mi, is_file_max_size=False)
        # With is_file_max_size, os-win's VHDX arithmetic is used.
        internal = vhdutils.get_internal_vhd_size_by_file_size(base, units.Gi)
        self.assertTrue(0 < internal < units.Gi)

    def test_fixed_vhd_detected_by_footer(self):
        vhdutils = self._utils('host1', 'vhdutils')
        path = os.path.join(self.tmp, 'fixed')  # no extension on purpose
        qemu_img('create', '-f', 'vpc', '-o', 'subformat=fixed,force_size=on',
                 path, '8M')
        info = vhdutils.get_vhd_info(path)
        self.assertEqual('VHD', vhdutils.get_vhd_format(path))
        self.assertEqual(os_win_const.VHD_TYPE_FIXED, info['ProviderSubtype'])
        self.assertEqual(8 * units.Mi, info['VirtualSize'])
        self.assertEqual(8 * units.Mi - 512,
                         vhdutils.get_internal_vhd_size_by_file_size(
                             path, 8 * units.Mi))

    def test_merge_vhd(self):
        vhdutils = self._utils('host1', 'vhdutils')
        base = self._vhd('base.vhd')
        child = os.path.join(self.tmp, 'child.vhd')
        vhdutils.create_differencing_vhd(child, base)
        self.assertRaises(os_win_exc.VHDException, vhdutils.resize_vhd,
                          child, 64 * units.Mi, is_file_max_size=False)
        vhdutils.merge_vhd(child)
        self.assertFalse(os.path.exists(child))
        self.assertRaises(os_win_exc.VHDException, vhdutils.merge_vhd, base)

    # ---- live migration ----

    def _running_vm_on_host1(self, limit_cpu_features):
        vmutils = self._utils('host1', 'vmutils')
        vmutils.create_vm('instance-1', False, 1, self.instances_path, [])
        vmutils.update_vm('instance-1', 1024, None, 2, None,
                          limit_cpu_features, 1.0)
        vmutils.set_vm_state('instance-1', RUNNING)

    def test_live_migration_moves_vm(self):
        self._running_vm_on_host1(limit_cpu_features=False)
        lmutils = self._utils('host1', 'livemigrationutils')
        lmutils.live_migrate_vm('instance-1', 'host2')
        self.assertNotIn('instance-1', self.host1.vms)
        self.assertEqual(RUNNING, self.host2.vms['instance-1'].power_state)

    def test_live_migration_cpu_features_rule(self):
        self.host2.cpu_features = self.host1.cpu_features - {'sse3'}
        self._running_vm_on_host1(limit_cpu_features=False)
        lmutils = self._utils('host1', 'livemigrationutils')
        exc = self.assertRaises(os_win_exc.HyperVException,
                                lmutils.live_migrate_vm, 'instance-1',
                                'host2')
        self.assertIn('processor-specific features not supported on '
                      "physical computer 'host2'", str(exc))
        self.assertIn('limit the processor features', str(exc))
        self.assertIn('instance-1', self.host1.vms)

    def test_live_migration_limited_cpu_moves(self):
        self.host2.cpu_features = frozenset(['sse2'])
        self._running_vm_on_host1(limit_cpu_features=True)
        lmutils = self._utils('host1', 'livemigrationutils')
        lmutils.live_migrate_vm('instance-1', 'host2')
        self.assertTrue(self.host2.vms['instance-1'].limit_cpu_features)

    def test_live_migration_disabled_and_injected_failure(self):
        self._running_vm_on_host1(limit_cpu_features=False)
        lm1 = self._utils('host1', 'livemigrationutils')
        lm2 = self._utils('host2', 'livemigrationutils')
        self.host2.live_migration_enabled = False
        exc = self.assertRaises(os_win_exc.HyperVException,
                                lm2.check_live_migration_config)
        self.assertIn('host2', str(exc))
        self.assertRaises(os_win_exc.HyperVException,
                          lm1.live_migrate_vm, 'instance-1', 'host2')
        self.host2.live_migration_enabled = True
        self.host1.fail_next_live_migration = os_win_exc.HyperVException(
            'injected')
        self.assertRaises(os_win_exc.HyperVException,
                          lm1.live_migrate_vm, 'instance-1', 'host2')
        self.assertIn('instance-1', self.host1.vms)
        lm1.live_migrate_vm('instance-1', 'host2')  # consumed: now works
        self.assertIn('instance-1', self.host2.vms)

    # ---- end to end through nova's driver ----

    def _instance(self, image_id, root_gb=1):
        flavor = objects.Flavor(
            id=1, flavorid='1', name='m1.test', memory_mb=1024, vcpus=2,
            root_gb=root_gb, ephemeral_gb=0, swap=0, extra_specs={})
        return objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), image_ref=image_id,
            flavor=flavor, old_flavor=None, new_flavor=None,
            memory_mb=1024, vcpus=2, root_gb=root_gb, ephemeral_gb=0,
            config_drive='', host='host1', node='host1',
            project_id='p', user_id='u', metadata={}, system_metadata={},
            pci_requests=objects.InstancePCIRequests(requests=[]),
            numa_topology=None, vm_state='building', task_state=None)

    def test_spawn_and_destroy_through_driver(self):
        # Device metadata lookups are nova DB queries, not Hyper-V.
        self.useFixture(fixtures.MockPatch(
            'nova.objects.VirtualInterfaceList.get_by_instance_uuid',
            return_value=[]))
        self.useFixture(fixtures.MockPatch(
            'nova.objects.BlockDeviceMappingList.get_by_instance_uuid',
            return_value=objects.BlockDeviceMappingList(objects=[])))
        image_id = uuidutils.generate_uuid()
        base_dir = os.path.join(self.instances_path, '_base')
        os.makedirs(base_dir)
        base = os.path.join(base_dir, image_id + '.vhdx')
        qemu_img('create', '-f', 'vhdx', base, '32M')

        drv = self._driver('host1')
        drv.init_host('host1')
        instance = self._instance(image_id)
        image_meta = objects.ImageMeta.from_dict(
            {'id': image_id, 'disk_format': 'vhdx', 'properties': {}})
        ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
        # What the compute manager passes for an image-backed instance.
        bdi = {'root_device_name': '/dev/sda', 'ephemerals': [],
               'block_device_mapping': [], 'swap': None}
        drv.spawn(ctxt, instance, image_meta, [], None, {},
                  network_info=[], block_device_info=bdi)

        vm = self.host1.vms[instance.name]
        self.assertEqual(RUNNING, vm.power_state)
        self.assertEqual(1, vm.generation)
        self.assertEqual((2, 1024), (vm.vcpus, vm.memory_mb))
        self.assertEqual(instance.uuid, vm.instance_uuid)
        root = os.path.join(self.instances_path, instance.name, 'root.vhdx')
        self.assertEqual([(root, 'IDE', 0, 0)],
                         [(d.path, d.controller, d.controller_addr, d.slot)
                          for d in vm.disks])
        self.assertEqual(base, self.host1.disks[root].parent)
        # Root grown to the flavor's 1 GB (VHDX internal size of 1 GiB).
        self.assertGreater(qemu_virtual_size(root, 'vhdx'), 32 * units.Mi)
        self.assertEqual([instance.uuid], drv.list_instance_uuids())
        self.assertEqual(1, drv.get_info(instance).state)  # RUNNING
        self.assertEqual(1, len(vm.serial_ports) - list(
            vm.serial_ports.values()).count(None))

        drv.power_off(instance)
        self.assertEqual(OFF, self.host1.vms[instance.name].power_state)
        drv.power_on(ctxt, instance, [])
        drv.destroy(ctxt, instance, [], block_device_info=bdi)
        self.assertEqual({}, dict(self.host1.vms))
        self.assertFalse(os.path.exists(root))
        self.assertTrue(os.path.exists(base))

    # ---- processor compatibility: a superset is fine ----

    def test_live_migration_to_more_cpu_features_moves_unlimited_vm(self):
        self.host2.cpu_features = self.host1.cpu_features | {'avx512f'}
        self._running_vm_on_host1(limit_cpu_features=False)
        lmutils = self._utils('host1', 'livemigrationutils')
        lmutils.live_migrate_vm('instance-1', 'host2')
        self.assertFalse(self.host2.vms['instance-1'].limit_cpu_features)
        self.assertNotIn('instance-1', self.host1.vms)

    # ---- soft shutdown is asynchronous; changes behind nova's back ----

    def _listened(self, vmutils):
        events = []
        handler = vmutils.get_vm_power_state_change_listener(
            get_handler=True)
        handler(lambda name, state: events.append((name, state)))
        return events

    def _running(self, name='instance-1'):
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, name)
        vmutils.set_vm_state(name, RUNNING)
        return vmutils

    def test_soft_shutdown_only_asks_the_guest(self):
        vmutils = self._running()
        events = self._listened(vmutils)
        self.host1.guest_shutdown_seconds = 0.2

        vmutils.soft_shutdown_vm('instance-1')

        self.assertEqual(RUNNING, vmutils.get_vm_state('instance-1'))
        self.assertTrue(waiting.wait_until(lambda: events))
        self.assertEqual(OFF, vmutils.get_vm_state('instance-1'))
        self.assertEqual([('instance-1', OFF)], events)
        self.assertEqual('guest', self.host1.power_off_causes['instance-1'])

    def test_guest_ignoring_shutdown_keeps_running(self):
        vmutils = self._running()
        self.host1.guest_ignores_shutdown('instance-1')

        vmutils.soft_shutdown_vm('instance-1')
        time.sleep(0.1)

        self.assertEqual(RUNNING, vmutils.get_vm_state('instance-1'))
        vmutils.set_vm_state('instance-1', OFF)
        self.assertEqual('turned off',
                         self.host1.power_off_causes['instance-1'])

    def test_hard_power_off_cancels_a_pending_shutdown(self):
        vmutils = self._running()
        events = self._listened(vmutils)
        self.host1.guest_shutdown_seconds = 0.1
        vmutils.soft_shutdown_vm('instance-1')

        vmutils.set_vm_state('instance-1', OFF)
        vmutils.set_vm_state('instance-1', RUNNING)
        time.sleep(0.2)

        # The guest's old request does not turn the restarted VM off;
        # nova's own requests fire their events, as on Hyper-V.
        self.assertEqual(RUNNING, vmutils.get_vm_state('instance-1'))
        self.assertEqual([('instance-1', OFF), ('instance-1', RUNNING)],
                         events)

    def test_changes_behind_nova_fire_power_state_events(self):
        vmutils = self._running()
        events = self._listened(vmutils)

        self.host1.guest_shuts_down('instance-1')
        self.host1.start_by_hand('instance-1')
        self.host1.turn_off_by_hand('instance-1')

        self.assertEqual([('instance-1', OFF), ('instance-1', RUNNING),
                          ('instance-1', OFF)], events)
        self.assertEqual('turned off',
                         self.host1.power_off_causes['instance-1'])
        # By hand obeys the same rules as os-win's requests.
        self.assertRaises(os_win_exc.HyperVVMNotFoundException,
                          self.host1.guest_shuts_down, 'no-such-vm')

    def _thread_errors(self):
        errors = []
        self.useFixture(fixtures.MonkeyPatch(
            'threading.excepthook', lambda args: errors.append(args)))
        return errors

    def test_vm_removed_while_its_guest_turns_off(self):
        # The race seen in CI: the guest's shutdown timer turned the VM
        # off, and the VM was removed before the power state event went
        # out; the timer's thread died with HyperVVMNotFoundException and
        # the event was lost.  The switch port listeners run at that very
        # moment (the ports go with the VM's state), so removing the VM
        # there replays the interleaving without timing.
        vmutils = self._running()
        events = self._listened(vmutils)
        errors = self._thread_errors()
        removed = []

        def remove_when_off():
            if ('instance-1' in self.host1.vms and
                    self.host1.vms['instance-1'].power_state == OFF):
                self.host1.remove_vm('instance-1')
                removed.append('instance-1')

        self.host1.switch_port_listeners.append(remove_when_off)
        vmutils.soft_shutdown_vm('instance-1')
        self.assertTrue(waiting.wait_until(lambda: events))

        self.assertEqual(['instance-1'], removed)
        self.assertEqual([], errors)
        # WMI's event carries the state the VM changed to (os-win reads
        # event.EnabledState), whatever happens to the VM afterwards.
        self.assertEqual([('instance-1', OFF)], events)

    def test_destroy_waits_for_the_guest_turning_off(self):
        # nova destroying the VM in another thread while the guest turns
        # it off: Hyper-V delivers the Off event of a VM that still
        # exists, so nova's listener can still read the VM's notes
        # (InstanceEventHandler._get_instance_uuid); the destroy comes
        # after the guest's change and its event.
        vmutils = self._running()
        seen = []
        handler = vmutils.get_vm_power_state_change_listener(
            get_handler=True)
        # The listener runs in a thread of its own (os-win's WMI event
        # watcher), so it reads the host, not this thread's vmutils.
        handler(lambda name, state: seen.append(
            (name, state, name in self.host1.vms)))
        errors = self._thread_errors()
        destroyers = []

        def destroy_elsewhere():
            if (destroyers or 'instance-1' not in self.host1.vms or
                    self.host1.vms['instance-1'].power_state != OFF):
                return
            # A utils object of its own, as each thread of nova's needs.
            destroyer = threading.Thread(
                target=lambda: self._utils('host1', 'vmutils').destroy_vm(
                    'instance-1'))
            destroyers.append(destroyer)
            destroyer.start()
            # Before the fix the destroy ran to its end right here.
            destroyer.join(1)

        self.host1.switch_port_listeners.append(destroy_elsewhere)
        vmutils.soft_shutdown_vm('instance-1')
        self.assertTrue(waiting.wait_until(lambda: seen and destroyers))
        for destroyer in destroyers:
            destroyer.join(5)

        self.assertEqual([], errors)
        self.assertEqual([('instance-1', OFF, True)], seen)
        self.assertNotIn('instance-1', self.host1.vms)

    def test_readers_of_switch_ports_never_wait_for_the_host(self):
        # The OVS fixture's monitor reads a host's switch ports under its
        # own lock, which a switch port listener -- called while the host
        # changes a VM, under the host's lock -- takes too: a reader that
        # waited for the host's lock could deadlock with it.
        vmutils = self._running()
        self.host1.guest_shutdown_seconds = 0.05
        read = []
        with self.host1.atomic():   # a change under way in this thread
            vmutils.soft_shutdown_vm('instance-1')
            time.sleep(0.1)         # the guest's time has come
            reader = threading.Thread(
                target=lambda: read.append(self.host1.switch_ports),
                daemon=True)
            reader.start()
            reader.join(2)
            self.assertFalse(reader.is_alive())
        self.assertEqual([frozenset()], read)
        self.assertEqual(OFF, vmutils.get_vm_state('instance-1'))

    # ---- the guest's serial console log ----

    def _console_vm(self, name='instance-1'):
        """A VM with nova's COM1 pipe; nova's serial console ops."""
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, name)
        vmutils.set_vm_serial_port_connection(
            name, 1, r'\\.\pipe\%s_rw' % uuidutils.generate_uuid())
        with self.hosts.building('host1'):
            ops = serialconsole.SerialConsoleOps()
        self.addCleanup(ops.stop_console_handler, name)
        return vmutils, ops

    def _full_log(self, ops, name='instance-1'):
        # Stopping nova's handler closes (flushes) the log file.
        ops.stop_console_handler(name)
        return ops.get_console_output(name)

    def test_console_log_holds_what_the_guest_printed(self):
        vmutils, ops = self._console_vm()
        vmutils.set_vm_state('instance-1', RUNNING)
        # nova's handler connects after the start (on its power state
        # event) and still gets the boot messages.
        ops.start_console_handler('instance-1')

        boot1 = hyperv_guest.guest_boot_messages('host1', 'instance-1', 1)
        self.assertEqual(hyperv_guest.GUEST_BOOT_LINES,
                         len(boot1.splitlines()))
        self.assertIn('instance-1, boot 1', boot1.splitlines()[2])
        # As os-win's, the log file lags by at most its write buffer, in
        # whole lines of the guest's.
        now = ops.get_console_output('instance-1')
        self.assertTrue(boot1.encode().startswith(now))
        self.assertTrue(now.endswith(b'\n'))
        self.assertGreaterEqual(len(now), len(boot1) - io.DEFAULT_BUFFER_SIZE)
        self.assertGreater(len(now.splitlines()), 3)
        self.assertEqual(boot1.encode(), self._full_log(ops))
        self.assertEqual(1, self.host1.vms['instance-1'].boot_count)

        # A reset (hard reboot) prints them again into the same log.
        ops.start_console_handler('instance-1')
        vmutils.set_vm_state('instance-1', os_win_const.HYPERV_VM_STATE_REBOOT)
        boot2 = hyperv_guest.guest_boot_messages('host1', 'instance-1', 2)
        self.assertEqual((boot1 + boot2).encode(), self._full_log(ops))

    def test_console_output_lost_while_no_handler_reads(self):
        vmutils, ops = self._console_vm()
        vmutils.set_vm_state('instance-1', RUNNING)
        ops.start_console_handler('instance-1')
        vmutils.set_vm_state('instance-1', OFF)
        # The pipe broke with the stop; the old handler logs nothing of
        # the next boot, which waits for a new reader (nova starts one on
        # the Running event) -- and is lost if the VM stops first.
        vmutils.set_vm_state('instance-1', RUNNING)
        vmutils.set_vm_state('instance-1', OFF)
        vmutils.set_vm_state('instance-1', RUNNING)
        boot1 = hyperv_guest.guest_boot_messages('host1', 'instance-1', 1)
        self.assertEqual(boot1.encode(), self._full_log(ops))
        ops.start_console_handler('instance-1')
        boot3 = hyperv_guest.guest_boot_messages('host1', 'instance-1', 3)
        self.assertEqual((boot1 + boot3).encode(), self._full_log(ops))

    def _typed_and_answered(self, typed):
        """What the running VM's guest received, and what came back."""
        vmutils, _ops = self._console_vm()
        vmutils.set_vm_state('instance-1', RUNNING)
        pipe, = vmutils.get_vm_serial_port_connections('instance-1')
        connected = threading.Event()
        connected.set()     # a console client, as nova's serial proxy has
        typing, printed = ioutils.IOQueue(connected), ioutils.IOQueue(
            connected)
        with self.hosts.building('host1'):
            handler = utilsfactory.get_named_pipe_handler(
                pipe, input_queue=typing, output_queue=printed,
                connect_event=connected)
        handler.start()
        self.addCleanup(handler.stop)
        self.addCleanup(connected.clear)
        boot = hyperv_guest.guest_boot_messages('host1', 'instance-1', 1)
        received = b''
        while len(received) < len(boot):
            received += printed.get(timeout=10, continue_on_timeout=False)
        typing.put(typed)
        self.assertTrue(waiting.wait_until(
            lambda: self.host1.vms['instance-1'].console_input))
        answer = printed.get(timeout=0.5, continue_on_timeout=False)
        return self.host1.vms['instance-1'].console_input, answer

    def test_guest_console_silent_unless_echo(self):
        # Unit and functional tests answer for the guest themselves
        # (guest_writes_console).
        self.assertEqual((b'root\r', None),
                         self._typed_and_answered(b'root\r'))

    def test_guest_console_echo_prints_what_was_typed(self):
        # The cloud's guests echo, as a Linux getty on ttyS0 does.
        self.host1.guest_console_echo = True
        self.assertEqual((b'root\r', b'root\r'),
                         self._typed_and_answered(b'root\r'))

    def test_guest_console_echo_gives_back_the_bytes_typed(self):
        # A tty echoes bytes, whatever their encoding: a Latin-1 byte
        # typed comes back as that byte, not re-encoded.
        self.host1.guest_console_echo = True
        self.assertEqual((b'caf\xe9\r', b'caf\xe9\r'),
                         self._typed_and_answered(b'caf\xe9\r'))

    def test_vm_that_never_ran_has_no_console_output(self):
        vmutils, ops = self._console_vm()
        # No running VM serves the pipe: os-win's handler fails to start
        # (nova logs it and goes on), and nova reads no log.
        pipe, = vmutils.get_vm_serial_port_connections('instance-1')
        with self.hosts.building('host1'):
            handler = utilsfactory.get_named_pipe_handler(
                pipe, log_file=os.path.join(self.tmp, 'console.log'))
        self.assertRaises(os_win_exc.OSWinException, handler.start)
        ops.start_console_handler('instance-1')
        self.assertEqual((), self.host1.serial_pipe_handlers)
        self.assertEqual(b'', ops.get_console_output('instance-1'))
        self.assertEqual(0, self.host1.vms['instance-1'].boot_count)

    def test_console_log_rotates_at_os_win_size_limit(self):
        vmutils, ops = self._console_vm()
        log_path = os.path.join(self.instances_path, 'instance-1',
                                'console.log')
        os.makedirs(os.path.dirname(log_path))
        old = b'x' * (os_win_const.MAX_CONSOLE_LOG_FILE_SIZE - 10) + b'\n'
        with open(log_path, 'wb') as f:
            f.write(old)
        vmutils.set_vm_state('instance-1', RUNNING)
        ops.start_console_handler('instance-1')

        boot1 = hyperv_guest.guest_boot_messages('host1', 'instance-1', 1)
        # nova reads the archive first.
        self.assertEqual(old + boot1.encode(), self._full_log(ops))
        with open(log_path + '.1', 'rb') as f:
            self.assertEqual(old, f.read())
        with open(log_path, 'rb') as f:
            self.assertEqual(boot1.encode(), f.read())

    # ---- switch ports and vSwitch extensions ----

    def _vm_with_connected_nic(self):
        vmutils = self._utils('host1', 'vmutils')
        netutils = self._utils('host1', 'networkutils')
        self._new_vm(vmutils)
        port = uuidutils.generate_uuid()
        vmutils.create_nic('instance-1', port, 'fa:16:3e:00:00:01')
        netutils.connect_vnic_to_vswitch('external', port)
        return vmutils, port

    def test_switch_port_exists_only_while_vm_runs(self):
        changes = []
        self.host1.switch_port_listeners.append(
            lambda: changes.append(self.host1.switch_ports))
        vmutils, port = self._vm_with_connected_nic()
        # Connected (a setting), but the VM is off: no switch port.
        self.assertEqual('external',
                         self.host1.vms['instance-1'].nics[port].vswitch)
        self.assertEqual(frozenset(), self.host1.switch_ports)

        vmutils.set_vm_state('instance-1', RUNNING)
        self.assertEqual({port}, self.host1.switch_ports)
        self.assertEqual({port}, self.host1.ovs_switch_ports())
        self.assertEqual({port}, changes[-1])
        vmutils.set_vm_state('instance-1', os_win_const.HYPERV_VM_STATE_PAUSED)
        self.assertEqual({port}, self.host1.switch_ports)
        vmutils.set_vm_state('instance-1', RUNNING)
        vmutils.set_vm_state('instance-1',
                             os_win_const.HYPERV_VM_STATE_SUSPENDED)
        self.assertEqual(frozenset(), self.host1.switch_ports)
        self.assertEqual(frozenset(), changes[-1])
        vmutils.set_vm_state('instance-1', RUNNING)
        vmutils.soft_shutdown_vm('instance-1')
        # The guest turns the VM off in a timer of its own, at once here.
        for _ in range(100):
            if self.host1.vms['instance-1'].power_state == OFF:
                break
            time.sleep(0.01)
        self.assertEqual(frozenset(), self.host1.switch_ports)
        # The connection setting survives a stop.
        self.assertEqual(port,
                         self.host1.vms['instance-1'].nics[port].switch_port)

    def test_live_migration_moves_switch_ports(self):
        vmutils, port = self._vm_with_connected_nic()
        vmutils.set_vm_state('instance-1', RUNNING)
        lmutils = self._utils('host1', 'livemigrationutils')
        lmutils.live_migrate_vm('instance-1', 'host2')
        self.assertEqual(frozenset(), self.host1.switch_ports)
        self.assertEqual({port}, self.host2.switch_ports)

    def test_vswitch_extensions_as_os_win_reports_them(self):
        netutils = self._utils('host1', 'networkutils')
        self.host1.add_vswitch('fresh', ovs_extension='disabled')

        exts = {e['name']: e for e in
                netutils.get_vswitch_extensions('external')}
        self.assertEqual(os_win_const.CIM_STATE_ENABLED,
                         exts[hyperv_const.OVS_EXTENSION]['enabled_state'])
        self.assertEqual({'name', 'version', 'vendor', 'description',
                          'enabled_state', 'extension_type'},
                         set(exts[hyperv_const.OVS_EXTENSION]))
        fresh = {e['name']: e['enabled_state']
                 for e in netutils.get_vswitch_extensions('fresh')}
        self.assertEqual(os_win_const.CIM_STATE_DISABLED,
                         fresh[hyperv_const.OVS_EXTENSION])
        self.host1.set_vswitch_extension('fresh', hyperv_const.OVS_EXTENSION,
                                         enabled=True, running=False)
        self.assertEqual([{'name': hyperv_const.OVS_EXTENSION, 'enabled': True,
                           'running': False}],
                         [e for e in self.host1.vswitch_extensions('fresh')
                          if e['name'] == hyperv_const.OVS_EXTENSION])
        self.assertNotIn(os_win_const.CIM_STATE_ENABLED, [
            e['enabled_state'] for e in netutils.get_vswitch_extensions(
                'fresh') if e['name'] == hyperv_const.OVS_EXTENSION])
        self.assertRaises(os_win_exc.HyperVvSwitchNotFound,
                          netutils.get_vswitch_extensions, 'missing')

    def test_ovs_sees_no_ports_without_a_running_extension(self):
        vmutils, port = self._vm_with_connected_nic()
        vmutils.set_vm_state('instance-1', RUNNING)
        self.host1.set_vswitch_extension('external',
                                         hyperv_const.OVS_EXTENSION,
                                         enabled=False)
        self.assertEqual({port}, self.host1.switch_ports)
        self.assertEqual(frozenset(), self.host1.ovs_switch_ports())

    def test_host_power_action_is_recorded_not_done(self):
        hostutils = self._utils('host1', 'hostutils')
        hostutils.host_power_action(os_win_const.HOST_POWER_ACTION_REBOOT)
        self.assertEqual(['reboot'], self.host1.power_actions)
        # os-win knows only shutdown and reboot.
        self.assertRaises(NotImplementedError, hostutils.host_power_action,
                          os_win_const.HOST_POWER_ACTION_STARTUP)
        self.assertEqual(['reboot'], self.host1.power_actions)
