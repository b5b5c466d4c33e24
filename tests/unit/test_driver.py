"""HyperVOVSDriver as nova loads and builds it."""

import threading

from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import driver as virt_driver
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import driver
from compute_hyperv_ovs import vif
from compute_hyperv_ovs import vmops
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

# The name the OVSDB package gives its connection thread.
OVSDB_THREAD = 'ovsdb-connection'


class DriverLoadTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
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


class CleanupHostTest(test.NoDBTestCase):
    """cleanup_host closes the OVSDB connection; the next plug reopens it."""

    def setUp(self):
        super().setUp()
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group='os_vif_hyperv_ovs')
        self.flags(vswitch_name='ovs-switch', group='hyperv')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.hosts.add_host('host1', vswitch_name='ovs-switch')
        with self.hosts.building('host1'):
            self.driver = virt_driver.load_compute_driver(
                None, 'compute_hyperv_ovs.driver.HyperVOVSDriver')
            self.vmutils = utilsfactory.get_vmutils()
        self.addCleanup(self.driver._vif_plugin.close)
        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u')
        self.vmutils.create_vm(self.instance.name, False, 1, '/instances',
                               [self.instance.uuid])

    def plug_new_vif(self):
        port_id = uuidutils.generate_uuid()
        self.vmutils.create_nic(self.instance.name, port_id,
                                'fa:16:3e:00:00:01')
        network = network_model.Network(id=uuidutils.generate_uuid(),
                                        bridge='br-int', label='private',
                                        subnets=[])
        vif = network_model.VIF(id=port_id, address='fa:16:3e:00:00:01',
                                network=network, type='ovs', details={},
                                active=False, ovs_interfaceid=port_id)
        self.driver.plug_vifs(self.instance, [vif])
        return port_id

    def test_cleanup_host_closes_the_ovsdb_connection(self):
        before = set(threading.enumerate())
        self.plug_new_vif()
        client = self.driver._vif_plugin.ovsdb
        self.assertTrue(client.is_open)
        opened = [t for t in set(threading.enumerate()) - before
                  if t.name == OVSDB_THREAD]
        self.assertNotEqual([], opened)

        self.driver.cleanup_host('host1')

        self.assertFalse(client.is_open)
        self.assertEqual([], [t for t in opened if t.is_alive()])

    def test_cleanup_host_before_any_plug_is_harmless(self):
        self.driver.cleanup_host('host1')

        self.assertFalse(self.driver._vif_plugin.ovsdb.is_open)

    def test_plug_after_cleanup_host_reconnects(self):
        first = self.plug_new_vif()
        self.driver.cleanup_host('host1')

        second = self.plug_new_vif()

        self.assertTrue(self.driver._vif_plugin.ovsdb.is_open)
        self.assertEqual(sorted([first, second]),
                         sorted(self.ovs.list_ports('br-int')))
