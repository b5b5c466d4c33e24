"""The sample configuration ``tox -e genconfig`` writes, and etc/'s files.

The generator is run the way tox runs it: from
``etc/compute-hyperv-ovs/compute-hyperv-ovs-config-generator.conf``, through
the installed ``oslo.config.opts`` entry point.
"""

import configparser
import io
import os

from oslo_config import cfg
from oslo_config import generator
import testtools

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ETC = os.path.join(ROOT, 'etc', 'compute-hyperv-ovs')
SSL_OPTIONS = ('ssl_key_file', 'ssl_cert_file', 'ssl_ca_cert_file')


def generated_sample():
    gen_conf = cfg.ConfigOpts()
    generator.register_cli_opts(gen_conf)
    gen_conf(['--config-file',
              os.path.join(ETC, 'compute-hyperv-ovs-config-generator.conf')])
    out = io.StringIO()
    generator.generate(gen_conf, output_file=out)
    return out.getvalue()


class SampleConfigTest(testtools.TestCase):

    def test_generated_sample_has_every_registered_option(self):
        sample = generated_sample()

        registered = set(cfg.CONF[plugin.CONFIG_GROUP])
        self.assertTrue(set(SSL_OPTIONS + ('port_sync_max_interval',))
                        <= registered)
        self.assertIn('[%s]' % plugin.CONFIG_GROUP, sample)
        for name in registered:
            self.assertIn('\n#%s = ' % name, sample)

    def test_example_files_parse_and_name_the_ssl_options(self):
        nova = configparser.ConfigParser(interpolation=None)
        nova.read(os.path.join(ETC, 'nova.conf.example'))
        self.assertEqual('compute_hyperv_ovs.driver.HyperVOVSDriver',
                         nova['DEFAULT']['compute_driver'])
        agent = configparser.ConfigParser(interpolation=None)
        agent.read(os.path.join(ETC,
                                'neutron-openvswitch-agent.ini.example'))
        self.assertEqual('openvswitch',
                         agent['securitygroup']['firewall_driver'])
        self.assertEqual(nova[plugin.CONFIG_GROUP]['ovsdb_connection'],
                         agent['ovs']['ovsdb_connection'])
        for name in ('nova.conf.example',
                     'neutron-openvswitch-agent.ini.example'):
            with open(os.path.join(ETC, name)) as f:
                text = f.read()
            for option in SSL_OPTIONS:
                self.assertIn('#%s = ' % option, text)
