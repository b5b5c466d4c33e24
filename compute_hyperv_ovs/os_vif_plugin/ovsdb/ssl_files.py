"""The three SSL files of an ``ssl:`` OVSDB connection: checks, hand-over.

The options have the names and meanings of neutron-openvswitch-agent's
[OVS] ones (neutron ``conf/agent/ovs_conf.py``): the client's private key,
its certificate, and the CA certificate the server's certificate must be
signed by.  python-ovs keeps the files per process
(``ovs.stream.Stream.ssl_set_*``), so every client in a process uses the
same ones.
"""

import os
import ssl

import ovs.stream

from compute_hyperv_ovs.os_vif_plugin.ovsdb import errors

SSL_KEY = 'ssl_key_file'
SSL_CERT = 'ssl_cert_file'
SSL_CA_CERT = 'ssl_ca_cert_file'
OPTIONS = (SSL_KEY, SSL_CERT, SSL_CA_CERT)


def check(files):
    """Check the three SSL files, before anything connects with them.

    python-ovs reads them only when a stream opens (``SSLStream._open``),
    and then fails with an exception (not an error code) that names no
    file; its IDL would retry that for ever.  Each file must be set, be a
    readable file, and hold what its option says; the key must be the
    certificate's.  Nothing of a file's contents goes into a message.

    :param files: dict of option name (``SSL_KEY``...) to path or None.
    :raises errors.SslError: naming the first option at fault.
    """
    for option in OPTIONS:
        path = files.get(option)
        if not path:
            raise errors.SslError(
                option, 'is not set; an ssl: ovsdb_connection needs '
                'ssl_key_file, ssl_cert_file and ssl_ca_cert_file')
        if not os.path.exists(path):
            raise errors.SslError(option, '%s: no such file' % path)
        try:
            with open(path, 'rb') as f:
                f.read(1)
        except OSError as exc:
            raise errors.SslError(option, '%s: cannot be read (%s)' % (
                path, exc.strerror or type(exc).__name__))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for option, what in ((SSL_CA_CERT, 'a PEM CA certificate'),
                         (SSL_CERT, 'a PEM certificate')):
        try:
            context.load_verify_locations(cafile=files[option])
        except (ssl.SSLError, ValueError):
            raise errors.SslError(option, '%s: not %s' % (files[option],
                                                          what))
    try:
        context.load_cert_chain(files[SSL_CERT], files[SSL_KEY])
    except (ssl.SSLError, ValueError):
        raise errors.SslError(SSL_KEY, '%s: not a PEM private key without '
                              'a passphrase, or not the key of '
                              'ssl_cert_file' % files[SSL_KEY])


def use(files):
    """Check the SSL files and give them to python-ovs for the next stream.

    Checked again at every connection, so an operator who fixes a file
    needs no restart of nova-compute.

    :param files: as for :func:`check`.
    :raises errors.SslError: a file is not set, missing, unreadable or
        wrong.
    """
    check(files)
    ovs.stream.Stream.ssl_set_private_key_file(files[SSL_KEY])
    ovs.stream.Stream.ssl_set_certificate_file(files[SSL_CERT])
    ovs.stream.Stream.ssl_set_ca_cert_file(files[SSL_CA_CERT])
