"""ovsdbapp's connection thread, bound by each operation's deadline."""

import queue
import threading

from oslo_log import log as logging
from ovsdbapp.backend.ovs_idl import connection

from compute_hyperv_ovs.os_vif_plugin.ovsdb import deadline as deadlines
from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors

LOG = logging.getLogger(__name__)


class DeadlineLock(object):
    """The connection's RLock; acquired within the caller's deadline.

    ovsdbapp runs read-only commands under ``Connection.lock``
    (``backend/ovs_idl/command.py`` ``BaseCommand.execute``, and
    ``Backend.lookup``), which the connection thread holds while it
    commits (``Connection.run``); a read behind a stuck commit would wait
    without limit.  Callers with a deadline give up at it.  Checked
    against ovsdbapp 2.4.2 and 2.19.0: both use the lock only as a context
    manager (``with connection.lock``), in those places and in
    ``Connection.start``.

    :raises errors.Expired: (stage ``QUEUED``) the deadline passed first.
    """

    def __init__(self):
        self._lock = threading.RLock()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        deadline = deadlines.current()
        if deadline is None:
            self._lock.acquire()
        elif not self._lock.acquire(timeout=deadline.remaining()):
            raise errors.Expired(errors.QUEUED)
        return self

    def __exit__(self, *exc_info):
        self._lock.release()


class HostConnection(connection.Connection):
    """ovsdbapp's connection, queueing within each transaction's deadline.

    Why it exists, against ovsdbapp's ``backend/ovs_idl/connection.py``
    ``Connection``, checked against ovsdbapp 2.4.2 and 2.19.0:

    - ``__init__`` replaces ``lock`` with a :class:`DeadlineLock`.
    - ``queue_txn`` overrides ovsdbapp's, which waits for room in the
      queue of one for the connection's whole ``timeout`` and raises
      ``TimeoutException``; here the wait ends at the transaction's own
      deadline (``txn.deadline``, :class:`.transaction.DeadlineTransaction`).
    - ``start`` names the thread ovsdbapp's ``start`` made
      (``THREAD_NAME``), so a thread left behind can be told in a dump.
    - ``stop`` overrides ovsdbapp's (see :meth:`stop`).

    Otherwise ``start`` and ``run`` are ovsdbapp's.  2.19.0 adds to them
    the lock notifications (``_check_lock_change``, a no-op for an IDL
    without a lock, as here), ``force_reconnect`` (not used) and a
    ``__del__`` that closes the queue's wake-up pipe, which 2.4.2 left
    open; nothing here depends on what changed.  ``start`` does not wait
    for the first snapshot here, because
    :meth:`.impl_idl.HostOvsdbApi.open` has loaded it already within the
    operation's deadline (``idl.has_ever_connected`` is then true, in both
    versions).

    :param idl: :class:`.idl.HostIdl`, not run yet.
    :param timeout: seconds; the longest :meth:`stop` waits.
    :ivar in_doubt: python-ovs transactions sent by operations that gave
        up before the answer came; touched by the connection thread only.
    """

    THREAD_NAME = 'ovsdb-connection'

    def __init__(self, idl, timeout):
        super().__init__(idl, timeout)
        self.lock = DeadlineLock()
        self.in_doubt = []

    def start(self):
        """Start the connection thread (ovsdbapp's), named ``THREAD_NAME``."""
        started = super().start()
        if self.thread is not None:
            self.thread.name = self.THREAD_NAME
        return started

    def queue_txn(self, txn):
        """Queue ``txn`` for the connection thread, within its deadline.

        :raises errors.Expired: (``QUEUED``) the queue stayed full.
        """
        try:
            self.txns.put(txn, timeout=txn.deadline.remaining())
        except queue.Full:
            raise errors.Expired(errors.QUEUED)

    def stop(self, timeout=None):
        """Stop the connection thread, waiting ``timeout`` s at most.

        ovsdbapp's ``stop()`` puts its wake-up into a queue of one without
        a limit and then joins the thread, so behind a transaction the
        thread never takes it never returns (seen as a test that hung in
        its clean-up after ovsdb-server had been paused).  Here both waits
        end after the connection's timeout; the thread is a daemon and
        ends by itself once it sees ``is_running`` is False.

        :param timeout: seconds, or None for the connection's timeout.
        :returns: True when the thread ended in time.
        """
        if not self.is_running:
            return True
        self.is_running = False
        timeout = self.timeout if timeout is None else timeout
        try:
            self.txns.put(None, timeout=timeout)
        except queue.Full:
            pass
        self.thread.join(timeout)
        if self.thread.is_alive():
            LOG.warning('OVSDB connection thread did not stop within %s s',
                        timeout)
            return False
        self.thread = None
        return True
