"""The Open_vSwitch schema of a server, fetched within a deadline.

ovsdbapp's ``idlutils.get_schema_helper`` (2.4.2 and 2.19.0 alike) blocks
without a deadline (python-ovs ``Stream.open_block`` and
``transact_block``), so a black-holed remote held its caller, and a thread
run aside to bound it leaked with its socket.  :func:`fetch` does the same
``get_schema`` exchange without blocking, in the caller's thread, and
always closes its stream; only ovsdbapp's ``idlutils.create_schema_helper``
and ``parse_connection`` are used, both unchanged from 2.4.2 to 2.19.0.
"""

import errno
import os

import ovs.jsonrpc
import ovs.stream
from ovsdbapp.backend.ovs_idl import idlutils

from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors
from compute_hyperv_ovs.os_vif_plugin.ovsdb import ssl_files

SCHEMA = 'Open_vSwitch'
# QoS is left out on purpose: Windows OVS has no tc-based QoS, and the plug
# never touches it (os-vif 3.2.0 skipped QoS on win32 too).
TABLES = ('Open_vSwitch', 'Bridge', 'Port', 'Interface')

# python-ovs reports EAGAIN as WSAEWOULDBLOCK on Windows.
_WOULD_BLOCK = (errno.EAGAIN, getattr(errno, 'WSAEWOULDBLOCK', errno.EAGAIN))


def _strerror(error):
    if error == ovs.jsonrpc.EOF:
        return 'connection closed'
    return os.strerror(error).lower()


def uses_ssl(connection):
    """Whether any remote of ``connection`` is ``ssl:`` (bool)."""
    return any(remote.startswith('ssl:')
               for remote in idlutils.parse_connection(connection))


def helper(connection, deadline, columns=None):
    """The schema helper of the first remote of ``connection`` to answer.

    :param connection: OVSDB connection string; several remotes may be
        given comma-separated, as ovsdbapp's ``parse_connection`` reads it.
    :param deadline: :class:`.deadline.Deadline` of the operation.
    :param columns: None to register every column of each table of
        ``TABLES``, or a dict of table name to column names to register
        only those.
    :returns: ``ovs.db.idl.SchemaHelper`` with the tables registered.
    :raises errors.Unreachable: no remote answered; the reasons of each.
    :raises errors.SslError: see :func:`fetch`.
    """
    reasons = []
    for remote in idlutils.parse_connection(connection):
        try:
            schema_helper = fetch(remote, deadline)
            break
        except errors.Unreachable as exc:
            reasons.append(exc.reason)
    else:
        raise errors.Unreachable('; '.join(reasons))
    if columns is None:
        for table in TABLES:
            schema_helper.register_table(table)
    else:
        for table, names in columns.items():
            schema_helper.register_columns(table, list(names))
    return schema_helper


def fetch(remote, deadline):
    """The schema helper of ``remote``'s Open_vSwitch database.

    :param remote: one python-ovs remote, e.g. ``tcp:127.0.0.1:6640``.
    :param deadline: :class:`.deadline.Deadline` of the operation.
    :returns: ``ovs.db.idl.SchemaHelper``, nothing registered yet.
    :raises errors.Unreachable: refused, closed, or no answer by the
        deadline.
    :raises errors.SslError: an ``ssl:`` remote failed the SSL handshake,
        or closed the connection right after it (TLS 1.3 servers check the
        client's certificate then).
    """
    error, stream = ovs.stream.Stream.open(remote)
    if error:
        raise errors.Unreachable(_strerror(error))
    rpc = None
    try:
        while True:
            error = stream.connect()
            if error not in _WOULD_BLOCK:
                break
            if deadline.expired():
                raise errors.Unreachable('no answer within %s s'
                                         % deadline.seconds)
            stream.run()
            deadline.block(stream.run_wait, stream.connect_wait)
        if error and remote.startswith('ssl:') and error not in (
                errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                errno.ENETUNREACH):
            # TCP connected, the SSL handshake failed; python-ovs
            # (SSLStream.connect) keeps only an errno of the reason.
            raise errors.SslError(
                ssl_files.SSL_CA_CERT + ' or ' + ssl_files.SSL_CERT,
                'refused in the SSL handshake (%s): the server\'s '
                'certificate must be signed by ssl_ca_cert_file, ours by '
                'its --ca-cert' % _strerror(error))
        if error:
            raise errors.Unreachable(_strerror(error))
        rpc = ovs.jsonrpc.Connection(stream)
        request = ovs.jsonrpc.Message.create_request('get_schema', [SCHEMA])
        error = rpc.send(request)
        while not error:
            rpc.run()
            error, reply = rpc.recv()
            if error in _WOULD_BLOCK:
                if deadline.expired():
                    raise errors.Unreachable('no answer within %s s'
                                             % deadline.seconds)
                deadline.block(rpc.wait, rpc.recv_wait)
                error = 0
                continue
            if error or reply is None or reply.id != request.id:
                continue
            if reply.error:
                raise errors.Unreachable('no %s database: %s'
                                         % (SCHEMA, reply.error))
            return idlutils.create_schema_helper(reply.result)
        if remote.startswith('ssl:') and error not in (
                ovs.jsonrpc.EOF, errno.ECONNRESET, errno.ETIMEDOUT):
            # TLS 1.3: the server checks our certificate after the client
            # finished its handshake, and closes on one it does not trust
            # (measured: ENOTCONN); a server that dies gives EOF or
            # ECONNRESET instead.
            raise errors.SslError(
                ssl_files.SSL_CERT, 'not accepted: closed after the SSL '
                'handshake (%s); sign it with the CA of ovsdb-server\'s '
                '--ca-cert' % _strerror(error))
        raise errors.Unreachable(_strerror(error))
    finally:
        if rpc is not None:
            rpc.close()
        else:
            stream.close()
