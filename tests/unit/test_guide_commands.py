"""The operator's guide's Linux commands, run as the guide writes them.

``doc/source/*.rst`` marks the console blocks whose commands run on Linux
(``:class: linux-runnable``, read by ``tools/guide_commands.py``).  Here:
the config generator is run as written; the preflight check's arguments
are parsed as ``compute-hyperv-ovs-status`` parses them and its checks run
against the simulated Hyper-V host and a real Open vSwitch; the
``openstack`` and ``nova-manage`` commands need the all-in-one cloud, so
the test checks that ``tools/cloud/main_job.py`` runs every one of them.
A command of any other program fails the test until it gets a runner.
"""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import types

import fixtures
from nova import test
from os_vif import objects as osv_objects
from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import status
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guide = _load('guide_commands', os.path.join(ROOT, 'tools',
                                             'guide_commands.py'))


def guide_commands(program):
    return [c for c in guide.commands() if c.program == program]


class GuideMarksTest(test.NoDBTestCase):

    def test_every_marked_command_has_a_runner(self):
        commands = guide.commands()
        programs = {c.program for c in commands}
        self.assertEqual(
            set(guide.OFFLINE_PROGRAMS + guide.CLOUD_PROGRAMS), programs,
            'each program of the marked blocks needs a runner here or in '
            'the main job: %s' % commands)

    def test_cloud_commands_are_literal(self):
        # The main job runs them as written: no placeholder to fill in.
        for command in guide.cloud_commands():
            self.assertNotIn('<', command.line, command)

    def test_main_job_runs_the_guides_cloud_commands(self):
        with open(os.path.join(ROOT, 'tools', 'cloud', 'main_job.py')) as f:
            source = f.read()
        self.assertIn('guide_commands.cloud_commands()', source)
        self.assertIn('def run_guide_commands(', source)
        self.assertIn('run_guide_commands()', source.split('def main(')[1])


class ConfigGeneratorCommandTest(test.NoDBTestCase):

    def test_config_generator_command_writes_every_group(self):
        commands = guide_commands('oslo-config-generator')
        self.assertTrue(commands)
        out_dir = self.useFixture(fixtures.TempDir()).path
        for command in commands:
            out = os.path.join(out_dir, 'sample.conf')
            argv = [os.path.join(os.path.dirname(sys.executable),
                                 command.program)] + command.argv[1:]
            # Where the guide's command writes is the generator file's
            # business; the test writes elsewhere, not into etc/.
            result = subprocess.run(argv + ['--output-file', out],
                                    cwd=ROOT, capture_output=True,
                                    text=True, timeout=120)
            self.assertEqual(0, result.returncode,
                             '%r: %s' % (command, result.stderr))
            with open(out) as f:
                sample = f.read()
            for group in ('[hyperv]', '[%s]' % plugin.CONFIG_GROUP,
                          '[%s]' % conf.STATUS_GROUP):
                self.assertIn(group, sample, command)


class PreflightCommandTest(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        instances = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'instances')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.hosts.add_host('host1', vswitch_name='external',
                            instances_path=instances)
        self.nova_conf = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'nova.conf')
        with open(self.nova_conf, 'w') as f:
            f.write('[DEFAULT]\ninstances_path = %s\nmkisofs_cmd = '
                    'genisoimage\n[hyperv]\nvswitch_name = external\n'
                    'qemu_img_cmd = qemu-img\n[%s]\novsdb_connection = %s\n'
                    'timeout = 3\n' % (instances, plugin.CONFIG_GROUP,
                                       self.ovs.connection))

    def _parse(self, argv):
        """Parse the guide's arguments as status.main does."""
        parsed = cfg.ConfigOpts()
        conf.register_opts(parsed)
        # nova's own options the check reads (nova.conf registers them on
        # nova's CONF, which a fresh ConfigOpts does not share).
        parsed.register_opts([cfg.StrOpt('instances_path'),
                              cfg.StrOpt('mkisofs_cmd')])
        parsed.register_cli_opt(cfg.SubCommandOpt(
            'command', handler=status._add_parsers))
        parsed(args=argv, project='nova')
        return parsed

    def test_preflight_command_passes_on_a_healthy_simulated_host(self):
        commands = guide_commands('compute-hyperv-ovs-status')
        self.assertTrue(commands)
        for command in commands:
            argv = list(command.argv[1:])
            # The guide's nova.conf is the host's; here it is the test's.
            argv[argv.index('--config-file') + 1] = self.nova_conf
            parsed = self._parse(argv)
            self.assertEqual('check', parsed.command.name, command)
            for group in ('hyperv', plugin.CONFIG_GROUP):
                for name in parsed[group]:
                    self.flags(**{name: parsed[group][name], 'group': group})
            self.flags(instances_path=parsed.instances_path,
                       mkisofs_cmd=parsed.mkisofs_cmd)
            self.useFixture(fixtures.MonkeyPatch(
                'oslo_upgradecheck.upgradecheck.CONF',
                types.SimpleNamespace(command=parsed.command)))
            with self.hosts.building('host1'):
                checks = status.HostChecks()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = checks.check()
            self.assertEqual(upgradecheck.Code.SUCCESS, code, out.getvalue())
            if parsed.command.json:
                results = json.loads(out.getvalue())['checks']
                self.assertEqual(
                    [upgradecheck.Code.SUCCESS] * len(results),
                    [r['result'] for r in results], out.getvalue())
