"""InstanceEventHandler: nova hears of VMs that change state on the host."""

import queue

import fixtures
from nova import test
from nova.virt import event as virtevent
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import eventhandler
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import vmutils as hyperv_vmutils

# Seconds a test waits for an event that should come.
WAIT = 10
# Seconds a test waits to be sure an event does not come.
QUIET = 0.5


class InstanceEventHandlerTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('hv1')
        with self.hosts.building('hv1'):
            self.vmutils = utilsfactory.get_vmutils()
        # What the driver and the console handler hear, in order.
        self.heard = queue.Queue()

    def _emit_event(self, event):
        self.heard.put(('event', event.uuid, event.transition))

    def _console_started(self, vm_name):
        self.heard.put(('console started', vm_name))

    def _console_stopped(self, vm_name):
        self.heard.put(('console stopped', vm_name))

    def _start_handler(self, **callbacks):
        callbacks.setdefault('vm_started_callback', self._console_started)
        callbacks.setdefault('vm_stopped_callback', self._console_stopped)
        with self.hosts.building('hv1'):
            handler = eventhandler.InstanceEventHandler(self._emit_event,
                                                        **callbacks)
            handler.start()
        self.addCleanup(handler.stop)
        return handler

    def _nova_vm(self, name='instance-1'):
        """A VM as vmops makes it: its notes hold the instance uuid."""
        instance_uuid = uuidutils.generate_uuid()
        self.vmutils.create_vm(name, False, os_win_const.VM_GEN_1,
                               self.host.instances_path, [instance_uuid])
        return instance_uuid

    def _next(self):
        return self.heard.get(timeout=WAIT)

    def assertNothingHeard(self):
        self.assertRaises(queue.Empty, self.heard.get, timeout=QUIET)

    def test_subscribes_to_the_hosts_events(self):
        self.assertFalse(self.host.has_power_state_listener)
        self._start_handler()
        self.assertTrue(self.host.has_power_state_listener)

    def test_vm_started_by_hand(self):
        self._start_handler()
        instance_uuid = self._nova_vm()

        self.host.start_by_hand('instance-1')

        # The console handler first, so the boot is logged.
        self.assertEqual(('console started', 'instance-1'), self._next())
        self.assertEqual(
            ('event', instance_uuid, virtevent.EVENT_LIFECYCLE_STARTED),
            self._next())

    def test_guest_shuts_down_behind_novas_back(self):
        self._start_handler()
        instance_uuid = self._nova_vm()
        self.vmutils.set_vm_state('instance-1',
                                  os_win_const.HYPERV_VM_STATE_ENABLED)
        self._next()
        self._next()

        self.host.guest_shuts_down('instance-1')

        self.assertEqual(('console stopped', 'instance-1'), self._next())
        self.assertEqual(
            ('event', instance_uuid, virtevent.EVENT_LIFECYCLE_STOPPED),
            self._next())

    def test_pause_and_save(self):
        handler = self._start_handler(vm_started_callback=None,
                                      vm_stopped_callback=None)
        self.assertIsNotNone(handler)
        instance_uuid = self._nova_vm()
        self.vmutils.set_vm_state('instance-1',
                                  os_win_const.HYPERV_VM_STATE_ENABLED)
        self.assertEqual(virtevent.EVENT_LIFECYCLE_STARTED, self._next()[2])

        self.vmutils.set_vm_state('instance-1',
                                  os_win_const.HYPERV_VM_STATE_PAUSED)
        self.assertEqual(
            ('event', instance_uuid, virtevent.EVENT_LIFECYCLE_PAUSED),
            self._next())
        self.vmutils.set_vm_state('instance-1',
                                  os_win_const.HYPERV_VM_STATE_ENABLED)
        self.assertEqual(virtevent.EVENT_LIFECYCLE_STARTED, self._next()[2])
        self.vmutils.set_vm_state('instance-1',
                                  os_win_const.HYPERV_VM_STATE_SUSPENDED)
        self.assertEqual(
            ('event', instance_uuid, virtevent.EVENT_LIFECYCLE_SUSPENDED),
            self._next())

    def test_vms_nova_did_not_make_are_ignored(self):
        self._start_handler()
        self.vmutils.create_vm('operators-vm', False, os_win_const.VM_GEN_1,
                               self.host.instances_path, None)

        self.host.start_by_hand('operators-vm')

        self.assertNothingHeard()

    def test_a_vm_gone_before_its_event_is_read_is_ignored(self):
        self._start_handler()
        self._nova_vm()
        # The event of a VM deleted meanwhile reaches the listener late.
        self.host.emit_power_state_event(
            'no-such-vm', os_win_const.HYPERV_VM_STATE_DISABLED)
        self.assertNothingHeard()

    def test_nothing_is_reported_after_stop(self):
        handler = self._start_handler()
        self._nova_vm()
        handler.stop()

        self.host.start_by_hand('instance-1')

        self.assertNothingHeard()

    def test_a_failing_console_handler_does_not_hide_the_event(self):
        def broken_console(vm_name):
            raise RuntimeError('no pipe')

        self._start_handler(vm_started_callback=broken_console)
        instance_uuid = self._nova_vm()

        self.host.start_by_hand('instance-1')

        self.assertEqual(
            ('event', instance_uuid, virtevent.EVENT_LIFECYCLE_STARTED),
            self._next())

    def test_subscription_failure_shows_at_start(self):
        def refuse(vmutils, **kwargs):
            raise os_win_exc.OSWinException('WMI: access denied')

        self.useFixture(fixtures.MonkeyPatch(
            'tests.fixtures.hyperv.vmutils.SimulatedVMUtils.'
            'get_vm_power_state_change_listener', refuse))
        with self.hosts.building('hv1'):
            handler = eventhandler.InstanceEventHandler(self._emit_event)
            exc = self.assertRaises(os_win_exc.OSWinException, handler.start)
        self.assertIn('access denied', str(exc))

    def test_started_once(self):
        handler = self._start_handler()
        self.assertRaises(RuntimeError, handler.start)

    def test_polls_in_milliseconds(self):
        asked = {}
        listener = (hyperv_vmutils.SimulatedVMUtils.
                    get_vm_power_state_change_listener)

        def recording(vmutils, **kwargs):
            asked.update(kwargs)
            return listener(vmutils, **kwargs)

        self.useFixture(fixtures.MonkeyPatch(
            'tests.fixtures.hyperv.vmutils.SimulatedVMUtils.'
            'get_vm_power_state_change_listener', recording))
        self.flags(power_state_event_polling_interval=3,
                   power_state_check_timeframe=30, group='hyperv')
        self._start_handler()

        self.assertEqual(3000, asked['event_timeout'])
        self.assertEqual(30, asked['timeframe'])
        self.assertEqual(set(eventhandler.TRANSITIONS),
                         set(asked['filtered_states']))
