"""Connects VM NICs to the Hyper-V vSwitch and hands OVS VIFs to the plugin.

The order matters: OVS for Windows finds a VM's switch port by its name
when the OVS port is added, so the vNIC must already be connected to the
OVS-enabled vSwitch under that name (OVS datapath-windows ``Vport.c``
``OvsNewVportCmdHandler``; nova 28 ``virt/hyperv/vif.py``
``HyperVVIFDriver.plug``).
"""

import re
import time

import nova.conf
from nova import exception
from nova.i18n import _
from nova.network import model
from nova.network import os_vif_util
from os_vif.objects import vif as osv_vif
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs import exception as driver_exception
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

SUPPORTED_VIF_TYPES = (model.VIF_TYPE_OVS, model.VIF_TYPE_HYPERV)

# The Open vSwitch extension's name changed between releases ("Cloudbase
# Open vSwitch Extension", "Open vSwitch Extension") and vendors rename it;
# networking-hyperv's layer-2 agent recognises it the same loose way.
OVS_EXTENSION_RE = re.compile(r'.*open.?v.?switch.*', re.IGNORECASE)
OVS_EXTENSION_NAME = 'Open vSwitch Extension'
# Seconds between two reads of a port's ofport while waiting for it: the
# first wait is PORT_UP_FIRST_POLL, each next one twice the last, up to
# PORT_UP_POLL_INTERVAL.  Each read is of the OVSDB connection's in-memory
# copy (no round trip); a port usually comes up some tens of ms after the
# VM starts, which a fixed 0.1 s poll rounded up to 0.1 s per server.
PORT_UP_FIRST_POLL = 0.01
PORT_UP_POLL_INTERVAL = 0.1


class HyperVOVSVIFDriver(object):
    """Plugs and unplugs one VIF of a Hyper-V VM.

    ``ovs`` VIFs: vNIC to ``[hyperv] vswitch_name``, then the
    ``hyperv_ovs`` plugin adds the OVS port.  ``hyperv`` VIFs: nothing, the
    neutron Hyper-V agent binds them (as in the base driver).  Anything
    else is refused.

    :param vif_plugin: the driver's own :class:`plugin.HyperVOvsPlugin`,
        which holds the OVSDB connection of this compute service.
    """

    def __init__(self, vif_plugin):
        self._netutils = osutils.per_thread(utilsfactory.get_networkutils)
        self._vif_plugin = vif_plugin

    @staticmethod
    def _ovs_vif(instance, vif):
        """The os-vif objects of a VIF this driver puts on OVS, or None.

        None for ``hyperv`` VIFs (the neutron Hyper-V agent's), other types
        and hybrid-plug VIFs: :meth:`plug` refuses the last two before it
        touches the vNIC or OVS, so there is never anything to remove.

        :returns: (``VIFOpenVSwitch``, ``InstanceInfo``) or None.
        """
        if vif['type'] != model.VIF_TYPE_OVS:
            return None
        osvif_vif = os_vif_util.nova_to_osvif_vif(vif)
        if not isinstance(osvif_vif, osv_vif.VIFOpenVSwitch):
            return None
        # nova hard-codes plugin 'ovs' (os_vif_util._nova_to_osvif_vif_ovs);
        # name the plugin that really handles it.
        osvif_vif.plugin = plugin.PLUGIN_NAME
        return osvif_vif, os_vif_util.nova_to_osvif_instance(instance)

    @staticmethod
    def _refusal(vif):
        if vif['type'] != model.VIF_TYPE_OVS:
            return _('port %(port)s has vif_type=%(type)s, this driver plugs '
                     '%(supported)s only; check the neutron mechanism driver '
                     'that binds ports on this host') % {
                         'supported': ' or '.join(SUPPORTED_VIF_TYPES),
                         'port': vif['id'], 'type': vif['type']}
        return _('port %(port)s needs a hybrid plug (Linux bridge), which '
                 'Windows lacks; set [securitygroup] firewall_driver = '
                 'openvswitch or noop for the OVS agent on this host') % {
                     'port': vif['id']}

    def plug(self, instance, vif):
        """Connect the vNIC and register the OVS port.

        A plug that fails leaves no OVS port: whatever it may have written
        is removed again through :meth:`unplug` (the vNIC goes with the VM,
        which nova's spawn destroys on failure).

        :raises nova.exception.VirtualInterfacePlugException: unsupported
            VIF type, hybrid plug, or the OVS port could not be written; the
            message is the plugin's, which names the culprit (ovsdb-server
            and ``[os_vif_hyperv_ovs] ovsdb_connection``, what OVSDB
            refused, or ovs-vswitchd).
        """
        if vif['type'] == model.VIF_TYPE_HYPERV:
            return
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            raise exception.VirtualInterfacePlugException(self._refusal(vif))
        osvif_vif, osvif_instance = ovs_vif
        self._netutils.connect_vnic_to_vswitch(CONF.hyperv.vswitch_name,
                                               osvif_vif.id)
        try:
            self._vif_plugin.plug(osvif_vif, osvif_instance)
        except ovs_exception.OvsPortError as exc:
            raise self._plug_failed(instance, vif, osvif_vif, exc)

    def pre_plug(self, instance, vif):
        """Register the OVS port of a VIF whose vNIC is not here yet.

        On a live migration's destination the vNIC arrives with the VM,
        already connected to the vSwitch of the same name, so only the OVS
        port is added now.  Other VIFs are left to the plug after the move,
        which handles or refuses them.  A failure leaves no OVS port, as
        for :meth:`plug`.

        :raises nova.exception.VirtualInterfacePlugException: the OVS port
            could not be written (the message names the culprit).
        """
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            return
        try:
            self._vif_plugin.pre_plug(*ovs_vif)
        except ovs_exception.OvsPortError as exc:
            raise self._plug_failed(instance, vif, ovs_vif[0], exc)

    def _plug_failed(self, instance, vif, osvif_vif, exc):
        """Log, undo what may have been written, and word the error.

        The log line, the exception and so nova's instance fault all carry
        the plugin's message.  The removal runs only when something may
        have reached ovsdb-server (``exc.may_have_written``): a port
        committed although ovs-vswitchd did not apply it, or a transaction
        sent to a server that stopped answering and may still apply it.
        """
        error = self._port_error(instance, osvif_vif, exc)
        if exc.may_have_written:
            # Never raises: a removal that cannot run now is handed to the
            # port sync, so the plug's own error is what the operator sees.
            self.unplug(instance, vif)
        return error

    @staticmethod
    def _port_error(instance, osvif_vif, exc):
        """Log a port operation's failure and word it for nova's fault.

        The log line, the exception and so nova's instance fault all carry
        the plugin's message, which names the culprit.
        """
        message = str(exc)
        LOG.error('Port %(port)s: Open vSwitch operation failed: %(err)s',
                  {'port': osvif_vif.id, 'err': message}, instance=instance)
        return exception.VirtualInterfacePlugException(message)

    def unplug(self, instance, vif):
        """Remove the OVS port; a missing port is not an error.  Never raises.

        VIFs that :meth:`plug` refuses or leaves to the neutron Hyper-V
        agent have nothing to remove.  When Open vSwitch cannot do it now
        (OVSDB unreachable or timed out, ovs-vswitchd not applying), the
        port is handed to the driver's port sync, which removes it once
        OVSDB answers (:mod:`compute_hyperv_ovs.portsync`).  Unplug runs
        while a VM is destroyed or a failed plug is cleaned up, and failing
        there would leave the VM's disks behind.
        """
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            return
        try:
            self._vif_plugin.unplug(*ovs_vif)
        except Exception as exc:
            # OvsPortError is the expected failure; anything else is handled
            # the same way, since unplug must not raise.
            if not isinstance(exc, ovs_exception.OvsPortError):
                LOG.exception('Unexpected error removing OVS port %s',
                              ovs_vif[0].id, instance=instance)
            port_sync = self._port_sync
            if port_sync is None:
                LOG.error('Could not remove OVS port %(port)s: %(err)s. '
                          'Remove it with "ovs-vsctl --if-exists del-port '
                          '%(port)s" once OVSDB is back.',
                          {'port': ovs_vif[0].id, 'err': exc},
                          instance=instance)
                return
            LOG.error('Could not remove OVS port %(port)s now: %(err)s. '
                      'It will be removed as soon as OVSDB answers.',
                      {'port': ovs_vif[0].id, 'err': exc},
                      instance=instance)
            port_sync.remove_later(ovs_vif[0].id)

    # Set by the driver (set_port_sync); None in a VIF driver used alone.
    _port_sync = None

    def set_port_sync(self, port_sync):
        """Hand unplugs that could not run to ``port_sync``.

        :param port_sync: :class:`compute_hyperv_ovs.portsync.PortSync`.
        """
        self._port_sync = port_sync

    def connect_vnic(self, instance, vif):
        """Connect a VIF's vNIC to the vSwitch, leaving OVS alone.

        For nova-compute's start-up (``plug_vifs``), when the OVS side is
        the port sync's.  Connecting a connected vNIC does nothing.

        :returns: True when connected (or nothing to connect: ``hyperv``
            VIFs), False when the vNIC does not exist on this host (its VM
            was removed behind nova's back).
        :raises nova.exception.VirtualInterfacePlugException: a VIF type or
            hybrid plug :meth:`plug` refuses.
        """
        if vif['type'] == model.VIF_TYPE_HYPERV:
            return True
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            raise exception.VirtualInterfacePlugException(self._refusal(vif))
        try:
            self._netutils.connect_vnic_to_vswitch(CONF.hyperv.vswitch_name,
                                                   ovs_vif[0].id)
        except os_win_exc.HyperVvNicNotFound:
            LOG.warning('vNIC %(port)s does not exist on this host; its VM '
                        'was removed outside nova. Its OVS port will be '
                        'removed.', {'port': vif['id']}, instance=instance)
            return False
        return True

    def port_spec(self, instance, vif):
        """The OVS port this driver registers for a VIF, or None.

        :returns: :class:`plugin.PortSpec`, or None for VIFs not put on OVS
            by this driver (``hyperv`` VIFs, refused types).
        """
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            return None
        return self._vif_plugin.port_spec(*ovs_vif)

    def check_vswitch(self, network_info):
        """Refuse a host whose vSwitch cannot carry this VM's OVS VIFs.

        Open vSwitch for Windows sees a VM's NIC only on a vSwitch whose
        Open vSwitch (forwarding) extension is enabled and running; the
        installer leaves it disabled.  os-win reports a vSwitch's
        extensions with ``NetworkUtils.get_vswitch_extensions`` (one dict
        per extension; ``enabled_state`` 2 is enabled, 3 disabled).
        Nothing is checked when no VIF is of type ``ovs``.

        :param network_info: nova's network_info of the instance.
        :raises compute_hyperv_ovs.exception.VswitchNotSet,
            VswitchNotFound, OvsExtensionMissing, OvsExtensionDisabled,
            OvsExtensionNotRunning: each names ``[hyperv] vswitch_name``
            and what to do.
        """
        if not any(vif['type'] == model.VIF_TYPE_OVS
                   for vif in network_info or ()):
            return
        vswitch = CONF.hyperv.vswitch_name
        if not vswitch:
            raise driver_exception.VswitchNotSet()
        try:
            extensions = self._netutils.get_vswitch_extensions(vswitch)
        except os_win_exc.HyperVvSwitchNotFound:
            raise driver_exception.VswitchNotFound(vswitch=vswitch)
        ovs = [ext for ext in extensions
               if OVS_EXTENSION_RE.match(ext['name'])]
        if not ovs:
            raise driver_exception.OvsExtensionMissing(vswitch=vswitch)
        if any(ext['enabled_state'] == os_win_const.CIM_STATE_ENABLED
               for ext in ovs):
            return
        ext = ovs[0]
        if ext['enabled_state'] == os_win_const.CIM_STATE_DISABLED:
            raise driver_exception.OvsExtensionDisabled(
                vswitch=vswitch, extension=ext['name'])
        raise driver_exception.OvsExtensionNotRunning(
            vswitch=vswitch, extension=ext['name'],
            state=ext['enabled_state'])

    def port_status(self, instance, vif):
        """What ovs-vswitchd reports now for the VIF's OVS port.

        :returns: ``PortStatus`` of the OVS port, or None for a VIF this
            driver does not put on OVS.
        :raises nova.exception.VirtualInterfacePlugException: the port
            could not be read (the message names the culprit).
        """
        return self._on_ovs_port(
            instance, vif,
            lambda osvif_vif, instance_info: self._vif_plugin.port_status(
                osvif_vif))

    def replug(self, instance, vif):
        """Add the VIF's OVS port again, for a port not up once the VM runs.

        See ``HyperVOvsPlugin.replug``: OVS for Windows retries a port it
        failed to add only on a configuration change.

        :returns: the ``PortStatus``, or None for a VIF not on OVS.
        :raises nova.exception.VirtualInterfacePlugException: the port
            could not be written (the message names the culprit).
        """
        # A failure is not undone as a failed plug is: the VM runs and keeps
        # its port, which the port sync puts right once OVS answers.
        return self._on_ovs_port(instance, vif, self._vif_plugin.replug)

    def _on_ovs_port(self, instance, vif, operation):
        """``operation(osvif_vif, instance_info)`` for a VIF on OVS.

        :returns: what the operation returns, or None for a VIF this driver
            does not put on OVS.
        :raises nova.exception.VirtualInterfacePlugException: the plugin
            failed (the message names the culprit).
        """
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            return None
        try:
            return operation(*ovs_vif)
        except ovs_exception.OvsPortError as exc:
            raise self._port_error(instance, ovs_vif[0], exc)

    def wait_for_port_up(self, instance, vif, timeout):
        """Wait until the VIF's OVS port has a valid ofport.

        Called once the VM runs: on Windows the port gets its ofport when
        the VM's Hyper-V switch port appears.  A port that stays at ofport
        -1 is one neutron-openvswitch-agent will never bind (neutron >=
        28.0.1 defers it, bug #2155883), so waiting for
        network-vif-plugged would only time out.

        :param timeout: seconds to wait.
        :returns: the ``PortStatus`` (up), or None for a VIF not on OVS.
        :raises nova.exception.VirtualInterfacePlugException: not up in
            time; the message is :class:`PortNotUp`'s, with the ofport and
            ``Interface.error`` last read.
        """
        deadline = time.monotonic() + timeout
        interval = PORT_UP_FIRST_POLL
        while True:
            status = self.port_status(instance, vif)
            if status is None or status.is_up:
                return status
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
            interval = min(interval * 2, PORT_UP_POLL_INTERVAL)
        not_up = ovs_exception.PortNotUp(port=vif['id'], ofport=status.ofport,
                                         error=status.error)
        LOG.error('%(err)s %(timeout)s s after the VM started. Check '
                  'ovs-vswitchd\'s log and that the vNIC\'s vSwitch has the '
                  'Open vSwitch extension running.',
                  {'err': not_up, 'timeout': timeout}, instance=instance)
        # nova keeps 255 characters of a fault: the port's status first.
        raise exception.VirtualInterfacePlugException(
            _('%(err)s; see the ovs-vswitchd log') % {'err': not_up}
        ) from not_up
