"""How a port operation failed inside the package, and the plugin's error.

The layers below :mod:`.api` raise the small exceptions here, which say
what happened where it happened (a deadline passed at a stage, ovsdb-server
refused, could not be reached, an SSL setting is wrong).
:func:`plugin_error` turns each into the plugin's own exception
(:mod:`compute_hyperv_ovs.os_vif_plugin.exception`), one per culprit, which
is all that callers outside the package ever see.
"""

import json

from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp import exceptions as ovsdbapp_exc

from compute_hyperv_ovs.os_vif_plugin import exception

# Where a transaction was when its deadline passed.  Nothing was sent in
# the first two; ovsdb-server may have applied the third; it applied the
# fourth.
QUEUED = 'queued'        # behind another operation, not yet started
WAITING = 'waiting'      # waiting for a connection in sync with the server
SENT = 'sent'            # sent to ovsdb-server, no answer yet
COMMITTED = 'committed'  # committed, ovs-vswitchd has not applied it yet
DONE = 'done'


class Expired(Exception):
    """The operation's deadline passed at ``stage`` (one of the above)."""

    def __init__(self, stage):
        super().__init__(stage)
        self.stage = stage


class Refused(Exception):
    """ovsdb-server refused the transaction, or it could not be composed.

    :param reason: OVSDB's or ovsdbapp's words for it (str).
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Unreachable(Exception):
    """ovsdb-server could not be reached; nothing was sent.

    :param reason: short, e.g. ``connection refused``.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class SslError(Exception):
    """An SSL setting makes the connection impossible; nothing was sent.

    :param option: the option(s) at fault, e.g. ``ssl_key_file``.
    :param reason: what is wrong; names the file, never its contents.
    """

    def __init__(self, option, reason):
        super().__init__(option, reason)
        self.option = option
        self.reason = reason


def ovsdb_error(text):
    """OVSDB's error JSON ``{"error": E, "details": D}`` as "E: D".

    Of the details only the first sentence is kept: nova keeps 255
    characters of a fault.  Text that is not such JSON is returned as is.

    :param text: python-ovs ``Transaction.get_error()`` (str).
    :returns: str.
    """
    try:
        error = json.loads(text)
        reason = error['error']
        details = error.get('details')
    except (ValueError, TypeError, KeyError):
        return text
    if details:
        reason += ': ' + details.split('.  ')[0]
    return reason


def plugin_error(exc, operation, connection, timeout, backend):
    """The plugin's exception for a failure of ``operation``.

    :param exc: the exception the operation raised.
    :param operation: what was attempted, for messages, e.g. ``adding
        port X to br-int``.
    :param connection: the OVSDB connection string (str).
    :param timeout: the operation's timeout, in seconds.
    :param backend: the connected :class:`.impl_idl.HostOvsdbApi`, or None
        before any connection; asked, after the deadline, what the
        connection saw.
    :returns: an :class:`exception.OvsPortError`, or None when ``exc`` is
        not a failure of the operation (a bug: let it propagate).
    """
    if isinstance(exc, Unreachable):
        return exception.OvsdbUnreachable(
            connection=connection, reason=exc.reason, may_have_written=False)
    if isinstance(exc, SslError):
        return exception.OvsdbSslError(
            connection=connection, option=exc.option, reason=exc.reason,
            may_have_written=False)
    if isinstance(exc, Refused):
        return exception.OvsdbRefused(operation=operation, reason=exc.reason,
                                      may_have_written=False)
    if isinstance(exc, Expired):
        return _expired(operation, exc.stage, connection, timeout, backend)
    # Raised while composing against the replica (ovsdbapp commands), or
    # by ovsdbapp's read-only commands: nothing was sent.
    if isinstance(exc, (idlutils.RowNotFound,
                        ovsdbapp_exc.OvsdbAppException)):
        return exception.OvsdbRefused(operation=operation, reason=str(exc),
                                      may_have_written=False)
    return None


def _expired(operation, stage, connection, timeout, backend):
    """The error for an operation whose deadline passed at ``stage``.

    After the deadline, look at what the connection saw: a session that is
    down or never answered blames ovsdb-server; a commit ovs-vswitchd did
    not apply blames ovs-vswitchd, also for an operation that spent its
    time behind such a commit (and may have been sent just before its
    deadline).
    """
    answers = backend is not None and backend.in_sync()
    written = stage in (SENT, COMMITTED)
    if answers and (stage == COMMITTED or backend.vswitchd_behind()):
        return exception.VswitchdNotApplying(
            operation=operation, timeout=timeout, connection=connection,
            may_have_written=written)
    if stage == SENT or answers:
        reason = 'no answer within %s s' % timeout
    elif backend is not None and backend.is_connected():
        reason = 'not in sync within %s s' % timeout
    else:
        reason = 'not connected within %s s' % timeout
    return exception.OvsdbUnreachable(
        connection=connection, reason=reason, may_have_written=written)
