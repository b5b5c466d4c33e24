"""The Windows datapath's rules, modelled by the test world and obeyed.

In the test world (``base.HyperVOVSTestBase.start_compute``) a VM's Hyper-V
switch port exists only while the VM runs, and the host's real OVS gives
the VM's port ``ofport -1`` and an ``Interface.error`` until it does
(``ovs.HyperVSwitchPorts``); the neutron agent stand-in binds such ports
at once as neutron-openvswitch-agent 24.x (the Windows host's) does, or
defers them as 28.0.1 and later do (``agent_release``), and
neutron-server's stand-in sends ``network-vif-plugged`` once, when the port
goes from DOWN to ACTIVE.
"""

import time

from os_win import constants as os_win_const

from tests.functional import base
from tests.functional import test_boot

RUNNING = os_win_const.HYPERV_VM_STATE_ENABLED
OFF = os_win_const.HYPERV_VM_STATE_DISABLED
SAVED = os_win_const.HYPERV_VM_STATE_SUSPENDED
PAUSED = os_win_const.HYPERV_VM_STATE_PAUSED


class DatapathTestBase(test_boot.BootTestBase):
    """Hosts whose agent defers ports at ofport -1 unless a test says so.

    The rules here are about what the driver does when the agent waits for
    a valid ofport (neutron >= 28.0.1); with the Windows host's agent
    (24.x) a port is bound at once and nothing waits on the datapath.
    """

    AGENT_RELEASE = '29.0.0'

    def start_compute(self, hostname, **kwargs):
        kwargs.setdefault('agent_release', self.AGENT_RELEASE)
        return super().start_compute(hostname, **kwargs)

    def setUp(self):
        # (host, port id, VM power state) when the agent reported a port up.
        self.port_up_seen = []
        super().setUp()
        self.image = self.images.create_image('vhdx')

    def _port_up(self, host, iface_id, external_ids):
        vm = self._vm_with_nic(host, iface_id)
        self.port_up_seen.append(
            (host, iface_id, vm.power_state if vm else None))
        super()._port_up(host, iface_id, external_ids)

    def _vm_with_nic(self, hostname, nic_name):
        for vm in self.host(hostname).vms.values():
            if nic_name in vm.nics:
                return vm
        return None

    def vif_plugged_events(self, port):
        return [e for e in self.vif_plugged.events_sent
                if e['tag'] == port['id'] and
                e['name'] == 'network-vif-plugged']

    def ofport(self, hostname, port):
        return self.ovs[hostname].get_interface(port['id'])['ofport']

    def assert_port_down(self, hostname, port):
        """ofport -1 and the datapath's error: no switch port, no ofport."""
        iface = self.ovs[hostname].get_interface(port['id'])
        self.assertEqual(-1, iface['ofport'])
        self.assertIn('could not open network device %s' % port['id'],
                      iface['error'])
        self.assertNotIn(port['id'], self.host(hostname).switch_ports)

    def assert_port_up_again(self, hostname, server, port, old_ofport):
        """A fresh valid ofport once the VM runs; no second event."""
        self.assertEqual(RUNNING, self.vm_of(server, hostname).power_state)
        self.assertIn(port['id'], self.host(hostname).switch_ports)
        ofport = self.ofport(hostname, port)
        self.assertGreater(ofport, 0)
        self.assertNotEqual(old_ofport, ofport)
        # The agent binds it again (a "modified" port, neutron 451c2157);
        # neutron-server sends nothing: the port stayed ACTIVE.
        self.assertEqual(ofport, self.agents[hostname].wait_for_port(
            port['id']))
        self.assertEqual(1, len(self.vif_plugged_events(port)))
        return ofport


class BootOrderTest(DatapathTestBase):
    """Item 9: spawn never deadlocks on a port that is down until power-on."""

    def test_port_down_until_vm_runs_vm_started_then_waited(self):
        self.start_compute('host1')
        start = time.monotonic()

        server, port = self.boot(self.image)

        # Boot is fast: nothing waited out vif_plugging_timeout (30 s).
        self.assertLess(time.monotonic() - start, 15)
        self.assert_ovs_port('host1', server, port)
        self.assertEqual(RUNNING, self.vm_of(server).power_state)
        # The agent deferred the port while its VM was off (ofport -1),
        # and reported it up only once the VM ran.
        actions = [(a, ofport) for a, _name, iface, ofport
                   in self.agents['host1'].events
                   if iface == port['id'] and ofport is not None]
        self.assertEqual(('deferred', -1), actions[0])
        self.assertEqual('up', actions[-1][0])
        self.assertEqual({'deferred'}, {a for a, _ofport in actions[:-1]})
        self.assertEqual([('host1', port['id'], RUNNING)], self.port_up_seen)
        # One event, to the neutron port's device_id.
        events = self.vif_plugged_events(port)
        self.assertEqual([(server['id'], 200)],
                         [(e['server_uuid'], e['code']) for e in events])
        self.assertEqual('ACTIVE', self.neutron._ports[port['id']]['status'])

    def test_port_up_before_power_on_keeps_novas_order(self):
        # A datapath that attaches a port before its VM runs (as on Linux):
        # plug, wait for network-vif-plugged, then power on.
        self.start_compute('host1', hyperv_datapath=False)

        server, port = self.boot(self.image)

        self.assert_ovs_port('host1', server, port)
        self.assertEqual([('host1', port['id'], OFF)], self.port_up_seen)
        self.assertEqual(1, len(self.vif_plugged_events(port)))
        self.assertEqual(RUNNING, self.vm_of(server).power_state)

    def test_no_event_after_vm_started_removes_vm_and_port(self):
        self.start_compute('host1')
        self.agents['host1'].stop()
        self.flags(vif_plugging_timeout=2)

        server, port = self.boot(self.image, expected_state='ERROR')

        fault = server['fault']['message']
        self.assertIn('no network-vif-plugged for port(s) %s' % port['id'],
                      fault)
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)
        self.assertEqual({}, self.host('host1').vms)


class PortNotUpTest(DatapathTestBase):
    """Item 8: a port that never comes up fails the build, saying why."""

    def test_port_refused_by_datapath_fails_fast_with_what_plug_saw(self):
        self.start_compute('host1')
        port = self.create_port()
        # OVS for Windows fails this port even once its switch port
        # exists (openvswitch/ovs-issues #343).
        self.switch_ports['host1'].refuse(port['id'])
        # The wait for the port to come up is bounded by [os_vif_hyperv_ovs]
        # timeout, read when the VM has started.
        self.flags(timeout=1, group=base.OVSDB_GROUP)
        start = time.monotonic()

        server, port = self.boot(self.image, port=port,
                                 expected_state='ERROR')

        # Well before vif_plugging_timeout (30 s).
        self.assertLess(time.monotonic() - start, 15)
        fault = server['fault']['message']
        self.assertIn('OVS port %s did not come up' % port['id'], fault)
        self.assertIn('ofport -1', fault)
        self.assertIn('could not open network device %s (No such device)'
                      % port['id'], fault)
        self.assertNotIn('neutron-openvswitch-agent', fault)
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)
        self.assertEqual([], self.vif_plugged_events(port))

    def test_port_not_up_is_logged_when_not_fatal(self):
        self.start_compute('host1')
        port = self.create_port()
        self.switch_ports['host1'].refuse(port['id'])
        self.flags(timeout=1, group=base.OVSDB_GROUP)
        self.flags(vif_plugging_is_fatal=False, vif_plugging_timeout=1)

        server, port = self.boot(self.image, port=port)

        self.assertEqual(RUNNING, self.vm_of(server).power_state)
        self.assertEqual(-1, self.ofport('host1', port))
        self.assertIn('OVS port %s did not come up' % port['id'],
                      self.stdlog.logger.output)


class VswitchCheckTest(DatapathTestBase):
    """Item 10: no vSwitch or no enabled OVS extension: abort, say so."""

    def boot_refused(self):
        server, port = self.boot(self.image, expected_state='ERROR')
        self.assertEqual({}, self.host('host1').vms)
        self.assertEqual([], self.ovs['host1'].list_ports())
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)
        fault = server['fault']['message']
        # Aborted on this host, not rescheduled until "Exhausted all hosts".
        self.assertNotIn('Exhausted', fault)
        self.assertIn('aborted', fault)
        return fault

    def test_missing_vswitch_aborts_build(self):
        self.start_compute('host1', vswitch_name='other')

        fault = self.boot_refused()

        self.assertIn('[hyperv] vswitch_name', fault)
        self.assertIn('no vSwitch named %s' % base.VSWITCH, fault)

    def test_disabled_ovs_extension_aborts_build(self):
        self.start_compute('host1', ovs_extension='disabled')

        fault = self.boot_refused()

        self.assertIn('Enable-VMSwitchExtension -VMSwitchName %s -Name '
                      '"Open vSwitch Extension"' % base.VSWITCH, fault)
        self.assertIn('[hyperv] vswitch_name', fault)

    def test_missing_ovs_extension_aborts_build(self):
        self.start_compute('host1', ovs_extension='absent')

        fault = self.boot_refused()

        self.assertIn('no Open vSwitch extension', fault)

    def test_extension_not_running_aborts_build(self):
        self.start_compute('host1', ovs_extension='not-running')

        fault = self.boot_refused()

        self.assertIn('is enabled but not running', fault)

    def test_enabled_extension_boots(self):
        self.start_compute('host1', ovs_extension='disabled')
        self.host('host1').set_vswitch_extension(
            base.VSWITCH, 'Open vSwitch Extension', enabled=True)

        server, port = self.boot(self.image)

        self.assert_ovs_port('host1', server, port)


class LifecycleTest(DatapathTestBase):
    """Item 9: the port gets a valid ofport again whenever the VM runs."""

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.server, self.port = self.boot(self.image)
        self.first_ofport = self.ofport('host1', self.port)

    def test_stop_then_start(self):
        server = self._stop_server(self.server)
        self.assertEqual(OFF, self.vm_of(server).power_state)
        self.assert_port_down('host1', self.port)
        self.agents['host1'].wait_for_port(self.port['id'], up=False)
        # Deferred, not reported down: the port stays ACTIVE in neutron.
        self.assertEqual('ACTIVE',
                         self.neutron._ports[self.port['id']]['status'])

        server = self._start_server(server)

        self.assert_port_up_again('host1', server, self.port,
                                  self.first_ofport)

    def test_soft_reboot(self):
        # nova's soft reboot: the guest shuts down (the switch port goes),
        # then the VM is powered on again.
        self._reboot_server(self.server)

        self.assert_port_up_again('host1', self.server, self.port,
                                  self.first_ofport)

    def test_hard_reboot_keeps_the_switch_port(self):
        self._reboot_server(self.server, hard=True)

        # A reset keeps the VM's partition, hence its switch port.
        self.assertEqual(RUNNING, self.vm_of(self.server).power_state)
        self.assertEqual(self.first_ofport, self.ofport('host1', self.port))
        self.assertEqual(1, len(self.vif_plugged_events(self.port)))

    def test_suspend_then_resume(self):
        self._suspend_server(self.server)
        self.assertEqual(SAVED, self.vm_of(self.server).power_state)
        self.assert_port_down('host1', self.port)

        server = self._resume_server(self.server)

        self.assert_port_up_again('host1', server, self.port,
                                  self.first_ofport)

    def test_pause_then_unpause_keeps_the_port_up(self):
        # A paused VM keeps its memory and its switch port (Hyper-V's
        # Paused state), so its OVS port keeps its ofport throughout.
        self.api.post_server_action(self.server['id'], {'pause': None})
        server = self._wait_for_state_change(self.server, 'PAUSED')
        self.assertEqual(PAUSED, self.vm_of(server).power_state)
        self.assertIn(self.port['id'], self.host('host1').switch_ports)
        self.assertEqual(self.first_ofport, self.ofport('host1', self.port))

        self.api.post_server_action(server['id'], {'unpause': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        self.assertEqual(RUNNING, self.vm_of(server).power_state)
        self.assertEqual(self.first_ofport, self.ofport('host1', self.port))


class MigrationTest(DatapathTestBase):
    """Item 9: after a migration the port is up on the destination.

    With the Windows host's agent (24.x): nova 34's source compute waits,
    before Hyper-V moves the VM, for ``network-vif-plugged`` of every port
    on the destination (``ComputeManager._do_pre_live_migration_from_
    source``), which neutron sends when the destination's agent binds the
    port registered there ahead (ml2 ``update_device_up`` ->
    ``notify_port_active_direct``).  An agent that defers ports at ofport
    -1 cannot: see :class:`DeferringAgentLiveMigrationTest`.
    """

    CAST_AS_CALL = False
    AGENT_RELEASE = base.WINDOWS_AGENT_RELEASE

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.server, self.port = self.boot(self.image, host='host1')

    def test_cold_migration_then_revert(self):
        server = self._migrate_server(self.server, host='host2')

        self.assertEqual(RUNNING, self.vm_of(server, 'host2').power_state)
        self.assertGreater(self.ofport('host2', self.port), 0)
        self.agents['host2'].wait_for_port(self.port['id'])

        server = self._revert_resize(server)

        self.assertEqual(RUNNING, self.vm_of(server, 'host1').power_state)
        self.assertGreater(self.ofport('host1', self.port), 0)
        self.agents['host1'].wait_for_port(self.port['id'])

    def test_live_migration(self):
        at_cutover = {}

        def cutover(vm_name, source, destination):
            at_cutover['host2'] = self.ovs['host2'].get_interface(
                self.port['id'])

        self.host('host2').on_live_migration = cutover
        self.api.post_server_action(
            self.server['id'],
            {'os-migrateLive': {'host': 'host2', 'block_migration': 'auto'}})
        self._wait_for_migration_status(self.server, ['completed'])
        server = self._wait_for_server_parameter(
            self.server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                          'OS-EXT-SRV-ATTR:host': 'host2'})

        # Registered ahead on host2 while the VM still ran on host1: no
        # switch port there yet, so ofport -1.
        self.assertEqual(-1, at_cutover['host2']['ofport'])
        self.assertEqual(RUNNING, self.vm_of(server, 'host2').power_state)
        self.assertGreater(self.ofport('host2', self.port), 0)
        self.agents['host2'].wait_for_port(self.port['id'])
        self.assertIsNone(self.ovs['host1'].get_interface(self.port['id']))


class DeferringAgentLiveMigrationTest(DatapathTestBase):
    """Live migration between hosts whose agent defers ports at -1.

    The destination's port stays at ofport -1 until the VM arrives, so such
    an agent never reports it before the move, and nova 34's source waits
    for its ``network-vif-plugged`` until ``vif_plugging_timeout``; the
    operator's way out is ``[compute] live_migration_wait_for_vif_plug =
    False`` on the destination (doc/source/install.rst).
    """

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.flags(vif_plugging_timeout=3)
        self.start_compute('host1')

    def _start_destination_and_boot(self):
        self.start_compute('host2')
        return self.boot(self.image, host='host1')

    def _live_migrate(self, server):
        self.api.post_server_action(
            server['id'],
            {'os-migrateLive': {'host': 'host2', 'block_migration': 'auto'}})

    def test_waiting_for_the_destination_port_fails_the_move(self):
        server, port = self._start_destination_and_boot()

        self._live_migrate(server)

        # nova's own status for a move that never started (its source's
        # wait for the destination's events failed).
        self._wait_for_migration_status(server, ['failed'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': 'host1'})
        self.assertEqual(RUNNING, self.vm_of(server, 'host1').power_state)
        self.assertIsNone(self.vm_of(server, 'host2'))
        self.assertGreater(self.ofport('host1', port), 0)

    def test_moves_without_the_wait_on_the_destination(self):
        self.flags(live_migration_wait_for_vif_plug=False, group='compute')
        server, port = self._start_destination_and_boot()

        self._live_migrate(server)

        self._wait_for_migration_status(server, ['completed'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': 'host2'})
        self.assertEqual(RUNNING, self.vm_of(server, 'host2').power_state)
        self.assertGreater(self.ofport('host2', port), 0)
        self.agents['host2'].wait_for_port(port['id'])
