"""Errors the ``hyperv_ovs`` plugin raises, one per culprit.

A port operation can fail in three places, and each needs a different fix,
so each has its own type and its message names the piece at fault:

- :class:`OvsdbUnreachable`: ovsdb-server did not answer (not running, not
  listening at ``[os_vif_hyperv_ovs] ovsdb_connection``, or black-holed).
- :class:`OvsdbRefused`: ovsdb-server answered and refused the transaction
  (for example the bridge does not exist); the message says what it refused.
- :class:`VswitchdNotApplying`: ovsdb-server committed the change, but
  ovs-vswitchd did not apply it (``Open_vSwitch.cur_cfg`` did not reach
  ``next_cfg``) within ``[os_vif_hyperv_ovs] timeout``.

:class:`PortNotUp` is not a transport error: the change was applied but the
Interface has no valid ofport, so neutron-openvswitch-agent will not bind
the port (neutron ``ovs_lib.get_vif_port_set`` skips ofport ``[]`` and -1).

Callers outside ``os_vif_plugin/`` catch these, never ovsdbapp's own
exceptions.

Messages are short and name the culprit first: nova keeps 255 characters
of an instance fault, after its own "Build of instance <uuid> aborted: ".
"""

from os_vif import exception as osv_exception

CONFIG_GROUP = 'os_vif_hyperv_ovs'


class OvsPortError(osv_exception.ExceptionBase):
    """Base of every error of a port operation of this plugin.

    The keyword arguments are also attributes (``exc.connection``...), for
    callers that word a fault of their own.

    :ivar may_have_written: False when nothing of the operation reached
        ovsdb-server (so there is nothing to undo); True when it was sent
        and ovsdb-server may have applied it, or did.
    """
    may_have_written = True

    msg_fmt = 'Open vSwitch port operation failed: %(reason)s'

    def __init__(self, message=None, **kwargs):
        super().__init__(message, **kwargs)
        for name, value in kwargs.items():
            setattr(self, name, value)


class OvsdbUnreachable(OvsPortError):
    """ovsdb-server did not answer within the timeout.

    :param connection: the OVSDB connection string that was tried.
    :param reason: what happened, short, e.g. ``connection refused``,
        ``no answer within 5 s``.
    """
    msg_fmt = ('ovsdb-server at %(connection)s is unreachable (%(reason)s); '
               'check that it runs and listens at [' + CONFIG_GROUP +
               '] ovsdb_connection')


class OvsdbRefused(OvsPortError):
    """ovsdb-server refused a transaction.

    :param operation: what was attempted, e.g. ``adding port X to br-int``.
    :param reason: OVSDB's or ovsdbapp's own words for the refusal.
    """
    msg_fmt = 'OVSDB refused %(operation)s: %(reason)s'


class VswitchdNotApplying(OvsPortError):
    """ovs-vswitchd did not apply a committed change within the timeout.

    :param operation: what was attempted.
    :param timeout: the timeout, in seconds.
    :param connection: the OVSDB connection string (its server answered;
        not in the message, which must stay short).
    """
    msg_fmt = ('ovs-vswitchd did not apply %(operation)s within %(timeout)s '
               's, ovsdb-server answers; check that ovs-vswitchd runs')


class PortNotUp(OvsPortError):
    """The port exists in OVSDB but has no valid ofport.

    :param port: the port name (the neutron port id).
    :param ofport: the ofport read back (-1, or None when unset).
    :param error: ``Interface.error`` as read back, or None.
    """
    msg_fmt = ('OVS port %(port)s did not come up: ofport %(ofport)s, '
               'error %(error)s')


class OvsdbSslError(OvsdbUnreachable):
    """ovsdb-server cannot be reached over SSL because of an SSL setting.

    Raised before connecting when one of the three files is not set, does
    not exist, cannot be read or is not what the option says, and after
    connecting when the SSL handshake fails (the server's certificate is
    not signed by ``ssl_ca_cert_file``, or the server does not accept the
    certificate of ``ssl_cert_file``).  Nothing was sent to ovsdb-server.

    :param connection: the ``ssl:IP:PORT`` connection string.
    :param option: the option(s) at fault, e.g. ``ssl_key_file``.
    :param reason: what is wrong, short; names the file, never its
        contents.
    """
    msg_fmt = ('ovsdb-server at %(connection)s over SSL: '
               '[' + CONFIG_GROUP + '] %(option)s %(reason)s')
