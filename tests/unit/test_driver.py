"""HyperVOVSDriver as nova loads and builds it."""

from nova import test
from nova.virt import driver as virt_driver

from compute_hyperv_ovs import driver
from compute_hyperv_ovs import vif
from compute_hyperv_ovs import vmops
from tests.fixtures import hyperv


class DriverLoadTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.hosts = self.useFixture(hyperv.HyperVHostsFixture())
        self.hosts.add_host('host1')

    def load(self):
        # Exactly what operators put in nova.conf; nova prefixes nova.virt.
        with self.hosts.building('host1'):
            return virt_driver.load_compute_driver(
                None, 'compute_hyperv_ovs.driver.HyperVOVSDriver')

    def test_load_compute_driver_by_configured_name(self):
        loaded = self.load()

        self.assertIsInstance(loaded, driver.HyperVOVSDriver)

    def test_every_ops_class_plugs_through_the_ovs_vif_driver(self):
        loaded = self.load()

        self.assertIsInstance(loaded._vmops, vmops.VMOps)
        self.assertIs(loaded._vmops, loaded._livemigrationops._vmops)
        self.assertIs(loaded._vmops, loaded._migrationops._vmops)
        self.assertIsInstance(loaded._vmops._vif_driver,
                              vif.HyperVOVSVIFDriver)

    def test_each_driver_has_its_own_ovsdb_connection(self):
        self.flags(ovsdb_connection='tcp:127.0.0.1:1',
                   group='os_vif_hyperv_ovs')
        first = self.load()
        self.flags(ovsdb_connection='tcp:127.0.0.1:2',
                   group='os_vif_hyperv_ovs')
        second = self.load()

        self.assertEqual('tcp:127.0.0.1:1', first._vif_plugin.ovsdb.connection)
        self.assertEqual('tcp:127.0.0.1:2',
                         second._vif_plugin.ovsdb.connection)
