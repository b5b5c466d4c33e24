"""Live migration of the base driver, handing OVS ports over between hosts.

nova 28's Hyper-V driver registers a migrated VM's NICs on the destination
only in ``post_live_migration_at_destination``, once the VM already runs
there (compute-hyperv ce3e4e93, LP #1551222): from cut-over until then the
destination's neutron-openvswitch-agent has no OVS port to wire, and the VM
is cut off.  This driver registers the destination's OVS port (same name,
same external_ids) in ``pre_live_migration``, before Hyper-V moves the VM,
so the port and neutron's view of it exist ahead of the cut-over.  The port
is plugged again after the move (vNIC check, and the OVSDB change on which
OVS for Windows retries adding a port whose Hyper-V port was missing; see
doc/source/design.rst, "Migration").  The source's port is removed by
nova's own clean-up only once the migration succeeded.

The pre-checks refuse, before anything moves, a destination that cannot
carry the VM's NICs (no vSwitch, no OVSDB, no integration bridge), hosts
whose Hyper-V has live migration disabled, and a destination whose CPU
lacks features of the source's while VMs are not created with limited
processor features.

A failed move is rolled back by nova as before, but recorded as an error:
the migration record says ``error`` and the live-migration action gets an
event ``hyperv_live_migrate_vm`` whose details say why.
"""

import sys
import traceback

import nova.conf
from nova import exception
from nova.i18n import _
from nova.network import model as network_model
from nova import objects
from nova.virt.hyperv import livemigrationops
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_serialization import jsonutils

from compute_hyperv_ovs import imagecache
from compute_hyperv_ovs.os_vif_plugin import exception as ovs_exception
from compute_hyperv_ovs.os_vif_plugin import plugin

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Name of the instance action event that records why Hyper-V failed a move.
FAILURE_EVENT = 'hyperv_live_migrate_vm'

# Hyper-V's wording when a VM whose processor features are not limited
# cannot run on the destination's CPU ("The virtual machine '<vm>' is using
# processor-specific features not supported on physical computer
# '<host>'", learn.microsoft.com/en-us/windows-server/virtualization/
# hyper-v/manage/processor-compatibility-mode-hyper-v).
PROCESSOR_REFUSAL = 'processor-specific features'

# nova keeps 255 characters of an event's details: advice before data.
LIMIT_CPU_FEATURES_ADVICE = _(
    'set [hyperv] limit_cpu_features = True on all hosts, then '
    'cold-migrate or resize the server once to re-create its VM')


class LiveMigrationOps(livemigrationops.LiveMigrationOps):
    """nova 28's ``LiveMigrationOps`` with OVS ports and stricter checks.

    :param vmops: the driver's :class:`compute_hyperv_ovs.vmops.VMOps`, so
        that every plug goes through the driver's VIF driver.
    :param vif_plugin: the driver's ``HyperVOvsPlugin`` (its OVSDB).
    """

    def __init__(self, vmops, vif_plugin):
        super().__init__()
        self._vmops = vmops
        self._vif_plugin = vif_plugin
        self._imagecache = imagecache.ImageCache()
        self._netutils = utilsfactory.get_networkutils()

    # ---- pre-checks ----

    def check_can_live_migrate_destination(self, ctxt, instance_ref,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        """Refuse a destination that cannot take the VM, before it moves.

        Runs on the destination.  On top of the base check (whether the
        instances path is shared), refuses when Hyper-V live migration is
        disabled here, the ``[hyperv] vswitch_name`` vSwitch is missing
        here, this host's OVSDB is unreachable or lacks the bridge of one
        of the VM's OVS ports, or this host's CPU lacks features of the
        source's and VMs are not created with limited processor features
        (see
        :meth:`_check_cpu_features`).

        :param src_compute_info: the source ComputeNode as a dict
            (``cpu_info`` is nova's JSON with a ``features`` list).
        :param dst_compute_info: this host's ComputeNode as a dict.
        :returns: ``HyperVLiveMigrateData`` with ``is_shared_instance_path``.
        :raises nova.exception.MigrationPreCheckError: with the reason and
            what to do.
        """
        dest = dst_compute_info.get('hypervisor_hostname')
        self._check_live_migration_enabled(dest)
        ovs_vifs = [vif for vif in instance_ref.get_network_info()
                    if vif['type'] == network_model.VIF_TYPE_OVS]
        if ovs_vifs:
            self._check_vswitch(dest)
            self._check_bridges(dest, ovs_vifs)
        self._check_cpu_features(src_compute_info, dst_compute_info)
        return super().check_can_live_migrate_destination(
            ctxt, instance_ref, src_compute_info, dst_compute_info,
            block_migration, disk_over_commit)

    def check_can_live_migrate_source(self, ctxt, instance_ref,
                                      dest_check_data):
        """Refuse when Hyper-V live migration is disabled on the source.

        nova 28 checks the source only when the move starts
        (``live_migrate_vm``), after the destination was prepared.

        :raises nova.exception.MigrationPreCheckError: as above.
        """
        self._check_live_migration_enabled(instance_ref.host)
        return super().check_can_live_migrate_source(
            ctxt, instance_ref, dest_check_data)

    def _check_live_migration_enabled(self, hostname):
        try:
            self._livemigrutils.check_live_migration_config()
        except os_win_exc.HyperVException as exc:
            raise exception.MigrationPreCheckError(reason=_(
                'Hyper-V on %(host)s cannot live-migrate (%(err)s); enable '
                'it there with Enable-VMMigration and '
                'Set-VMMigrationNetwork') % {'host': hostname, 'err': exc})

    def _check_vswitch(self, hostname):
        try:
            self._netutils.get_vswitch_id(CONF.hyperv.vswitch_name)
        except os_win_exc.HyperVvSwitchNotFound:
            raise exception.MigrationPreCheckError(reason=_(
                'Hyper-V on %(host)s has no vSwitch named %(vswitch)s '
                '([hyperv] vswitch_name), which the VM\'s NICs connect to; '
                'create it with the Open vSwitch extension enabled, or set '
                'the option to the vSwitch that has it') % {
                    'host': hostname, 'vswitch': CONF.hyperv.vswitch_name})

    def _check_bridges(self, hostname, ovs_vifs):
        for bridge in sorted({vif['network']['bridge'] for vif in ovs_vifs}):
            try:
                exists = self._vif_plugin.bridge_exists(bridge)
            except ovs_exception.OvsdbUnreachable as exc:
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s is unreachable: OVSDB at '
                    '%(conn)s ([%(group)s] ovsdb_connection) did not answer '
                    '(%(err)s); start ovsdb-server there or fix the '
                    'option') % {'host': hostname, 'conn': exc.connection,
                                 'group': plugin.CONFIG_GROUP,
                                 'err': exc.reason})
            except ovs_exception.OvsPortError as exc:
                # The plugin's own words name the culprit.
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s: %(err)s') % {
                        'host': hostname, 'err': exc})
            if not exists:
                raise exception.MigrationPreCheckError(reason=_(
                    'Open vSwitch on %(host)s has no bridge %(bridge)s, on '
                    'which the VM\'s ports go; start '
                    'neutron-openvswitch-agent there (it creates its '
                    'integration bridge) or check its [ovs] '
                    'integration_bridge') % {'host': hostname,
                                             'bridge': bridge})

    @staticmethod
    def _cpu_features(compute_info):
        try:
            return frozenset(
                jsonutils.loads(compute_info['cpu_info'])['features'])
        except (KeyError, TypeError, ValueError):
            return None

    def _check_cpu_features(self, src_compute_info, dst_compute_info):
        """Refuse a destination lacking CPU features of the source.

        A VM whose processor features are not limited uses every feature
        of its host's processor, so Hyper-V moves it live only to a host
        whose processor has all of them; a destination with more features
        takes it (Microsoft, "Processor compatibility mode in Hyper-V",
        learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/
        manage/processor-compatibility-mode-hyper-v).  With limited
        processor features (processor compatibility mode), which nova sets
        when it creates the VM with ``[hyperv] limit_cpu_features = True``,
        it moves between any processors of the same vendor.  os-win cannot
        read a VM's setting back, so this check trusts the destination's
        option as the deployment's (nova's Hyper-V guide asks for it on
        every host): it refuses only when the destination lacks a feature
        and the option is off.  A VM created before the option was turned
        on passes, and Hyper-V's own refusal is then reported by
        :meth:`live_migration`.

        :raises nova.exception.MigrationPreCheckError: naming the missing
            features and ``limit_cpu_features``.
        """
        src = self._cpu_features(src_compute_info)
        dst = self._cpu_features(dst_compute_info)
        if src is None or dst is None or src <= dst:
            return
        if CONF.hyperv.limit_cpu_features:
            return
        raise exception.MigrationPreCheckError(reason=_(
            '%(dst)s lacks processor features of %(src)s and VMs here do '
            'not limit theirs; %(advice)s (%(dst)s lacks %(missing)s)') % {
                'src': src_compute_info.get('hypervisor_hostname'),
                'dst': dst_compute_info.get('hypervisor_hostname'),
                'missing': ', '.join(sorted(src - dst)),
                'advice': LIMIT_CPU_FEATURES_ADVICE})

    # ---- the move ----

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, migrate_data=None):
        """Prepare the destination, then register the VM's OVS ports here.

        The base prepares disks and volumes (the image is fetched into this
        host's cache so the VM's differencing disk finds its parent).  Then
        each ``ovs`` VIF's port is added to this host's OVSDB with the same
        name and external_ids as on the source, before the VM arrives.  The
        vNIC is not connected here: it arrives with the VM, already
        connected to the vSwitch of the same name.

        The VIFs are this host's (:meth:`destination_network_info`): nova
        bound the ports here after :meth:`check_can_live_migrate_destination`
        ran (nova 28 conductor ``live_migrate.py``
        ``_call_livem_checks_on_host``), so their bridges are checked again
        now, with the same check, before anything is registered.

        :param migrate_data: the ``HyperVLiveMigrateData`` of this move.
        :raises nova.exception.MigrationPreCheckError: a bridge the
            destination bindings name is missing here, or OVSDB here is
            unreachable; nothing was registered.
        :raises nova.exception.VirtualInterfacePlugException: this host's
            OVSDB became unreachable while registering (the message names
            ovsdb_connection).
        """
        super().pre_live_migration(context, instance, block_device_info,
                                   network_info)
        network_info = self.destination_network_info(network_info,
                                                     migrate_data)
        ovs_vifs = [vif for vif in network_info
                    if vif['type'] == network_model.VIF_TYPE_OVS]
        if ovs_vifs:
            self._check_bridges(self._destination_name(migrate_data),
                                ovs_vifs)
        self._vmops.pre_plug_vifs(instance, network_info)

    @staticmethod
    def _destination_name(migrate_data):
        # The destination's service host, as the migration record names it.
        if (migrate_data is not None and
                migrate_data.obj_attr_is_set('migration')):
            return migrate_data.migration.dest_compute
        return CONF.host

    @staticmethod
    def destination_network_info(network_info, migrate_data):
        """The VIFs as bound on the destination of a live migration.

        When nova bound the ports on the destination (neutron's
        ``binding-extended``: ``migrate_data.vifs``), each VIF is the
        source's with the destination binding's type, vnic_type, details
        and profile (``VIFMigrateData.get_dest_vif``, as libvirt's
        ``_pre_live_migration_plug_vifs`` uses), and, for ``ovs`` VIFs,
        the bridge that binding names: ``vif_details['bridge_name']``, or
        ``[neutron] ovs_bridge``, cut to 14 characters, which is how nova
        builds the VIF once that binding is active (nova 28
        ``network/neutron.py`` ``_nw_info_build_network``), so the port
        registered ahead is the one plugged after the move.  Without
        destination bindings, ``network_info`` itself.

        Used by ``pre_live_migration`` to register the ports and by the
        rollback on the destination to remove the same ports, whatever the
        source's binding says.

        :param network_info: ``nova.network.model.NetworkInfo`` (source).
        :param migrate_data: ``LiveMigrateData`` or None.
        :returns: ``nova.network.model.NetworkInfo``.
        """
        if (migrate_data is None or not migrate_data.obj_attr_is_set('vifs')
                or not migrate_data.vifs):
            return network_info or network_model.NetworkInfo()
        vifs = []
        for mig_vif in migrate_data.vifs:
            vif = mig_vif.get_dest_vif()
            if vif['type'] == network_model.VIF_TYPE_OVS:
                bridge = (vif.get('details') or {}).get(
                    network_model.VIF_DETAILS_BRIDGE_NAME,
                    CONF.neutron.ovs_bridge)
                vif['network']['bridge'] = bridge[:network_model.NIC_NAME_LEN]
            vifs.append(vif)
        return network_model.NetworkInfo(vifs)

    def live_migration(self, context, instance_ref, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        """Move the VM as the base does; record why a failed move failed.

        The base rolls a failed move back through ``recover_method`` and
        only logs the error.  Here the rollback marks the migration
        ``error`` and an instance action event ``hyperv_live_migrate_vm``
        carries the reason, worded for the operator (a CPU refusal names
        ``limit_cpu_features``); the server stays ACTIVE on the source.
        """
        def recover(ctxt, instance, dest_host, data):
            # The base calls this from its "except Exception" block.
            exc_info = sys.exc_info()
            reason = self._failure_reason(exc_info[1], dest_host)
            LOG.error('Live migration to %(dest)s failed: %(reason)s',
                      {'dest': dest_host, 'reason': reason},
                      instance=instance)
            # Recorded first, so the reason is there once the migration
            # shows the error; recording never stops the rollback.
            self._record_failure(ctxt, instance, reason, exc_info)
            recover_method(ctxt, instance, dest_host, data,
                           migration_status='error')

        super().live_migration(context, instance_ref, dest, post_method,
                               recover, block_migration, migrate_data)

    @staticmethod
    def _failure_reason(exc, dest):
        if exc is not None and PROCESSOR_REFUSAL in str(exc):
            return _('Hyper-V refused to move the VM to %(dest)s: its '
                     'processor features are not limited and that CPU '
                     'lacks some of them; %(advice)s (%(err)s)') % {
                         'dest': dest, 'err': exc,
                         'advice': LIMIT_CPU_FEATURES_ADVICE}
        return _('Hyper-V could not live-migrate the VM to %(dest)s: '
                 '%(err)s') % {'dest': dest, 'err': exc}

    @staticmethod
    def _record_failure(context, instance, reason, exc_info):
        tb = ''.join(traceback.format_exception(*exc_info)) if exc_info[0] \
            else reason
        try:
            objects.InstanceActionEvent.event_start(
                context, instance.uuid, FAILURE_EVENT, want_result=False,
                host=instance.host)
            objects.InstanceActionEvent.event_finish_with_failure(
                context, instance.uuid, FAILURE_EVENT, exc_val=reason,
                exc_tb=tb, want_result=False)
        except Exception:
            # The rollback matters more than the record of why.
            LOG.exception('Could not record why the live migration failed',
                          instance=instance)
