"""The hyperv_ovs plugin talking to a real ovsdb-server over SSL.

The server is started with ``--private-key``, ``--certificate``,
``--ca-cert`` and ``--remote=pssl:PORT:127.0.0.1``, with certificates made
for each test (``tests.fixtures.ovs.make_pki``).  Nothing of the plugin is
mocked.
"""

import logging
import os
import time

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin
from tests.fixtures import ovs
from tests.unit.os_vif_plugin import test_plugin

CONF = cfg.CONF
TIMEOUT = 10
# "Fails fast": a configuration error must not cost the operation's timeout.
FAST = 2.0
GROUP = '[os_vif_hyperv_ovs] '


class SslTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        test_plugin.osv_objects.register_all()
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture(ssl=True))
        self.pki = self.ovs.pki
        self.logs = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG,
            format='%(levelname)s %(name)s %(message)s'))

    def load_plugin(self, **files):
        options = {'ssl_key_file': self.pki['client_key'],
                   'ssl_cert_file': self.pki['client_cert'],
                   'ssl_ca_cert_file': self.pki['ca_cert']}
        options.update(files)
        self.conf.config(ovsdb_connection=self.ovs.ssl_connection,
                         timeout=TIMEOUT, group=plugin.CONFIG_GROUP,
                         **options)
        loaded = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(loaded.close)
        return loaded

    def timed_plug(self, hv_plugin):
        vif = test_plugin.make_vif()
        start = time.monotonic()
        try:
            hv_plugin.plug(vif, test_plugin.make_instance_info())
        except Exception as exc:
            return time.monotonic() - start, exc, vif
        return time.monotonic() - start, None, vif

    def assert_fails_fast(self, hv_plugin, option, *words):
        took, exc, vif = self.timed_plug(hv_plugin)
        self.assertIsInstance(exc, ovs_exception.OvsdbSslError)
        self.assertIsInstance(exc, ovs_exception.OvsdbUnreachable)
        self.assertFalse(exc.may_have_written)
        self.assertLess(took, FAST)
        message = str(exc)
        self.assertIn(GROUP + option, message)
        self.assertIn(self.ovs.ssl_connection, message)
        for word in words:
            self.assertIn(word, message)
        # Nothing was written.
        self.assertNotIn(vif.id, self.ovs.list_ports())
        return message

    def write(self, name, data):
        path = os.path.join(self.ovs.dir, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def assert_no_key_material_logged(self):
        logged = self.logs.output
        self.assertNotIn('PRIVATE KEY', logged)
        for name in ('client_key', 'other_client_key', 'server_key'):
            with open(self.pki[name]) as f:
                body = [line for line in f.read().splitlines()
                        if line and not line.startswith('-----')]
            for line in body:
                self.assertNotIn(line, logged)


class SslPlugTest(SslTestCase):

    def test_plug_and_unplug_over_ssl(self):
        hv_plugin = self.load_plugin()
        vif = test_plugin.make_vif()
        info = test_plugin.make_instance_info()

        status = hv_plugin.plug(vif, info)

        self.assertTrue(status.is_up)
        iface = self.ovs.get_interface(vif.id)
        self.assertEqual(vif.port_profile.interface_id,
                         iface['external_ids']['iface-id'])
        self.assertEqual(info.uuid, iface['external_ids']['vm-uuid'])
        self.assertGreater(iface['ofport'], 0)

        hv_plugin.unplug(vif, info)

        self.assertNotIn(vif.id, self.ovs.list_ports())
        self.assert_no_key_material_logged()

    def test_port_sync_pass_uses_ssl_too(self):
        # reconcile_ports() opens a connection of its own.
        hv_plugin = self.load_plugin()
        vif = test_plugin.make_vif()
        hv_plugin.plug(vif, test_plugin.make_instance_info())
        seen = {}

        def decide(interfaces):
            seen.update(interfaces)
            return [], [], [vif.id]

        hv_plugin.reconcile_ports(decide)

        self.assertIn(vif.id, seen)
        self.assertNotIn(vif.id, self.ovs.list_ports())

    def test_plug_over_ssl_after_ovsdb_restart(self):
        hv_plugin = self.load_plugin()
        hv_plugin.plug(test_plugin.make_vif(),
                       test_plugin.make_instance_info())
        self.ovs.restart_ovsdb()

        took, exc, vif = self.timed_plug(hv_plugin)

        self.assertIsNone(exc)
        self.assertIn(vif.id, self.ovs.list_ports())


class SslFaultTest(SslTestCase):

    def test_server_certificate_of_another_ca_fails_fast(self):
        hv_plugin = self.load_plugin(
            ssl_ca_cert_file=self.pki['other_ca_cert'])
        self.assert_fails_fast(hv_plugin, 'ssl_ca_cert_file', 'SSL handshake')
        self.assert_no_key_material_logged()

    def test_client_certificate_the_server_does_not_trust_fails_fast(self):
        hv_plugin = self.load_plugin(
            ssl_key_file=self.pki['other_client_key'],
            ssl_cert_file=self.pki['other_client_cert'])
        self.assert_fails_fast(hv_plugin, 'ssl_cert_file', 'SSL handshake',
                               '--ca-cert')
        self.assert_no_key_material_logged()

    def test_missing_file_fails_fast_naming_its_option(self):
        missing = os.path.join(self.ovs.dir, 'no-such.pem')
        for option in ('ssl_key_file', 'ssl_cert_file', 'ssl_ca_cert_file'):
            hv_plugin = self.load_plugin(**{option: missing})
            self.assert_fails_fast(hv_plugin, option, missing,
                                   'no such file')

    def test_unset_file_with_ssl_connection_fails_fast(self):
        hv_plugin = self.load_plugin(ssl_cert_file=None)
        self.assert_fails_fast(hv_plugin, 'ssl_cert_file', 'is not set')

    def test_unreadable_key_fails_fast(self):
        # A directory: open() fails, as for a file without read permission
        # (the tests run as root, for whom permissions do not stop a read).
        hv_plugin = self.load_plugin(ssl_key_file=self.ovs.dir)
        self.assert_fails_fast(hv_plugin, 'ssl_key_file', 'cannot be read')

    def test_key_that_is_not_a_key_fails_fast(self):
        garbage = self.write('garbage.pem', b'not a key\n')
        hv_plugin = self.load_plugin(ssl_key_file=garbage)
        self.assert_fails_fast(hv_plugin, 'ssl_key_file', garbage,
                               'not a PEM private key')

    def test_key_of_another_certificate_fails_fast(self):
        hv_plugin = self.load_plugin(ssl_key_file=self.pki['server_key'])
        self.assert_fails_fast(hv_plugin, 'ssl_key_file',
                               'not the key of ssl_cert_file')
        self.assert_no_key_material_logged()

    def test_ca_file_that_is_not_a_certificate_fails_fast(self):
        # A private key where the CA certificate belongs.
        hv_plugin = self.load_plugin(ssl_ca_cert_file=self.pki['client_key'])
        message = self.assert_fails_fast(hv_plugin, 'ssl_ca_cert_file',
                                         'not a PEM CA certificate')
        self.assertNotIn('PRIVATE KEY', message)
        self.assert_no_key_material_logged()

    def test_fixed_files_work_without_restarting(self):
        # Each operation checks the files again, so an operator who fixes
        # them needs no restart of nova-compute.
        missing = os.path.join(self.ovs.dir, 'ca.pem')
        hv_plugin = self.load_plugin(ssl_ca_cert_file=missing)
        self.assert_fails_fast(hv_plugin, 'ssl_ca_cert_file')
        with open(self.pki['ca_cert'], 'rb') as f:
            self.write('ca.pem', f.read())

        took, exc, vif = self.timed_plug(hv_plugin)

        self.assertIsNone(exc)
        self.assertIn(vif.id, self.ovs.list_ports())
