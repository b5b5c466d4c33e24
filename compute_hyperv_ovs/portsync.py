"""Keeps this host's OVS ports in line with its instances.

One job: make the Open vSwitch ports this compute service created match
the instances nova has on this host, and keep trying, with back-off, while
OVSDB does not answer.

When it runs:

- at start-up (``init_host``), in the background, so nova-compute starts
  and reports even while ovsdb-server is down (the normal order after a
  Windows host reboot);
- after an unplug that could not run (:meth:`PortSync.remove_later`), so
  the port goes as soon as OVSDB is back, with no operator action;
- whenever :meth:`PortSync.request` is called.

One pass (:meth:`PortSync.reconcile`) reads the Interfaces once, compares
them with the instances (nova's database: instances whose ``host`` is this
host, their VIFs from the network info cache, and which of them have a VM
on this Hyper-V host), and writes every change in one transaction:

- recreated: a VIF of an idle instance whose VM is here has no port (e.g.
  OVS lost ``conf.db``);
- corrected: its port's external_ids differ from the VIF's;
- removed: a port this service created whose instance is deleted, has
  moved to another host, or whose VM is gone from this host (removed
  behind nova's back), and ports whose unplug could not run.

Only ports carrying this service's ownership markers are changed or
removed (``plugin.HyperVOvsPlugin.is_owned``; doc/source/design.rst), with
two exceptions named after this host's own VIFs: a port without markers
of an instance's VIF is adopted (its markers written), and a port whose
unplug nova asked for is removed even without markers, as the unplug
would have.  Ports marked as another compute service's are never touched.
Instances with an operation in flight (a ``task_state``), in ERROR or
soft-deleted are left alone: the operation, or the operator, owns their
ports.
"""

import threading

from nova.compute import vm_states
import nova.conf
from nova import context as nova_context
from nova import objects
from oslo_log import log as logging

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# First wait after a failed attempt, in seconds; it doubles up to
# [os_vif_hyperv_ovs] port_sync_max_interval.
FIRST_RETRY_INTERVAL = 1

# Instances whose ports the pass leaves as they are.
_LEFT_ALONE_VM_STATES = (vm_states.ERROR, vm_states.SOFT_DELETED)


class PortSync(object):
    """Reconciles one compute service's OVS ports; retries with back-off.

    :param vif_driver: the driver's
        :class:`compute_hyperv_ovs.vif.HyperVOVSVIFDriver` (says which OVS
        port a VIF should have).
    :param vif_plugin: the driver's
        :class:`compute_hyperv_ovs.os_vif_plugin.plugin.HyperVOvsPlugin`
        (reads and writes the ports).
    :param host: nova's ``CONF.host`` of this compute service.
    :param list_vms: callable returning the names of the VMs on this
        Hyper-V host (the driver's ``list_instances``).
    """

    def __init__(self, vif_driver, vif_plugin, host, list_vms):
        self._vif_driver = vif_driver
        self._vif_plugin = vif_plugin
        self.host = host
        self._list_vms = list_vms
        self._lock = threading.Lock()
        self._pending_removals = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = None
        self._failing = False

    # -- the background loop ------------------------------------------------

    @property
    def running(self):
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None

    def start(self):
        """Start the background loop; it reconciles once right away."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._wake.set()
        self._thread = threading.Thread(
            target=self._loop, name='hyperv-ovs-port-sync', daemon=True)
        self._thread.start()

    def stop(self, timeout=10):
        """Stop the loop and wait for it (up to ``timeout`` seconds)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)

    def request(self):
        """Ask for a reconciliation pass soon (does not wait for it)."""
        self._wake.set()

    def remove_later(self, port_name):
        """Remove a port once OVSDB answers (an unplug that could not run).

        The port is removed unless, by then, it is wanted again (an idle
        instance on this host, with its VM here, has that VIF).

        :param port_name: the OVS port name (the neutron port id).
        """
        with self._lock:
            self._pending_removals.add(port_name)
        self.request()

    def _loop(self):
        interval = FIRST_RETRY_INTERVAL
        attempts = 0
        while not self._stopping.is_set():
            self._wake.wait()
            if self._stopping.is_set():
                return
            self._wake.clear()
            attempts += 1
            try:
                self.reconcile()
            except Exception as exc:
                # OvsPortError (OVSDB unreachable, timed out, vswitchd not
                # applying) is the expected case; anything else is retried
                # the same way, so one bad pass never stops the loop.
                if not self._failing:
                    self._failing = True
                    LOG.warning(
                        'Could not put the OVS ports of host %(host)s right: '
                        '%(err)s. Retrying with back-off (at most every '
                        '%(max)s s) until it works; nothing to do unless '
                        'this lasts.',
                        {'host': self.host, 'err': exc,
                         'max': CONF.os_vif_hyperv_ovs.port_sync_max_interval},
                        exc_info=not isinstance(exc,
                                                ovs_exception.OvsPortError))
                self._stopping.wait(interval)
                interval = min(interval * 2,
                               CONF.os_vif_hyperv_ovs.port_sync_max_interval)
                self._wake.set()
                continue
            if self._failing:
                self._failing = False
                LOG.info('OVS ports of host %(host)s put right after '
                         '%(attempts)d attempts; OVSDB answers again.',
                         {'host': self.host, 'attempts': attempts})
            interval = FIRST_RETRY_INTERVAL
            attempts = 0

    # -- one pass -------------------------------------------------------------

    def reconcile(self):
        """One pass: one OVSDB read, one OVSDB write transaction.

        :returns: (recreated, corrected, removed) port counts.
        :raises compute_hyperv_ovs.os_vif_plugin.exception.OvsPortError:
            OVSDB did not answer or refused; nothing was changed.
        """
        context = nova_context.get_admin_context()
        wanted, left_alone, attached = self._wanted_ports(context)
        return self.sync(
            wanted, left_alone | attached,
            lambda uuids: self._in_flight_elsewhere(context, uuids))

    def sync(self, wanted, left_alone, in_flight):
        """Make the OVS ports match ``wanted``: one read, one transaction.

        :param wanted: {port name: :class:`plugin.PortSpec`} of the ports
            this host's instances need.
        :param left_alone: set of instance uuids and port names not to be
            touched: instances with an operation in flight, in ERROR or
            soft-deleted, and the ports of VIFs whose VM is on this host
            (kept even when their unplug was handed over: a later plug of
            the same VIF wants them again).
        :param in_flight: callable, given a set of instance uuids of owned
            ports nothing here wants, returning those whose instance still
            has an operation in flight elsewhere (kept).
        :returns: (recreated, corrected, removed) port counts.
        :raises compute_hyperv_ovs.os_vif_plugin.exception.OvsPortError:
            OVSDB did not answer or refused; nothing was changed.
        """
        with self._lock:
            pending = set(self._pending_removals)
        counts = {}

        def decide(ports):
            add, update, remove = [], [], []
            recreated = corrected = 0
            for name, spec in wanted.items():
                external_ids = ports.get(name)
                if external_ids is None:
                    add.append(spec)
                    recreated += 1
                elif self._owned_elsewhere(external_ids):
                    continue
                elif any(external_ids.get(key) != value
                         for key, value in spec.external_ids.items()):
                    if self._vif_plugin.is_owned(external_ids):
                        update.append(spec)
                    else:
                        # A port of this VIF without markers (registered
                        # before the markers existed): adopt it.
                        add.append(spec)
                    corrected += 1

            unwanted = {}
            for name, external_ids in ports.items():
                if name in wanted:
                    continue
                if name in left_alone:
                    continue
                if (name in pending and
                        not self._owned_elsewhere(external_ids)):
                    remove.append(name)
                elif not self._vif_plugin.is_owned(external_ids):
                    continue
                elif external_ids.get('vm-uuid') in left_alone:
                    continue
                else:
                    unwanted[name] = external_ids.get('vm-uuid')
            uuids = {uuid for uuid in unwanted.values() if uuid}
            keep = in_flight(uuids) if uuids else set()
            remove.extend(name for name, uuid in unwanted.items()
                          if uuid not in keep)
            counts.update(recreated=recreated, corrected=corrected,
                          removed=len(remove))
            return add, update, remove

        self._vif_plugin.reconcile_ports(decide)
        with self._lock:
            self._pending_removals -= pending
        LOG.info('OVS ports of host %(host)s reconciled with its instances: '
                 'recreated %(recreated)d, corrected %(corrected)d, removed '
                 '%(removed)d.', dict(counts, host=self.host))
        return counts['recreated'], counts['corrected'], counts['removed']

    def _owned_elsewhere(self, external_ids):
        """Carries the markers of another compute service (shared OVSDB)."""
        return (external_ids.get(plugin.OWNER_KEY) == plugin.OWNER and
                not self._vif_plugin.is_owned(external_ids))

    def _wanted_ports(self, context):
        """The ports this host's instances need, from nova's database.

        :returns: ({port name: PortSpec} of idle instances whose VM is on
            this host, {uuid} of instances on this host left alone, {port
            name} of the VIFs of every instance whose VM is on this host).
        """
        instances = objects.InstanceList.get_by_host(
            context, self.host, expected_attrs=['info_cache'])
        vm_names = set(self._list_vms())
        wanted = {}
        left_alone = set()
        attached = set()
        for instance in instances:
            if instance.name in vm_names:
                attached.update(vif['id']
                                for vif in instance.get_network_info())
            if (instance.task_state is not None or
                    instance.vm_state in _LEFT_ALONE_VM_STATES):
                left_alone.add(instance.uuid)
                continue
            if instance.name not in vm_names:
                # Removed behind nova's back: nova's power state sync deals
                # with the instance; its ports have nothing to attach to.
                continue
            for vif in instance.get_network_info():
                spec = self._vif_driver.port_spec(instance, vif)
                if spec is not None:
                    wanted[spec.name] = spec
        return wanted, left_alone, attached

    @staticmethod
    def _in_flight_elsewhere(context, uuids):
        """Instances of ``uuids`` with an operation in flight.

        Their ports are kept: e.g. a live migration to this host registers
        the port ahead while the instance's host is still the source.
        Deleted instances are not found, so their ports go.

        :param uuids: set of instance uuids.
        :returns: set of instance uuids.
        """
        instances = objects.InstanceList.get_by_filters(
            context, {'uuid': sorted(uuids)}, expected_attrs=[])
        return {i.uuid for i in instances if i.task_state is not None}
