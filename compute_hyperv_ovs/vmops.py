"""The Hyper-V driver's VM operations, with NICs on Open vSwitch.

The hooks of :class:`compute_hyperv_ovs.hyperv.vmops.VMOps` that a network
back end fills in, for OVS for Windows:

Spawn order.  nova's Hyper-V spawn plugs the VIFs, waits for
``network-vif-plugged`` and only then powers the VM on.  On OVS for Windows
the port of a VM that is not running has ``ofport -1`` (its Hyper-V switch
port exists only while the VM runs: neutron 451c2157, LP #1843870), and
neutron-openvswitch-agent >= 28.0.1 does not bind such a port (bug
#2155883), so that wait can only time out.  Here the order depends on what
the plug saw: every OVS port up (valid ofport) -> nova's order; otherwise
the VM is started first, then the driver waits for its ports to come up
(bounded by ``[os_vif_hyperv_ovs] timeout``; a port that does not is a
failed build whose fault says what OVS reports) and then for the events.
Either way a timeout with ``vif_plugging_is_fatal`` removes the VM and its
ports, as any failed build.

Ports after a start.  OVS for Windows re-attaches, when a VM starts, only a
datapath port that existed before (``HvCreatePort``, OVS 25f44d58); an
interface it failed to add while the switch port was missing is retried
only at ovs-vswitchd's next reconfiguration, i.e. the next OVSDB change
(openvswitch/ovs-issues #343).  So whenever a VM has just started (spawn,
power-on, soft reboot, cold migration and its revert, resume, the end of a
live migration) a port that is not up is plugged again, which makes that
change (the rows are replaced: an unchanged plug changes nothing), and
the driver waits for it to come up.  Outside spawn a port that
still does not come up is logged as an error, with what OVS reports.

NIC hot-plug (``server add port``).  Hyper-V's rules and the wait for
``network-vif-plugged`` are the core's; here the attach to a running VM
also waits for the new OVS port to come up (the running VM's switch port
exists at once, so its OVS port gets an ofport); a stopped VM's port comes
up at its next start.
"""

import nova.conf
from nova import exception as nova_exception
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import vmops
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class VMOps(vmops.VMOps):
    """The Hyper-V driver's ``VMOps`` for VIFs on Open vSwitch.

    :param vif_driver: the driver's ``vif.HyperVOVSVIFDriver``; the other
        parameters are the base class's.
    """

    def pre_plug_vifs(self, instance, network_info):
        """Register the OVS ports of VIFs whose vNICs are not here yet.

        For a live migration's destination, before the VM arrives (see
        ``HyperVOVSVIFDriver.pre_plug``).

        :param network_info: ``nova.network.model.NetworkInfo`` as bound on
            this host.
        :raises nova.exception.VirtualInterfacePlugException: OVSDB
            unreachable.
        """
        for nw_vif in network_info or ():
            self._vif_driver.pre_plug(instance, nw_vif)

    def _check_network(self, network_info):
        """Refuse NICs this host's vSwitch cannot carry.

        :raises compute_hyperv_ovs.exception.VswitchNotFound: (and the
            other vSwitch refusals of ``HyperVOVSVIFDriver.check_vswitch``).
        """
        self._vif_driver.check_vswitch(network_info)

    def _power_on_before_vif_events(self, instance, network_info):
        """Start the VM now if a plugged OVS port is not up yet.

        :returns: True when the VM was started (and its ports came up).
        :raises nova.exception.VirtualInterfacePlugException: a port did
            not come up within ``[os_vif_hyperv_ovs] timeout`` after the
            VM started.
        """
        down = []
        for vif_ in network_info or ():
            status = self._vif_driver.port_status(instance, vif_)
            if status is not None and not status.is_up:
                down.append(vif_)
        if not down:
            return False
        LOG.debug('OVS port(s) %s not up while the VM is off (the Hyper-V '
                  'switch port exists only while it runs): starting it '
                  'before waiting for network-vif-plugged',
                  ', '.join(v['id'] for v in down), instance=instance)
        # Started here without _vm_started: spawn brings the ports up
        # itself, and fatally.
        self._start_vm(instance)
        self._bring_ports_up(instance, down,
                             fatal=CONF.vif_plugging_is_fatal)
        return True

    def _bring_ports_up(self, instance, network_info, fatal):
        """Make sure each OVS port of a VM that just started comes up.

        A port not up yet is added again (the OVSDB change on which OVS
        for Windows retries it, see the module docstring), then waited for
        up to ``[os_vif_hyperv_ovs] timeout`` seconds.

        :param fatal: raise when a port does not come up (or OVSDB does
            not answer); otherwise log it and go on.
        :raises nova.exception.VirtualInterfacePlugException: only when
            ``fatal``.
        """
        timeout = CONF[plugin.CONFIG_GROUP].timeout
        for vif_ in network_info or ():
            try:
                status = self._vif_driver.port_status(instance, vif_)
                if status is None or status.is_up:
                    continue
                self._vif_driver.replug(instance, vif_)
                self._vif_driver.wait_for_port_up(instance, vif_, timeout)
            except nova_exception.VirtualInterfacePlugException as exc:
                if fatal:
                    raise
                LOG.error('Port %(port)s of the running VM is not wired: '
                          '%(err)s', {'port': vif_['id'], 'err': exc},
                          instance=instance)

    def _vm_started(self, instance, network_info):
        """After a VM started outside spawn: its OVS ports come up.

        Nothing waits for network-vif-plugged there, so a port that does
        not come up is logged (with its ofport and ``Interface.error``),
        not raised.
        """
        self._bring_ports_up(instance, network_info, fatal=False)

    ensure_ports_up = _vm_started

    def _attached_to_running_vm(self, instance, vif):
        """Wait for a running VM's new OVS port to come up.

        The vNIC was connected before the OVS port was added, and a running
        VM's switch port exists at once, so ovs-vswitchd adds the interface
        in the plug's own reconfiguration: no replug first (replacing a
        port that is coming up only tears it down again).  A port still not
        up after ``[os_vif_hyperv_ovs] timeout`` is added again once (the
        OVSDB change on which OVS for Windows retries it) and waited for
        as long again.

        :raises nova.exception.VirtualInterfacePlugException: still not up
            (the message gives its ofport and ``Interface.error``), or
            OVSDB did not answer.
        """
        timeout = CONF[plugin.CONFIG_GROUP].timeout
        try:
            self._vif_driver.wait_for_port_up(instance, vif, timeout)
        except nova_exception.VirtualInterfacePlugException:
            LOG.warning('Adding OVS port %s again so that ovs-vswitchd '
                        'retries it', vif['id'], instance=instance)
            self._vif_driver.replug(instance, vif)
            self._vif_driver.wait_for_port_up(instance, vif, timeout)
