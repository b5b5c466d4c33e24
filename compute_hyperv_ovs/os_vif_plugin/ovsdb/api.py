"""Port operations against one ovsdb-server: the package's public face.

It turns "this port, on this bridge, with these external_ids" into ovsdbapp
commands against one ovsdb-server, and reads back what ovs-vswitchd made of
the port.  The plugin (:mod:`compute_hyperv_ovs.os_vif_plugin.plugin`)
speaks only to :class:`OvsdbClient`; this module speaks only to the
ovsdbapp API object below it (:mod:`.impl_idl`), as os-vif's
``vif_plug_ovs`` keeps its OVSDB access in ``ovsdb/ovsdb_lib.py``.

Time: every operation has one deadline, ``timeout`` seconds from the
moment it is called (:mod:`.deadline`), and everything it waits for counts
against it: connecting (schema fetch and first database snapshot),
waiting behind another operation (ovsdbapp's connection has one
transaction queue and one thread), the round trip to ovsdb-server, and
ovs-vswitchd applying the change (``Open_vSwitch.cur_cfg`` reaching
``next_cfg``).

Errors are the plugin's own (:mod:`compute_hyperv_ovs.os_vif_plugin.
exception`), one per culprit: ovsdb-server not answering, ovsdb-server
refusing, ovs-vswitchd not applying (:func:`.errors.plugin_error`).
"""

import threading

from oslo_log import log as logging

from compute_hyperv_ovs.os_vif_plugin import exception
from compute_hyperv_ovs.os_vif_plugin.ovsdb import deadline as deadlines
from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors
from compute_hyperv_ovs.os_vif_plugin.ovsdb import impl_idl

LOG = logging.getLogger(__name__)

# The columns that listing Interfaces and one port-sync transaction
# (:meth:`OvsdbClient.list_interfaces`, :meth:`OvsdbClient.sync_ports`)
# read or write, for a connection that does nothing else.  The IDL
# downloads every registered column of every row when it connects, and
# ovs-vswitchd fills the Interface and Port tables with statistics and
# status; with 1000 ports, whole tables made the download several times
# larger than this.  What each one is for:
#
# - Open_vSwitch: ``bridges`` (a new bridge is added to it),
#   ``next_cfg`` (bumped by every transaction, as ``ovs-vsctl`` does, and
#   read back with the new value), ``cur_cfg`` (ovs-vswitchd copies
#   ``next_cfg`` there once it applied the change: the wait after commit).
# - Bridge: ``name`` (lookup), ``ports`` (ports added and removed),
#   ``datapath_type`` (set when the VIF's profile names one).
# - Port: ``name`` (lookup), ``interfaces`` (a new port's Interface; a
#   removed port's Interfaces are removed with it).
# - Interface: ``name`` (lookup), ``external_ids`` (read, merged into),
#   ``type`` (a new bridge's own port is ``internal``, ovsdbapp
#   ``AddBridgeCommand``).
#
# python-ovs refuses to read or write a column that is not registered
# (``Row.__getattr__`` raises AttributeError, ``Row.__setattr__``
# KeyError), so a command added to that transaction must have its columns
# added here.
SYNC_COLUMNS = {
    'Open_vSwitch': ('bridges', 'next_cfg', 'cur_cfg'),
    'Bridge': ('name', 'ports', 'datapath_type'),
    'Port': ('name', 'interfaces'),
    'Interface': ('name', 'external_ids', 'type'),
}


class PortStatus(object):
    """What ovs-vswitchd reports for an Interface after a plug.

    :ivar ofport: the OpenFlow port number (int), or None while vswitchd has
        not assigned one; -1 means vswitchd failed to add the interface.
    :ivar error: vswitchd's ``Interface.error`` text, or None.
    """

    def __init__(self, ofport, error):
        self.ofport = ofport
        self.error = error

    @property
    def is_up(self):
        # neutron-openvswitch-agent skips interfaces whose ofport is unset
        # ([]) or -1 (ovs_lib.UNASSIGNED_OFPORT / INVALID_OFPORT), so only a
        # positive ofport means the agent will wire the port.
        return bool(self.ofport) and self.ofport > 0


class OvsdbClient(object):
    """Port operations against one ovsdb-server.

    The connection is opened on first use, so a compute service starts even
    while OVSDB is down, and is kept until :meth:`close`; it reconnects by
    itself after ovsdb-server restarts.

    :param connection: OVSDB connection string (``tcp:IP:PORT``,
        ``ssl:IP:PORT`` or ``unix:PATH``; on Windows ``unix:`` is a named
        pipe).
    :param timeout: seconds any single operation may take, counted from its
        call: connecting, waiting behind other operations, and waiting for
        ovs-vswitchd to apply a change included.
    :param ssl_files: for an ``ssl:`` connection, dict of ``SSL_KEY``,
        ``SSL_CERT`` and ``SSL_CA_CERT`` to file paths.  python-ovs keeps
        them per process (``ovs.stream.Stream.ssl_set_*``), so all clients
        in a process must be given the same files.
    :param columns: None to replicate the whole of each table the plugin
        uses (every operation works), or a dict of table name to column
        names to replicate only those, e.g. :data:`SYNC_COLUMNS` for a
        connection that only lists Interfaces and syncs ports; connecting
        then downloads less.  An operation that touches a column left out
        fails (AttributeError or KeyError from python-ovs).
    """

    def __init__(self, connection, timeout, ssl_files=None, columns=None):
        self.connection = connection
        self.timeout = timeout
        self.ssl_files = dict(ssl_files or {})
        self.columns = columns
        self._api = None
        self._lock = threading.Lock()

    @property
    def is_open(self):
        """Whether a connection is open and its thread runs (bool)."""
        api = self._api
        return api is not None and api.is_running()

    def _backend(self):
        """The ovsdbapp API object, connected within the current deadline.

        :raises errors.Unreachable, errors.Expired: call it inside
            :meth:`_run`.
        """
        deadline = deadlines.current_or_new(self.timeout)
        if not self._lock.acquire(timeout=deadline.remaining()):
            # Another operation is connecting and has not made it yet.
            raise errors.Unreachable('no answer within %s s' % self.timeout)
        try:
            if self._api is None:
                self._api = impl_idl.HostOvsdbApi.open(
                    self.connection, self.timeout, deadline,
                    columns=self.columns, ssl_file_paths=self.ssl_files)
            return self._api
        finally:
            self._lock.release()

    def _run(self, what, func):
        """Run ``func`` under one deadline; raise the plugin's errors.

        :param what: the operation, for messages, e.g. ``adding port X to
            br-int``.
        :raises exception.OvsdbUnreachable: ovsdb-server did not answer.
        :raises exception.OvsdbRefused: ovsdb-server refused it.
        :raises exception.VswitchdNotApplying: committed, not applied.

        Called from within another ``_run`` (one operation made of
        several), it keeps the outer deadline.
        """
        with deadlines.operation(self.timeout):
            try:
                return func()
            except Exception as exc:
                error = errors.plugin_error(exc, what, self.connection,
                                            self.timeout, self._api)
                if error is None:
                    raise
                raise error

    def _transact(self, commands, only_if=None):
        """Commit ``commands`` (built from the API object) in one txn."""
        api = self._backend()
        with api.transaction(only_if=only_if) as txn:
            for command in commands(api):
                txn.add(command)
        return api

    def add_vif_port(self, bridge, port_name, external_ids,
                     datapath_type=None):
        """Create (or update) a VIF port and its Interface in one transaction.

        The bridge is created when missing; an existing bridge keeps its
        ports.  An existing port keeps its ofport and gets ``external_ids``
        merged into its Interface's, so plugging twice leaves one port.

        :param bridge: integration bridge name, e.g. ``br-int``.
        :param port_name: Port and Interface name; on Windows it must equal
            the Hyper-V switch port's ElementName (OVS
            Documentation/topics/windows.rst, "OVS-port-name").
        :param external_ids: dict of str to str for ``Interface.external_ids``.
        :param datapath_type: ``Bridge.datapath_type`` to set, or None to
            leave the bridge's as it is.
        :returns: :class:`PortStatus` read back after ovs-vswitchd applied
            the change.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        :raises exception.OvsdbRefused: the transaction was refused.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        bridge_args = {'may_exist': True}
        if datapath_type:
            bridge_args['datapath_type'] = datapath_type

        def commands(api):
            return [api.add_br(bridge, **bridge_args),
                    # add_port() applies interface attributes only when it
                    # inserts, so the external_ids go through db_set(),
                    # which merges them into an existing row as well.
                    api.add_port(bridge, port_name, may_exist=True),
                    api.db_set('Interface', port_name,
                               ('external_ids', external_ids))]

        def plug():
            return self._read_status(self._transact(commands), port_name)

        return self._run('adding port %s to %s' % (port_name, bridge), plug)

    @staticmethod
    def _read_status(api, port_name):
        found = api.interface_status(port_name).execute(check_error=True,
                                                        log_errors=False)
        if found is None:
            return PortStatus(None, 'interface missing after commit')
        return PortStatus(*found)

    def delete_port(self, bridge, port_name):
        """Delete a port; a port that does not exist is not an error.

        Whether it exists is decided on a replica in sync with the server
        and after every earlier write's outcome is known, so a port whose
        creation was still in flight is not missed.  A missing port costs
        no transaction, so no wait for ovs-vswitchd either.

        Once ovsdb-server committed the removal, the port is gone for
        neutron-openvswitch-agent and ovs-vswitchd drops it from the
        datapath when it next reconfigures, so an ovs-vswitchd that does
        not apply it within the timeout is logged, not raised.

        :raises exception.OvsdbUnreachable: no answer within the timeout.
        :raises exception.OvsdbRefused: the transaction was refused.
        """
        def unplug():
            api = self._backend()
            self._transact(
                lambda api: [api.del_port(port_name, bridge=bridge,
                                          if_exists=True)],
                only_if=lambda: api.port_exists(port_name))

        what = 'deleting port %s from %s' % (port_name, bridge)
        try:
            self._run(what, unplug)
        except exception.VswitchdNotApplying as exc:
            LOG.warning('OVS port %(port)s is removed from OVSDB, but %(err)s',
                        {'port': port_name, 'err': exc})

    def bridge_exists(self, bridge):
        """Whether ``bridge`` is in this server's Bridge table.

        :param bridge: bridge name, e.g. ``br-int``.
        :returns: bool.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def lookup():
            return bool(self._backend().br_exists(bridge).execute(
                check_error=True, log_errors=False))

        return self._run('looking up bridge %s' % bridge, lookup)

    def port_status(self, port_name):
        """What ovs-vswitchd reports for an Interface now.

        Read from the connection's in-memory copy of the database, which
        ovsdb-server keeps current: no round trip.

        :param port_name: Interface name (the neutron port id).
        :returns: :class:`PortStatus`; ofport None and an error text when
            the Interface does not exist.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def read():
            return self._read_status(self._backend(), port_name)

        return self._run('reading port %s' % port_name, read)

    def replace_vif_port(self, bridge, port_name, external_ids):
        """Delete and add a VIF port again, in one transaction.

        A transaction that changes nothing is not sent to ovsdb-server at
        all (python-ovs ``Transaction.commit`` adds the ``next_cfg``
        increment only with other updates), so plugging an unchanged port
        again does not make ovs-vswitchd reconfigure.  Replacing the rows
        does: ovs-vswitchd then adds the interface again, which is how a
        port it failed to add (``ofport -1``) is retried
        (openvswitch/ovs-issues #343).

        :param bridge: integration bridge name.
        :param port_name: Port and Interface name.
        :param external_ids: dict for ``Interface.external_ids``.
        :returns: :class:`PortStatus` read back after ovs-vswitchd applied
            the change.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def commands(api):
            return [api.del_port(port_name, bridge=bridge, if_exists=True),
                    api.add_port(bridge, port_name, may_exist=True),
                    api.db_set('Interface', port_name,
                               ('external_ids', external_ids))]

        def replace():
            return self._read_status(self._transact(commands), port_name)

        return self._run('adding port %s to %s again' % (port_name, bridge),
                         replace)

    def close(self):
        """Stop the connection thread; the next call reconnects."""
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

    def list_interfaces(self):
        """Every Interface's name and external_ids, in one read.

        ovsdbapp answers reads from the IDL's replica of the database,
        which the connection keeps current through its monitor: once
        connected, this costs no round trip to ovsdb-server.

        :returns: dict of Interface name (str) to its external_ids (dict of
            str to str).
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def read():
            rows = self._backend().db_list(
                'Interface', columns=['name', 'external_ids']).execute(
                    check_error=True)
            return {row['name']: dict(row['external_ids']) for row in rows}

        return self._run('listing interfaces', read)

    def sync_ports(self, add=(), update=(), remove=()):
        """Add, update and delete VIF ports in ONE transaction.

        Nothing is sent when all three are empty.

        :param add: iterable of (bridge, port name, external_ids dict,
            datapath_type or None): each port is created (or kept, when a
            port of that name exists) with its Interface's external_ids
            merged in; each bridge is created when missing, as by
            :meth:`add_vif_port`.
        :param update: iterable of (port name, external_ids dict) merged
            into existing Interfaces' external_ids.
        :param remove: iterable of port names deleted from whichever bridge
            holds them; a missing port is not an error.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        :raises exception.OvsdbRefused: the transaction was refused.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        add, update, remove = list(add), list(update), list(remove)
        if not (add or update or remove):
            return

        def commands(api):
            bridges = {}
            for bridge, _name, _ids, datapath_type in add:
                if bridge not in bridges or datapath_type:
                    bridges[bridge] = datapath_type
            out = []
            for bridge, datapath_type in bridges.items():
                bridge_args = {'may_exist': True}
                if datapath_type:
                    bridge_args['datapath_type'] = datapath_type
                out.append(api.add_br(bridge, **bridge_args))
            for bridge, name, external_ids, _dp in add:
                out.append(api.add_port(bridge, name, may_exist=True))
                out.append(api.db_set('Interface', name,
                                      ('external_ids', external_ids)))
            for name, external_ids in update:
                out.append(api.db_set('Interface', name,
                                      ('external_ids', external_ids)))
            if remove:
                out.append(api.del_ports(remove))
            return out

        self._run('synchronising %d port(s)' % (
            len(add) + len(update) + len(remove)),
            lambda: self._transact(commands))

    def set_root_external_id(self, key, value):
        """Set one key of ``Open_vSwitch.external_ids`` and wait for vswitchd.

        A change that ovs-vswitchd must acknowledge (``next_cfg`` bumped,
        ``cur_cfg`` awaited, as for every port operation): the preflight
        check of ovs-vswitchd.  The value must differ from the
        current one, or python-ovs sends nothing (see
        :meth:`replace_vif_port`).

        :param key: external_ids key (str).
        :param value: str.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        :raises exception.OvsdbRefused: the transaction was refused.
        :raises exception.VswitchdNotApplying: committed, but ovs-vswitchd
            did not apply it within the timeout.
        """
        def write():
            self._transact(lambda api: [api.db_set(
                'Open_vSwitch', '.', ('external_ids', {key: value}))])

        self._run('setting Open_vSwitch external_ids:%s' % key, write)
