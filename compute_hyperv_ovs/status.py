"""``compute-hyperv-ovs-status check``: is this Hyper-V host ready?

A preflight check for the operator, built on oslo.upgradecheck so that it
prints and exits like ``nova-status upgrade check``: one row per check
(Success, Warning or Failure, and what to do), exit code 0 when all passed,
1 when the worst was a warning, 2 when something failed, 255 when the check
itself crashed (``oslo_upgradecheck.upgradecheck.Code`` and ``run``).

It reads nova.conf (``--config-file``) and asks this host, through the same
layers the driver uses: os-win (and :mod:`compute_hyperv_ovs.hostinfo` for
what os-win lacks) for Hyper-V, the driver's VIF driver for the vSwitch
rules, and the ``hyperv_ovs`` os-vif plugin for OVSDB and ovs-vswitchd.
Options of its own are in ``[hyperv_ovs_status]``
(:data:`compute_hyperv_ovs.conf.STATUS_OPTS`).
"""

import sys

import nova.conf
from nova.i18n import _
from nova.network import model as network_model
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from compute_hyperv_ovs import conf as driver_conf
from compute_hyperv_ovs import exception as driver_exception
from compute_hyperv_ovs import hostinfo
from compute_hyperv_ovs.hyperv import pathutils
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vif

CONF = nova.conf.CONF

SUCCESS = upgradecheck.Code.SUCCESS
WARNING = upgradecheck.Code.WARNING
FAILURE = upgradecheck.Code.FAILURE

# Windows service short names (Get-Service): the Microsoft iSCSI Initiator
# Service, which os-brick's Windows iSCSI connector needs, and the Windows
# Time service.
ISCSI_SERVICE = 'MSiSCSI'
TIME_SERVICE = 'W32Time'

# The errors HyperVOVSVIFDriver.check_vswitch raises; each names the
# vSwitch and the fix.
_VSWITCH_ERRORS = (driver_exception.VswitchNotSet,
                   driver_exception.VswitchNotFound,
                   driver_exception.OvsExtensionMissing,
                   driver_exception.OvsExtensionDisabled,
                   driver_exception.OvsExtensionNotRunning)

# At most this many VM names are listed in a warning.
_MAX_NAMES = 5


def _result(code, details):
    return upgradecheck.Result(code, details)


def _names(names):
    shown = ', '.join(names[:_MAX_NAMES])
    if len(names) > _MAX_NAMES:
        shown += _(' and %d more') % (len(names) - _MAX_NAMES)
    return shown


class HostChecks(upgradecheck.UpgradeCommands):
    """The checks of this Hyper-V host, in the order an operator fixes them.

    Build it once nova.conf is loaded; it makes its os-win utils and its
    own ``hyperv_ovs`` plugin (one OVSDB connection, closed by
    :meth:`check`).
    """

    display_title = _('compute-hyperv-ovs host check results')

    def __init__(self):
        super().__init__()
        self._vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self._vif_driver = vif.HyperVOVSVIFDriver(self._vif_plugin)
        self._netutils = utilsfactory.get_networkutils()
        self._lmutils = utilsfactory.get_livemigrationutils()
        self._pathutils = pathutils.PathUtils()
        self._hostinfo = hostinfo.HostInfoUtils()

    def check(self):
        """Run every check and print the table (or JSON).

        :returns: ``upgradecheck.Code``, the worst result.
        """
        try:
            return super().check()
        finally:
            self._vif_plugin.close()

    @property
    def _status_conf(self):
        return CONF[driver_conf.STATUS_GROUP]

    # -- Hyper-V vSwitch ------------------------------------------------

    def _check_vswitch(self):
        """``[hyperv] vswitch_name`` carries OVS, and no other vSwitch does.

        The first half is the driver's own check before each build
        (``HyperVOVSVIFDriver.check_vswitch``), asked for one ``ovs`` VIF.
        The second: Open vSwitch for Windows works with its extension
        enabled on one vSwitch only (Alin Serdean, OVS for Windows
        maintainer, in https://github.com/ovn-kubernetes/ovn-kubernetes/
        issues/272); an extension that is enabled, running or not, counts.
        """
        vswitch = CONF.hyperv.vswitch_name
        try:
            self._vif_driver.check_vswitch(network_model.NetworkInfo(
                [network_model.VIF(type=network_model.VIF_TYPE_OVS)]))
        except _VSWITCH_ERRORS as exc:
            return _result(FAILURE, str(exc))
        others = []
        for name in sorted(self._hostinfo.list_vswitches()):
            if name == vswitch:
                continue
            try:
                extensions = self._netutils.get_vswitch_extensions(name)
            except os_win_exc.HyperVvSwitchNotFound:
                continue  # removed since it was listed
            for ext in extensions:
                if (vif.OVS_EXTENSION_RE.match(ext['name']) and
                        ext['enabled_state'] !=
                        os_win_const.CIM_STATE_DISABLED):
                    others.append((name, ext['name']))
        if others:
            fixes = '; '.join(
                'Disable-VMSwitchExtension -VMSwitchName "%s" -Name "%s"'
                % other for other in others)
            return _result(FAILURE, _(
                'The Open vSwitch extension is also enabled on vSwitch(es) '
                '%(others)s; Open vSwitch for Windows supports one vSwitch '
                '(%(vswitch)s, [hyperv] vswitch_name): run %(fixes)s') % {
                    'others': ', '.join(name for name, _ext in others),
                    'vswitch': vswitch, 'fixes': fixes})
        return _result(SUCCESS, _(
            'vSwitch %s has the Open vSwitch extension enabled and running, '
            'no other vSwitch has it enabled') % vswitch)

    # -- Open vSwitch ---------------------------------------------------

    def _check_ovsdb(self):
        """ovsdb-server answers and has the integration bridge."""
        bridge = CONF.neutron.ovs_bridge
        connection = CONF[plugin.CONFIG_GROUP].ovsdb_connection
        try:
            exists = self._vif_plugin.bridge_exists(bridge)
        except ovs_exception.OvsPortError as exc:
            return _result(FAILURE, str(exc))
        if not exists:
            return _result(FAILURE, _(
                'ovsdb-server at %(conn)s answers, but there is no bridge '
                '%(bridge)s ([neutron] ovs_bridge): run "ovs-vsctl add-br '
                '%(bridge)s" (neutron-openvswitch-agent\'s [ovs] '
                'integration_bridge must name the same bridge)') % {
                    'conn': connection, 'bridge': bridge})
        return _result(SUCCESS, _(
            'ovsdb-server at %(conn)s answers; bridge %(bridge)s exists') % {
                'conn': connection, 'bridge': bridge})

    def _check_vswitchd(self):
        """ovs-vswitchd applies a change (``cur_cfg`` reaches ``next_cfg``).

        Through ``HyperVOvsPlugin.check_vswitchd``, which writes one key of
        ``Open_vSwitch.external_ids``.
        """
        try:
            self._vif_plugin.check_vswitchd()
        except ovs_exception.VswitchdNotApplying as exc:
            return _result(FAILURE, _(
                '%s (on Windows: Get-Service ovs-vswitchd, Start-Service '
                'ovs-vswitchd; its log is ovs-vswitchd.log in the Open '
                'vSwitch log directory)') % exc)
        except ovs_exception.OvsPortError as exc:
            return _result(FAILURE, _('Cannot be checked: %s') % exc)
        return _result(SUCCESS, _('ovs-vswitchd applied a test change'))

    # -- storage and tools ----------------------------------------------

    def _check_instances_path(self):
        """``instances_path`` exists and this user can write files in it."""
        path = self._pathutils.get_instances_dir()
        if not self._pathutils.exists(path):
            return _result(FAILURE, _(
                'instances_path %s does not exist: create it (New-Item '
                '-ItemType Directory -Path "%s") or set [DEFAULT] '
                'instances_path') % (path, path))
        try:
            probe = self._pathutils.create_temporary_file(
                suffix='.check', dir=path)
            self._pathutils.remove(probe)
        except OSError as exc:
            return _result(FAILURE, _(
                'instances_path %(path)s is not a directory this user can '
                'write to (%(err)s): give the account nova-compute runs as '
                'Modify rights on it (icacls "%(path)s" /grant '
                '"<account>:(OI)(CI)M")') % {'path': path, 'err': exc})
        return _result(SUCCESS, _('instances_path %s exists and is '
                                  'writable') % path)

    @staticmethod
    def _check_command(option, command, args, what):
        try:
            processutils.execute(command, *args)
        except (processutils.ProcessExecutionError, OSError) as exc:
            reason = ' '.join(str(exc).split())
            return _result(FAILURE, _(
                '%(option)s = %(cmd)s does not run (%(reason)s): install '
                '%(what)s and set %(option)s to its full path') % {
                    'option': option, 'cmd': command, 'what': what,
                    'reason': reason[:200]})
        return _result(SUCCESS, _('%(option)s = %(cmd)s runs') % {
            'option': option, 'cmd': command})

    def _check_qemu_img(self):
        """``[hyperv] qemu_img_cmd`` runs (VHD config drives, images)."""
        return self._check_command(
            '[hyperv] qemu_img_cmd', CONF.hyperv.qemu_img_cmd,
            self._status_conf.qemu_img_check_args, 'qemu-img for Windows')

    def _check_mkisofs(self):
        """``[DEFAULT] mkisofs_cmd`` runs (config drives)."""
        return self._check_command(
            '[DEFAULT] mkisofs_cmd', CONF.mkisofs_cmd,
            self._status_conf.mkisofs_check_args, 'mkisofs (or genisoimage)')

    # -- live migration and CPU features ---------------------------------

    def _check_live_migration(self):
        """Hyper-V live migration enabled, migration networks set.

        os-win ``LiveMigrationUtils.check_live_migration_config`` reads
        ``Msvm_VirtualSystemMigrationServiceSettingData.
        EnableVirtualSystemMigration`` and the migration service's listener
        addresses.  The driver's live migration is shared-nothing
        (doc/source/design.rst, "Migration"): each host has its own local
        ``instances_path``, so a UNC path is a warning.
        """
        if not self._status_conf.live_migration:
            return _result(SUCCESS, _(
                'Not checked: [%s] live_migration = False')
                % driver_conf.STATUS_GROUP)
        try:
            self._lmutils.check_live_migration_config()
        except os_win_exc.HyperVException as exc:
            return _result(FAILURE, _(
                '%s: run Enable-VMMigration; Set-VMMigrationNetwork '
                '<migration network CIDR>; Set-VMHost '
                '-VirtualMachineMigrationAuthenticationType Kerberos') % exc)
        path = CONF.instances_path
        if path.startswith(('\\\\', '//')):
            return _result(WARNING, _(
                'instances_path %s is a network share, but this driver\'s '
                'live migration is shared-nothing (each host has its own '
                'local instances_path): set it to a local directory, the '
                'same path on every host') % path)
        return _result(SUCCESS, _(
            'Live migration is enabled, migration networks are set, '
            'instances_path is local'))

    def _check_cpu_features(self):
        """VMs here were created with today's ``limit_cpu_features``.

        nova applies ``[hyperv] limit_cpu_features`` when it creates a VM;
        VMs created before a change keep the old setting, and a VM with
        all processor features cannot live-migrate to a host whose CPU
        lacks one (doc/source/design.rst, "Migration").
        """
        wanted = CONF.hyperv.limit_cpu_features
        limits = self._hostinfo.get_vm_processor_limits()
        differ = sorted(name for name, limited in limits.items()
                        if limited != wanted)
        if differ:
            return _result(WARNING, _(
                '%(count)d VM(s) were created with limit_cpu_features = '
                '%(old)s, [hyperv] limit_cpu_features is %(new)s: '
                '%(names)s. They keep the old setting; to change one, stop '
                'it and run Set-VMProcessor -VMName <name> '
                '-CompatibilityForMigrationEnabled $%(new)s, or set the '
                'option back') % {
                    'count': len(differ), 'old': not wanted, 'new': wanted,
                    'names': _names(differ)})
        return _result(SUCCESS, _(
            'All %(count)d VM(s) match [hyperv] limit_cpu_features = '
            '%(new)s') % {'count': len(limits), 'new': wanted})

    # -- services -------------------------------------------------------

    def _check_iscsi(self):
        """The Microsoft iSCSI Initiator service runs (warning only)."""
        if not self._status_conf.volumes:
            return _result(SUCCESS, _('Not checked: [%s] volumes = False')
                           % driver_conf.STATUS_GROUP)
        state = self._hostinfo.get_service_state(ISCSI_SERVICE)
        if state != hostinfo.SERVICE_RUNNING:
            return _result(WARNING, _(
                'The Microsoft iSCSI Initiator service (%(svc)s) is '
                '%(state)s; iSCSI volumes cannot be attached: run '
                'Set-Service %(svc)s -StartupType Automatic; Start-Service '
                '%(svc)s') % {'svc': ISCSI_SERVICE,
                              'state': state or _('not installed')})
        return _result(SUCCESS, _('%s runs') % ISCSI_SERVICE)

    def _check_time(self):
        """The Windows Time service runs (warning only).

        Whether the clock is synchronised is not something WMI reports
        (W32Time has no WMI provider; ``w32tm /query /status`` is the
        tool), so this checks the service and names the command.
        """
        state = self._hostinfo.get_service_state(TIME_SERVICE)
        if state != hostinfo.SERVICE_RUNNING:
            return _result(WARNING, _(
                'The Windows Time service (%(svc)s) is %(state)s, so the '
                'clock is not synchronised and nova may see this '
                'nova-compute as down: run Set-Service %(svc)s -StartupType '
                'Automatic; Start-Service %(svc)s; w32tm /config '
                '/manualpeerlist:<NTP server> /syncfromflags:manual /update; '
                'w32tm /resync') % {'svc': TIME_SERVICE,
                                    'state': state or _('not installed')})
        return _result(SUCCESS, _(
            '%s runs; whether it is synchronised cannot be checked through '
            'WMI: run w32tm /query /status') % TIME_SERVICE)

    _upgrade_checks = (
        (_('Hyper-V vSwitch and Open vSwitch extension'), _check_vswitch),
        (_('OVSDB and integration bridge'), _check_ovsdb),
        (_('ovs-vswitchd applies changes'), _check_vswitchd),
        (_('Instances path'), _check_instances_path),
        (_('qemu-img'), _check_qemu_img),
        (_('mkisofs'), _check_mkisofs),
        (_('Live migration'), _check_live_migration),
        (_('Processor feature limits of VMs'), _check_cpu_features),
        (_('iSCSI initiator service'), _check_iscsi),
        (_('Windows Time service'), _check_time),
    )


def _run_check():
    return HostChecks().check()


def _add_parsers(subparsers):
    parser = subparsers.add_parser(
        'check', help=_('Check this Hyper-V host for compute-hyperv-ovs.'))
    parser.add_argument(
        '--json', action='store_true',
        help=_('Print the results as JSON instead of a table.'))
    parser.set_defaults(action_fn=_run_check)


def main(argv=None):
    """``compute-hyperv-ovs-status check [--json] [--config-file ...]``.

    :param argv: arguments, default ``sys.argv[1:]``.
    :returns: the exit code (``upgradecheck.Code``, or 255 when a check
        crashed).
    """
    CONF.register_cli_opt(cfg.SubCommandOpt('command', handler=_add_parsers))
    CONF(args=sys.argv[1:] if argv is None else argv, project='nova')
    CONF.set_override('timeout', CONF[driver_conf.STATUS_GROUP].ovsdb_timeout,
                      group=plugin.CONFIG_GROUP)
    # upgradecheck.check() reads --json from its module's CONF, which its
    # own main() sets the same way.
    upgradecheck.CONF = CONF
    return upgradecheck.run(CONF)
