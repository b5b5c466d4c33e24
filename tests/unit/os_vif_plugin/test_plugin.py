"""The hyperv_ovs plugin against a real ovsdb-server and ovs-vswitchd."""

import time

import os_vif
from os_vif import exception as osv_exception
from os_vif import objects as osv_objects
from os_vif.objects import vif as osv_vif
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_utils import uuidutils
import testtools

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin
from tests.fixtures import ovs

CONF = cfg.CONF


def make_vif(port_id=None, mac='fa:16:3e:00:00:01', bridge='br-int',
             datapath_type=None, cls=osv_vif.VIFOpenVSwitch):
    port_id = port_id or uuidutils.generate_uuid()
    profile = osv_vif.VIFPortProfileOpenVSwitch(interface_id=port_id)
    if datapath_type:
        profile.datapath_type = datapath_type
    network = osv_objects.network.Network(id=uuidutils.generate_uuid(),
                                          bridge=bridge)
    return cls(id=port_id, address=mac, network=network,
               port_profile=profile, plugin=plugin.PLUGIN_NAME)


def make_instance_info():
    return osv_objects.instance_info.InstanceInfo(
        uuid=uuidutils.generate_uuid(), name='instance-00000001')


class PluginTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.plugin = self.load_plugin(self.ovs.connection)

    def load_plugin(self, connection, timeout=10):
        self.conf.config(ovsdb_connection=connection, timeout=timeout,
                         group=plugin.CONFIG_GROUP)
        loaded = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(loaded.close)
        return loaded

    def assert_port(self, ovs_fixture, vif, instance_info):
        self.assertIn(vif.id, ovs_fixture.list_ports('br-int'))
        iface = ovs_fixture.get_interface(vif.id)
        self.assertEqual({'iface-id': vif.port_profile.interface_id,
                          'iface-status': 'active',
                          'attached-mac': vif.address,
                          'vm-uuid': instance_info.uuid,
                          'created-by': 'compute-hyperv-ovs',
                          'compute-host': self.plugin.compute_host},
                         iface['external_ids'])
        self.assertGreater(iface['ofport'], 0)
        return iface

    def test_plug_registers_port_as_the_agent_expects(self):
        vif, info = make_vif(), make_instance_info()

        status = self.plugin.plug(vif, info)

        iface = self.assert_port(self.ovs, vif, info)
        self.assertTrue(status.is_up)
        self.assertEqual(iface['ofport'], status.ofport)

    def test_plug_twice_leaves_one_port_with_current_external_ids(self):
        vif, info = make_vif(), make_instance_info()
        self.plugin.plug(vif, info)
        first_ofport = self.ovs.get_interface(vif.id)['ofport']
        # Same neutron port, now for another instance and MAC (a port
        # re-used after its server was rebuilt elsewhere).
        vif.address = 'fa:16:3e:00:00:99'
        other_info = make_instance_info()

        self.plugin.plug(vif, other_info)

        self.assertEqual([vif.id], self.ovs.list_ports('br-int'))
        iface = self.assert_port(self.ovs, vif, other_info)
        self.assertEqual(first_ofport, iface['ofport'])

    def test_unplug_removes_port_and_twice_is_harmless(self):
        vif, info = make_vif(), make_instance_info()
        self.plugin.plug(vif, info)

        self.plugin.unplug(vif, info)
        self.plugin.unplug(vif, info)

        self.assertEqual([], self.ovs.list_ports('br-int'))
        self.assertIsNone(self.ovs.get_interface(vif.id))

    def test_plug_creates_missing_bridge_with_profile_datapath_type(self):
        vif = make_vif(bridge='br-new', datapath_type='system')

        self.plugin.plug(vif, make_instance_info())

        self.assertIn('br-new', self.ovs.list_bridges())
        self.assertEqual('system', self.ovs.bridge_datapath_type('br-new'))
        self.assertEqual([vif.id], self.ovs.list_ports('br-new'))

    def test_plug_keeps_existing_bridge_and_its_ports(self):
        self.ovs.add_port('br-int', 'patch-tun')
        vif = make_vif()

        self.plugin.plug(vif, make_instance_info())

        self.assertEqual(sorted(['patch-tun', vif.id]),
                         sorted(self.ovs.list_ports('br-int')))

    def test_hybrid_plug_vif_is_refused(self):
        vif = make_vif(cls=osv_vif.VIFBridge)

        exc = self.assertRaises(osv_exception.PlugException,
                                self.plugin.plug, vif, make_instance_info())

        self.assertIn('VIFOpenVSwitch only', str(exc))
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_two_plugins_each_use_their_own_ovsdb(self):
        other_ovs = self.useFixture(ovs.OpenVSwitchFixture())
        other_plugin = self.load_plugin(other_ovs.connection)
        vif1, vif2 = make_vif(), make_vif()

        self.plugin.plug(vif1, make_instance_info())
        other_plugin.plug(vif2, make_instance_info())

        self.assertEqual([vif1.id], self.ovs.list_ports('br-int'))
        self.assertEqual([vif2.id], other_ovs.list_ports('br-int'))

    def test_unreachable_ovsdb_names_connection_within_timeout(self):
        self.ovs.stop()
        unreachable = self.load_plugin(self.ovs.connection, timeout=3)
        start = time.monotonic()

        exc = self.assertRaises(ovs_exception.OvsdbUnreachable,
                                unreachable.plug,
                                make_vif(), make_instance_info())

        self.assertIn(self.ovs.connection, str(exc))
        self.assertLess(time.monotonic() - start, 3 + 2)

    def test_ovsdb_lost_after_connecting_fails_within_timeout(self):
        connected = self.load_plugin(self.ovs.connection, timeout=3)
        connected.plug(make_vif(), make_instance_info())
        self.ovs.stop()
        start = time.monotonic()

        exc = self.assertRaises(ovs_exception.OvsdbUnreachable,
                                connected.plug,
                                make_vif(), make_instance_info())

        self.assertIn(self.ovs.connection, str(exc))
        self.assertLess(time.monotonic() - start, 3 + 2)

    def test_port_status_reads_the_interface_by_name(self):
        vif, other = make_vif(), make_vif()
        self.plugin.plug(vif, make_instance_info())
        self.plugin.plug(other, make_instance_info())

        status = self.plugin.port_status(vif)

        self.assertTrue(status.is_up)
        self.assertEqual(self.ovs.get_interface(vif.id)['ofport'],
                         status.ofport)
        self.assertIsNone(status.error)

    def test_port_status_of_a_missing_interface_is_not_up(self):
        self.plugin.plug(make_vif(), make_instance_info())

        status = self.plugin.port_status(make_vif())

        self.assertFalse(status.is_up)
        self.assertIsNone(status.ofport)
        self.assertEqual('interface missing after commit', status.error)

    def test_describe_offers_vif_openvswitch(self):
        info = self.plugin.describe()

        self.assertEqual(plugin.PLUGIN_NAME, info.plugin_name)
        self.assertEqual(['VIFOpenVSwitch'],
                         [v.vif_object_name for v in info.vif_info])


class EntryPointTestCase(testtools.TestCase):

    def test_os_vif_loads_the_plugin_by_name(self):
        os_vif.initialize(reset=True)

        names = [p.plugin_name for p in os_vif.host_info().plugin_info]

        self.assertIn(plugin.PLUGIN_NAME, names)


class ReplugTestCase(testtools.TestCase):
    """Against OVS behaving as OVS for Windows (ovs.HyperVSwitchPorts)."""

    load_plugin = PluginTestCase.load_plugin
    assert_port = PluginTestCase.assert_port

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture(
            hyperv_datapath=True))
        self.present = set()
        self.switch_ports = self.useFixture(ovs.HyperVSwitchPorts(
            self.ovs, lambda: set(self.present)))
        self.plugin = self.load_plugin(self.ovs.connection)

    def test_replug_makes_vswitchd_retry_a_port_plug_does_not(self):
        vif, info = make_vif(), make_instance_info()
        status = self.plugin.plug(vif, info)
        self.assertEqual(-1, status.ofport)
        self.assertIn('No such device', status.error)
        # The VM starts: its switch port appears, but ovs-vswitchd retries
        # the failed interface only on a configuration change...
        self.present.add(vif.id)
        self.switch_ports.sync()
        # ...which plugging the unchanged port again does not make.
        self.assertFalse(self.plugin.plug(vif, info).is_up)

        self.plugin.replug(vif, info)

        deadline = time.monotonic() + 5
        while not self.plugin.port_status(vif).is_up:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assert_port(self.ovs, vif, info)
