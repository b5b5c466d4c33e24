"""The Hyper-V core's facade (HyperVDriver) on a simulated Hyper-V host.

The facade is built as nova builds a driver, with the core's own VIF
stand-in (the core knows no network back end).
"""

import contextlib
import os

import fixtures
import nova.conf
from nova import context as nova_context
from nova import exception as nova_exception
from nova import test
from nova.tests.unit import fake_instance
from nova.virt import driver as nova_driver
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_utils.fixture import uuidsentinel as uuids

from compute_hyperv_ovs.hyperv import driver
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.unit.hyperv import recording_vif

CONF = nova.conf.CONF


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


class ExceptionBoundaryTestCase(DriverTestBase):
    """os-win's errors reach nova as nova's, naming the failing operation.

    nova 28 driver.convert_exceptions: HyperVVMNotFoundException ->
    InstanceNotFound, any other OSWinException -> NovaException.
    """

    def setUp(self):
        super().setUp()
        self.driver = self.build()
        self.instance = fake_instance.fake_instance_obj(
            nova_context.get_admin_context(), uuid=uuids.instance)
        self.vm_dir = os.path.join(CONF.instances_path, self.instance.name)

    def create_vm(self):
        """The instance's VM, off, as Hyper-V holds it."""
        with self.hosts.building('host1'):
            utilsfactory.get_vmutils().create_vm(
                self.instance.name, False, 1, self.vm_dir,
                [self.instance.uuid])

    def test_missing_vm_is_instance_not_found(self):
        exc = self.assertRaises(nova_exception.InstanceNotFound,
                                self.driver.pause, self.instance)
        self.assertEqual(uuids.instance, exc.kwargs['instance_id'])
        self.assertIn('Hyper-V has no VM for pause', str(exc))
        self.assertIn(self.instance.name, str(exc))
        self.assertIsInstance(exc.__cause__,
                              os_win_exc.HyperVVMNotFoundException)

    def test_hyperv_refusal_is_a_nova_exception_naming_the_operation(self):
        self.create_vm()
        # Hyper-V refuses to pause a VM that is off.
        exc = self.assertRaises(nova_exception.NovaException,
                                self.driver.pause, self.instance)
        self.assertNotIsInstance(exc, os_win_exc.OSWinException)
        self.assertIn('Hyper-V failed in pause', str(exc))
        self.assertIn('cannot go from Off', str(exc))
        self.assertIsInstance(exc.__cause__, os_win_exc.HyperVException)
        self.assertEqual(os_win_const.HYPERV_VM_STATE_DISABLED,
                         self.hosts['host1'].vms[self.instance.name]
                         .power_state)

    def test_nova_exceptions_pass_unchanged(self):
        # vmops refuses a missing VM itself, with nova's exception.
        exc = self.assertRaises(nova_exception.InstanceNotFound,
                                self.driver.get_info, self.instance)
        self.assertIsNone(exc.__cause__)

    def test_a_back_ends_own_methods_convert_too(self):
        class BackEndDriver(RecordingHyperVDriver):
            def pause(self, instance):
                super().pause(instance)

            def vm_summary(self, instance):
                return self._vmops._vmutils.get_vm_summary_info(
                    instance.name)

        self.hosts.add_host('host2')
        with self.hosts.building('host2'):
            back_end = BackEndDriver(FakeVirtAPI())
        self.assertRaises(nova_exception.InstanceNotFound,
                          back_end.pause, self.instance)
        exc = self.assertRaises(nova_exception.InstanceNotFound,
                                back_end.vm_summary, self.instance)
        self.assertIn('Hyper-V has no VM for vm_summary', str(exc))


class CapabilitiesTestCase(test.NoDBTestCase):

    def test_every_nova_capability_is_decided(self):
        # A capability nova adds must be set here on purpose: the facade's
        # dict does not inherit nova's defaults.
        self.assertEqual(set(), set(nova_driver.ComputeDriver.capabilities) -
                         set(driver.HyperVDriver.capabilities))

    def test_no_capability_nova_does_not_know(self):
        known = (set(nova_driver.ComputeDriver.capabilities) |
                 set(nova_driver.CAPABILITY_TRAITS_MAP))
        self.assertEqual(set(), set(driver.HyperVDriver.capabilities) - known)
