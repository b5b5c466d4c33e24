"""The IDL: python-ovs' replica of one server's database."""

import time

from ovsdbapp.backend.ovs_idl import connection

# Longest wait between two reconnection attempts, in ms.  python-ovs backs
# off up to 8 s, so an operation started just after ovsdb-server came back
# could spend that long before the IDL even tries; a refused attempt on the
# host's own server costs nothing.
MAX_RECONNECT_BACKOFF_MS = 2000


class HostIdl(connection.OvsdbIdl):
    """ovsdbapp's IDL, able to say whether it is connected and in sync.

    Why it exists, against ovsdbapp's
    ``backend/ovs_idl/connection.py`` ``OvsdbIdl`` (a subclass of
    python-ovs ``ovs.db.idl.Idl``), checked against ovsdbapp 2.4.2 and
    2.19.0, where that class is the same for what is used here:

    - ``__init__`` (ovsdbapp defines none; python-ovs ``Idl.__init__``):
      caps the session's reconnection back-off at
      ``MAX_RECONNECT_BACKOFF_MS`` through python-ovs' own
      ``Reconnect.set_backoff`` on the IDL's session (``Idl._session``,
      python-ovs 2.17 and 3.7 alike).
    - ``cooperative_yield`` overrides ovsdbapp's (``time.sleep(0)`` on
      every call) to yield at most once per ``YIELD_INTERVAL``.
    - :meth:`is_connected` and :meth:`in_sync` are new: the transaction
      (:mod:`.transaction`) commits only on a replica in sync, and the
      error mapping (:mod:`.errors`) tells "not connected" from "not in
      sync".  ovsdbapp 2.19.0's ``idlutils.wait_for_change`` now gates on
      the same ``IDL_S_MONITORING`` state; this package does not use it.

    :param remote: OVSDB connection string.
    :param schema_helper: ``ovs.db.idl.SchemaHelper`` with the tables to
        replicate registered (:func:`.schema.helper`).
    """

    # python-ovs calls cooperative_yield() once per row of every update it
    # loads (Idl.__parse_update), and ovsdbapp's yields there
    # (time.sleep(0)), so that a large load does not keep other green
    # threads from running.  Once per row is two thousand switches for a
    # bridge of 1000 ports; under eventlet each lets every ready green
    # thread run, and with native threads each is a trip through the OS
    # scheduler, which on a busy host hands the CPU to another process
    # each time.  Yielding once per this many seconds of loading keeps the
    # other threads as responsive.
    YIELD_INTERVAL = 0.01

    def __init__(self, remote, schema_helper):
        self._last_yield = 0.0
        super().__init__(remote, schema_helper)
        reconnect = self._session.reconnect
        reconnect.set_backoff(reconnect.get_min_backoff(),
                              MAX_RECONNECT_BACKOFF_MS)

    def is_connected(self):
        """Whether the session is connected right now (bool)."""
        return self._session.is_connected()

    def in_sync(self):
        """Connected, and the replica is the server's current snapshot."""
        return self.is_connected() and self.state == self.IDL_S_MONITORING

    def cooperative_yield(self):
        """Yield (``time.sleep(0)``) if none for ``YIELD_INTERVAL`` s."""
        now = time.monotonic()
        if now - self._last_yield >= self.YIELD_INTERVAL:
            time.sleep(0)
            self._last_yield = time.monotonic()
