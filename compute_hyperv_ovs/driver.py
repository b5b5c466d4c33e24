"""HyperVOVSDriver: the project's Hyper-V driver with NICs on Open vSwitch.

The Hyper-V driver (:mod:`compute_hyperv_ovs.hyperv`) knows nothing of
networks beyond a VIF driver it is handed; this module joins it with the
Open vSwitch extension:

- NICs: plugged through :mod:`compute_hyperv_ovs.vif` and the driver's own
  ``hyperv_ovs`` os-vif plugin (one OVSDB connection per driver), instead
  of ``os_vif.plug()`` with os-vif's ``ovs`` plugin, which has no Windows
  path since os-vif 4.0.0.
- spawn order and ports after a start (:mod:`compute_hyperv_ovs.vmops`):
  on OVS for Windows a VM's port has ``ofport -1`` until the VM runs, so
  the VM is started before the wait for network-vif-plugged when a port is
  not up; every later start of the VM (power-on, reboot, resume, the end
  of a migration) makes sure its OVS ports come up.  A failed plug or a
  missing network-vif-plugged is an aborted build whose fault says what to
  check on this host.
- nova-compute start-up (:mod:`compute_hyperv_ovs.portsync`): init_host
  starts the port sync, which reconciles this host's OVS ports with its
  instances in the background and retries with back-off while OVSDB does
  not answer; plug_vifs (nova's start-up call) connects the vNICs of the
  VMs still on the host and leaves the OVS ports to the port sync, so
  neither a down OVSDB nor a VM removed behind nova's back stops the
  service or puts servers in ERROR.  resume_state_on_host_boot does the
  same before powering the VM on.
- live migration (:mod:`compute_hyperv_ovs.livemigrationops`): the
  destination's OVS ports are registered before the VM moves; pre-checks
  refuse destinations without the vSwitch, OVSDB or integration bridge;
  the rollback on the destination removes the ports as bound there.
- cleanup_host: stops the port sync, closes the OVSDB connection.

Configure with ``compute_driver = compute_hyperv_ovs.driver.HyperVOVSDriver``
(nova resolves it through ``nova/virt/compute_hyperv_ovs/driver.py``).
"""

import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from os_vif import objects as osv_objects
from oslo_log import log as logging

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.hyperv import driver as hyperv_driver
from compute_hyperv_ovs import livemigrationops
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import portsync
from compute_hyperv_ovs import vif
from compute_hyperv_ovs import vmops

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class HyperVOVSDriver(hyperv_driver.HyperVDriver):
    """Hyper-V compute driver for VMs on neutron networks through OVS."""

    def __init__(self, virtapi):
        # nova-compute's main registers these through os_vif.initialize();
        # do it here too so the driver works wherever it is built.
        osv_objects.register_all()
        # Not through os_vif.initialize(): os-vif keeps one plugin object per
        # process, and every compute driver needs its own OVSDB connection.
        self._vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        super().__init__(virtapi)
        # CONF.host now is this service's: nova builds the driver for it.
        self._vif_plugin.set_compute_host(CONF.host)
        self._port_sync = portsync.PortSync(
            self._vmops.vif_driver, self._vif_plugin, CONF.host,
            self.list_instances)
        self._vmops.vif_driver.set_port_sync(self._port_sync)

    def _build_vif_driver(self):
        return vif.HyperVOVSVIFDriver(self._vif_plugin)

    def _build_vmops(self, virtapi):
        return vmops.VMOps(virtapi, self._build_vif_driver(),
                           self._imagecache, self._serialconsoleops)

    def _build_livemigrationops(self, destination_checks=()):
        return super()._build_livemigrationops(
            tuple(destination_checks) +
            (livemigrationops.DestinationChecks(self._vif_plugin),))

    def init_host(self, host):
        super().init_host(host)
        self._vif_plugin.set_compute_host(host)
        self._port_sync.host = host
        # In the background: nova-compute must start and report even when
        # ovsdb-server is not up yet (after a Windows host reboot it often
        # is not).
        self._port_sync.start()

    def plug_vifs(self, instance, network_info):
        """nova-compute's start-up plug (``_init_instance``).

        nova calls this only at start-up.  The vNICs of a VM still on this
        host are connected to the vSwitch now; the OVS ports are the port
        sync's, which reconciles every instance of the host in one OVSDB
        read and one transaction, and retries while OVSDB does not answer.
        A VM removed behind nova's back is skipped (nova's power state sync
        reports the instance as not found; its port is removed).  Before
        :meth:`init_host` (no port sync running) the VIFs are plugged
        directly.

        :raises nova.exception.VirtualInterfacePlugException: a VIF type
            this driver does not plug.
        """
        if not self._port_sync.running:
            return super().plug_vifs(instance, network_info)
        for vif_ in network_info or ():
            if not self._vmops.vif_driver.connect_vnic(instance, vif_):
                break
        self._port_sync.request()

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info, block_device_info=None):
        """Power on a VM nova expects running, after a host reboot.

        As the base driver, but the OVS ports are left to the port sync
        (:meth:`plug_vifs`), so a down OVSDB does not put the server in
        ERROR.
        """
        self.plug_vifs(instance, network_info)
        self._vmops.power_on(instance, block_device_info, network_info,
                             should_plug_vifs=False)

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        try:
            super().spawn(context, instance, image_meta, injected_files,
                          admin_password, allocations, network_info,
                          block_device_info, power_on, accel_info)
        except nova_exception.VirtualInterfacePlugException as exc:
            # The VM is destroyed already.  Abort rather than reschedule: a
            # reschedule's final fault says only "Exhausted all hosts", and
            # the operator needs to see this host's OVSDB error to fix it.
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=exc.format_message()) from exc
        except nova_exception.VirtualInterfaceCreateException as exc:
            # nova's own fault here is "Failed to allocate the network(s)",
            # which sends operators to neutron-server instead of this host.
            waited = [vif_['id'] for vif_ in network_info or ()
                      if vif_.get('active') is False]
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=_('no network-vif-plugged for port(s) %(ports)s within '
                         '%(timeout)s s; check that neutron-openvswitch-agent '
                         'runs on this host and sees them on the bridge') % {
                             'ports': ', '.join(waited),
                             'timeout': CONF.vif_plugging_timeout}) from exc

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        """Prepare this host, then register the VM's OVS ports here.

        Each ``ovs`` VIF's port is added to this host's OVSDB, as bound
        here, with the same name and external_ids as on the source, before
        the VM arrives.  The vNIC arrives with the VM, already connected to
        the vSwitch of the same name.

        :raises nova.exception.MigrationPreCheckError: this host cannot
            wire the NICs (checked again now, as bound here).
        :raises nova.exception.VirtualInterfacePlugException: this host's
            OVSDB became unreachable while registering.
        """
        migrate_data = super().pre_live_migration(
            context, instance, block_device_info, network_info, disk_info,
            migrate_data)
        self._vmops.pre_plug_vifs(
            instance, livemigrationops.destination_network_info(
                network_info, migrate_data))
        return migrate_data

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        # Remove the ports pre_live_migration registered here, as bound
        # here: nova hands the source's network_info.
        network_info = livemigrationops.destination_network_info(
            network_info, migrate_data)
        super().rollback_live_migration_at_destination(
            context, instance, network_info, block_device_info,
            destroy_disks=destroy_disks, migrate_data=migrate_data)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        super().post_live_migration_at_destination(
            context, instance, network_info, block_migration,
            block_device_info)
        self._vmops.ensure_ports_up(instance, network_info)

    def cleanup_host(self, host):
        super().cleanup_host(host)
        self._port_sync.stop()
        self._vif_plugin.close()
