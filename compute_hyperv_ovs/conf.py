"""Configuration options of compute-hyperv-ovs and their registration.

The plugin's options live on the plugin class (os-vif's convention, so
``os_vif.initialize()`` registers them under ``[os_vif_hyperv_ovs]`` too);
this module registers the same objects at import, so nova.conf can be read
and tests can set them before a driver exists, and lists them for
oslo-config-generator.
"""

from oslo_config import cfg

from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = cfg.CONF

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
    conf.register_opts(plugin.HyperVOvsPlugin.CONFIG_OPTS,
                       group=plugin.CONFIG_GROUP)
    conf.register_opts(PORT_SYNC_OPTS, group=plugin.CONFIG_GROUP)
    conf.register_opts(STATUS_OPTS, group=STATUS_GROUP)


def list_opts():
    """Options for ``oslo-config-generator --namespace compute_hyperv_ovs``."""
    return [(plugin.CONFIG_GROUP, list(plugin.HyperVOvsPlugin.CONFIG_OPTS) +
             list(PORT_SYNC_OPTS)),
            (STATUS_GROUP, list(STATUS_OPTS))]


register_opts(CONF)
