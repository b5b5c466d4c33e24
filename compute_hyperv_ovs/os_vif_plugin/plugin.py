"""The ``hyperv_ovs`` os-vif plugin: VIF objects in, OVS port operations out.

os-vif's own ``ovs`` plugin lost its Windows path in os-vif 4.0.0 (commit
71521590 "Clean up Windows support"); this plugin keeps the contract that
path had with neutron-openvswitch-agent (os-vif 3.2.0
``vif_plug_ovs/ovs.py`` ``_plug_vif_windows``): the OVS port is named after
the neutron port id, which is also the Hyper-V switch port's name, and its
Interface carries ``iface-id``, ``attached-mac``, ``iface-status`` and
``vm-uuid``.

Connecting the vNIC to the Hyper-V vSwitch is not done here: it needs os-win
and must happen before the port is added (compute_hyperv_ovs.vif).
"""

import collections
import socket

from os_vif import exception as osv_exception
from os_vif import objects as osv_objects
from os_vif.objects import vif as osv_vif
from os_vif import plugin
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import timeutils

from compute_hyperv_ovs.os_vif_plugin import exception  # noqa: F401 (docs)
from compute_hyperv_ovs.os_vif_plugin import ovsdb

LOG = logging.getLogger(__name__)

PLUGIN_NAME = 'hyperv_ovs'
CONFIG_GROUP = 'os_vif_' + PLUGIN_NAME

# neutron-openvswitch-agent does not read iface-status, but os-vif and
# neutron's own interface drivers always set it; keep the convention.
IFACE_STATUS_ACTIVE = 'active'

# How a port is recognised as this driver's (doc/source/design.rst, "Which
# OVS ports are this driver's"): its Interface carries both keys, and only
# the compute service named by OWNER_HOST_KEY ever changes or removes it.
# neutron-openvswitch-agent reads iface-id and attached-mac only (neutron
# ovs_lib.py get_vif_port_set / portid_from_external_ids), so it ignores
# these.
OWNER_KEY = 'created-by'
OWNER = 'compute-hyperv-ovs'
OWNER_HOST_KEY = 'compute-host'
# Open_vSwitch.external_ids key the preflight check writes (check_vswitchd).
CHECKED_KEY = 'compute-hyperv-ovs-checked'

PortSpec = collections.namedtuple(
    'PortSpec', ['bridge', 'name', 'external_ids', 'datapath_type'])
PortSpec.__doc__ = '''The OVS port a VIF should have.

bridge: bridge name; name: port and Interface name (the neutron port id);
external_ids: dict of str to str the Interface must carry (ownership
markers included); datapath_type: Bridge.datapath_type or None.
'''


class HyperVOvsPlugin(plugin.PluginBase):
    """Registers Hyper-V VM NICs as Open vSwitch ports.

    Handles ``VIFOpenVSwitch`` only: Windows has no Linux bridge for the
    hybrid plug (``VIFBridge``), so neutron must run the ``openvswitch`` or
    ``noop`` firewall driver on Hyper-V hosts.
    """

    CONFIG_OPTS = (
        cfg.StrOpt('ovsdb_connection',
                   default='tcp:127.0.0.1:6640',
                   help='The OVSDB server of this Hyper-V host: '
                        'tcp:IP:PORT, ssl:IP:PORT or unix:PATH (a named '
                        'pipe on Windows). The Windows OVS installer only '
                        'opens unix:<OVS run dir>\\db.sock; for tcp, start '
                        'ovsdb-server with a matching --remote.'),
        cfg.IntOpt('timeout',
                   default=120,
                   min=1,
                   help='Seconds one port operation (plug, unplug) may '
                        'take, counted from its start: connecting, waiting '
                        'behind other operations, and waiting for '
                        'ovs-vswitchd to apply the change included. An '
                        'operation that cannot finish in time fails with an '
                        'error naming ovsdb-server (and ovsdb_connection) or '
                        'ovs-vswitchd, whichever did not answer.'),
        # The three SSL options have the names and meanings of
        # neutron-openvswitch-agent's [OVS] ones, so one set of files
        # serves both on a host.
        cfg.StrOpt(ovsdb.SSL_KEY,
                   help='Private key file (PEM, no passphrase) this driver '
                        'presents to ovsdb-server when ovsdb_connection is '
                        'ssl:IP:PORT; required then. Same meaning as '
                        'neutron-openvswitch-agent\'s [OVS] ssl_key_file. '
                        'Checked before connecting: a missing, unreadable '
                        'or wrong file fails every port operation with an '
                        'error naming this option.'),
        cfg.StrOpt(ovsdb.SSL_CERT,
                   help='Certificate file (PEM) of ssl_key_file, signed '
                        'by the CA ovsdb-server trusts (its --ca-cert); '
                        'required when ovsdb_connection is ssl:IP:PORT. '
                        'Same meaning as neutron-openvswitch-agent\'s '
                        '[OVS] ssl_cert_file.'),
        cfg.StrOpt(ovsdb.SSL_CA_CERT,
                   help='CA certificate file (PEM) that ovsdb-server\'s '
                        'certificate must be signed by; required when '
                        'ovsdb_connection is ssl:IP:PORT. Same meaning as '
                        'neutron-openvswitch-agent\'s [OVS] '
                        'ssl_ca_cert_file.'),
    )

    def __init__(self, config):
        super().__init__(config)
        # Read the options now: the plugin keeps one connection, and a
        # process may hold several plugins (one per compute driver).
        self._ssl_files = {name: getattr(config, name) for name in
                           (ovsdb.SSL_KEY, ovsdb.SSL_CERT, ovsdb.SSL_CA_CERT)}
        self.ovsdb = ovsdb.OvsdbClient(config.ovsdb_connection,
                                       config.timeout,
                                       ssl_files=self._ssl_files)

    def describe(self):
        return osv_objects.host_info.HostPluginInfo(
            plugin_name=PLUGIN_NAME,
            vif_info=[
                osv_objects.host_info.HostVIFInfo(
                    vif_object_name=osv_vif.VIFOpenVSwitch.__name__,
                    min_version='1.0',
                    max_version='1.0',
                    supported_port_profiles=[
                        osv_objects.host_info.HostPortProfileInfo(
                            profile_object_name=(
                                osv_vif.VIFPortProfileOpenVSwitch.__name__),
                            min_version='1.0',
                            max_version=(
                                osv_vif.VIFPortProfileOpenVSwitch.VERSION)),
                    ]),
            ])

    @staticmethod
    def _check_vif(vif):
        if not isinstance(vif, osv_vif.VIFOpenVSwitch):
            raise osv_exception.PlugException(
                vif=vif, err='the %s plugin handles VIFOpenVSwitch only, '
                'not %s; on Hyper-V, neutron must bind ports with '
                'ovs_hybrid_plug=False (firewall_driver openvswitch or '
                'noop)' % (PLUGIN_NAME, type(vif).__name__))

    def _external_ids(self, vif, instance_info):
        return {
            'iface-id': vif.port_profile.interface_id,
            'iface-status': IFACE_STATUS_ACTIVE,
            'attached-mac': vif.address,
            'vm-uuid': instance_info.uuid,
            OWNER_KEY: OWNER,
            OWNER_HOST_KEY: self.compute_host,
        }

    @staticmethod
    def _datapath_type(vif):
        profile = vif.port_profile
        if profile.obj_attr_is_set('datapath_type'):
            return profile.datapath_type
        return None

    def _add_port(self, vif, instance_info):
        self._check_vif(vif)
        return self.ovsdb.add_vif_port(
            vif.network.bridge, vif.id, self._external_ids(vif, instance_info),
            datapath_type=self._datapath_type(vif))

    def plug(self, vif, instance_info):
        """Add the VIF's port to its bridge with neutron's external_ids.

        :param vif: ``os_vif.objects.vif.VIFOpenVSwitch`` whose ``id`` is the
            neutron port id (the OVS port name) and whose ``port_profile`` is
            a ``VIFPortProfileOpenVSwitch``.
        :param instance_info: ``os_vif.objects.instance_info.InstanceInfo``.
        :returns: :class:`ovsdb.PortStatus` of the Interface.
        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        :raises exception.OvsdbUnreachable: ovsdb-server did not answer
            within the timeout.
        :raises exception.OvsdbRefused: ovsdb-server refused the change.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        status = self._add_port(vif, instance_info)
        bridge = vif.network.bridge
        if status.is_up:
            LOG.debug('OVS port %(port)s is on %(bridge)s with ofport '
                      '%(ofport)s', {'port': vif.id, 'bridge': bridge,
                                     'ofport': status.ofport})
        else:
            # The agent ignores a port without a valid ofport, so neutron will
            # not bind it; on Windows this is what a missing Hyper-V switch
            # port looks like (OVS datapath-windows Vport.c returns EINVAL).
            LOG.warning('OVS port %(port)s on %(bridge)s did not come up: '
                        'ofport %(ofport)s, error %(error)s. Check that the '
                        'vNIC is connected to the OVS-enabled vSwitch.',
                        {'port': vif.id, 'bridge': bridge,
                         'ofport': status.ofport, 'error': status.error})
        return status

    def unplug(self, vif, instance_info):
        """Delete the VIF's OVS port; unplugging twice is harmless.

        A removal ovsdb-server committed is done, even if ovs-vswitchd did
        not apply it in time (logged).

        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        :raises exception.OvsdbUnreachable: ovsdb-server did not answer
            within the timeout, or an earlier write's outcome is unknown.
        :raises exception.OvsdbRefused: ovsdb-server refused the removal.
        """
        self._check_vif(vif)
        self.ovsdb.delete_port(vif.network.bridge, vif.id)

    def pre_plug(self, vif, instance_info):
        """Register the port of a VM that is about to arrive on this host.

        Writes the same rows as :meth:`plug`, for a live migration's
        destination before Hyper-V moves the VM here.  There is no Hyper-V
        switch port of that name yet, so on Windows ovs-vswitchd cannot add
        the interface to the datapath (``ofport`` -1; OVS datapath-windows
        ``Vport.c`` ``OvsNewVportCmdHandler`` finds no Hyper-V port of that
        name) and retries it at its next reconfiguration, i.e. the next
        OVSDB change (openvswitch/ovs-issues#343): :meth:`replug` after
        the migration makes one.  That is expected here, so nothing is
        logged above debug level.

        :param vif: as for :meth:`plug`.
        :param instance_info: as for :meth:`plug`.
        :returns: :class:`ovsdb.PortStatus` of the Interface.
        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        :raises exception.OvsdbUnreachable: ovsdb-server did not answer
            within the timeout.
        :raises exception.OvsdbRefused: ovsdb-server refused the change.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        status = self._add_port(vif, instance_info)
        LOG.debug('OVS port %(port)s registered on %(bridge)s ahead of its '
                  'VM (ofport %(ofport)s)', {'port': vif.id,
                                             'bridge': vif.network.bridge,
                                             'ofport': status.ofport})
        return status

    def bridge_exists(self, bridge):
        """Whether the bridge exists in this host's OVSDB.

        :param bridge: bridge name, e.g. ``br-int``.
        :returns: bool.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        return self.ovsdb.bridge_exists(bridge)

    # The nova compute service (CONF.host) this plugin registers ports
    # for; set by the driver.  The default is nova's own default for
    # CONF.host.
    compute_host = socket.gethostname()

    def set_compute_host(self, host):
        """Name the compute service written into each port's markers.

        :param host: nova's ``CONF.host`` of the service owning this plugin.
        """
        self.compute_host = host

    def port_spec(self, vif, instance_info):
        """The OVS port :meth:`plug` would register for a VIF.

        :param vif: as for :meth:`plug`.
        :param instance_info: as for :meth:`plug`.
        :returns: :class:`PortSpec`.
        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        """
        self._check_vif(vif)
        return PortSpec(vif.network.bridge, vif.id,
                        self._external_ids(vif, instance_info),
                        self._datapath_type(vif))

    def is_owned(self, external_ids):
        """Whether an Interface is this compute service's own.

        :param external_ids: the Interface's external_ids (dict).
        :returns: True when both ownership markers name this plugin and
            :attr:`compute_host`.
        """
        return (external_ids.get(OWNER_KEY) == OWNER and
                external_ids.get(OWNER_HOST_KEY) == self.compute_host)

    def reconcile_ports(self, decide):
        """Read every Interface, let ``decide`` choose, write its choice.

        One read and one write transaction, over a connection of the pass's
        own, opened for it and closed after it: its initial download is the
        read, so the pass never works from the replica of a connection that
        lost its ovsdb-server, and plugs and unplugs keep their own
        connection to themselves.  That connection replicates only the
        columns the pass uses (``ovsdb.SYNC_COLUMNS``), not ovs-vswitchd's
        statistics and status of every port.

        :param decide: callable, given {Interface name: external_ids dict}
            of every Interface (tell this service's own with
            :meth:`is_owned`), returning (add, update, remove): lists of
            :class:`PortSpec` to create (or adopt), of :class:`PortSpec`
            whose external_ids are to be set, and of port names to delete.
        :returns: what ``decide`` returned.
        :raises exception.OvsdbUnreachable: no answer within the timeout;
            nothing was written.
        """
        client = ovsdb.OvsdbClient(self.ovsdb.connection, self.ovsdb.timeout,
                                   ssl_files=self._ssl_files,
                                   columns=ovsdb.SYNC_COLUMNS)
        try:
            add, update, remove = decide(client.list_interfaces())
            client.sync_ports(
                add=[(s.bridge, s.name, s.external_ids, s.datapath_type)
                     for s in add],
                update=[(s.name, s.external_ids) for s in update],
                remove=remove)
        finally:
            client.close()
        return add, update, remove

    def port_status(self, vif):
        """The VIF's OVS port as ovs-vswitchd reports it now.

        For a port that :meth:`plug` found not up (on Windows, until the
        VM's Hyper-V switch port exists, i.e. until the VM runs).

        :param vif: as for :meth:`plug`.
        :returns: :class:`ovsdb.PortStatus` (``is_up``, ``ofport``,
            ``error``).
        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        self._check_vif(vif)
        return self.ovsdb.port_status(vif.id)

    def replug(self, vif, instance_info):
        """Add the VIF's port again so that ovs-vswitchd retries it.

        For a port that is not up once its VM runs: OVS for Windows adds an
        interface it failed to add (its Hyper-V switch port was missing)
        only when the configuration changes (openvswitch/ovs-issues #343),
        and plugging an unchanged port changes nothing.  The Port and
        Interface rows are replaced in one transaction, with the same name
        and external_ids.

        :param vif: as for :meth:`plug`.
        :param instance_info: as for :meth:`plug`.
        :returns: :class:`ovsdb.PortStatus` of the Interface.
        :raises os_vif.exception.PlugException: not a VIFOpenVSwitch.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        self._check_vif(vif)
        return self.ovsdb.replace_vif_port(
            vif.network.bridge, vif.id, self._external_ids(vif, instance_info))

    def close(self):
        """Close this plugin's OVSDB connection; the next call reopens it."""
        self.ovsdb.close()

    def check_vswitchd(self):
        """Make ovs-vswitchd apply one change, as a port operation would.

        Writes ``Open_vSwitch.external_ids:compute-hyperv-ovs-checked``
        (the time of the check, UTC) and waits until ovs-vswitchd copies
        ``next_cfg`` to ``cur_cfg``.  For the preflight check
        (:mod:`compute_hyperv_ovs.status`); the key is left in place.

        :raises exception.OvsdbUnreachable: ovsdb-server did not answer
            within the timeout.
        :raises exception.OvsdbRefused: ovsdb-server refused the change.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        self.ovsdb.set_root_external_id(
            CHECKED_KEY, timeutils.utcnow().isoformat())
