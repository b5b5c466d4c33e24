"""Live migration of the base driver, handing OVS ports over between hosts.

nova 28's Hyper-V driver registers a migrated VM's NICs on the destination
only in ``post_live_migration_at_destination``, once the VM already runs
there (compute-hyperv ce3e4e93, LP #1551222): from cut-over until then the
destination's neutron-openvswitch-agent has no OVS port to wire, and the VM
is cut off.  This driver registers the destination's OVS port (same name,
same external_ids) in ``pre_live_migration``, before Hyper-V moves the VM,
so the agent can wire it ahead of the cut-over; the port after the
migration is plugged again (vNIC check, OVSDB change), and the source's
port is removed by nova's own clean-up only once the migration succeeded.
"""

import nova.conf
from nova import exception
from nova.i18n import _
from nova.network import model as network_model
from nova.virt.hyperv import livemigrationops
from oslo_log import log as logging

from compute_hyperv_ovs import imagecache
from compute_hyperv_ovs.os_vif_plugin import ovsdb
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class LiveMigrationOps(livemigrationops.LiveMigrationOps):
    """nova 28's ``LiveMigrationOps`` with the OVS ports plugged ahead.

    :param vmops: the driver's :class:`compute_hyperv_ovs.vmops.VMOps`, so
        that every plug goes through the driver's VIF driver.
    :param vif_plugin: the driver's ``HyperVOvsPlugin`` (its OVSDB).
    """

    def __init__(self, vmops, vif_plugin):
        super().__init__()
        self._vmops = vmops
        self._vif_plugin = vif_plugin
        self._imagecache = imagecache.ImageCache()

    # ---- the move ----

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, migrate_data=None):
        """Prepare the destination, then register the VM's OVS ports here.

        The base prepares disks and volumes (the image is fetched into this
        host's cache so the VM's differencing disk finds its parent).  Then
        each ``ovs`` VIF's port is added to this host's OVSDB with the same
        name and external_ids as on the source, before the VM arrives.  The
        vNIC is not connected here: it arrives with the VM, already
        connected to the vSwitch of the same name.  When nova bound the
        ports on this host (``migrate_data.vifs``), their destination
        bindings are used, as libvirt's ``_pre_live_migration_plug_vifs``
        does.

        :param migrate_data: the ``HyperVLiveMigrateData`` of this move.
        :raises nova.exception.VirtualInterfacePlugException: this host's
            OVSDB is unreachable (the message names ovsdb_connection).
        """
        super().pre_live_migration(context, instance, block_device_info,
                                   network_info)
        if migrate_data is not None and migrate_data.obj_attr_is_set(
                'vifs') and migrate_data.vifs:
            network_info = network_model.NetworkInfo(
                [mig_vif.get_dest_vif() for mig_vif in migrate_data.vifs])
        vif_driver = self._vmops._vif_driver
        for vif in network_info or ():
            if vif['type'] != network_model.VIF_TYPE_OVS:
                continue
            osvif_vif, osvif_instance = vif_driver._to_osvif(instance, vif)
            try:
                self._vif_plugin.pre_plug(osvif_vif, osvif_instance)
            except ovsdb.OvsdbUnavailable as exc:
                raise exception.VirtualInterfacePlugException(_(
                    'OVSDB at %(conn)s is unreachable ([%(group)s] '
                    'ovsdb_connection), so port %(port)s cannot be '
                    'registered ahead of the VM: %(err)s') % {
                        'conn': exc.connection, 'group': plugin.CONFIG_GROUP,
                        'port': vif['id'], 'err': exc.reason})
