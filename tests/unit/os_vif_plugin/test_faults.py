"""The hyperv_ovs plugin when Open vSwitch misbehaves.

Faults are injected into a real ovsdb-server and ovs-vswitchd by pid
(stop, SIGSTOP, SIGKILL) or by pointing the plugin at a TCP listener that
accepts and never answers.  Nothing of the plugin is mocked.
"""

import gc
import os
import threading
import time

from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin
from tests.fixtures import ovs
from tests.fixtures import waiting
from tests.unit.os_vif_plugin import test_plugin

CONF = cfg.CONF
TIMEOUT = 2
# Scheduling noise on a loaded 2-core machine, on top of the timeout.
SLACK = 0.7


def live_greenlets():
    """Green threads alive in this process (0 without eventlet)."""
    try:
        import greenlet
    except ImportError:
        return 0
    return len([o for o in gc.get_objects()
                if isinstance(o, greenlet.greenlet) and not o.dead])


def open_fds():
    # Linux only, tests only.
    return len(os.listdir('/proc/self/fd'))


def in_parallel(*funcs):
    """Run each func in its own thread; return [(seconds, exc or result)].

    Each duration is measured from the moment its func was called.
    """
    results = [None] * len(funcs)

    def run(i, func):
        start = time.monotonic()
        try:
            outcome = func()
        except Exception as exc:
            outcome = exc
        results[i] = (time.monotonic() - start, outcome)

    threads = [threading.Thread(target=run, args=(i, f))
               for i, f in enumerate(funcs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class FaultTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        test_plugin.osv_objects.register_all()
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.plugin = self.load_plugin(self.ovs.connection)

    def load_plugin(self, connection, timeout=TIMEOUT):
        self.conf.config(ovsdb_connection=connection, timeout=timeout,
                         group=plugin.CONFIG_GROUP)
        loaded = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(loaded.close)
        return loaded

    def pause(self, daemon):
        """SIGSTOP a daemon until the end of the test.

        Resumed by the test's own clean-up, before the plugin's connection
        is closed, so closing never waits on a stopped server.
        """
        getattr(self.ovs, 'pause_' + daemon)()
        self.addCleanup(getattr(self.ovs, 'resume_' + daemon))

    def plug_new(self, hv_plugin=None):
        vif = test_plugin.make_vif()
        (hv_plugin or self.plugin).plug(vif, test_plugin.make_instance_info())
        return vif

    def timed_plug(self, hv_plugin=None):
        vif = test_plugin.make_vif()
        info = test_plugin.make_instance_info()
        start = time.monotonic()
        try:
            (hv_plugin or self.plugin).plug(vif, info)
        except Exception as exc:
            return time.monotonic() - start, exc, vif
        return time.monotonic() - start, None, vif


class TimeoutTest(FaultTestCase):
    """Item 4: a port operation finishes or fails within the timeout."""

    def test_black_holed_remote_fails_within_timeout_and_leaks_nothing(self):
        hole = self.useFixture(ovs.BlackHoleListener())
        hv_plugin = self.load_plugin(hole.connection)
        # One attempt first, so one-off lazy imports and caches are not
        # counted as a leak.
        self.timed_plug(hv_plugin)
        gc.collect()
        threads, greenlets, fds = (len(threading.enumerate()),
                                   live_greenlets(), open_fds())

        for attempt in range(4):
            took, exc, vif = self.timed_plug(hv_plugin)
            self.assertIsInstance(exc, ovs_exception.OvsdbUnreachable)
            self.assertLess(took, TIMEOUT + SLACK)
            self.assertIn(hole.connection, str(exc))

        gc.collect()
        self.assertEqual(threads, len(threading.enumerate()))
        self.assertEqual(greenlets, live_greenlets())
        self.assertEqual(fds, open_fds())

    def test_paused_ovsdb_server_plugs_each_fail_within_timeout(self):
        # A paused server accepts TCP (the kernel does) and never answers.
        self.plug_new()
        self.pause('ovsdb')

        results = in_parallel(*[self.plug_new] * 3)

        for took, outcome in results:
            self.assertIsInstance(outcome, ovs_exception.OvsdbUnreachable)
            self.assertLess(took, TIMEOUT + SLACK)

    def test_plugs_queued_behind_stopped_vswitchd_fail_within_timeout(self):
        self.plug_new()
        self.ovs.stop_vswitchd()

        def plug_after(delay):
            time.sleep(delay)
            start = time.monotonic()
            try:
                self.plug_new()
            except Exception as exc:
                return time.monotonic() - start, exc

        # Called one after the other while the first waits for vswitchd:
        # each one's time counts from its own call.
        results = [outcome for _, outcome in in_parallel(
            lambda: plug_after(0), lambda: plug_after(TIMEOUT / 4.0),
            lambda: plug_after(TIMEOUT / 2.0))]

        self.assertLess(max(took for took, _ in results), TIMEOUT + SLACK)
        for took, outcome in results:
            self.assertIsInstance(outcome, ovs_exception.VswitchdNotApplying)

    def test_connecting_counts_against_the_timeout(self):
        # Paused before the first connection: the schema request is never
        # answered; connecting is part of the operation's time.
        self.pause('ovsdb')

        took, exc, vif = self.timed_plug()

        self.assertIsInstance(exc, ovs_exception.OvsdbUnreachable)
        self.assertLess(took, TIMEOUT + SLACK)


class FailedPlugTest(FaultTestCase):
    """Item 5: a plug reported failed does not commit afterwards."""

    def test_plug_queued_past_its_deadline_never_commits(self):
        self.plug_new()
        self.pause('ovsdb')
        first, second = test_plugin.make_vif(), test_plugin.make_vif()
        info = test_plugin.make_instance_info()

        # The first is sent and stuck; the second waits behind it.
        results = in_parallel(lambda: self.plugin.plug(first, info),
                              lambda: self.plugin.plug(second, info))
        self.ovs.resume_ovsdb()

        for took, outcome in results:
            self.assertIsInstance(outcome, ovs_exception.OvsdbUnreachable)
        # The first was sent before the server stopped answering: the
        # server applies it once it runs again (the VIF driver removes it).
        self.assertTrue(waiting.wait_until(
            lambda: first.id in self.ovs.list_ports()))
        # The second was never sent, and never will be.
        time.sleep(1)
        self.assertNotIn(second.id, self.ovs.list_ports())
        # And the connection still works.
        vif = self.plug_new()
        self.assertIn(vif.id, self.ovs.list_ports())

    def test_unplug_after_a_plug_in_doubt_removes_the_port(self):
        self.plug_new()
        self.pause('ovsdb')
        vif, info = test_plugin.make_vif(), test_plugin.make_instance_info()
        self.assertRaises(ovs_exception.OvsdbUnreachable,
                          self.plugin.plug, vif, info)
        self.ovs.resume_ovsdb()

        self.plugin.unplug(vif, info)

        self.assertNotIn(vif.id, self.ovs.list_ports())
        time.sleep(0.5)
        self.assertNotIn(vif.id, self.ovs.list_ports())


class CulpritTest(FaultTestCase):
    """Item 6: the exception type and message name the right culprit."""

    def test_stopped_ovsdb_server_is_unreachable(self):
        self.ovs.stop()

        took, exc, vif = self.timed_plug()

        self.assertIsInstance(exc, ovs_exception.OvsdbUnreachable)
        self.assertIn(self.ovs.connection, str(exc))
        self.assertIn('ovsdb_connection', str(exc))

    def test_constraint_violation_is_refused(self):
        vif = test_plugin.make_vif()
        # An operator's port whose Interface already has the port's name:
        # Interface names are unique (vswitch.ovsschema indexes).
        self.ovs.vsctl('--', 'add-port', 'br-int', 'stray', '--', 'set',
                       'Interface', 'stray', 'name=%s' % vif.id)

        exc = self.assertRaises(ovs_exception.OvsdbRefused,
                                self.plugin.plug, vif,
                                test_plugin.make_instance_info())

        self.assertTrue(str(exc).startswith(
            'OVSDB refused adding port %s to br-int: ' % vif.id), str(exc))
        self.assertIn('constraint violation', str(exc))
        self.assertEqual(['stray'], self.ovs.list_ports())

    def test_stopped_vswitchd_is_named(self):
        self.ovs.stop_vswitchd()

        took, exc, vif = self.timed_plug()

        self.assertIsInstance(exc, ovs_exception.VswitchdNotApplying)
        self.assertTrue(str(exc).startswith('ovs-vswitchd did not apply'))
        self.assertLess(took, TIMEOUT + SLACK)
        # ovsdb-server committed it; the VIF driver's unplug removes it.
        self.assertIn(vif.id, self.ovs.list_ports())

    def test_paused_vswitchd_is_named(self):
        self.plug_new()
        self.pause('vswitchd')

        took, exc, vif = self.timed_plug()

        self.assertIsInstance(exc, ovs_exception.VswitchdNotApplying)
        self.assertLess(took, TIMEOUT + SLACK)

    def test_unplug_with_stopped_vswitchd_removes_the_row(self):
        vif = self.plug_new()
        self.ovs.stop_vswitchd()
        start = time.monotonic()

        # Committed: the agent sees the port gone; vswitchd catches up
        # when it runs again.  Logged, not raised.
        self.plugin.unplug(vif, test_plugin.make_instance_info())

        self.assertLess(time.monotonic() - start, TIMEOUT + SLACK)
        self.assertNotIn(vif.id, self.ovs.list_ports())

    def test_unplug_of_an_absent_port_needs_no_vswitchd(self):
        self.plug_new()
        self.ovs.stop_vswitchd()
        start = time.monotonic()

        self.plugin.unplug(test_plugin.make_vif(),
                           test_plugin.make_instance_info())

        self.assertLess(time.monotonic() - start, 1)


class RestartTest(FaultTestCase):
    """Item 7: the plugin's connection survives daemon restarts."""

    def test_ovsdb_server_restart(self):
        before = self.plug_new()

        self.ovs.restart_ovsdb()

        after = self.plug_new()
        self.assertEqual(sorted([before.id, after.id]),
                         sorted(self.ovs.list_ports()))
        self.plugin.unplug(before, test_plugin.make_instance_info())
        self.assertEqual([after.id], self.ovs.list_ports())

    def test_ovsdb_server_killed_and_started(self):
        before = self.plug_new()

        self.ovs.kill_ovsdb()
        self.ovs.start_ovsdb()

        after = self.plug_new()
        self.assertEqual(sorted([before.id, after.id]),
                         sorted(self.ovs.list_ports()))

    def test_plug_soon_after_a_long_ovsdb_server_outage(self):
        hv_plugin = self.load_plugin(self.ovs.connection, timeout=4)
        before = self.plug_new(hv_plugin)
        self.ovs.stop_ovsdb()
        # Long enough for python-ovs' reconnect back-off (1, 2, 4, 8 s by
        # default) to wait past the timeout once the server is back.
        time.sleep(8)
        self.ovs.start_ovsdb()
        # ovs-vswitchd backs off the same way; restart it (as the Windows
        # service manager restarts a dependent service) so only the
        # plugin's own reconnection is timed.
        self.ovs.restart_vswitchd()

        took, exc, after = self.timed_plug(hv_plugin)

        self.assertIsNone(exc)
        self.assertEqual(sorted([before.id, after.id]),
                         sorted(self.ovs.list_ports()))

    def test_vswitchd_restart(self):
        before = self.plug_new()

        self.ovs.restart_vswitchd()

        after = self.plug_new()
        for vif in (before, after):
            self.assertGreater(self.ovs.get_interface(vif.id)['ofport'], 0)


class MessageLengthTest(testtools.TestCase):
    """nova keeps 255 characters of a fault, after its own prefix."""

    PREFIX = 'Build of instance %s aborted: ' % ('0' * 36)
    PORT = '1' * 36
    WHAT = 'adding port %s to br-int' % PORT
    # The Windows installer's own database socket, a long connection.
    CONNECTION = r'unix:C:\ProgramData\openvswitch\db.sock'

    def assert_fits(self, exc):
        self.assertLessEqual(len(self.PREFIX + str(exc)), 255, str(exc))

    def test_unreachable_fits(self):
        self.assert_fits(ovs_exception.OvsdbUnreachable(
            connection=self.CONNECTION, reason='not connected within 120 s'))

    def test_vswitchd_not_applying_fits(self):
        self.assert_fits(ovs_exception.VswitchdNotApplying(
            operation=self.WHAT, timeout=120, connection=self.CONNECTION))

    def test_refused_names_the_operation_first(self):
        exc = ovs_exception.OvsdbRefused(operation=self.WHAT,
                                         reason='constraint violation: ' +
                                         'x' * 300)

        kept = (self.PREFIX + str(exc))[:255]

        self.assertIn('OVSDB refused %s: constraint violation' % self.WHAT,
                      kept)
