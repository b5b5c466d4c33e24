"""compute-hyperv-ovs-status check against a simulated host and a real OVS.

Each check is run passing and failing; the results are read back as the
operator reads them: the command's ``--json`` output and its exit code.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import types

import fixtures
from nova import test
from os_vif import objects as osv_objects
from os_win import utilsfactory
from oslo_upgradecheck import upgradecheck

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import status
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

VSWITCH = 'ovs-switch'
SUCCESS = upgradecheck.Code.SUCCESS
WARNING = upgradecheck.Code.WARNING
FAILURE = upgradecheck.Code.FAILURE

VSWITCH_CHECK = 'Hyper-V vSwitch and Open vSwitch extension'
OVSDB_CHECK = 'OVSDB and integration bridge'
VSWITCHD_CHECK = 'ovs-vswitchd applies changes'
PATH_CHECK = 'Instances path'
QEMU_IMG_CHECK = 'qemu-img'
MKISOFS_CHECK = 'mkisofs'
LM_CHECK = 'Live migration'
CPU_CHECK = 'Processor feature limits of VMs'
ISCSI_CHECK = 'iSCSI initiator service'
TIME_CHECK = 'Windows Time service'


class StatusCheckTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group=plugin.CONFIG_GROUP)
        # The Linux tools stand in for qemu-img.exe and mkisofs.exe.
        self.flags(vswitch_name=VSWITCH, qemu_img_cmd='qemu-img',
                   group='hyperv')
        self.flags(mkisofs_cmd='genisoimage')
        self.instances_path = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'instances')
        self.flags(instances_path=self.instances_path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('host1', vswitch_name=VSWITCH,
                                        instances_path=self.instances_path)

    def run_check(self, as_json=True):
        """Run every check as the command does.

        :returns: (exit code, {check name: (result code, details)}), or
            (exit code, printed table) when ``as_json`` is False.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_upgradecheck.upgradecheck.CONF',
            types.SimpleNamespace(command=types.SimpleNamespace(
                json=as_json))))
        with self.hosts.building('host1'):
            checks = status.HostChecks()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = checks.check()
        if not as_json:
            return code, out.getvalue()
        results = json.loads(out.getvalue())['checks']
        return code, {r['check']: (r['result'], r['details'])
                      for r in results}

    def assertResult(self, results, name, code, *fragments):
        result, details = results[name]
        self.assertEqual(code, result, details)
        for fragment in fragments:
            self.assertIn(fragment, details)

    # -- a healthy host -----------------------------------------------------

    def test_healthy_host_passes_every_check(self):
        code, results = self.run_check()
        self.assertEqual(SUCCESS, code, results)
        self.assertEqual(10, len(results))
        for name, (result, details) in results.items():
            self.assertEqual(SUCCESS, result, '%s: %s' % (name, details))
        # The vswitchd check made ovs-vswitchd apply a real change.
        self.assertIn(plugin.CHECKED_KEY,
                      self.ovs.vsctl('get', 'Open_vSwitch', '.',
                                     'external_ids'))

    def test_table_is_printed_as_nova_status_does(self):
        code, table = self.run_check(as_json=False)
        self.assertEqual(SUCCESS, code)
        self.assertIn('| compute-hyperv-ovs host check results', table)
        self.assertIn('| Check: Hyper-V vSwitch and Open vSwitch extension',
                      table)
        self.assertIn('| Result: Success', table)

    # -- the vSwitch --------------------------------------------------------

    def test_vswitch_missing_fails(self):
        self.flags(vswitch_name='missing', group='hyperv')
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, VSWITCH_CHECK, FAILURE,
                          'Hyper-V has no vSwitch named missing')

    def test_ovs_extension_disabled_fails_with_the_command(self):
        self.host.set_vswitch_extension(VSWITCH, hyperv_const.OVS_EXTENSION,
                                        enabled=False)
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, VSWITCH_CHECK, FAILURE,
                          'Enable-VMSwitchExtension -VMSwitchName %s'
                          % VSWITCH)

    def test_ovs_extension_not_running_fails(self):
        self.host.set_vswitch_extension(VSWITCH, hyperv_const.OVS_EXTENSION,
                                        running=False)
        code, results = self.run_check()
        self.assertResult(results, VSWITCH_CHECK, FAILURE,
                          'enabled but not running')

    def test_ovs_extension_enabled_on_another_vswitch_fails(self):
        self.host.add_vswitch('second', ovs_extension='enabled')
        self.host.add_vswitch('third', ovs_extension='disabled')
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, VSWITCH_CHECK, FAILURE,
                          'also enabled on vSwitch(es) second;',
                          'Disable-VMSwitchExtension -VMSwitchName "second" '
                          '-Name "%s"' % hyperv_const.OVS_EXTENSION)
        self.assertNotIn('third', results[VSWITCH_CHECK][1])

    def test_ovs_extension_installed_but_disabled_elsewhere_passes(self):
        self.host.add_vswitch('internal', ovs_extension='disabled')
        code, results = self.run_check()
        self.assertResult(results, VSWITCH_CHECK, SUCCESS)

    # -- Open vSwitch -------------------------------------------------------

    def test_ovsdb_down_fails_naming_the_connection(self):
        self.ovs.stop_ovsdb()
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, OVSDB_CHECK, FAILURE,
                          'ovsdb-server at %s is unreachable'
                          % self.ovs.connection,
                          '[os_vif_hyperv_ovs] ovsdb_connection')
        self.assertResult(results, VSWITCHD_CHECK, FAILURE,
                          'Cannot be checked')

    def test_integration_bridge_missing_fails(self):
        self.flags(ovs_bridge='br-missing', group='neutron')
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, OVSDB_CHECK, FAILURE,
                          'no bridge br-missing',
                          'ovs-vsctl add-br br-missing')

    def test_vswitchd_stopped_fails(self):
        self.flags(timeout=1, group=plugin.CONFIG_GROUP)
        self.ovs.stop_vswitchd()
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, VSWITCHD_CHECK, FAILURE,
                          'ovs-vswitchd did not apply',
                          'Start-Service ovs-vswitchd')
        # ovsdb-server itself answered: only ovs-vswitchd is blamed.
        self.assertResult(results, OVSDB_CHECK, SUCCESS)
        self.assertLess(
            int(self.ovs.vsctl('get', 'Open_vSwitch', '.', 'cur_cfg')),
            self.ovs.next_cfg())

    # -- storage and tools --------------------------------------------------

    def test_instances_path_missing_fails(self):
        shutil.rmtree(self.instances_path)
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, PATH_CHECK, FAILURE,
                          '%s does not exist' % self.instances_path,
                          'New-Item -ItemType Directory')

    def test_instances_path_not_writable_fails(self):
        # Running as root here, so a file stands in for a directory no
        # file can be created in.
        shutil.rmtree(self.instances_path)
        open(self.instances_path, 'w').close()
        code, results = self.run_check()
        self.assertResult(results, PATH_CHECK, FAILURE,
                          'is not a directory this user can write to',
                          'icacls')
        self.assertEqual([], [name for name in os.listdir(
            os.path.dirname(self.instances_path)) if name.endswith('.check')])

    def test_instances_path_check_leaves_nothing(self):
        self.run_check()
        self.assertEqual([], os.listdir(self.instances_path))

    def test_qemu_img_missing_fails(self):
        self.flags(qemu_img_cmd='/nonexistent/qemu-img.exe', group='hyperv')
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, QEMU_IMG_CHECK, FAILURE,
                          '[hyperv] qemu_img_cmd = /nonexistent/qemu-img.exe '
                          'does not run')

    def test_mkisofs_failing_fails(self):
        self.flags(mkisofs_cmd='false')
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, MKISOFS_CHECK, FAILURE,
                          '[DEFAULT] mkisofs_cmd = false does not run',
                          'Exit code: 1')

    # -- live migration and CPU features ------------------------------------

    def test_live_migration_disabled_fails(self):
        self.host.live_migration_enabled = False
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)
        self.assertResult(results, LM_CHECK, FAILURE,
                          'Live migration is not enabled',
                          'Enable-VMMigration')

    def test_migration_networks_missing_fails(self):
        self.host.migration_networks = []
        code, results = self.run_check()
        self.assertResult(results, LM_CHECK, FAILURE,
                          'Live migration networks are not configured',
                          'Set-VMMigrationNetwork')

    def test_live_migration_not_checked_when_not_used(self):
        self.host.live_migration_enabled = False
        self.flags(live_migration=False, group='hyperv_ovs_status')
        code, results = self.run_check()
        self.assertEqual(SUCCESS, code)
        self.assertResult(results, LM_CHECK, SUCCESS, 'Not checked')

    def test_instances_path_on_a_share_warns(self):
        self.flags(instances_path='\\\\fileserver\\instances')
        code, results = self.run_check()
        self.assertEqual(WARNING, code)
        self.assertResult(results, LM_CHECK, WARNING, 'shared-nothing')

    def _create_vm(self, name, limit_cpu_features):
        with self.hosts.building('host1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.create_vm(name, False, 1, self.instances_path, [])
        vmutils.update_vm(name, 512, None, 1, None, limit_cpu_features, 1.0)

    def test_vms_with_other_cpu_limit_warn(self):
        self._create_vm('instance-00000001', True)
        self._create_vm('instance-00000002', False)
        code, results = self.run_check()
        self.assertEqual(WARNING, code)
        self.assertResult(results, CPU_CHECK, WARNING,
                          '1 VM(s) were created with limit_cpu_features = '
                          'True, [hyperv] limit_cpu_features is False: '
                          'instance-00000001.')
        self.assertNotIn('instance-00000002', results[CPU_CHECK][1])

    def test_vms_with_the_configured_cpu_limit_pass(self):
        self.flags(limit_cpu_features=True, group='hyperv')
        self._create_vm('instance-00000001', True)
        code, results = self.run_check()
        self.assertResult(results, CPU_CHECK, SUCCESS, 'All 1 VM(s) match')

    # -- services -----------------------------------------------------------

    def test_iscsi_initiator_stopped_warns(self):
        self.host.services['MSiSCSI'] = 'Stopped'
        code, results = self.run_check()
        self.assertEqual(WARNING, code)
        self.assertResult(results, ISCSI_CHECK, WARNING,
                          '(MSiSCSI) is Stopped', 'Start-Service MSiSCSI')

    def test_iscsi_initiator_not_checked_without_volumes(self):
        del self.host.services['MSiSCSI']
        self.flags(volumes=False, group='hyperv_ovs_status')
        code, results = self.run_check()
        self.assertEqual(SUCCESS, code)
        self.assertResult(results, ISCSI_CHECK, SUCCESS, 'Not checked')

    def test_time_service_stopped_warns(self):
        self.host.services['W32Time'] = 'Stopped'
        code, results = self.run_check()
        self.assertEqual(WARNING, code)
        self.assertResult(results, TIME_CHECK, WARNING,
                          '(W32Time) is Stopped', 'w32tm /resync')

    def test_time_sync_is_left_to_w32tm(self):
        code, results = self.run_check()
        self.assertResult(results, TIME_CHECK, SUCCESS,
                          'cannot be checked through WMI',
                          'w32tm /query /status')

    def test_worst_result_is_the_exit_code(self):
        self.host.services['W32Time'] = 'Stopped'
        self.ovs.stop_ovsdb()
        code, results = self.run_check()
        self.assertEqual(FAILURE, code)


class ConsoleScriptTestCase(test.NoDBTestCase):
    """The installed ``compute-hyperv-ovs-status`` (setup.cfg entry point)."""

    def _run(self, *args):
        script = os.path.join(os.path.dirname(sys.executable),
                              'compute-hyperv-ovs-status')
        return subprocess.run([script] + list(args), capture_output=True,
                              text=True, timeout=120)

    def test_check_subcommand_and_json_option(self):
        result = self._run('check', '--help')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('--json', result.stdout)

    def test_crash_exits_255_not_a_check_code(self):
        # No Hyper-V (no WMI) where the tests run: os-win fails, and the
        # command says so with oslo.upgradecheck's 255, never 0, 1 or 2.
        config = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              'nova.conf')
        with open(config, 'w') as f:
            f.write('[hyperv]\nvswitch_name = external\n')
        result = self._run('--config-file', config, 'check')
        self.assertEqual(255, result.returncode, result.stdout)
        self.assertIn('Error:', result.stdout)
