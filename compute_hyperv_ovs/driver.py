"""HyperVOVSDriver: nova's Hyper-V driver with NICs on Open vSwitch.

A facade over nova 28's ``HyperVDriver``.  Everything not listed here is
the base driver's:

- NICs: plugged through :mod:`compute_hyperv_ovs.vif` and the driver's own
  ``hyperv_ovs`` os-vif plugin (one OVSDB connection per driver), instead
  of ``os_vif.plug()`` with os-vif's ``ovs`` plugin, which has no Windows
  path since os-vif 4.0.0.
- spawn: refuses images Hyper-V cannot boot and config drive formats it
  cannot build before anything is created, and
  turns a failed plug or a missing network-vif-plugged into an aborted build
  whose fault says what to check on this host.
- cleanup_host: closes the OVSDB connection.
- live migration (:mod:`compute_hyperv_ovs.livemigrationops`): the
  destination's OVS ports are registered before the VM moves; pre-checks
  refuse destinations without the vSwitch, OVSDB or integration bridge,
  hosts without Hyper-V live migration, and CPU mismatches without
  ``[hyperv] limit_cpu_features``; a failed move is recorded as an error.
  pre_live_migration is overridden here only to pass ``migrate_data`` on.
- cold migration and resize (:mod:`compute_hyperv_ovs.migrationops`):
  the base's, plugging through this driver; a shrinking resize says what
  to do and confirm leaves nothing on the source.

Configure with ``compute_driver = compute_hyperv_ovs.driver.HyperVOVSDriver``
(nova resolves it through ``nova/virt/compute_hyperv_ovs/driver.py``).
"""

import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from nova.virt.hyperv import driver as hyperv_driver
from os_vif import objects as osv_objects
from oslo_log import log as logging

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs import livemigrationops
from compute_hyperv_ovs import migrationops
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vmops

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class HyperVOVSDriver(hyperv_driver.HyperVDriver):
    """Hyper-V compute driver for VMs on neutron networks through OVS."""

    def __init__(self, virtapi):
        super().__init__(virtapi)
        # nova-compute's main registers these through os_vif.initialize();
        # do it here too so the driver works wherever it is built.
        osv_objects.register_all()
        # Not through os_vif.initialize(): os-vif keeps one plugin object per
        # process, and every compute driver needs its own OVSDB connection.
        self._vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self._vmops = vmops.VMOps(virtapi, self._vif_plugin)
        # The base ops build private VMOps; one VMOps means one VIF driver.
        self._livemigrationops = livemigrationops.LiveMigrationOps(
            self._vmops, self._vif_plugin)
        self._migrationops = migrationops.MigrationOps(self._vmops)

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        self._vmops.check_image(instance, image_meta, block_device_info)
        self._vmops.check_config_drive(instance)
        try:
            super().spawn(context, instance, image_meta, injected_files,
                          admin_password, allocations, network_info,
                          block_device_info, power_on, accel_info)
        except nova_exception.VirtualInterfacePlugException as exc:
            # The base spawn already destroyed the VM.  Abort rather than
            # reschedule: a reschedule's final fault says only "Exhausted
            # all hosts", and the operator needs to see this host's OVSDB
            # error to fix it.
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=exc.format_message()) from exc
        except nova_exception.VirtualInterfaceCreateException as exc:
            # nova's own fault here is "Failed to allocate the network(s)",
            # which sends operators to neutron-server instead of this host.
            waited = [vif['id'] for vif in network_info or ()
                      if vif.get('active') is False]
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=_('no network-vif-plugged for port(s) %(ports)s within '
                         '%(timeout)s s; check that neutron-openvswitch-agent '
                         'runs on this host and sees them on the bridge') % {
                             'ports': ', '.join(waited),
                             'timeout': CONF.vif_plugging_timeout}) from exc

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        # The base facade does not hand migrate_data (the destination's
        # port bindings) to its ops.
        self._livemigrationops.pre_live_migration(
            context, instance, block_device_info, network_info, migrate_data)
        return migrate_data

    def cleanup_host(self, host):
        super().cleanup_host(host)
        self._vif_plugin.close()
