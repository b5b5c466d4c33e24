"""Connects VM NICs to the Hyper-V vSwitch and hands OVS VIFs to the plugin.

The order matters: OVS for Windows finds a VM's switch port by its name
when the OVS port is added, so the vNIC must already be connected to the
OVS-enabled vSwitch under that name (OVS datapath-windows ``Vport.c``
``OvsNewVportCmdHandler``; nova 28 ``virt/hyperv/vif.py``).
"""

import nova.conf
from nova import exception
from nova.i18n import _
from nova.network import model
from nova.network import os_vif_util
from nova.virt.hyperv import vif as hyperv_vif
from os_vif.objects import vif as osv_vif
from oslo_log import log as logging

from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

SUPPORTED_VIF_TYPES = (model.VIF_TYPE_OVS, model.VIF_TYPE_HYPERV)


class HyperVOVSVIFDriver(hyperv_vif.HyperVVIFDriver):
    """Plugs and unplugs one VIF of a Hyper-V VM.

    ``ovs`` VIFs: vNIC to ``[hyperv] vswitch_name``, then the
    ``hyperv_ovs`` plugin adds the OVS port.  ``hyperv`` VIFs: nothing, the
    neutron Hyper-V agent binds them (as in the base driver).  Anything
    else is refused.

    :param vif_plugin: the driver's own :class:`plugin.HyperVOvsPlugin`,
        which holds the OVSDB connection of this compute service.
    """

    def __init__(self, vif_plugin):
        super().__init__()
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
        message = str(exc)
        LOG.error('Port %(port)s not registered in Open vSwitch: %(err)s',
                  {'port': osvif_vif.id, 'err': message}, instance=instance)
        if exc.may_have_written:
            try:
                self.unplug(instance, vif)
            except ovs_exception.OvsPortError as undo_exc:
                # Keep the plug's error, which is what the operator must
                # see; the port is left to whoever retries the unplug.
                LOG.error('Could not remove OVS port %(port)s after the '
                          'failed plug: %(err)s',
                          {'port': osvif_vif.id, 'err': undo_exc},
                          instance=instance)
        return exception.VirtualInterfacePlugException(message)

    def unplug(self, instance, vif):
        """Remove the OVS port; a missing port is not an error.

        VIFs that :meth:`plug` refuses or leaves to the neutron Hyper-V
        agent have nothing to remove.  An unreachable OVSDB is logged, not
        raised.  Unplug runs while a VM is destroyed, and failing there
        would leave the VM's disks behind, for a port that
        ``neutron-ovs-cleanup`` or the next plug of the same port id would
        deal with anyway.
        """
        ovs_vif = self._ovs_vif(instance, vif)
        if ovs_vif is None:
            return
        try:
            self._vif_plugin.unplug(*ovs_vif)
        except ovs_exception.OvsdbUnreachable as exc:
            LOG.error('Could not remove OVS port %(port)s: %(err)s. Remove '
                      'it with "ovs-vsctl --if-exists del-port %(port)s" '
                      'once OVSDB is back.',
                      {'port': ovs_vif[0].id, 'err': exc}, instance=instance)
