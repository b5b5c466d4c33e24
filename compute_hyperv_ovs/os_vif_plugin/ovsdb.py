"""The only module that speaks OVSDB.

It turns "this port, on this bridge, with these external_ids" into ovsdbapp
commands against one ovsdb-server, and reads back what ovs-vswitchd made of
the port.  Nothing else in the package imports ovsdbapp.
"""

import concurrent.futures
import threading

from oslo_log import log as logging
from ovsdbapp.backend.ovs_idl import command as ovs_command
from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp import exceptions as ovsdbapp_exc
from ovsdbapp.schema.open_vswitch import impl_idl

from compute_hyperv_ovs.os_vif_plugin import exception

LOG = logging.getLogger(__name__)

SCHEMA = 'Open_vSwitch'
# QoS is left out on purpose: Windows OVS has no tc-based QoS, and the plug
# never touches it (os-vif 3.2.0 skipped QoS on win32 too).
TABLES = ('Open_vSwitch', 'Bridge', 'Port', 'Interface')


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


class _PerInstanceOvsdbIdl(impl_idl.OvsdbIdl):
    """``impl_idl.OvsdbIdl`` that keeps its connection on the instance.

    ovsdbapp's ``Backend`` stores the connection on the class and only sets
    it once per process, so a second API object silently talks to the first
    one's server.  Each driver (one per nova-compute service) needs its own.
    """

    @property
    def ovsdb_connection(self):
        return self._own_connection

    @ovsdb_connection.setter
    def ovsdb_connection(self, conn):
        self._own_connection = conn


class OvsdbClient(object):
    """Port operations against one ovsdb-server.

    The connection is opened on first use, so a compute service starts even
    while OVSDB is down, and is kept until :meth:`close`.

    :param connection: OVSDB connection string (``tcp:IP:PORT``,
        ``ssl:IP:PORT`` or ``unix:PATH``; on Windows ``unix:`` is a named
        pipe).
    :param timeout: seconds any single OVSDB operation may take, including
        connecting and waiting for ovs-vswitchd to apply a change.
    """

    def __init__(self, connection, timeout):
        self.connection = connection
        self.timeout = timeout
        self._api = None
        self._lock = threading.Lock()

    def _connect(self):
        # get_schema_helper() blocks in python-ovs' Stream.open_block()
        # without a deadline; run it aside so a black-holed remote cannot
        # hold the caller past the configured timeout.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        future = pool.submit(idlutils.get_schema_helper, self.connection,
                             SCHEMA)
        pool.shutdown(wait=False)
        try:
            helper = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise exception.OvsdbUnreachable(
                connection=self.connection,
                reason='no schema received within %s s' % self.timeout)
        except Exception as exc:
            raise exception.OvsdbUnreachable(connection=self.connection,
                                             reason=str(exc))
        for table in TABLES:
            helper.register_table(table)
        idl = connection.OvsdbIdl(self.connection, helper)
        conn = connection.Connection(idl=idl, timeout=self.timeout)
        try:
            return _PerInstanceOvsdbIdl(conn)
        except ovsdbapp_exc.OvsdbConnectionUnavailable as exc:
            conn.stop()
            raise exception.OvsdbUnreachable(connection=self.connection,
                                             reason=str(exc))

    @property
    def api(self):
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _run(self, what, func):
        """Run ``func`` and turn transport failures into OvsdbUnreachable."""
        try:
            return func()
        except exception.OvsdbUnreachable:
            raise
        except ovsdbapp_exc.TimeoutException as exc:
            raise exception.OvsdbUnreachable(
                connection=self.connection,
                reason='%s did not finish within %s s (%s)' % (
                    what, self.timeout, exc))
        except RuntimeError as exc:
            # ovsdbapp's do_commit() raises a bare RuntimeError("OVS
            # transaction timed out") when it keeps getting TRY_AGAIN, which
            # is what a lost connection looks like.
            raise exception.OvsdbUnreachable(
                connection=self.connection,
                reason='%s failed: %s' % (what, exc))

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
        :raises ovsdbapp.exceptions.OvsdbAppException: the transaction was
            refused.
        """
        def plug():
            api = self.api
            bridge_args = {'may_exist': True}
            if datapath_type:
                bridge_args['datapath_type'] = datapath_type
            with api.transaction(check_error=True) as txn:
                txn.add(api.add_br(bridge, **bridge_args))
                # add_port() applies interface attributes only when it
                # inserts, so the external_ids go through db_set(), which
                # merges them into an existing row as well.
                txn.add(api.add_port(bridge, port_name, may_exist=True))
                txn.add(api.db_set('Interface', port_name,
                                   ('external_ids', external_ids)))
            return self._read_status(api, port_name)

        return self._run('adding port %s to %s' % (port_name, bridge), plug)

    @staticmethod
    def _read_status(api, port_name):
        rows = api.db_list('Interface', [port_name],
                           columns=['ofport', 'error'],
                           if_exists=True).execute(check_error=True)
        if not rows:
            return PortStatus(None, 'interface missing after commit')
        row = rows[0]
        # Optional OVSDB columns come back as [] when unset.
        ofport = row['ofport'] if row['ofport'] != [] else None
        error = row['error'] if row['error'] != [] else None
        return PortStatus(ofport, error)

    def delete_port(self, bridge, port_name):
        """Delete a port; a port that does not exist is not an error.

        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def unplug():
            api = self.api
            api.del_port(port_name, bridge=bridge,
                         if_exists=True).execute(check_error=True)

        self._run('deleting port %s from %s' % (port_name, bridge), unplug)

    def bridge_exists(self, bridge):
        """Whether ``bridge`` is in this server's Bridge table.

        :param bridge: bridge name, e.g. ``br-int``.
        :returns: bool.
        :raises exception.OvsdbUnreachable: no answer within the timeout.
        """
        def lookup():
            return bool(self.api.br_exists(bridge).execute(check_error=True))

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
            return self._read_status(self.api, port_name)

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
        def replace():
            api = self.api
            with api.transaction(check_error=True) as txn:
                txn.add(api.del_port(port_name, bridge=bridge,
                                     if_exists=True))
                txn.add(api.add_port(bridge, port_name, may_exist=True))
                txn.add(api.db_set('Interface', port_name,
                                   ('external_ids', external_ids)))
            return self._read_status(api, port_name)

        return self._run('adding port %s to %s again' % (port_name, bridge),
                         replace)

    def close(self):
        """Stop the connection thread; the next call reconnects."""
        with self._lock:
            if self._api is not None:
                self._api.ovsdb_connection.stop()
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
            rows = self.api.db_list(
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
        :raises ovsdbapp.exceptions.OvsdbAppException: the transaction was
            refused.
        """
        add, update, remove = list(add), list(update), list(remove)
        if not (add or update or remove):
            return

        def write():
            api = self.api
            with api.transaction(check_error=True) as txn:
                bridges = {}
                for bridge, _name, _ids, datapath_type in add:
                    if bridge not in bridges or datapath_type:
                        bridges[bridge] = datapath_type
                for bridge, datapath_type in bridges.items():
                    bridge_args = {'may_exist': True}
                    if datapath_type:
                        bridge_args['datapath_type'] = datapath_type
                    txn.add(api.add_br(bridge, **bridge_args))
                for bridge, name, external_ids, _dp in add:
                    txn.add(api.add_port(bridge, name, may_exist=True))
                    txn.add(api.db_set('Interface', name,
                                       ('external_ids', external_ids)))
                for name, external_ids in update:
                    txn.add(api.db_set('Interface', name,
                                       ('external_ids', external_ids)))
                if remove:
                    txn.add(_DelPortsCommand(api, remove))

        self._run('synchronising %d port(s)' % (
            len(add) + len(update) + len(remove)), write)


class _DelPortsCommand(ovs_command.BaseCommand):
    """Delete ports by name, from whichever bridge holds them.

    ovsdbapp's ``del_port`` reads the whole ``Bridge.ports`` column once or
    twice per port, which on a bridge of 1000 ports makes deleting 100 of
    them take seconds; this reads each bridge's ports once.  Ports that do
    not exist are skipped.  The Interfaces go with their Port, as with
    ``ovs-vsctl del-port``.
    """

    def __init__(self, api, names):
        super().__init__(api)
        self.names = list(names)

    def run_idl(self, txn):
        ports = {}
        for name in self.names:
            port = idlutils.row_by_value(self.api.idl, 'Port', 'name', name,
                                         None)
            if port is not None:
                ports[port.uuid] = port
        if not ports:
            return
        for bridge in self.api.tables['Bridge'].rows.values():
            for port in bridge.ports:
                if port.uuid in ports:
                    bridge.delvalue('ports', port)
        for port in ports.values():
            for interface in port.interfaces:
                interface.delete()
            port.delete()
