"""Tests of the test infrastructure: the real-OVS fixture and neutron stand-in.

They need Open vSwitch installed (ovsdb-server, ovs-vswitchd, ovs-vsctl and
the vswitch schema); they are skipped otherwise.
"""

import os
import socket
import subprocess
import sys
import time
import types
import unittest

import fixtures
from ovsdbapp.backend.ovs_idl import connection as ovs_connection
from ovsdbapp.schema.open_vswitch import impl_idl
import testtools
from testtools import content

from tests.fixtures import neutron_agent
from tests.fixtures import ovs

PORT_UUID = '3f2b3e1c-8a1d-4c55-9a51-0d5a3d1b6e7f'
VM_UUID = '9d2c8b0e-2b6a-4f6e-8f83-6f1b4b6b9a10'
# The server neutron's port belongs to (device_id); deliberately not the
# vm-uuid written in OVS, which the event must not be routed by.
SERVER_UUID = '5a1c2e3d-7b8f-4a6e-9c0d-1e2f3a4b5c6d'
MAC = 'fa:16:3e:12:34:56'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def vif_ids(iface_id=PORT_UUID, mac=MAC, vm_uuid=VM_UUID):
    ids = {'iface-id': iface_id, 'iface-status': 'active', 'vm-uuid': vm_uuid}
    if mac:
        ids['attached-mac'] = mac
    return ids


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not a running daemon.
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


@unittest.skipUnless(ovs.ovs_available(), 'Open vSwitch is not installed')
class OpenVSwitchFixtureTest(testtools.TestCase):

    def test_two_hosts_have_their_own_database(self):
        host1 = self.useFixture(ovs.OpenVSwitchFixture())
        host2 = self.useFixture(ovs.OpenVSwitchFixture())
        self.assertNotEqual(host1.connection, host2.connection)
        self.assertNotEqual(host1.unix_connection, host2.unix_connection)

        host1.vsctl('add-port', 'br-int', 'only-on-1')

        self.assertEqual(['only-on-1'], host1.list_ports('br-int'))
        self.assertEqual([], host2.list_ports('br-int'))
        self.assertEqual('br-int', host1.port_to_bridge('only-on-1'))
        self.assertIsNone(host2.port_to_bridge('only-on-1'))
        self.assertIsNone(host2.get_interface('only-on-1'))

    def test_integration_bridge_created(self):
        host = self.useFixture(ovs.OpenVSwitchFixture(
            integration_bridge='br-test'))
        self.assertEqual(['br-test'], host.list_bridges())
        self.assertEqual('', host.bridge_datapath_type('br-test'))

    def test_no_bridge_and_datapath_type(self):
        host = self.useFixture(ovs.OpenVSwitchFixture(create_bridge=False))
        self.assertEqual([], host.list_bridges())
        host.add_bridge('br-x', datapath_type='netdev')
        self.assertEqual('netdev', host.bridge_datapath_type('br-x'))

    def test_uuid_named_port_gets_ofport(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        host.add_port('br-int', PORT_UUID, vif_ids())

        iface = host.get_interface(PORT_UUID)
        self.assertEqual(PORT_UUID, iface['name'])
        self.assertIsInstance(iface['ofport'], int)
        self.assertGreater(iface['ofport'], 0)
        self.assertIsNone(iface['error'])
        self.assertEqual(vif_ids(), iface['external_ids'])
        self.assertEqual([PORT_UUID], host.list_ports())

    def test_without_vswitchd_ofport_is_unassigned(self):
        host = self.useFixture(ovs.OpenVSwitchFixture(with_vswitchd=False))
        host.vsctl('--no-wait', 'add-port', 'br-int', 'p1')
        self.assertIsNone(host.get_interface('p1')['ofport'])

    def _ovsdbapp(self, connection_string):
        # ovsdbapp's Backend keeps its connection in a class attribute
        # (research/testing.md section 4, pitfall 1): give each API object
        # a class of its own.
        api_class = type('PerTestOvsdbIdl', (impl_idl.OvsdbIdl,),
                         {'_ovsdb_connection': None})
        idl = ovs_connection.OvsdbIdl.from_server(connection_string,
                                                  'Open_vSwitch')
        conn = ovs_connection.Connection(idl, timeout=10)
        self.addCleanup(conn.stop)
        return api_class(conn)

    def test_ovsdbapp_transaction_completes(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        api = self._ovsdbapp(host.connection)
        self.assertTrue(host.connection.startswith('tcp:127.0.0.1:'))

        # One transaction, as os-vif's create_ovs_vif_port() does.  It
        # waits for cur_cfg >= next_cfg, i.e. for the real vswitchd.
        start = time.monotonic()
        with api.transaction(check_error=True) as txn:
            txn.add(api.add_port('br-int', PORT_UUID))
            txn.add(api.db_set('Interface', PORT_UUID,
                               ('external_ids', vif_ids())))
        self.assertLess(time.monotonic() - start, 5)

        iface = host.get_interface(PORT_UUID)
        self.assertEqual(vif_ids(), iface['external_ids'])
        self.assertGreater(iface['ofport'], 0)

    def test_stop_refuses_connections_and_start_restores(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        host.add_port('br-int', 'p1')
        port, pids = host.port, host.pids

        host.stop()
        self.assertFalse(any(pid_alive(p) for p in pids.values()))
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          ('127.0.0.1', port), 1)

        host.start()
        self.assertEqual(port, host.port)
        self.assertEqual('tcp:127.0.0.1:%d' % port, host.connection)
        self.assertEqual(['p1'], host.list_ports())
        # vswitchd is back: a waiting transaction completes.
        api = self._ovsdbapp(host.connection)
        api.add_port('br-int', 'p2').execute(check_error=True)
        self.assertGreater(host.get_interface('p2')['ofport'], 0)

    def test_cleanup_stops_daemons_and_removes_dir(self):
        host = ovs.OpenVSwitchFixture()
        start = time.monotonic()
        host.setUp()
        elapsed = time.monotonic() - start
        pids, directory = host.pids, host.dir
        self.assertTrue(all(pid_alive(p) for p in pids.values()))
        host.cleanUp()
        self.assertFalse(any(pid_alive(p) for p in pids.values()))
        self.assertFalse(os.path.exists(directory))
        # Not a hard limit, just a guard against a slow start-up creeping in.
        self.assertLess(elapsed, 3)

    def test_bridge_port_names_as_list_ports(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        host.add_port('br-int', 'p1')
        host.add_port('br-int', PORT_UUID, vif_ids())
        host.add_bridge('br-other')
        host.add_port('br-other', 'p3')
        self.assertEqual(set(host.list_ports()), host.bridge_port_names())
        self.assertEqual({'p1', PORT_UUID}, host.bridge_port_names('br-int'))
        self.assertEqual({'p3'}, host.bridge_port_names('br-other'))
        self.assertEqual(set(), host.bridge_port_names('br-missing'))

    def test_kept_connection_survives_ovsdb_restart(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        host.add_port('br-int', 'p1')
        self.assertEqual({'p1'}, host.bridge_port_names())
        host.restart_ovsdb()
        host.add_port('br-int', 'p2')
        # The first request after the restart goes out on a new connection.
        self.assertEqual({'p1', 'p2'}, host.bridge_port_names())
        host.kill_ovsdb()
        self.assertRaises(OSError, host.bridge_port_names)
        host.start_ovsdb()
        self.assertEqual({'p1', 'p2'}, host.bridge_port_names())

    def test_transact_writes_and_reports_errors(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        host.add_port('br-int', 'p1')
        result, = host.transact({'op': 'update', 'table': 'Interface',
                                 'where': [['name', '==', 'p1']],
                                 'row': {'external_ids': ['map', [
                                     ['k', 'v']]]}})
        self.assertEqual(1, result['count'])
        self.assertEqual({'k': 'v'},
                         host.get_interface('p1')['external_ids'])
        self.assertRaises(ovs.OvsdbError, host.transact,
                          {'op': 'select', 'table': 'NoSuchTable',
                           'where': []})
        # The connection is still usable after an error.
        self.assertEqual({'p1'}, host.bridge_port_names())


@unittest.skipUnless(ovs.ovs_available(), 'Open vSwitch is not installed')
class NeutronAgentStandInTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.host = self.useFixture(ovs.OpenVSwitchFixture())
        self.up, self.down = [], []
        self.agent = self.useFixture(neutron_agent.NeutronOVSAgentStandIn(
            self.host, 'host1',
            lambda *args: self.up.append(args),
            lambda *args: self.down.append(args)))

    def test_reports_vif_port_once(self):
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        ofport = self.agent.wait_for_port(PORT_UUID)

        self.assertEqual(self.host.get_interface(PORT_UUID)['ofport'], ofport)
        self.assertEqual([('host1', PORT_UUID, vif_ids())], self.up)
        # An unrelated change does not report it again.
        self.host.vsctl('set', 'Interface', PORT_UUID,
                        'external_ids:other=1')
        self.host.add_port('br-int', 'other')
        time.sleep(0.3)
        self.assertEqual(1, len(self.up))

    def test_port_without_attached_mac_not_reported(self):
        self.host.add_port('br-int', 'no-mac', vif_ids('no-mac', mac=None))
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        self.agent.wait_for_port(PORT_UUID)
        time.sleep(0.2)
        self.assertEqual([PORT_UUID], [args[1] for args in self.up])

    def test_port_off_integration_bridge_not_reported(self):
        self.host.add_bridge('br-other')
        self.host.add_port('br-other', 'elsewhere', vif_ids('elsewhere'))
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        self.agent.wait_for_port(PORT_UUID)
        time.sleep(0.2)
        self.assertEqual([PORT_UUID], [args[1] for args in self.up])

    def test_failed_ofport_not_reported(self):
        # Without vswitchd the ofport stays unassigned: not yet ready.
        self.host.stop_vswitchd()
        self.host.vsctl('--no-wait', 'add-port', 'br-int', PORT_UUID, '--',
                        'set', 'Interface', PORT_UUID,
                        'external_ids:iface-id=%s' % PORT_UUID,
                        'external_ids:attached-mac="%s"' % MAC)
        time.sleep(0.3)
        self.assertEqual([], self.up)
        # Once vswitchd assigns the ofport, the agent reports it.
        self.host.start_vswitchd()
        self.agent.wait_for_port(PORT_UUID)

    def test_readded_port_reported_again(self):
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        first = self.agent.wait_for_port(PORT_UUID)
        self.host.del_port(PORT_UUID)
        self.agent.wait_for_port(PORT_UUID, up=False)
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        second = self.agent.wait_for_port(PORT_UUID)

        self.assertEqual(2, len(self.up))
        self.assertEqual([('host1', PORT_UUID, vif_ids())], self.down)
        # (A new Interface may be seen once before vswitchd numbers it:
        # 'deferred' with ofport None, "not yet ready".)
        self.assertEqual([('up', PORT_UUID, PORT_UUID, first),
                          ('down', PORT_UUID, PORT_UUID, first),
                          ('up', PORT_UUID, PORT_UUID, second)],
                         [e for e in self.agent.events
                          if e[0] != 'deferred'])

    def test_survives_ovsdb_restart(self):
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        self.agent.wait_for_port(PORT_UUID)
        self.host.stop()
        time.sleep(0.3)
        self.host.start()
        self.host.add_port('br-int', 'p2', vif_ids('p2'))
        self.agent.wait_for_port('p2')
        # The restarted vswitchd may renumber ofports (its dummy datapath
        # is new): a port is reported again only if its ofport changed.
        ups = [(e[1], e[3]) for e in self.agent.events if e[0] == 'up']
        self.assertEqual(len(ups), len(set(ups)), self.agent.events)
        self.assertEqual(self.host.get_interface(PORT_UUID)['ofport'],
                         self.agent.wait_for_port(PORT_UUID))


@unittest.skipUnless(ovs.ovs_available(), 'Open vSwitch is not installed')
class HyperVDatapathTest(testtools.TestCase):
    """OVS for Windows' rule on the real ovs-vswitchd (HyperVSwitchPorts)."""

    def setUp(self):
        super().setUp()
        self.host = self.useFixture(ovs.OpenVSwitchFixture(
            hyperv_datapath=True))
        self.present = set()
        self.switch_ports = self.useFixture(ovs.HyperVSwitchPorts(
            self.host, lambda: set(self.present)))

    def wait_for_ofport(self, name, valid=True, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            iface = self.host.get_interface(name)
            if (iface['ofport'] or 0) > 0 if valid else iface['ofport'] == -1:
                return iface
            if time.monotonic() > deadline:
                self.fail('%s: %s' % (name, iface))
            time.sleep(0.02)

    def test_datapath_lacks_the_actions_windows_lacks(self):
        # A flow that clears conntrack state, as the OVS firewall's table 71
        # does, translates to no ct_clear action: Windows' datapath has
        # none (datapath-windows/ovsext/Actions.c).
        self.host.vsctl('--', 'add-port', 'br-int', 'p1', '--', 'set',
                        'Interface', 'p1', 'type=dummy')
        ctl = os.path.join(self.host.dir, 'ovs-vswitchd.ctl')
        appctl = ovs.find_binary('ovs-appctl')
        ofctl = ovs.find_binary('ovs-ofctl')
        ovs.execute(ofctl, 'add-flow', 'br-int',
                    'priority=10,ip,actions=ct_clear,normal',
                    env=self.host.env)
        # Without a feature name, set-dp-features lists the run-time set
        # (show-dp-features shows what the datapath probed at start).
        features, _ = ovs.execute(appctl, '-t', ctl, 'dpif/set-dp-features',
                                  'br-int', env=self.host.env)
        for feature in ovs.WINDOWS_MISSING_DP_FEATURES:
            self.assertRegex(features, r'(?m)^%s \(.*\) : \[run time\]:false,'
                             % feature)
        trace, _ = ovs.execute(appctl, '-t', ctl, 'ofproto/trace', 'br-int',
                               'in_port=1,ip', env=self.host.env)
        actions = trace.split('Datapath actions:', 1)[1]
        self.assertNotIn('ct_clear', actions)

    def test_port_without_switch_port_is_down_by_default(self):
        self.assertEqual('dummy', self.host.bridge_datapath_type())
        self.host.add_port('br-int', PORT_UUID, vif_ids())

        iface = self.host.get_interface(PORT_UUID)
        self.assertEqual(-1, iface['ofport'])
        self.assertEqual('could not open network device %s (No such device)'
                         % PORT_UUID, iface['error'])

    def test_switch_port_appears_fresh_ofport_then_gone(self):
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        self.present.add(PORT_UUID)
        self.switch_ports.sync()
        # Failed while the switch port was missing: only the next
        # reconfiguration (an OVSDB change that waits for vswitchd)
        # retries it (ovs-issues #343).
        self.assertEqual(-1, self.host.get_interface(PORT_UUID)['ofport'])
        self.host.vsctl('set', 'Interface', PORT_UUID,
                        'external_ids:changed=1')
        first = self.wait_for_ofport(PORT_UUID)
        self.assertIsNone(first['error'])

        self.present.clear()
        self.switch_ports.sync()
        self.assertEqual(-1, self.host.get_interface(PORT_UUID)['ofport'])

        # It had a datapath port: re-attached at once (HvCreatePort).
        self.present.add(PORT_UUID)
        self.switch_ports.sync()
        second = self.host.get_interface(PORT_UUID)['ofport']
        self.assertGreater(second, 0)
        self.assertNotEqual(first['ofport'], second)

    def test_port_added_while_switch_port_exists_comes_up(self):
        self.present.add(PORT_UUID)
        self.switch_ports.sync()
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        # The monitor notices the new Interface and attaches it.
        self.wait_for_ofport(PORT_UUID)

    def test_refused_port_stays_down(self):
        self.present.add(PORT_UUID)
        self.switch_ports.refuse(PORT_UUID)
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        time.sleep(0.3)
        self.assertEqual(-1, self.host.get_interface(PORT_UUID)['ofport'])

    def test_other_port_types_untouched(self):
        self.host.vsctl('add-port', 'br-int', 'patch-tun', '--', 'set',
                        'Interface', 'patch-tun', 'type=patch',
                        'options:peer=patch-int')
        self.switch_ports.sync()
        self.assertEqual('patch', self.host.interface_types()['patch-tun'])
        self.assertEqual('internal', self.host.interface_types()['br-int'])

    def test_agent_defers_port_until_switch_port_exists(self):
        up = []
        agent = self.useFixture(neutron_agent.NeutronOVSAgentStandIn(
            self.host, 'host1', lambda *args: up.append(args)))
        self.host.add_port('br-int', PORT_UUID, vif_ids())
        deadline = time.monotonic() + 5
        # Deferred at ofport -1 (possibly seen unnumbered, None, first).
        while agent.deferred.get(PORT_UUID) != -1:
            self.assertLess(time.monotonic(), deadline, agent.events)
            time.sleep(0.02)
        self.assertEqual([], up)

        self.present.add(PORT_UUID)
        self.switch_ports.sync()
        self.host.vsctl('set', 'Interface', PORT_UUID,
                        'external_ids:changed=1')
        ofport = agent.wait_for_port(PORT_UUID)
        self.assertNotIn(PORT_UUID, agent.deferred)
        # The VM stops: deferred again, not reported down.
        self.present.clear()
        self.switch_ports.sync()
        agent.wait_for_port(PORT_UUID, up=False)
        # (Possibly first seen unnumbered: deferred with ofport None.)
        self.assertEqual([('deferred', -1), ('up', ofport),
                          ('deferred', -1)],
                         [(e[0], e[3]) for e in agent.events
                          if e[3] is not None])
        self.assertEqual(1, len(up))


class VifPluggedNotifierTest(testtools.TestCase):
    """The neutron-server side, against stand-ins of nova's test objects."""

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger())
        self.posts = []
        self.neutron = types.SimpleNamespace(
            _ports={PORT_UUID: {'id': PORT_UUID, 'status': 'DOWN',
                                'device_id': SERVER_UUID,
                                'binding:host_id': 'host1'}})

        def api_post(url, body, **kwargs):
            self.posts.append((url, body))
            return types.SimpleNamespace(body={'events': [
                dict(body['events'][0], code=200)]})

        self.api = types.SimpleNamespace(api_post=api_post)
        self.notifier = neutron_agent.VifPluggedNotifier(self.api,
                                                         self.neutron)

    def test_port_up_posts_vif_plugged(self):
        self.notifier('host1', PORT_UUID, vif_ids())

        event = {'name': 'network-vif-plugged', 'server_uuid': SERVER_UUID,
                 'tag': PORT_UUID, 'status': 'completed'}
        self.assertEqual([('/os-server-external-events',
                           {'events': [event]})], self.posts)
        self.assertEqual([dict(event, host='host1', code=200)],
                         self.notifier.events_sent)
        self.assertEqual('ACTIVE', self.neutron._ports[PORT_UUID]['status'])

    def test_event_only_on_down_to_active(self):
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        # Reported up again (a new ofport after a VM restart): the port is
        # already ACTIVE, neutron sends nothing.
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        self.assertEqual(1, len(self.posts))
        # DOWN (left the bridge), then up again: a second event.
        self.notifier.port_down('host1', PORT_UUID, vif_ids())
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        self.assertEqual(2, len(self.posts))

    def test_report_from_another_host_changes_nothing(self):
        self.notifier.port_up('host2', PORT_UUID, vif_ids())
        self.assertEqual([], self.posts)
        self.assertEqual('DOWN', self.neutron._ports[PORT_UUID]['status'])
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        self.notifier.port_down('host2', PORT_UUID, vif_ids())
        self.assertEqual('ACTIVE', self.neutron._ports[PORT_UUID]['status'])

    def test_port_without_device_id_sends_nothing(self):
        self.neutron._ports[PORT_UUID]['device_id'] = ''
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        self.assertEqual([], self.posts)

    def test_port_down_marks_down_without_event(self):
        self.neutron._ports[PORT_UUID]['status'] = 'ACTIVE'
        self.notifier.port_down('host1', PORT_UUID, vif_ids())
        self.assertEqual('DOWN', self.neutron._ports[PORT_UUID]['status'])
        self.assertEqual([], self.posts)

    def test_failed_post_recorded(self):
        def api_post(url, body, **kwargs):
            raise RuntimeError('404')
        self.api.api_post = api_post
        self.notifier.port_up('host1', PORT_UUID, vif_ids())
        self.assertEqual([], self.notifier.events_sent)
        self.assertEqual(1, len(self.notifier.errors))
        self.assertIn('failed: 404', self.logger.output)

    @unittest.skipUnless(ovs.ovs_available(), 'Open vSwitch is not installed')
    def test_agent_to_notifier(self):
        host = self.useFixture(ovs.OpenVSwitchFixture())
        agent = self.useFixture(neutron_agent.NeutronOVSAgentStandIn(
            host, 'host1', self.notifier.port_up, self.notifier.port_down))
        host.add_port('br-int', PORT_UUID, vif_ids())
        agent.wait_for_port(PORT_UUID)
        self.assertEqual(['network-vif-plugged'],
                         [e['name'] for e in self.notifier.events_sent])


def _eventlet_patched():
    if 'eventlet' not in sys.modules:
        return False
    import eventlet.patcher
    return eventlet.patcher.is_monkey_patched('thread')


@unittest.skipUnless(ovs.ovs_available(), 'Open vSwitch is not installed')
class OtherThreadingModelTest(testtools.TestCase):
    """Run the tests above again in a child process, in the other model.

    nova 34 chooses native threads or eventlet once per process
    (``OS_NOVA_DISABLE_EVENTLET_PATCHING``; ``tox -e py311`` runs threading,
    ``tox -e eventlet`` eventlet), and the fixtures serve both, with plain
    or green threads, subprocess and time; the child covers the model this
    process does not run.
    """

    def test_fixtures_in_other_threading_model(self):
        patched = _eventlet_patched()
        # tests/__init__ lets nova choose the model, as nova-compute does:
        # from OS_NOVA_DISABLE_EVENTLET_PATCHING (nova/monkey_patch.py).
        code = (
            'import sys\n'
            'from tests.fixtures import ovs\n'
            'assert ovs.eventlet_patched() is %s\n'
            'from testtools.run import main\n'
            'main(["testtools.run"] + sys.argv[1:], sys.stdout)\n'
            % (not patched))
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING=(
            'true' if patched else 'false'))
        tests = ['%s.%s' % (__name__, cls.__name__) for cls in (
            OpenVSwitchFixtureTest, NeutronAgentStandInTest,
            HyperVDatapathTest, VifPluggedNotifierTest)]
        proc = subprocess.run([sys.executable, '-c', code] + tests, cwd=REPO,
                              env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=300)
        output = proc.stdout.decode('utf-8', 'replace')
        self.addDetail('child-output', content.text_content(output))
        self.assertEqual(0, proc.returncode, output)
        self.assertIn('\nOK', output)
