"""Configuration options of compute-hyperv-ovs and their registration.

``[hyperv]`` holds the Hyper-V driver's options under the names and with the
defaults nova 28 gave them (``nova/conf/hyperv.py``, removed with the driver
in nova 29), so an operator's nova.conf keeps working unchanged; the help
texts are the project's own.

The plugin's options live on the plugin class (os-vif's convention, so
``os_vif.initialize()`` registers them under ``[os_vif_hyperv_ovs]`` too);
this module registers the same objects at import, so nova.conf can be read
and tests can set them before a driver exists, and lists them for
oslo-config-generator.
"""

from oslo_config import cfg

from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = cfg.CONF

HYPERV_GROUP = cfg.OptGroup(
    'hyperv',
    title='The Hyper-V compute driver',
    help='Options of compute-hyperv-ovs\'s Hyper-V driver. Names and '
         'defaults are those of nova 28\'s in-tree Hyper-V driver.')

HYPERV_OPTS = (
    cfg.FloatOpt('dynamic_memory_ratio',
                 default=1.0,
                 help='Dynamic memory for new VMs. 1.0 (or less) gives a VM '
                      'static memory of the flavor\'s size. A larger value '
                      'turns on Hyper-V dynamic memory: the VM starts with '
                      'the flavor\'s memory divided by this ratio and may '
                      'grow up to the flavor\'s memory.'),
    cfg.BoolOpt('enable_instance_metrics_collection',
                default=False,
                help='Turn on Hyper-V\'s metrics collection for each VM '
                     '(CPU, memory, disk and network counters), which '
                     'instance diagnostics and telemetry read. Needs '
                     'Windows Server 2012 or later.'),
    cfg.StrOpt('instances_path_share',
               default='',
               help='The SMB share name of this host\'s instances_path, '
                    'used by other hosts to copy files here during a '
                    'resize or cold migration. Empty: the administrative '
                    'share of the instances_path drive (\\\\HOST\\C$...) '
                    'is used, which needs administrator rights on this '
                    'host.'),
    cfg.BoolOpt('limit_cpu_features',
                default=False,
                help='Limit the processor features a VM sees to a set '
                     'common to all Hyper-V hosts, so that it can live '
                     'migrate to a host with a different CPU. Applies to '
                     'VMs created after the change.'),
    cfg.IntOpt('mounted_disk_query_retry_count',
               default=10,
               min=0,
               help='How many times to look for the disk of a newly '
                    'attached volume before giving up.'),
    cfg.IntOpt('mounted_disk_query_retry_interval',
               default=5,
               min=0,
               help='Seconds between two looks for the disk of a newly '
                    'attached volume.'),
    cfg.IntOpt('power_state_check_timeframe',
               default=60,
               min=0,
               help='Seconds of VM power state changes each query for '
                    'Hyper-V\'s power state events covers.'),
    cfg.IntOpt('power_state_event_polling_interval',
               default=2,
               min=0,
               help='Seconds between two polls of Hyper-V\'s power state '
                    'change events.'),
    cfg.StrOpt('qemu_img_cmd',
               default='qemu-img.exe',
               help='The qemu-img command (a path, or a name on PATH), used '
                    'to convert a config drive ISO into a VHD when '
                    'config_drive_cdrom is False.'),
    cfg.StrOpt('vswitch_name',
               help='The Hyper-V virtual switch VM NICs connect to. With '
                    'Open vSwitch for Windows it is the vSwitch whose Open '
                    'vSwitch extension is enabled. Unset: the first '
                    'vSwitch the host lists.'),
    cfg.IntOpt('wait_soft_reboot_seconds',
               default=60,
               min=0,
               help='Seconds a soft reboot or a soft stop waits for the '
                    'guest to turn itself off before the VM is turned off '
                    'hard.'),
    cfg.BoolOpt('config_drive_cdrom',
                default=False,
                help='Attach the config drive as a DVD (the ISO image) '
                     'rather than as a disk (the ISO converted to a VHD '
                     'with qemu_img_cmd).'),
    cfg.BoolOpt('config_drive_inject_password',
                default=False,
                help='Write the admin password into the config drive.'),
    cfg.IntOpt('volume_attach_retry_count',
               default=10,
               min=0,
               help='How many times to try attaching a volume before '
                    'giving up.'),
    cfg.IntOpt('volume_attach_retry_interval',
               default=5,
               min=0,
               help='Seconds between two attempts to attach a volume.'),
    cfg.BoolOpt('enable_remotefx',
                default=False,
                help='RemoteFX vGPUs for VMs whose flavor asks for them '
                     '(os:resolution). Microsoft removed RemoteFX from '
                     'Windows Server 2019 and later.'),
    cfg.BoolOpt('use_multipath_io',
                default=False,
                help='Use multipath connections for iSCSI and Fibre '
                     'Channel volumes; needs Windows\' MPIO feature.'),
    cfg.ListOpt('iscsi_initiator_list',
                default=[],
                help='The iSCSI initiators (HBA names) volume sessions may '
                     'use. Empty: Windows chooses.'),
    cfg.IntOpt('evacuate_task_state_timeout',
               default=600,
               min=1,
               help='Host maintenance mode (os-hosts API, microversion 2.42 '
                    'or older): seconds to wait for each server on this '
                    'host to finish the task it has (before it is moved) '
                    'and then its move to another host (live migration '
                    'for an active server, cold migration for a stopped '
                    'one). A server still here after that makes the '
                    'request fail, and the host stays disabled.'),
)

# Options of the driver's port sync (compute_hyperv_ovs.portsync), in the
# plugin's group: they are about the same OVS ports.
PORT_SYNC_OPTS = (
    cfg.IntOpt('port_sync_max_interval',
               default=60,
               min=1,
               help='Longest wait, in seconds, between two attempts to put '
                    'this host\'s OVS ports right while OVSDB does not '
                    'answer (at start-up, or after an unplug that could '
                    'not run). The wait starts at 1 s and doubles up to '
                    'this.'),
)

# Options of the preflight check (compute_hyperv_ovs.status,
# ``compute-hyperv-ovs-status check``); nova-compute does not read them.
STATUS_GROUP = 'hyperv_ovs_status'
STATUS_OPTS = (
    cfg.BoolOpt('live_migration',
                default=True,
                help='This host takes part in live migrations: check that '
                     'Hyper-V live migration is enabled, that migration '
                     'networks are set and that instances_path is a local '
                     'directory (shared-nothing live migration).'),
    cfg.BoolOpt('volumes',
                default=True,
                help='VMs on this host attach Cinder volumes over iSCSI: '
                     'check that the Microsoft iSCSI Initiator service '
                     '(MSiSCSI) runs.'),
    cfg.IntOpt('ovsdb_timeout',
               default=10,
               min=1,
               help='Seconds the check waits for ovsdb-server to answer and '
                    'for ovs-vswitchd to apply its test change; replaces '
                    '[os_vif_hyperv_ovs] timeout while the check runs.'),
    cfg.ListOpt('qemu_img_check_args',
                default=['--version'],
                help='Arguments with which [hyperv] qemu_img_cmd is run to '
                     'check that it works (it must exit with 0).'),
    cfg.ListOpt('mkisofs_check_args',
                default=['-version'],
                help='Arguments with which [DEFAULT] mkisofs_cmd is run to '
                     'check that it works (it must exit with 0); mkisofs '
                     'and genisoimage both accept -version.'),
)


def register_opts(conf):
    conf.register_group(HYPERV_GROUP)
    conf.register_opts(HYPERV_OPTS, group=HYPERV_GROUP)
    conf.register_opts(plugin.HyperVOvsPlugin.CONFIG_OPTS,
                       group=plugin.CONFIG_GROUP)
    conf.register_opts(PORT_SYNC_OPTS, group=plugin.CONFIG_GROUP)
    conf.register_opts(STATUS_OPTS, group=STATUS_GROUP)


def list_opts():
    """Options for ``oslo-config-generator --namespace compute_hyperv_ovs``."""
    return [(HYPERV_GROUP, list(HYPERV_OPTS)),
            (plugin.CONFIG_GROUP, list(plugin.HyperVOvsPlugin.CONFIG_OPTS) +
             list(PORT_SYNC_OPTS)),
            (STATUS_GROUP, list(STATUS_OPTS))]


register_opts(CONF)
