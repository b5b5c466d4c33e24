"""HostMaintenance against nova's database (the moves: tests/functional).

Servers nova cannot move, or whose task does not end, are what these
tests give it; the answer must name them and the service must stay
disabled.  The host's list of VMs is the collaborator nova's VMOps would
be; here it lists the uuids the test put on the host.
"""

from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test
from oslo_utils.fixture import uuidsentinel as uuids

from compute_hyperv_ovs.hyperv import maintenance

HOST = 'host1'


class HostMaintenanceTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        # Down as far as nova's API knows: it then syncs the disabled trait
        # only when the service starts again (no RPC to a missing service).
        self.service = objects.Service(
            self.context, host=HOST, binary='nova-compute',
            topic='compute', forced_down=True)
        self.service.create()
        self.on_host = []
        self.ops = maintenance.HostMaintenance(lambda: list(self.on_host))

    def server(self, uuid, host=HOST, vm_state=vm_states.SUSPENDED,
               task_state=None):
        instance = objects.Instance(
            self.context, uuid=uuid, host=host, node=host, compute_id=1,
            vm_state=vm_state, task_state=task_state,
            user_id='user', project_id='project')
        instance.create()
        self.on_host.append(uuid)
        return instance

    def service_now(self):
        return objects.Service.get_by_compute_host(self.context, HOST)

    def test_empty_host_enters_and_leaves(self):
        self.assertEqual(maintenance.ON,
                         self.ops.host_maintenance_mode(HOST, True))
        service = self.service_now()
        self.assertTrue(service.disabled)
        self.assertEqual(maintenance.DISABLED_REASON,
                         service.disabled_reason)

        self.assertEqual(maintenance.OFF,
                         self.ops.host_maintenance_mode(HOST, False))
        service = self.service_now()
        self.assertFalse(service.disabled)
        self.assertIsNone(service.disabled_reason)

    def test_a_server_nova_cannot_migrate_is_named(self):
        self.server(uuids.suspended, vm_state=vm_states.SUSPENDED)
        self.server(uuids.rescued, vm_state=vm_states.RESCUED)

        answer = self.ops.host_maintenance_mode(HOST, True)

        self.assertIn('2 server(s) are still on it', answer)
        self.assertIn('%s (a server in state suspended cannot be migrated)'
                      % uuids.suspended, answer)
        self.assertIn('%s (a server in state rescued cannot be migrated)'
                      % uuids.rescued, answer)
        self.assertTrue(self.service_now().disabled)

    def test_a_task_that_does_not_end_is_named(self):
        self.flags(evacuate_task_state_timeout=1, group='hyperv')
        self.server(uuids.busy, vm_state=vm_states.ACTIVE,
                    task_state=task_states.REBOOTING)

        answer = self.ops.host_maintenance_mode(HOST, True)

        self.assertIn('%s (its task did not end in 1 s)' % uuids.busy,
                      answer)
        # Nothing was asked of the server while it was busy.
        instance = objects.Instance.get_by_uuid(self.context, uuids.busy)
        self.assertEqual((HOST, task_states.REBOOTING),
                         (instance.host, instance.task_state))

    def test_vms_nova_does_not_know_or_has_moved_are_left_alone(self):
        # A VM whose server nova deleted, and one whose server nova placed
        # on another host already (a stale copy here).
        self.on_host.append(uuids.unknown)
        self.server(uuids.moved, host='host2')

        self.assertEqual(maintenance.ON,
                         self.ops.host_maintenance_mode(HOST, True))
        self.assertEqual('host2', objects.Instance.get_by_uuid(
            self.context, uuids.moved).host)
