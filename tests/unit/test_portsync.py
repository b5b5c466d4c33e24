"""PortSync: this host's OVS ports against nova's instances, real OVSDB.

Instances live in nova's (test) database, VMs on a simulated Hyper-V
host, ports in a private ovsdb-server + ovs-vswitchd.
"""

import time

from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova.network import model as network_model
from nova import objects
from nova import test
from os_vif import objects as osv_objects
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import portsync
from compute_hyperv_ovs import vif
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

VSWITCH = 'ovs-switch'
HOST = 'host1'


def make_vif(index):
    port_id = uuidutils.generate_uuid()
    network = network_model.Network(id=uuidutils.generate_uuid(),
                                    bridge='br-int', label='private',
                                    subnets=[])
    return network_model.VIF(id=port_id, address='fa:16:3e:00:00:%02x'
                             % index, network=network,
                             type=network_model.VIF_TYPE_OVS, details={},
                             active=True, ovs_interfaceid=port_id)


class PortSyncTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.context = nova_context.get_admin_context()
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   port_sync_max_interval=1, group=plugin.CONFIG_GROUP)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host(HOST, vswitch_name=VSWITCH)
        self.vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.vif_plugin.set_compute_host(HOST)
        self.addCleanup(self.vif_plugin.ovsdb.close)
        with self.hosts.building(HOST):
            self.vif_driver = vif.HyperVOVSVIFDriver(self.vif_plugin)
            self.vmutils = utilsfactory.get_vmutils()
        self.sync = portsync.PortSync(self.vif_driver, self.vif_plugin, HOST,
                                      self.vmutils.list_instances)
        self.vif_driver.set_port_sync(self.sync)
        self.addCleanup(self.sync.stop)

    def instance(self, host=HOST, vm=True, plugged=True, **updates):
        """An instance in nova's DB with one OVS VIF; its VM and port."""
        nova_vif = make_vif(len(self.host.vms) + 1)
        fields = dict(vm_state=vm_states.ACTIVE, task_state=None)
        fields.update(updates)
        instance = objects.Instance(
            context=self.context, uuid=uuidutils.generate_uuid(),
            project_id='p', user_id='u', host=host,
            info_cache=objects.InstanceInfoCache(
                network_info=network_model.NetworkInfo([nova_vif])),
            **fields)
        instance.create()
        if vm:
            self.vmutils.create_vm(instance.name, False, 1, '/instances',
                                   [instance.uuid])
            self.vmutils.create_nic(instance.name, nova_vif['id'],
                                    nova_vif['address'])
            self.vmutils.set_vm_state(instance.name,
                                      os_win_const.HYPERV_VM_STATE_ENABLED)
            if plugged:
                self.vif_driver.plug(instance, nova_vif)
        elif plugged:
            spec = self.vif_driver.port_spec(instance, nova_vif)
            self.ovs.add_port('br-int', spec.name, spec.external_ids)
        return instance, nova_vif

    def external_ids(self, name):
        return self.ovs.get_interface(name)['external_ids']

    def wait_for(self, predicate, what, timeout=15):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s' % what)
            time.sleep(0.05)

    # ---- one pass ----

    def test_recreates_corrects_removes_and_leaves_foreign_ports(self):
        kept, kept_vif = self.instance()
        lost, lost_vif = self.instance()
        edited, edited_vif = self.instance()
        gone, gone_vif = self.instance()
        self.ovs.del_port(lost_vif['id'])
        self.ovs.vsctl('set', 'Interface', edited_vif['id'],
                       'external_ids:iface-id=wrong')
        gone.destroy()
        foreign = {'patch-tun': {},
                   'tap-x': {'iface-id': 'x', 'attached-mac': 'm'},
                   'other': {'created-by': 'compute-hyperv-ovs',
                             'compute-host': 'host2', 'vm-uuid': gone.uuid}}
        for name, external_ids in foreign.items():
            self.ovs.add_port('br-int', name, external_ids)
        before = {name: self.external_ids(name) for name in foreign}

        self.assertEqual((1, 1, 1), self.sync.reconcile())

        ports = self.ovs.list_ports()
        self.assertEqual(
            sorted([kept_vif['id'], lost_vif['id'], edited_vif['id']] +
                   list(foreign)), sorted(ports))
        for instance, nova_vif in ((kept, kept_vif), (lost, lost_vif),
                                   (edited, edited_vif)):
            self.assertEqual(
                {'iface-id': nova_vif['id'], 'iface-status': 'active',
                 'attached-mac': nova_vif['address'],
                 'vm-uuid': instance.uuid, 'created-by': 'compute-hyperv-ovs',
                 'compute-host': HOST}, self.external_ids(nova_vif['id']))
        self.assertEqual(before, {name: self.external_ids(name)
                                  for name in foreign})
        self.assertIn('reconciled with its instances: recreated 1, '
                      'corrected 1, removed 1.', self.stdlog.logger.output)

    def test_missing_bridge_is_created_with_its_ports(self):
        # The pass's connection replicates only the columns the pass uses
        # (ovsdb.SYNC_COLUMNS); creating a bridge needs more of them than
        # adding a port (its own port, of Interface type internal).
        instance, nova_vif = self.instance()
        self.ovs.vsctl('del-br', 'br-int')

        self.assertEqual((1, 0, 0), self.sync.reconcile())

        self.assertEqual(['br-int'], self.ovs.list_bridges())
        self.assertEqual([nova_vif['id']], self.ovs.list_ports())
        types = self.ovs.interface_types()
        self.assertEqual('internal', types['br-int'])
        self.assertEqual('', types[nova_vif['id']])
        self.assertEqual(instance.uuid,
                         self.external_ids(nova_vif['id'])['vm-uuid'])

    def test_second_pass_changes_nothing(self):
        self.instance()
        self.instance(plugged=False)
        self.assertEqual((1, 0, 0), self.sync.reconcile())

        self.assertEqual((0, 0, 0), self.sync.reconcile())

    def test_port_of_vm_removed_by_hand_is_removed(self):
        removed, removed_vif = self.instance()
        self.host.remove_vm(removed.name, turn_off=True)

        self.assertEqual((0, 0, 1), self.sync.reconcile())

        self.assertEqual([], self.ovs.list_ports())

    def test_instances_busy_or_in_error_are_left_alone(self):
        busy, busy_vif = self.instance(task_state=task_states.DELETING,
                                       vm=False)
        broken, broken_vif = self.instance(vm_state=vm_states.ERROR,
                                           vm=False)
        missing, missing_vif = self.instance(task_state=task_states.SPAWNING,
                                             plugged=False)

        self.assertEqual((0, 0, 0), self.sync.reconcile())

        self.assertEqual(sorted([busy_vif['id'], broken_vif['id']]),
                         sorted(self.ovs.list_ports()))

    def test_port_registered_ahead_of_a_live_migration_is_kept(self):
        # The instance is still on the source while its port is here.
        moving, moving_vif = self.instance(
            host='host2', vm=False, task_state=task_states.MIGRATING)
        moved, moved_vif = self.instance(host='host2', vm=False)

        self.assertEqual((0, 0, 1), self.sync.reconcile())

        self.assertEqual([moving_vif['id']], self.ovs.list_ports())

    def test_unmarked_port_of_a_wanted_vif_is_adopted(self):
        instance, nova_vif = self.instance(plugged=False)
        self.ovs.add_port('br-int', nova_vif['id'],
                          {'iface-id': nova_vif['id'],
                           'attached-mac': nova_vif['address']})

        self.assertEqual((0, 1, 0), self.sync.reconcile())

        self.assertTrue(self.vif_plugin.is_owned(
            self.external_ids(nova_vif['id'])))

    def test_handed_over_unplug_keeps_a_port_whose_vm_is_here(self):
        # An unplug that could not run, then a plug of the same VIF that
        # could (its instance busy, e.g. finishing a resize): the port is
        # wanted again and stays.
        busy, busy_vif = self.instance(task_state=task_states.RESIZE_FINISH)
        gone, gone_vif = self.instance(task_state=task_states.DELETING,
                                       vm=False)
        self.sync.remove_later(busy_vif['id'])
        self.sync.remove_later(gone_vif['id'])

        self.assertEqual((0, 0, 1), self.sync.reconcile())

        self.assertEqual([busy_vif['id']], self.ovs.list_ports())

    # ---- the loop ----

    def test_failed_unplug_is_retried_once_ovsdb_is_back_logged_once(self):
        instance, nova_vif = self.instance()
        kept, kept_vif = self.instance()
        self.sync.start()
        self.wait_for(lambda: 'reconciled' in self.stdlog.logger.output,
                      'the first pass')
        self.ovs.stop()
        instance.destroy()

        self.vif_driver.unplug(instance, nova_vif)  # does not raise

        warning = 'Could not put the OVS ports of host host1 right'
        self.wait_for(lambda: warning in self.stdlog.logger.output,
                      'the outage warning')
        time.sleep(3)  # several more attempts
        self.ovs.start()
        self.wait_for(lambda: nova_vif['id'] not in self.ovs.list_ports(),
                      'the port to be removed')
        self.assertEqual([kept_vif['id']], self.ovs.list_ports())
        output = self.stdlog.logger.output
        self.assertEqual(1, output.count(warning))
        self.assertEqual(1, output.count('OVS ports of host host1 put right '
                                         'after'))

    def test_stop_ends_the_loop(self):
        self.sync.start()
        self.assertTrue(self.sync.running)

        self.sync.stop()

        self.assertFalse(self.sync.running)
