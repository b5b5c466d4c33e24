"""Host maintenance mode: drain this Hyper-V host through nova's API.

An operator reaches it with nova's os-hosts API, which nova 34 still
serves up to microversion 2.42 (``PUT /os-hosts/{host}`` with
``{"maintenance_mode": "enable"}`` or ``"disable"``; ``openstack
--os-compute-api-version 2.42 ...`` or a plain HTTP request).  nova's API
calls ``ComputeManager.host_maintenance_mode`` on this host over RPC, which
hands it to the driver and so to :class:`HostMaintenance`.

What it does follows compute-hyperv 16 ``hostops.host_maintenance_mode``:
the nova-compute service is disabled (no new servers come here), each
server nova has on this host finishes the task it has, then moves: a live
migration for an active or paused server, a cold migration for a stopped
one; each move is waited for up to ``[hyperv]
evacuate_task_state_timeout`` seconds.  Unlike compute-hyperv, the service
is disabled through nova's ``HostAPI.service_update`` (as ``os-services``
does, so placement gets the ``COMPUTE_STATUS_DISABLED`` trait too), and a
server that could not be moved is named in the answer instead of a bare
count.

nova's API waits for the answer as long as ``[DEFAULT]
rpc_response_timeout`` (60 s by default) on the API hosts; a drain that
takes longer goes on here while the API answers 500 (MessagingTimeout).
"""

import time

from nova.compute import api as compute_api
from nova.compute import vm_states
from nova import context as nova_context
from nova import exception
from nova import objects
from oslo_log import log as logging

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)

CONF = conf.CONF
LOG = logging.getLogger(__name__)

ON = 'on_maintenance'
OFF = 'off_maintenance'
DISABLED_REASON = 'host maintenance mode (compute-hyperv-ovs)'
COMPUTE_BINARY = 'nova-compute'

# vm_states nova's compute API can live-migrate (API.live_migrate's
# check_instance_state) and cold-migrate (API.resize's).
_LIVE = (vm_states.ACTIVE, vm_states.PAUSED)
_COLD = (vm_states.STOPPED,)
_POLL_SECONDS = 1


class HostMaintenance(object):
    """Puts this host into maintenance mode and takes it out again.

    :param list_instance_uuids: callable returning the uuids of the VMs
        nova made on this host (``VMOps.list_instance_uuids``).
    """

    def __init__(self, list_instance_uuids):
        self._list_instance_uuids = list_instance_uuids
        # Built on first use: nova's API clients are not needed otherwise.
        self._apis = None

    def _api(self):
        if self._apis is None:
            self._apis = (compute_api.API(), compute_api.HostAPI())
        return self._apis

    def host_maintenance_mode(self, host, mode):
        """Enter (``mode`` True) or leave maintenance mode.

        :param host: this compute service's host name.
        :returns: ``'on_maintenance'`` when no server of nova's is left
            here, ``'off_maintenance'`` after leaving; otherwise a sentence
            naming the servers still here and why, which nova's os-hosts API
            answers with HTTP 400 (the host stays disabled).
        :raises nova.exception.ComputeHostNotFound: nova has no
            nova-compute service of that host name.
        """
        context = nova_context.get_admin_context()
        if not mode:
            self._set_service_disabled(context, host, False)
            LOG.info('Host %s left maintenance mode: it takes new servers '
                     'again', host)
            return OFF
        self._set_service_disabled(context, host, True)
        left = {}
        for instance_uuid in self._list_instance_uuids():
            reason = self._move_away(context, host, instance_uuid)
            if reason:
                left[instance_uuid] = reason
        if not left:
            LOG.info('Host %s is in maintenance mode: no server is left '
                     'on it', host)
            return ON
        message = ('Host %s is disabled, but %d server(s) are still on it: '
                   '%s. Move or delete them, then ask again.' % (
                       host, len(left), '; '.join(
                           '%s (%s)' % item for item in sorted(left.items()))))
        LOG.error(message)
        return message

    def _set_service_disabled(self, context, host, disabled):
        service = objects.Service.get_by_compute_host(context, host)
        service.disabled = disabled
        service.disabled_reason = DISABLED_REASON if disabled else None
        self._api()[1].service_update(context, service)

    def _move_away(self, context, host, instance_uuid):
        """Move one server to another host.

        :returns: None once it is elsewhere, else why it is not.
        """
        try:
            instance = self._wait_for_task(context, instance_uuid)
        except exception.InstanceNotFound:
            LOG.warning('VM of instance %s has no server in nova; it is '
                        'left alone', instance_uuid)
            return None
        if instance is None:
            return 'its task did not end in %d s' % (
                CONF.hyperv.evacuate_task_state_timeout)
        if instance.host != host:
            return None
        # The move is recorded (migration, instance action) under the
        # server's own user and project: nova's records of a move need a
        # project (the os-migrations API refuses to show one without), and
        # the operator's request context does not reach the driver.
        context = nova_context.RequestContext(
            user_id=instance.user_id, project_id=instance.project_id,
            is_admin=True, overwrite=False)
        try:
            if instance.vm_state in _LIVE:
                LOG.info('Live-migrating the server away for maintenance',
                         instance=instance)
                self._api()[0].live_migrate(
                    context, instance, block_migration=None,
                    disk_over_commit=None, host_name=None)
            elif instance.vm_state in _COLD:
                LOG.info('Cold-migrating the stopped server away for '
                         'maintenance', instance=instance)
                self._api()[0].resize(context, instance)
            else:
                return 'a server in state %s cannot be migrated' % (
                    instance.vm_state)
        except Exception as exc:
            LOG.exception('Could not start moving the server away',
                          instance=instance)
            return 'nova refused to migrate it: %s' % exc
        instance = self._wait_for_task(context, instance_uuid)
        if instance is None:
            return 'its migration did not end in %d s' % (
                CONF.hyperv.evacuate_task_state_timeout)
        if instance.host == host:
            return 'its migration failed (see its instance actions)'
        return None

    @staticmethod
    def _wait_for_task(context, instance_uuid):
        """The instance once it has no task, or None after the timeout.

        :raises nova.exception.InstanceNotFound: nova has no such server.
        """
        deadline = (time.monotonic() +
                    CONF.hyperv.evacuate_task_state_timeout)
        instance = objects.Instance.get_by_uuid(context, instance_uuid)
        while instance.task_state is not None:
            if time.monotonic() >= deadline:
                LOG.warning('Task %s did not end in time', instance.task_state,
                            instance=instance)
                return None
            time.sleep(_POLL_SECONDS)
            instance.refresh()
        return instance
