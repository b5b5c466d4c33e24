"""The Hyper-V core's facade (HyperVDriver) on a simulated Hyper-V host.

The facade is built as nova builds a driver, with the core's own VIF
stand-in (the core knows no network back end).
"""

import contextlib

import fixtures
from nova import exception as nova_exception
from nova import test

from compute_hyperv_ovs.hyperv import driver
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.unit.hyperv import recording_vif


class FakeVirtAPI(object):

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield


class RecordingHyperVDriver(driver.HyperVDriver):
    """The core with a VIF driver that only records."""

    def _build_vif_driver(self):
        return recording_vif.RecordingVIFDriver()


class DriverTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())

    def build(self, hostname='host1', **host_kwargs):
        self.hosts.add_host(hostname, **host_kwargs)
        with self.hosts.building(hostname):
            return RecordingHyperVDriver(FakeVirtAPI())


class WindowsVersionGateTestCase(DriverTestBase):
    """nova 28 driver._check_minimum_windows_version, per branch."""

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            name='compute_hyperv_ovs.hyperv.driver'))

    def test_windows_server_2008_r2_is_refused(self):
        exc = self.assertRaises(nova_exception.HypervisorTooOld, self.build,
                                windows_version='6.1.7601')
        self.assertIn('6.2', str(exc))
        self.assertIn('6.1.7601 is too old', self.log.output)

    def test_windows_server_2012_runs_with_a_deprecation_warning(self):
        self.build(windows_version='6.2.9200')
        self.assertIn('Windows Server 2012 (6.2.9200) is deprecated',
                      self.log.output)

    def test_windows_server_2012_r2_runs_without_warning(self):
        self.build(windows_version='6.3.9600')
        self.assertNotIn('deprecated', self.log.output)

    def test_windows_server_2019_runs_without_warning(self):
        self.build(windows_version='10.0.17763')
        self.assertEqual('', self.log.output)
