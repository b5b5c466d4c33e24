"""The only module that speaks OVSDB.

It turns "this port, on this bridge, with these external_ids" into ovsdbapp
commands against one ovsdb-server, and reads back what ovs-vswitchd made of
the port.  Nothing else in the package imports ovsdbapp.

Time: every public operation has one deadline, ``timeout`` seconds from
the moment it is called, and everything it waits for counts against it:
connecting (schema fetch and first database snapshot), waiting behind
another operation (ovsdbapp's connection has one transaction queue and one
thread), the round trip to ovsdb-server, and ovs-vswitchd applying the
change (``Open_vSwitch.cur_cfg`` reaching ``next_cfg``).  ovsdbapp 2.4.2
gives each of these stages its own full timeout instead (``Connection.start``,
``Connection.queue_txn``, ``Transaction.commit``, ``do_post_commit``) and
python-ovs' ``Transaction.commit_block`` has none, so the stages that wait
are done here against the deadline.

A transaction whose deadline passes before it was sent is never sent: the
connection thread drops it, so a caller told "failed" never finds the port
committed later.  One that was sent and got no answer may still be applied
by ovsdb-server when it answers again; the error says so
(``may_have_written``), and later writes wait until its outcome is known,
so they are composed against a database that includes it.

Errors are the plugin's own (:mod:`exception`), one per culprit:
ovsdb-server not answering, ovsdb-server refusing, ovs-vswitchd not
applying.
"""

import errno
import json
import os
import queue
import ssl
import threading
import time

from oslo_log import log as logging
from ovsdbapp.backend.ovs_idl import command as ovs_command

from ovs.db import idl as ovs_idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream
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

# Where a transaction was when its deadline passed.  Nothing was sent in
# the first two; ovsdb-server may have applied the third; it applied the
# fourth.
QUEUED = 'queued'        # behind another operation, not yet started
WAITING = 'waiting'      # waiting for a connection in sync with the server
SENT = 'sent'            # sent to ovsdb-server, no answer yet
COMMITTED = 'committed'  # committed, ovs-vswitchd has not applied it yet
DONE = 'done'

# python-ovs reports EAGAIN as WSAEWOULDBLOCK on Windows.
_WOULD_BLOCK = (errno.EAGAIN, getattr(errno, 'WSAEWOULDBLOCK', errno.EAGAIN))

# The deadline of the operation the current (green) thread is running; the
# connection thread has none and waits without one.
_current = threading.local()


class _Deadline(object):
    """A point in time, ``seconds`` from now (monotonic clock)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        """Seconds left, never negative."""
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end

    def block(self, *waiters):
        """Block until one of ``waiters`` (``f(poller)``) wakes or the end.

        python-ovs' poller is green under eventlet monkey patching (it
        falls back to the patched ``select``), so this yields there.
        """
        poller = ovs.poller.Poller()
        for wait in waiters:
            wait(poller)
        poller.timer_wait(int(self.remaining() * 1000))
        poller.block()


def _deadline():
    return getattr(_current, 'deadline', None)


class _Expired(Exception):
    """The operation's deadline passed at ``stage``."""

    def __init__(self, stage):
        super().__init__(stage)
        self.stage = stage


class _Refused(Exception):
    """ovsdb-server refused the transaction, or it could not be composed."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _Unreachable(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _SslError(Exception):
    """An SSL setting makes the connection impossible; ``option`` at fault."""

    def __init__(self, option, reason):
        super().__init__(option, reason)
        self.option = option
        self.reason = reason


# The SSL options, as neutron-openvswitch-agent's [OVS] ones (neutron
# conf/agent/ovs_conf.py): the client's private key, its certificate, and
# the CA certificate the server's certificate must be signed by.
SSL_KEY = 'ssl_key_file'
SSL_CERT = 'ssl_cert_file'
SSL_CA_CERT = 'ssl_ca_cert_file'


def _check_ssl_files(files):
    """Check the three SSL files, before anything connects with them.

    python-ovs reads them only when a stream opens (``SSLStream._open``),
    and then fails with an exception (not an error code) that names no
    file; its IDL would retry that for ever.  Each file must be set, be a
    readable file, and hold what its option says; the key must be the
    certificate's.  Nothing of a file's contents goes into a message.

    :param files: dict of option name (``SSL_KEY``...) to path or None.
    :raises _SslError: naming the first option at fault.
    """
    for option in (SSL_KEY, SSL_CERT, SSL_CA_CERT):
        path = files.get(option)
        if not path:
            raise _SslError(option, 'is not set; an ssl: ovsdb_connection '
                            'needs ssl_key_file, ssl_cert_file and '
                            'ssl_ca_cert_file')
        if not os.path.exists(path):
            raise _SslError(option, '%s: no such file' % path)
        try:
            with open(path, 'rb') as f:
                f.read(1)
        except OSError as exc:
            raise _SslError(option, '%s: cannot be read (%s)'
                            % (path, exc.strerror or type(exc).__name__))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for option, what in ((SSL_CA_CERT, 'a PEM CA certificate'),
                         (SSL_CERT, 'a PEM certificate')):
        try:
            context.load_verify_locations(cafile=files[option])
        except (ssl.SSLError, ValueError):
            raise _SslError(option, '%s: not %s' % (files[option], what))
    try:
        context.load_cert_chain(files[SSL_CERT], files[SSL_KEY])
    except (ssl.SSLError, ValueError):
        raise _SslError(SSL_KEY, '%s: not a PEM private key without a '
                        'passphrase, or not the key of ssl_cert_file'
                        % files[SSL_KEY])


def _ovsdb_error(text):
    """``{"error": E, "details": D}`` as "E: D's first sentence"."""
    try:
        error = json.loads(text)
        reason = error['error']
        details = error.get('details')
    except (ValueError, TypeError, KeyError):
        return text
    if details:
        reason += ': ' + details.split('.  ')[0]
    return reason


def _strerror(error):
    if error == ovs.jsonrpc.EOF:
        return 'connection closed'
    return os.strerror(error).lower()


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


def _fetch_schema(remote, deadline):
    """The schema helper of ``remote``'s Open_vSwitch database.

    ovsdbapp's ``idlutils.get_schema_helper`` blocks without a deadline
    (python-ovs ``Stream.open_block`` and ``transact_block``), so a
    black-holed remote held its caller, and a thread run aside to bound it
    leaked with its socket.  This does the same exchange without blocking,
    in the caller's thread, and always closes the stream.

    :raises _Unreachable: refused, closed, or no answer by the deadline.
    :raises _SslError: an ``ssl:`` remote failed the SSL handshake, or
        closed the connection right after it (TLS 1.3 servers check the
        client's certificate then).
    """
    error, stream = ovs.stream.Stream.open(remote)
    if error:
        raise _Unreachable(_strerror(error))
    rpc = None
    try:
        while True:
            error = stream.connect()
            if error not in _WOULD_BLOCK:
                break
            if deadline.expired():
                raise _Unreachable('no answer within %s s' % deadline.seconds)
            stream.run()
            deadline.block(stream.run_wait, stream.connect_wait)
        if error and remote.startswith('ssl:') and error not in (
                errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                errno.ENETUNREACH):
            # TCP connected, the SSL handshake failed; python-ovs
            # (SSLStream.connect) keeps only an errno of the reason.
            raise _SslError(SSL_CA_CERT + ' or ' + SSL_CERT,
                            'refused in the SSL handshake (%s): the '
                            'server\'s certificate must be signed by '
                            'ssl_ca_cert_file, ours by its --ca-cert'
                            % _strerror(error))
        if error:
            raise _Unreachable(_strerror(error))
        rpc = ovs.jsonrpc.Connection(stream)
        request = ovs.jsonrpc.Message.create_request('get_schema', [SCHEMA])
        error = rpc.send(request)
        while not error:
            rpc.run()
            error, reply = rpc.recv()
            if error in _WOULD_BLOCK:
                if deadline.expired():
                    raise _Unreachable('no answer within %s s'
                                       % deadline.seconds)
                deadline.block(rpc.wait, rpc.recv_wait)
                error = 0
                continue
            if error or reply is None or reply.id != request.id:
                continue
            if reply.error:
                raise _Unreachable('no %s database: %s' % (SCHEMA,
                                                           reply.error))
            return idlutils.create_schema_helper(reply.result)
        if remote.startswith('ssl:') and error not in (
                ovs.jsonrpc.EOF, errno.ECONNRESET, errno.ETIMEDOUT):
            # TLS 1.3: the server checks our certificate after the client
            # finished its handshake, and closes on one it does not trust
            # (measured: ENOTCONN); a server that dies gives EOF or
            # ECONNRESET instead.
            raise _SslError(SSL_CERT, 'not accepted: closed after the SSL '
                            'handshake (%s); sign it with the CA of '
                            'ovsdb-server\'s --ca-cert' % _strerror(error))
        raise _Unreachable(_strerror(error))
    finally:
        if rpc is not None:
            rpc.close()
        else:
            stream.close()


# Longest wait between two reconnection attempts, in ms.  python-ovs backs
# off up to 8 s, so an operation started just after ovsdb-server came back
# could spend that long before the IDL even tries; a refused attempt on the
# host's own server costs nothing.
MAX_RECONNECT_BACKOFF_MS = 2000


class _HostIdl(connection.OvsdbIdl):
    """The IDL, able to say whether its session is connected right now.

    Its session retries at least every ``MAX_RECONNECT_BACKOFF_MS`` after
    the connection is lost.
    """

    def __init__(self, remote, schema_helper):
        super().__init__(remote, schema_helper)
        reconnect = self._session.reconnect
        reconnect.set_backoff(reconnect.get_min_backoff(),
                              MAX_RECONNECT_BACKOFF_MS)

    def is_connected(self):
        return self._session.is_connected()

    def in_sync(self):
        """Connected, and the replica is the server's current snapshot."""
        return self.is_connected() and self.state == self.IDL_S_MONITORING

    # python-ovs calls cooperative_yield() once per row of every update it
    # loads, and ovsdbapp's yields there (time.sleep(0)), so that a large
    # load does not keep other green threads from running.  Once per row
    # is two thousand switches for a bridge of 1000 ports; under eventlet
    # each lets every ready green thread run, and with native threads each
    # is a trip through the OS scheduler, which on a busy host hands the
    # CPU to another process each time.  Yielding once per this many
    # seconds of loading keeps the other threads as responsive.
    YIELD_INTERVAL = 0.01

    def cooperative_yield(self):
        """Yield (``time.sleep(0)``) if none for ``YIELD_INTERVAL`` s."""
        now = time.monotonic()
        if now - getattr(self, '_last_yield', 0.0) >= self.YIELD_INTERVAL:
            time.sleep(0)
            self._last_yield = time.monotonic()


class _DeadlineLock(object):
    """The connection's RLock; acquired within the caller's deadline.

    ovsdbapp runs read-only commands under ``Connection.lock``, which the
    connection thread holds while it commits; a read behind a stuck commit
    would wait without limit.  Callers with a deadline give up at it.
    """

    def __init__(self):
        self._lock = threading.RLock()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        deadline = _deadline()
        if deadline is None:
            self._lock.acquire()
        elif not self._lock.acquire(timeout=deadline.remaining()):
            raise _Expired(QUEUED)
        return self

    def __exit__(self, *exc_info):
        self._lock.release()


class _Connection(connection.Connection):
    """ovsdbapp's connection, queueing within each transaction's deadline.

    :ivar in_doubt: python-ovs transactions sent by operations that gave
        up before the answer came; touched by the connection thread only.
    """

    def __init__(self, idl, timeout):
        super().__init__(idl, timeout)
        self.lock = _DeadlineLock()
        self.in_doubt = []

    def queue_txn(self, txn):
        try:
            self.txns.put(txn, timeout=txn.deadline.remaining())
        except queue.Full:
            raise _Expired(QUEUED)

    def stop(self, timeout=None):
        """Stop the connection thread, waiting ``timeout`` s at most.

        ovsdbapp's ``stop()`` puts its wake-up into a queue of one and
        joins the thread without a limit, so behind a transaction the
        thread never takes it never returns (seen as a test that hung in
        its clean-up after ovsdb-server had been paused).  Here both waits
        end after the connection's timeout; the thread is a daemon and
        ends by itself once it sees ``is_running`` is False.

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


class _Transaction(impl_idl.OvsVsctlTransaction):
    """An ``ovs-vsctl``-like transaction bound by its operation's deadline.

    Like ovsdbapp's, it bumps ``next_cfg`` and waits for ovs-vswitchd to
    copy it to ``cur_cfg``; unlike it, every wait ends at the deadline, a
    transaction whose caller gave up is never sent, and failures say at
    which stage they happened (:class:`_Expired`) or what was refused
    (:class:`_Refused`).

    :param only_if: optional callable run in the connection thread against
        the in-sync replica before anything is composed; when it returns
        False nothing is sent and the result is ``[]``.
    """

    def __init__(self, api, ovsdb_connection, deadline, only_if=None):
        super().__init__(api, ovsdb_connection, timeout=deadline.seconds,
                         check_error=True, log_errors=False)
        self.deadline = deadline
        self.only_if = only_if
        self.stage = QUEUED
        self._stage_lock = threading.Lock()
        self._abandoned = False

    # -- the caller's side --------------------------------------------------

    def commit(self):
        self.ovsdb_connection.queue_txn(self)
        try:
            result = self.results.get(timeout=self.deadline.remaining())
        except queue.Empty:
            with self._stage_lock:
                self._abandoned = True
                stage = self.stage
            raise _Expired(stage)
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
                raise _Expired(QUEUED)
            self.stage = WAITING
        idl = self.api.idl
        while True:
            self._wait_in_sync(idl)
            if self.only_if is not None and not self.only_if():
                self._enter(DONE)
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
                raise _Refused(str(exc) or type(exc).__name__)
            with self._stage_lock:
                # Checked again here, atomically with the caller's giving
                # up: the wait above can end (ovsdb-server back, replica in
                # sync) after the caller was told "not sent".
                if self._abandoned or self.deadline.expired():
                    txn.abort()
                    raise _Expired(QUEUED)
                self.stage = SENT
            status = self._commit(idl, txn)
            if status is None:
                self.ovsdb_connection.in_doubt.append(txn)
                raise _Expired(SENT)
            if status == txn.TRY_AGAIN:
                # Lost connection, or a verify failed: nothing applied.
                self._enter(WAITING)
                self._wait_for_change(idl, seqno)
                continue
            if status in (txn.ERROR, txn.NOT_LOCKED, txn.ABORTED):
                raise _Refused(_ovsdb_error(txn.get_error()))
            if status == txn.SUCCESS:
                for command in self.commands:
                    command.post_commit(txn)
                self._enter(COMMITTED)
                self._wait_for_vswitchd(idl, txn.get_increment_new_value())
            self._enter(DONE)
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
                raise _Expired(WAITING)
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
                raise _Expired(WAITING)
            self.deadline.block(idl.wait)

    def _wait_for_vswitchd(self, idl, next_cfg):
        while True:
            idl.run()
            if self.api.cur_cfg() >= next_cfg:
                return
            if self.deadline.expired():
                raise _Expired(COMMITTED)
            self.deadline.block(idl.wait)


class _HostOvsdbApi(impl_idl.OvsdbIdl):
    """``impl_idl.OvsdbIdl`` with its own connection and deadline txns.

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

    def create_transaction(self, check_error=False, log_errors=True,
                           only_if=None, **kwargs):
        deadline = _deadline() or _Deadline(self.ovsdb_connection.timeout)
        return _Transaction(self, self.ovsdb_connection, deadline,
                            only_if=only_if)

    def _root(self):
        rows = self.idl.tables['Open_vSwitch'].rows
        return next(iter(rows.values()), None)

    def cur_cfg(self):
        root = self._root()
        return root.cur_cfg if root is not None else 0

    def vswitchd_behind(self):
        """Whether ovs-vswitchd has yet to apply a committed change."""
        root = self._root()
        return root is not None and root.cur_cfg < root.next_cfg


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
    :param columns: None to replicate the whole of each table of
        ``TABLES`` (every operation works), or a dict of table name to
        column names to replicate only those, e.g. :data:`SYNC_COLUMNS`
        for a connection that only lists Interfaces and syncs ports;
        connecting then downloads less.  An operation that touches a
        column left out fails (AttributeError or KeyError from
        python-ovs).
    """

    def __init__(self, connection, timeout, ssl_files=None, columns=None):
        self.connection = connection
        self.timeout = timeout
        self.ssl_files = dict(ssl_files or {})
        self.columns = columns
        self._api = None
        self._lock = threading.Lock()

    def _use_ssl_files(self):
        """Check the SSL files and give them to python-ovs.

        :raises _SslError: a file is not set, missing, unreadable or wrong.
        """
        _check_ssl_files(self.ssl_files)
        ovs.stream.Stream.ssl_set_private_key_file(self.ssl_files[SSL_KEY])
        ovs.stream.Stream.ssl_set_certificate_file(self.ssl_files[SSL_CERT])
        ovs.stream.Stream.ssl_set_ca_cert_file(self.ssl_files[SSL_CA_CERT])

    def _connect(self, deadline):
        reasons = []
        remotes = idlutils.parse_connection(self.connection)
        if any(remote.startswith('ssl:') for remote in remotes):
            self._use_ssl_files()
        for remote in remotes:
            try:
                helper = _fetch_schema(remote, deadline)
                break
            except _Unreachable as exc:
                reasons.append(exc.reason)
        else:
            raise _Unreachable('; '.join(reasons))
        if self.columns is None:
            for table in TABLES:
                helper.register_table(table)
        else:
            for table, columns in self.columns.items():
                helper.register_columns(table, list(columns))
        idl = _HostIdl(self.connection, helper)
        try:
            conn = _Connection(idl, self.timeout)
            # Not started yet: its indexes must exist before the first
            # snapshot arrives (python-ovs indexes only rows added later).
            api = _HostOvsdbApi(conn, start=False)
            # The first snapshot, in this thread, before ovsdbapp's
            # Connection.start() would wait a full timeout of its own.
            while True:
                idl.run()
                if idl.has_ever_connected():
                    break
                if deadline.expired():
                    raise _Unreachable('no answer within %s s'
                                       % deadline.seconds)
                deadline.block(idl.wait)
            # Starts the connection thread; waits no more.
            conn.start()
            return api
        except Exception:
            idl.close()
            raise

    @property
    def api(self):
        """The ovsdbapp API object, connected within the current deadline.

        :raises _Unreachable, _Expired: use it inside :meth:`_run`.
        """
        deadline = _deadline() or _Deadline(self.timeout)
        if not self._lock.acquire(timeout=deadline.remaining()):
            # Another operation is connecting and has not made it yet.
            raise _Unreachable('no answer within %s s' % self.timeout)
        try:
            if self._api is None:
                self._api = self._connect(deadline)
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
        outer = _deadline()
        if outer is None:
            _current.deadline = _Deadline(self.timeout)
        try:
            return func()
        except _Unreachable as exc:
            raise exception.OvsdbUnreachable(
                connection=self.connection, reason=exc.reason,
                may_have_written=False)
        except _SslError as exc:
            raise exception.OvsdbSslError(
                connection=self.connection, option=exc.option,
                reason=exc.reason, may_have_written=False)
        except _Refused as exc:
            raise exception.OvsdbRefused(operation=what, reason=exc.reason,
                                         may_have_written=False)
        except _Expired as exc:
            raise self._expired(what, exc.stage)
        except (idlutils.RowNotFound, ovsdbapp_exc.OvsdbAppException) as exc:
            raise exception.OvsdbRefused(operation=what, reason=str(exc),
                                         may_have_written=False)
        finally:
            if outer is None:
                _current.deadline = None

    def _expired(self, what, stage):
        """The error for an operation whose deadline passed at ``stage``.

        After the deadline, look at what the connection saw: a session
        that is down or never answered blames ovsdb-server; a commit
        ovs-vswitchd did not apply blames ovs-vswitchd, also for an
        operation that spent its time behind such a commit (and may have
        been sent just before its deadline).
        """
        api = self._api
        answers = api is not None and api.idl.in_sync()
        written = stage in (SENT, COMMITTED)
        if answers and (stage == COMMITTED or api.vswitchd_behind()):
            return exception.VswitchdNotApplying(
                operation=what, timeout=self.timeout,
                connection=self.connection, may_have_written=written)
        if stage == SENT or answers:
            reason = 'no answer within %s s' % self.timeout
        elif api is not None and api.idl.is_connected():
            reason = 'not in sync within %s s' % self.timeout
        else:
            reason = 'not connected within %s s' % self.timeout
        return exception.OvsdbUnreachable(
            connection=self.connection, reason=reason,
            may_have_written=written)

    def _transact(self, commands, only_if=None):
        """Commit ``commands`` (built from ``api``) in one transaction."""
        api = self.api
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
        rows = api.db_list('Interface', [port_name],
                           columns=['ofport', 'error'],
                           if_exists=True).execute(check_error=True,
                                                   log_errors=False)
        if not rows:
            return PortStatus(None, 'interface missing after commit')
        row = rows[0]
        # Optional OVSDB columns come back as [] when unset.
        ofport = row['ofport'] if row['ofport'] != [] else None
        error = row['error'] if row['error'] != [] else None
        return PortStatus(ofport, error)

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
            api = self.api

            def port_exists():
                return idlutils.row_by_value(api.idl, 'Port', 'name',
                                             port_name, None) is not None

            self._transact(
                lambda api: [api.del_port(port_name, bridge=bridge,
                                          if_exists=True)],
                only_if=port_exists)

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
            return bool(self.api.br_exists(bridge).execute(
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
