"""ovsdbapp commands of the plugin's own, where ovsdbapp's cost too much.

Both are subclasses of ovsdbapp's ``backend/ovs_idl/command.py``
``BaseCommand`` (or its ``ReadOnlyCommand``), of which they use
``__init__(api)``, ``execute`` and the ``result`` attribute and implement
``run_idl(txn)``; checked against ovsdbapp 2.4.2 and 2.19.0, where
``command.py`` is the same (``ReadOnlyCommand.execute`` runs ``run_idl``
under ``Connection.lock`` in both).
"""

from ovsdbapp.backend.ovs_idl import command
from ovsdbapp.backend.ovs_idl import idlutils


class DelPortsCommand(command.BaseCommand):
    """Delete ports by name, from whichever bridge holds them.

    ovsdbapp's ``del_port`` (``schema/open_vswitch/commands.py``
    ``DelPortCommand``) reads the whole ``Bridge.ports`` column once or
    twice per port, which on a bridge of 1000 ports makes deleting 100 of
    them take seconds; this reads each bridge's ports once.  Ports that do
    not exist are skipped.  The Interfaces go with their Port, as with
    ``ovs-vsctl del-port``.
    ``DelPortCommand`` is the same in ovsdbapp 2.4.2 and 2.19.0.

    :param api: :class:`.impl_idl.HostOvsdbApi`.
    :param names: iterable of port names (str).
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


class InterfaceStatusCommand(command.ReadOnlyCommand):
    """An Interface's ``ofport`` and ``error``, found by its name's index.

    ovsdbapp's ``db_list('Interface', [name], columns=...)``
    (``DbListCommand.run_idl``, 2.4.2 and 2.19.0 alike) reads the name of
    every Interface row to find one, and python-ovs decodes each on
    access: on a bridge of 1000 ports that made the read-back after each
    plug cost as much as a tenth of the plug (``tox -e bench``).  This
    looks the row up in the IDL's index on ``name`` (made by ovsdbapp's
    ``Backend.autocreate_indices``), as ovsdbapp's own ``lookup`` does.

    :param api: :class:`.impl_idl.HostOvsdbApi`.
    :param name: Interface name (str).
    :ivar result: None when there is no such Interface, else (ofport,
        error): ofport an int or None when unset, error a str or None.
    """

    def __init__(self, api, name):
        super().__init__(api)
        self.name = name

    def run_idl(self, txn):
        row = idlutils.row_by_value(self.api.idl, 'Interface', 'name',
                                    self.name, None)
        if row is None:
            self.result = None
            return
        # Optional columns are lists of zero or one value in python-ovs.
        self.result = (row.ofport[0] if row.ofport else None,
                       row.error[0] if row.error else None)
