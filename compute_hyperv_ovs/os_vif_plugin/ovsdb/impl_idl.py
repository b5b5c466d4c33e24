"""The ovsdbapp API object of one ovsdb-server: opening it, and its commands.

ovsdbapp splits what it promises (``schema/open_vswitch/api.py``) from its
IDL implementation (``schema/open_vswitch/impl_idl.py``); this is that
implementation, bound to one connection of its own, with transactions that
end at their operation's deadline.  Only :mod:`.api` uses it.
"""

from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp.schema.open_vswitch import impl_idl

from compute_hyperv_ovs.os_vif_plugin.ovsdb import commands
from compute_hyperv_ovs.os_vif_plugin.ovsdb import connection
from compute_hyperv_ovs.os_vif_plugin.ovsdb import deadline as deadlines
from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors
from compute_hyperv_ovs.os_vif_plugin.ovsdb import idl as host_idl
from compute_hyperv_ovs.os_vif_plugin.ovsdb import schema
from compute_hyperv_ovs.os_vif_plugin.ovsdb import ssl_files
from compute_hyperv_ovs.os_vif_plugin.ovsdb import transaction


class HostOvsdbApi(impl_idl.OvsdbIdl):
    """``impl_idl.OvsdbIdl`` with its own connection and deadline txns.

    Why it exists, against ovsdbapp's ``schema/open_vswitch/impl_idl.py``
    ``OvsdbIdl`` and ``backend/ovs_idl/__init__.py`` ``Backend``, checked
    against ovsdbapp 2.4.2 and 2.19.0 (both files are the same in the
    two):

    - ``ovsdb_connection`` overrides ``Backend.ovsdb_connection``, which
      stores the connection on the class and sets it only once per
      process, so a second API object silently talks to the first one's
      server.  Each driver (one per nova-compute service) needs its own.
    - ``create_transaction`` overrides ``OvsdbIdl.create_transaction``
      (an ``OvsVsctlTransaction`` with the connection's timeout) to return
      a :class:`.transaction.DeadlineTransaction` bound by the current
      operation's deadline.
    - :meth:`cur_cfg`, :meth:`vswitchd_behind`, :meth:`in_sync`,
      :meth:`is_connected`, :meth:`port_exists`,
      :meth:`interface_status` and :meth:`del_ports` are new; ovsdbapp's own
      ``_ovs`` (the root row) raises IndexError on an empty table, where
      these answer 0 or False.

    ``Backend.__init__(connection, start=False)`` is ovsdbapp's: it makes
    the indexes (``autocreate_indices``) without starting the connection.

    Open one with :meth:`open`.
    """

    @property
    def ovsdb_connection(self):
        return self._own_connection

    @ovsdb_connection.setter
    def ovsdb_connection(self, conn):
        self._own_connection = conn

    @classmethod
    def open(cls, connection_string, timeout, deadline, columns=None,
             ssl_file_paths=None):
        """Connect, load the first snapshot, start the connection thread.

        Everything is done in the caller's thread within ``deadline``:
        ovsdbapp's ``Connection.start`` would wait a full timeout of its
        own for the first snapshot (``idlutils.wait_for_change``).

        :param connection_string: ``tcp:IP:PORT``, ``ssl:IP:PORT`` or
            ``unix:PATH``.
        :param timeout: seconds, the connection's (for :meth:`close` and
            transactions made outside an operation).
        :param deadline: :class:`.deadline.Deadline` of the operation.
        :param columns: as for :func:`.schema.helper`.
        :param ssl_file_paths: dict of ``ssl_files.OPTIONS`` to paths, for
            an ``ssl:`` connection.
        :returns: a connected :class:`HostOvsdbApi`.
        :raises errors.Unreachable: no answer by the deadline.
        :raises errors.SslError: an SSL file or the handshake is wrong.
        """
        if schema.uses_ssl(connection_string):
            ssl_files.use(ssl_file_paths or {})
        helper = schema.helper(connection_string, deadline, columns)
        idl = host_idl.HostIdl(connection_string, helper)
        try:
            conn = connection.HostConnection(idl, timeout)
            # Not started yet: its indexes must exist before the first
            # snapshot arrives (python-ovs indexes only rows added later).
            api = cls(conn, start=False)
            while True:
                idl.run()
                if idl.has_ever_connected():
                    break
                if deadline.expired():
                    raise errors.Unreachable('no answer within %s s'
                                             % deadline.seconds)
                deadline.block(idl.wait)
            # Starts the connection thread; waits no more.
            conn.start()
            return api
        except Exception:
            idl.close()
            raise

    def close(self):
        """Stop the connection thread, within the connection's timeout.

        :returns: True when the thread ended in time.
        """
        return self.ovsdb_connection.stop()

    def is_running(self):
        """Whether the connection thread runs (bool)."""
        return bool(self.ovsdb_connection.is_running)

    def create_transaction(self, check_error=False, log_errors=True,
                           only_if=None, **kwargs):
        deadline = deadlines.current_or_new(self.ovsdb_connection.timeout)
        return transaction.DeadlineTransaction(
            self, self.ovsdb_connection, deadline, only_if=only_if)

    def del_ports(self, names):
        """Command deleting ports by name from any bridge (one pass).

        :param names: iterable of port names; missing ones are skipped.
        :returns: :class:`.commands.DelPortsCommand`.
        """
        return commands.DelPortsCommand(self, names)

    def interface_status(self, name):
        """Command reading an Interface's ofport and error (no round trip).

        :param name: Interface name.
        :returns: :class:`.commands.InterfaceStatusCommand`.
        """
        return commands.InterfaceStatusCommand(self, name)

    def port_exists(self, name):
        """Whether the replica holds a Port named ``name`` (bool)."""
        return idlutils.row_by_value(self.idl, 'Port', 'name', name,
                                     None) is not None

    def _root(self):
        rows = self.idl.tables['Open_vSwitch'].rows
        return next(iter(rows.values()), None)

    def cur_cfg(self):
        """``Open_vSwitch.cur_cfg`` in the replica (int; 0 without a row)."""
        root = self._root()
        return root.cur_cfg if root is not None else 0

    def vswitchd_behind(self):
        """Whether ovs-vswitchd has yet to apply a committed change."""
        root = self._root()
        return root is not None and root.cur_cfg < root.next_cfg

    def is_connected(self):
        """Whether the IDL's session is connected right now (bool)."""
        return self.idl.is_connected()

    def in_sync(self):
        """Connected, and the replica is the server's current snapshot."""
        return self.idl.in_sync()
