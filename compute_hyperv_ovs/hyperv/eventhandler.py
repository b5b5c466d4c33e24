"""Hyper-V's VM power state changes, told to nova as lifecycle events.

A VM that stops, starts, pauses or is saved behind nova's back (the guest
shuts itself down, an operator runs ``Stop-VM``) is noticed within seconds
instead of at the next ``_sync_power_states`` run, and its console log
handler follows the VM (nova 28 ``nova/virt/hyperv/eventhandler.py``).

os-win's listener (``VMUtils.get_vm_power_state_change_listener`` with
``get_handler=True``) is a WMI event query polled in a loop that never
returns.  nova 28 ran it with ``nova.utils.spawn_n``, gone in nova 34; on
nova's bounded thread pools it would hold a worker for good, so it runs in
a daemon ``threading.Thread`` of its own.  The listener's WMI objects are
made in that thread, which alone uses them (the threading rule of
:mod:`compute_hyperv_ovs.hyperv.osutils`).  The work an event causes (the
console handler, nova's handling of the event, which reads the database)
is one-off work on nova's default pool, so the listener goes on polling.
"""

import threading

import nova.conf
from nova import thread_pool_factory
from nova.virt import event as virtevent
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging

# Imported for its side effect: it registers the [hyperv] options.
from compute_hyperv_ovs import conf  # noqa: F401
from compute_hyperv_ovs.hyperv import osutils

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# The Hyper-V states an event is raised for, and nova's name for each
# change (nova 28 InstanceEventHandler._TRANSITION_MAP).  "Saved" is
# Hyper-V's suspend.
TRANSITIONS = {
    os_win_const.HYPERV_VM_STATE_ENABLED: virtevent.EVENT_LIFECYCLE_STARTED,
    os_win_const.HYPERV_VM_STATE_DISABLED: virtevent.EVENT_LIFECYCLE_STOPPED,
    os_win_const.HYPERV_VM_STATE_PAUSED: virtevent.EVENT_LIFECYCLE_PAUSED,
    os_win_const.HYPERV_VM_STATE_SUSPENDED:
        virtevent.EVENT_LIFECYCLE_SUSPENDED,
}

# How long start() waits for the listener thread to subscribe to WMI's
# events before it returns anyway (seconds).
SUBSCRIBE_TIMEOUT = 60


class InstanceEventHandler(object):
    """Turns Hyper-V power state events into nova lifecycle events.

    Only VMs that nova created are reported: those whose notes hold an
    instance uuid (vmops writes it at creation); others are ignored.

    :param state_change_callback: called with each
        ``nova.virt.event.LifecycleEvent`` (the driver's ``emit_event``).
    :param vm_started_callback: called with the VM name when a VM starts,
        before nova hears of it, so the console log catches the boot
        (``SerialConsoleOps.start_console_handler``).
    :param vm_stopped_callback: called with the VM name when a VM stops,
        pauses or is saved (``SerialConsoleOps.stop_console_handler``).
    """

    def __init__(self, state_change_callback, vm_started_callback=None,
                 vm_stopped_callback=None):
        self._state_change_callback = state_change_callback
        self._vm_started_callback = vm_started_callback
        self._vm_stopped_callback = vm_stopped_callback
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._thread = None
        self._stopped = threading.Event()
        self._subscribed = threading.Event()
        self._subscribe_error = None

    def start(self):
        """Listen for power state events in a daemon thread.

        Returns once the thread has subscribed to Hyper-V's events (or
        after ``SUBSCRIBE_TIMEOUT`` seconds, with a warning), so a failure
        to subscribe shows at nova-compute's start.

        :raises RuntimeError: already started.
        :raises os_win.exceptions.OSWinException: WMI refused the event
            query.
        """
        if self._thread is not None:
            raise RuntimeError('The Hyper-V power state event listener is '
                               'already started; start it once per driver.')
        self._thread = threading.Thread(
            target=self._listen, name='hyperv-power-state-events',
            daemon=True)
        self._thread.start()
        if not self._subscribed.wait(SUBSCRIBE_TIMEOUT):
            LOG.warning('The Hyper-V power state event listener has not '
                        'subscribed to WMI events after %d seconds; VM '
                        'power state changes reach nova only from its '
                        'periodic sync until it does.', SUBSCRIBE_TIMEOUT)
            return
        if self._subscribe_error is not None:
            raise self._subscribe_error

    def stop(self):
        """Stop reporting events (driver ``cleanup_host``).

        os-win's loop cannot be interrupted, so the daemon thread stays
        parked in it until the process exits; no event is handled from
        now on.
        """
        self._stopped.set()

    def _polling_timeout_ms(self):
        # os-win takes the wait for the next event in milliseconds; nova
        # 28 passed this option's seconds unchanged, so it waited 2 ms per
        # poll.  A wait of 0 would spin on WMI: at least one second.
        return max(CONF.hyperv.power_state_event_polling_interval, 1) * 1000

    def _listen(self):
        try:
            handle_events = self._vmutils.get_vm_power_state_change_listener(
                timeframe=CONF.hyperv.power_state_check_timeframe,
                event_timeout=self._polling_timeout_ms(),
                filtered_states=list(TRANSITIONS),
                get_handler=True)
        except Exception as exc:
            LOG.exception('Cannot subscribe to Hyper-V power state events')
            self._subscribe_error = exc
            self._subscribed.set()
            return
        self._subscribed.set()
        LOG.debug('Listening for Hyper-V power state events')
        # On Hyper-V this loops for the life of the process.
        handle_events(self._on_power_state_change)

    def _instance_uuid(self, vm_name):
        """The nova instance uuid of a VM, or None (not nova's, or gone)."""
        try:
            instance_uuid = self._vmutils.get_instance_uuid(vm_name)
        except os_win_exc.HyperVVMNotFoundException:
            LOG.debug('VM %s is gone; its power state event is dropped',
                      vm_name)
            return None
        if not instance_uuid:
            LOG.debug('VM %s has no nova instance uuid (not made by nova); '
                      'its power state event is dropped', vm_name)
        return instance_uuid

    def _on_power_state_change(self, vm_name, hyperv_state):
        """os-win's callback: ``(VM name, os-win HYPERV_VM_STATE_*)``."""
        if self._stopped.is_set():
            return
        transition = TRANSITIONS.get(hyperv_state)
        if transition is None:
            return
        instance_uuid = self._instance_uuid(vm_name)
        if not instance_uuid:
            return
        event = virtevent.LifecycleEvent(uuid=instance_uuid,
                                         transition=transition)
        thread_pool_factory.spawn(self._deliver, vm_name, event)

    def _deliver(self, vm_name, event):
        if self._stopped.is_set():
            return
        started = event.transition == virtevent.EVENT_LIFECYCLE_STARTED
        console_callback = (self._vm_started_callback if started
                            else self._vm_stopped_callback)
        if console_callback is not None:
            try:
                console_callback(vm_name)
            except Exception:
                # The console log is a convenience; nova must still hear
                # of the change.
                LOG.exception('The console handler of VM %s could not '
                              'follow its power state change', vm_name)
        try:
            self._state_change_callback(event)
        except Exception:
            # Nothing waits on this pool task: say it here or never.
            LOG.exception('nova could not take the lifecycle event %s of '
                          'VM %s', event, vm_name)
