"""An ``ovs-vsctl``-like transaction that ends at its operation's deadline.

ovsdbapp gives each stage of a transaction its own full timeout
(``Connection.queue_txn``, ``Transaction.commit``, ``do_post_commit``) and
python-ovs' ``Transaction.commit_block`` has none, so the stages that wait
are done here against the one deadline of the operation.

A transaction whose deadline passes before it was sent is never sent: the
connection thread drops it, so a caller told "failed" never finds the port
committed later.  One that was sent and got no answer may still be applied
by ovsdb-server when it answers again; the error says so
(``may_have_written``), and later writes wait until its outcome is known,
so they are composed against a database that includes it.
"""

import queue
import threading

from ovs.db import idl as ovs_idl
from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp.schema.open_vswitch import impl_idl

from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors


class DeadlineTransaction(impl_idl.OvsVsctlTransaction):
    """ovsdbapp's ``ovs-vsctl`` transaction, bound by one deadline.

    Like ovsdbapp's, it bumps ``next_cfg`` and waits for ovs-vswitchd to
    copy it to ``cur_cfg``; unlike it, every wait ends at the deadline, a
    transaction whose caller gave up is never sent, and failures say at
    which stage they happened (:class:`errors.Expired`) or what was
    refused (:class:`errors.Refused`).

    Why it exists, against ovsdbapp's ``schema/open_vswitch/impl_idl.py``
    ``OvsVsctlTransaction`` and ``backend/ovs_idl/transaction.py``
    ``Transaction``, checked against ovsdbapp 2.4.2 and 2.19.0:

    - ``commit`` (``Transaction.commit``, the caller's side) waits for the
      result until the deadline instead of ``timeout``, and remembers that
      its caller gave up, so the connection thread never sends it.
    - ``do_commit`` (``Transaction.do_commit``, the connection thread's
      side) replaces python-ovs ``commit_block`` (no limit) and
      ``idlutils.wait_for_change`` with waits that end at the deadline,
      composes only on a replica in sync with no earlier write in doubt,
      and waits for ``cur_cfg`` itself instead of
      ``OvsVsctlTransaction.post_commit``/``do_post_commit`` (a loop on
      the connection's poller with the full ``timeout`` that only logs a
      timeout).  ovsdbapp's ``pre_commit`` (``next_cfg`` increment,
      ``txn.expected_ifaces``) and each command's ``run_idl`` and
      ``post_commit`` are used as they are.  From 2.4.2 to 2.19.0 only the
      log lines of ``do_commit`` changed (a transaction id) and
      ``wait_for_change`` also waits for ``IDL_S_MONITORING``, which
      ``_wait_in_sync`` here already did; ``pre_commit``, ``commit``,
      ``__init__`` and the command classes are unchanged.

    :param api: :class:`.impl_idl.HostOvsdbApi`.
    :param ovsdb_connection: its :class:`.connection.HostConnection`.
    :param deadline: :class:`.deadline.Deadline` of the operation.
    :param only_if: optional callable run in the connection thread against
        the in-sync replica before anything is composed; when it returns
        False nothing is sent and the result is ``[]``.
    """

    def __init__(self, api, ovsdb_connection, deadline, only_if=None):
        super().__init__(api, ovsdb_connection, timeout=deadline.seconds,
                         check_error=True, log_errors=False)
        self.deadline = deadline
        self.only_if = only_if
        self.stage = errors.QUEUED
        self._stage_lock = threading.Lock()
        self._abandoned = False

    # -- the caller's side --------------------------------------------------

    def commit(self):
        """Queue, and wait for the result until the deadline.

        :returns: the commands' results (list).
        :raises errors.Expired: with the stage the transaction was at.
        :raises errors.Refused: ovsdb-server refused it, or it could not be
            composed.
        """
        self.ovsdb_connection.queue_txn(self)
        try:
            result = self.results.get(timeout=self.deadline.remaining())
        except queue.Empty:
            with self._stage_lock:
                self._abandoned = True
                stage = self.stage
            raise errors.Expired(stage)
        if isinstance(result, idlutils.ExceptionResult):
            raise result.ex
        return result

    # -- the connection thread's side ----------------------------------------

    def _enter(self, stage):
        with self._stage_lock:
            self.stage = stage

    def do_commit(self):
        with self._stage_lock:
            if self._abandoned or self.deadline.expired():
                # Its caller was told it failed: never send it.
                raise errors.Expired(errors.QUEUED)
            self.stage = errors.WAITING
        idl = self.api.idl
        while True:
            self._wait_in_sync(idl)
            if self.only_if is not None and not self.only_if():
                self._enter(errors.DONE)
                return []
            seqno = idl.change_seqno
            txn = ovs_idl.Transaction(idl)
            try:
                # Bumps next_cfg; fails without the Open_vSwitch root row.
                self.pre_commit(txn)
                for command in self.commands:
                    command.run_idl(txn)
            except Exception as exc:
                # Composed against the replica: e.g. RowNotFound for a
                # missing bridge.  Nothing was sent.
                txn.abort()
                raise errors.Refused(str(exc) or type(exc).__name__)
            with self._stage_lock:
                # Checked again here, atomically with the caller's giving
                # up: the wait above can end (ovsdb-server back, replica in
                # sync) after the caller was told "not sent".
                if self._abandoned or self.deadline.expired():
                    txn.abort()
                    raise errors.Expired(errors.QUEUED)
                self.stage = errors.SENT
            status = self._commit(idl, txn)
            if status is None:
                self.ovsdb_connection.in_doubt.append(txn)
                raise errors.Expired(errors.SENT)
            if status == txn.TRY_AGAIN:
                # Lost connection, or a verify failed: nothing applied.
                self._enter(errors.WAITING)
                self._wait_for_change(idl, seqno)
                continue
            if status in (txn.ERROR, txn.NOT_LOCKED, txn.ABORTED):
                raise errors.Refused(errors.ovsdb_error(txn.get_error()))
            if status == txn.SUCCESS:
                for command in self.commands:
                    command.post_commit(txn)
                self._enter(errors.COMMITTED)
                self._wait_for_vswitchd(idl, txn.get_increment_new_value())
            self._enter(errors.DONE)
            return [command.result for command in self.commands]

    def _wait_in_sync(self, idl):
        """Until connected, in sync, and no earlier write is in doubt."""
        in_doubt = self.ovsdb_connection.in_doubt
        while True:
            idl.run()
            # commit() of a transaction that is no longer the IDL's current
            # one only returns its status (python-ovs Transaction.commit).
            in_doubt[:] = [t for t in in_doubt
                           if t.commit() == t.INCOMPLETE]
            if idl.in_sync() and not in_doubt:
                return
            if self.deadline.expired():
                raise errors.Expired(errors.WAITING)
            self.deadline.block(idl.wait)

    def _commit(self, idl, txn):
        """python-ovs ``commit_block``, ending at the deadline (None)."""
        while True:
            status = txn.commit()
            if status != txn.INCOMPLETE:
                return status
            if self.deadline.expired():
                return None
            idl.run()
            self.deadline.block(idl.wait, txn.wait)

    def _wait_for_change(self, idl, seqno):
        while idl.change_seqno == seqno and not idl.run():
            if self.deadline.expired():
                raise errors.Expired(errors.WAITING)
            self.deadline.block(idl.wait)

    def _wait_for_vswitchd(self, idl, next_cfg):
        while True:
            idl.run()
            if self.api.cur_cfg() >= next_cfg:
                return
            if self.deadline.expired():
                raise errors.Expired(errors.COMMITTED)
            self.deadline.block(idl.wait)
