"""The only package that speaks OVSDB (ovsdbapp); its face is the port API.

Callers (the plugin) use :class:`OvsdbClient` and the names below, and
never the modules behind them, which hold one job each:

- :mod:`.api`: the port operations, each under one deadline;
- :mod:`.deadline`: the deadline of the operation a thread runs;
- :mod:`.errors`: how an operation failed, and the plugin's exception;
- :mod:`.ssl_files`: the SSL options' files, checked before connecting;
- :mod:`.schema`: the server's schema, fetched within the deadline;
- :mod:`.idl`: python-ovs' replica of the database;
- :mod:`.connection`: ovsdbapp's connection thread, deadline-bound;
- :mod:`.transaction`: an ``ovs-vsctl``-like transaction, deadline-bound;
- :mod:`.impl_idl`: the ovsdbapp API object of one server, and opening it;
- :mod:`.commands`: ovsdbapp commands of the plugin's own.
"""

from compute_hyperv_ovs.os_vif_plugin.ovsdb import api
from compute_hyperv_ovs.os_vif_plugin.ovsdb import ssl_files

OvsdbClient = api.OvsdbClient
PortStatus = api.PortStatus
SYNC_COLUMNS = api.SYNC_COLUMNS
SSL_KEY = ssl_files.SSL_KEY
SSL_CERT = ssl_files.SSL_CERT
SSL_CA_CERT = ssl_files.SSL_CA_CERT
