"""Live migration: the Open vSwitch side of handing a VM over.

nova 28's Hyper-V driver registered a migrated VM's NICs on the destination
only in ``post_live_migration_at_destination``, once the VM already ran
there (compute-hyperv ce3e4e93, LP #1551222): from cut-over until then the
destination's neutron-openvswitch-agent had no OVS port to wire, and the VM
was cut off.  This driver registers the destination's OVS port (same name,
same external_ids) in ``pre_live_migration``, before Hyper-V moves the VM
(the facade calls ``VMOps.pre_plug_vifs`` with
:func:`destination_network_info`).  The port is plugged again after the
move (the OVSDB change on which OVS for Windows retries adding a port whose
Hyper-V port was missing; see doc/source/design.rst, "Migration").  The
source's port is removed by nova's own clean-up once the migration
succeeded.

:class:`DestinationChecks` refuses, before anything moves, a destination
that cannot carry the VM's NICs: no vSwitch, no OVSDB, no integration
bridge.  The Hyper-V checks (live migration enabled, CPU features) and the
move itself are the Hyper-V driver's
(:mod:`compute_hyperv_ovs.hyperv.livemigrationops`).
"""

import nova.conf
from nova import exception
from nova.i18n import _
from nova.network import model as network_model
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class DestinationChecks(object):
    """Refuses a live migration's destination that cannot wire the NICs.

    Called on the destination by the Hyper-V driver's live migration
    pre-checks (``check_can_live_migrate_destination``, with the source's
    bindings) and again in ``pre_live_migration`` (nova bound the ports
    here in between: nova conductor ``live_migrate.py``
    ``_call_livem_checks_on_host``), before anything is created.

    :param vif_plugin: the driver's ``HyperVOvsPlugin`` (its OVSDB).
    """

    def __init__(self, vif_plugin):
        self._vif_plugin = vif_plugin
        self._netutils = osutils.per_thread(utilsfactory.get_networkutils)

    def __call__(self, context, instance, dest_hostname, network_info,
                 migrate_data):
        """Check this host for the VM's OVS VIFs.

        :raises nova.exception.MigrationPreCheckError: with the reason and
            what to do.
        """
        network_info = destination_network_info(network_info, migrate_data)
        ovs_vifs = [vif for vif in network_info
                    if vif['type'] == network_model.VIF_TYPE_OVS]
        if ovs_vifs:
            self._check_vswitch(dest_hostname)
            self._check_bridges(dest_hostname, ovs_vifs)

    def _check_vswitch(self, hostname):
        try:
            self._netutils.get_vswitch_id(CONF.hyperv.vswitch_name)
        except os_win_exc.HyperVvSwitchNotFound:
            raise exception.MigrationPreCheckError(reason=_(
                'Hyper-V on %(host)s has no vSwitch named %(vswitch)s '
                '([hyperv] vswitch_name), which the VM\'s NICs connect to; '
                'create it with the Open vSwitch extension enabled, or set '
                'the option to the vSwitch that has it') % {
                    'host': hostname, 'vswitch': CONF.hyperv.vswitch_name})

    def _check_bridges(self, hostname, ovs_vifs):
        for bridge in sorted({vif['network']['bridge'] for vif in ovs_vifs}):
            try:
                exists = self._vif_plugin.bridge_exists(bridge)
            except ovs_exception.OvsdbUnreachable as exc:
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s is unreachable: OVSDB at '
                    '%(conn)s ([%(group)s] ovsdb_connection) did not answer '
                    '(%(err)s); start ovsdb-server there or fix the '
                    'option') % {'host': hostname, 'conn': exc.connection,
                                 'group': plugin.CONFIG_GROUP,
                                 'err': exc.reason})
            except ovs_exception.OvsPortError as exc:
                # The plugin's own words name the culprit.
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s: %(err)s') % {
                        'host': hostname, 'err': exc})
            if not exists:
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s has no bridge %(bridge)s, on '
                    'which the VM\'s ports go; start '
                    'neutron-openvswitch-agent there (it creates its '
                    'integration bridge) or check its [ovs] '
                    'integration_bridge') % {'host': hostname,
                                             'bridge': bridge})


def destination_network_info(network_info, migrate_data):
    """The VIFs as bound on the destination of a live migration.

    When nova bound the ports on the destination (neutron's
    ``binding-extended``: ``migrate_data.vifs``), each VIF is the
    source's with the destination binding's type, vnic_type, details
    and profile (``VIFMigrateData.get_dest_vif``, as libvirt's
    ``_pre_live_migration_plug_vifs`` uses), and, for ``ovs`` VIFs,
    the bridge that binding names: ``vif_details['bridge_name']``, or
    ``[neutron] ovs_bridge``, cut to 14 characters, which is how nova
    builds the VIF once that binding is active (nova 28
    ``network/neutron.py`` ``_nw_info_build_network``), so the port
    registered ahead is the one plugged after the move.  Without
    destination bindings, ``network_info`` itself.

    Used by ``pre_live_migration`` to register the ports and by the
    rollback on the destination to remove the same ports, whatever the
    source's binding says.

    :param network_info: ``nova.network.model.NetworkInfo`` (source).
    :param migrate_data: ``LiveMigrateData`` or None.
    :returns: ``nova.network.model.NetworkInfo``.
    """
    if (migrate_data is None or not migrate_data.obj_attr_is_set('vifs')
            or not migrate_data.vifs):
        return network_info or network_model.NetworkInfo()
    vifs = []
    for mig_vif in migrate_data.vifs:
        vif = mig_vif.get_dest_vif()
        if vif['type'] == network_model.VIF_TYPE_OVS:
            bridge = (vif.get('details') or {}).get(
                network_model.VIF_DETAILS_BRIDGE_NAME,
                CONF.neutron.ovs_bridge)
            vif['network']['bridge'] = bridge[:network_model.NIC_NAME_LEN]
        vifs.append(vif)
    return network_model.NetworkInfo(vifs)
