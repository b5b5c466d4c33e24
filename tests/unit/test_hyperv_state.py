"""The simulated Hyper-V host's state kept in the host's directory.

The all-in-one cloud runs each simulated host in its own nova-compute
process (tests/cloud/hyperv_compute.py); these tests check that a host's
state survives a restart and that a live migration hands the VM over
through the destination's state file.
"""

import json
import os
import threading
import time

import fixtures
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_config import fixture as config_fixture
from oslo_utils import uuidutils
import testtools

import nova.conf

from compute_hyperv_ovs.hyperv import volumeops
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import guest as hyperv_guest
from tests.fixtures.hyperv import state_files
from tests.fixtures.hyperv import storage

CONF = nova.conf.CONF

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED
OFF = os_win_const.HYPERV_VM_STATE_DISABLED


class HostStateTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        CONF([], default_config_files=[])
        self.useFixture(config_fixture.Config(CONF)).config(
            instances_path=os.path.join(self.tmp, 'instances'))
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host1 = self.hosts.add_host(
            'host1', vswitch_name='external',
            instances_path=os.path.join(self.tmp, 'host1'))
        self.host2 = self.hosts.add_host(
            'host2', vswitch_name='external',
            instances_path=os.path.join(self.tmp, 'host2'))

    def _utils(self, hostname, kind):
        with self.hosts.building(hostname):
            return getattr(utilsfactory, 'get_%s' % kind)()

    def _new_vm(self, vmutils, name, gen=1, vcpus=1):
        vmutils.create_vm(name, False, gen, self.host1.instances_path,
                          [uuidutils.generate_uuid()])
        vmutils.update_vm(name, 1024, None, vcpus, None, False, 1.0)

    def _stores(self):
        stores = []
        for host in (self.host1, self.host2):
            directory = os.path.join(self.tmp, 'state-' + host.hostname)
            stores.append(state_files.HostStateStore(host, directory))
        synced = state_files.SyncedHosts(stores)
        synced.install()
        self.addCleanup(synced.uninstall)
        self.synced = synced
        return stores

    def test_vm_survives_a_restart(self):
        store1, _store2 = self._stores()
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, 'instance-1', gen=2, vcpus=2)
        netutils = self._utils('host1', 'networkutils')
        vmutils.create_nic('instance-1', 'port-1', 'fa:16:3e:00:00:01')
        netutils.connect_vnic_to_vswitch('external', 'port-1')
        with open(store1.path) as f:
            saved = json.load(f)
        self.assertEqual(['instance-1'], [vm['name'] for vm in saved['vms']])

        # A restarted nova-compute: a new process's host starts empty and
        # reads the file at the first call.
        self.synced.uninstall()
        self.host1._vms.clear()
        self.host1._vswitches.clear()
        self._stores()
        self.assertEqual(['instance-1'], vmutils.list_instances())
        vm = self.host1.vms['instance-1']
        self.assertEqual(2, vm.generation)
        self.assertEqual(2, vm.vcpus)
        self.assertEqual('external', vm.nics['port-1'].vswitch)

    def test_live_migration_hands_the_vm_over(self):
        _store1, store2 = self._stores()
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, 'instance-1')
        lmutils = self._utils('host1', 'livemigrationutils')
        lmutils.live_migrate_vm('instance-1', 'host2')
        with open(store2.path) as f:
            saved = json.load(f)
        self.assertEqual(['instance-1'], [vm['name'] for vm in saved['vms']])
        self.assertEqual([], self._utils('host1', 'vmutils').list_instances())

    def test_state_of_another_host_is_refused(self):
        store1, store2 = self._stores()
        os.replace(store1.path, store2.path)
        vmutils = self._utils('host2', 'vmutils')
        self.assertRaises(ValueError, vmutils.list_instances)

    def _saved_power_state(self, store, name):
        with open(store.path) as f:
            saved = json.load(f)
        return {vm['name']: vm['power_state'] for vm in saved['vms']}[name]

    def test_guest_turning_off_in_its_timer_is_saved(self):
        # The cloud's nova-compute keeps the host in its file; a guest
        # that turns off in its timer's thread, with no call of nova
        # around, changes the file too (another process, or this one
        # restarted, sees the VM off).
        store1, _store2 = self._stores()
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, 'instance-1')
        vmutils.set_vm_state('instance-1', RUNNING)
        events = []
        vmutils.get_vm_power_state_change_listener(get_handler=True)(
            lambda name, state: events.append((name, state)))
        self.host1.guest_shutdown_seconds = 0.05

        vmutils.soft_shutdown_vm('instance-1')
        self.assertEqual(RUNNING,
                         self._saved_power_state(store1, 'instance-1'))
        time.sleep(0.3)

        self.assertEqual(OFF, self._saved_power_state(store1, 'instance-1'))
        self.assertEqual([('instance-1', OFF)], events)

    def test_guest_turning_off_during_a_call_of_nova(self):
        # nova is inside a call of the simulated host (holding the hosts'
        # lock) when the guest's timer fires; the guest's change waits for
        # the call, in the same lock order, instead of deadlocking with
        # nova's next look at the VM.
        store1, _store2 = self._stores()
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, 'instance-1')
        vmutils.set_vm_state('instance-1', RUNNING)
        self.host1.guest_shutdown_seconds = 0.05
        vmutils.soft_shutdown_vm('instance-1')
        states = []

        def nova_call():
            # nova's thread builds its own utils object, as WMI needs.
            own_vmutils = self._utils('host1', 'vmutils')
            with self.synced.synced():
                time.sleep(0.3)   # the guest's timer fires meanwhile
                states.append(own_vmutils.get_vm_state('instance-1'))

        nova = threading.Thread(target=nova_call, daemon=True)
        nova.start()
        nova.join(5)

        self.assertEqual([OFF], states)
        self.assertEqual(OFF, self._saved_power_state(store1, 'instance-1'))
        self.assertEqual('guest', self.host1.power_off_causes['instance-1'])

    def test_console_handler_of_a_restarted_compute_reads_the_guest(self):
        # The cloud's nova-compute restarts while a VM runs whose guest's
        # boot messages no handler has read yet: the new process's
        # handler (nova's init_host starts one per running VM) finds the
        # VM and its unread output in the host's file.
        store1, _store2 = self._stores()
        vmutils = self._utils('host1', 'vmutils')
        self._new_vm(vmutils, 'instance-1')
        pipe = r'\\.\pipe\%s_rw' % uuidutils.generate_uuid()
        vmutils.set_vm_serial_port_connection('instance-1', 1, pipe)
        vmutils.set_vm_state('instance-1', RUNNING)

        self.synced.uninstall()
        self.host1._vms.clear()
        store1, _store2 = self._stores()
        log_file = os.path.join(self.tmp, 'console.log')
        with self.hosts.building('host1'):
            handler = utilsfactory.get_named_pipe_handler(
                pipe, log_file=log_file)
        handler.start()
        handler.stop()

        with open(log_file) as f:
            self.assertEqual(
                hyperv_guest.guest_boot_messages('host1', 'instance-1', 1),
                f.read())
        with open(store1.path) as f:
            saved, = json.load(f)['vms']
        self.assertEqual('', saved['console_unread'])
        self.assertEqual(1, saved['boot_count'])

    def _rbd_connector(self, hostname):
        with self.hosts.building(hostname):
            return volumeops.RBDConnector(
                root_helper=None, device_scan_attempts=1,
                device_scan_interval=0,
                execute=volumeops.run_storage_command)

    def test_rbd_mapping_is_seen_by_the_other_hosts_process(self):
        # The destination of a live migration maps the volume in its own
        # process (pre_live_migration); the source's process, moving the
        # VM, must see the disk the destination has.
        volume = storage.SAN.add_rbd_image('volumes/volume-1')
        _store1, store2 = self._stores()
        props = {'name': 'volumes/volume-1', 'hosts': ['127.0.0.1'],
                 'ports': ['6789'], 'auth_username': 'cinder'}
        self._rbd_connector('host2').connect_volume(props)
        number = self.host2.storage.disks[volume.uid].number

        # Another process: host2's storage as it starts, empty.
        self.synced.uninstall()
        self.host2.storage.rbd_mappings.clear()
        self.host2.storage.disks.clear()
        self._stores()
        diskutils = self._utils('host2', 'diskutils')
        self.assertEqual(
            r'\\.\PHYSICALDRIVE%d' % number,
            diskutils.get_device_name_by_device_number(number))
        self.assertEqual(['volumes/volume-1'],
                         list(self.host2.storage.rbd_mappings))
        self.assertFalse(self.host2.storage.disks[volume.uid].online)
        with open(store2.path) as f:
            saved = json.load(f)['storage']
        self.assertEqual(volume.uid,
                         saved['rbd_mappings']['volumes/volume-1']['uid'])

    def test_iscsi_sessions_are_not_kept_silently(self):
        # Only RBD mappings are kept; a host with an iSCSI session would
        # lose it at its next restart, so saving it fails loudly.
        self._stores()
        self.host1.storage.iscsi_sessions.append(
            storage.ISCSISession(
                1, 'iqn.2010-10.org.openstack:volume-1', '192.0.2.1:3260',
                None, False))
        vmutils = self._utils('host1', 'vmutils')
        self.assertRaises(NotImplementedError, vmutils.list_instances)
