"""PCI passthrough (Discrete Device Assignment) through nova's whole stack.

The operator's configuration is the install guide's: ``[pci]
device_spec`` allows the host's dismounted devices, ``[pci] alias`` names
them, and a flavor asks with ``pci_passthrough:alias``.  nova's PCI
tracker claims a device from what the driver reports, the scheduler's
PciPassthroughFilter places the server, and the simulated Hyper-V host
(which refuses DDA on a VM it would save, or that runs) shows the device
assigned to the VM.
"""

from nova import context as nova_context
from nova import objects
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_serialization import jsonutils

from tests.fixtures.hyperv import constants as hyperv_const
from tests.functional import base
from tests.functional import test_migration

GPU = {'address': '0000:81:00.0', 'vendor_id': '10DE', 'product_id': '1EB8'}
NIC = {'address': '0000:3b:00.0', 'vendor_id': '8086', 'product_id': '1572'}
HOST_DEVICES = [GPU, NIC]


def pci_config(test, live_migratable=False):
    """[pci] device_spec and alias as the install guide writes them."""
    extra = {'live_migratable': 'true'} if live_migratable else {}
    test.flags(device_spec=[
        jsonutils.dumps(dict({'vendor_id': '10de', 'product_id': '1eb8'},
                             **extra)),
        jsonutils.dumps(dict({'vendor_id': '8086', 'product_id': '1572'},
                             **extra))], group='pci')
    aliases = [
        jsonutils.dumps(dict({'name': 'gpu', 'vendor_id': '10de',
                              'product_id': '1eb8',
                              'device_type': 'type-PCI'}, **extra)),
        jsonutils.dumps(dict({'name': 'nic', 'vendor_id': '8086',
                              'product_id': '1572',
                              'device_type': 'type-PCI'}, **extra))]
    test.flags(alias=aliases, group='pci')
    test.flags(enabled_filters=['ComputeFilter', 'PciPassthroughFilter'],
               group='filter_scheduler')


class PCITestMixin(object):

    def pci_flavor(self, alias, **kwargs):
        flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=2, ephemeral=0,
            extra_spec={'pci_passthrough:alias': alias}, **kwargs)
        return flavor_id

    def tracked_devices(self, hostname):
        """{address: (status, instance uuid)} in nova's PCI tracker (DB)."""
        ctxt = nova_context.get_admin_context()
        node = objects.ComputeNode.get_first_node_by_host_for_old_compat(
            ctxt, hostname)
        return {dev.address: (dev.status, dev.instance_uuid)
                for dev in objects.PciDeviceList.get_by_compute_node(
                    ctxt, node.id)}


class PCIPassthroughTest(PCITestMixin, base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        pci_config(self)
        self.flags(allow_resize_to_same_host=True)
        self.start_compute('host1', pci_devices=HOST_DEVICES)
        self.image = self.images.create_image('vhdx')
        self.gpu_flavor = self.pci_flavor('gpu:1')

    def test_tracker_offers_the_hosts_devices(self):
        self.assertEqual({GPU['address']: ('available', None),
                          NIC['address']: ('available', None)},
                         self.tracked_devices('host1'))

    def test_boot_assigns_the_device_and_delete_releases_it(self):
        server, _port = self.boot(self.image, flavor_id=self.gpu_flavor)

        vm = self.vm_of(server)
        self.assertEqual((GPU['address'],), vm.pci_devices)
        self.assertEqual(os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF,
                         vm.host_shutdown_action)
        self.assertEqual(hyperv_const.RUNNING, vm.power_state)
        self.assertEqual({GPU['address']: ('allocated', server['id']),
                          NIC['address']: ('available', None)},
                         self.tracked_devices('host1'))

        self._delete_server(server)

        self.assertIsNone(self.host('host1').pci_device_holder(
            GPU['address']))
        self.assertEqual({GPU['address']: ('available', None),
                          NIC['address']: ('available', None)},
                         self.tracked_devices('host1'))

    def test_device_held_outside_nova_fails_the_build_naming_it(self):
        sim = self.host('host1')
        with self.hyperv.building('host1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.create_vm('stray', False, 2, self.instances_dir('host1'),
                          [])
        vmutils.update_vm(
            'stray', 512, None, 1, None, False, 1.0,
            host_shutdown_action=os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF)
        vmutils.add_pci_device('stray', GPU['vendor_id'], GPU['product_id'])

        server, _port = self.boot(self.image, flavor_id=self.gpu_flavor,
                                  expected_state='ERROR')

        message = server['fault']['message']
        self.assertIn('PCI device 0000:81:00.0 (10de:1eb8)', message)
        self.assertIn('Remove-VMAssignableDevice', message)
        self.assertEqual({'stray'}, set(sim.vms))
        # nova's claim went back with the failed build.
        self.assertEqual(('available', None),
                         self.tracked_devices('host1')[GPU['address']])

    def test_resize_swaps_the_devices_for_the_new_flavors(self):
        server, _port = self.boot(self.image, flavor_id=self.gpu_flavor)
        nic_flavor = self.pci_flavor('nic:1')

        server = self._resize_server(server, nic_flavor)

        self.assertEqual((NIC['address'],), self.vm_of(server).pci_devices)
        server = self._confirm_resize(server)
        self.assertEqual((NIC['address'],), self.vm_of(server).pci_devices)
        self.assertEqual({GPU['address']: ('available', None),
                          NIC['address']: ('allocated', server['id'])},
                         self.tracked_devices('host1'))


class PCISuspendTest(PCITestMixin, base.HyperVOVSTestBase):

    # A cast stays a cast: the API answers 202, the refusal shows in the
    # instance action (nova's default would make it an API error 500).
    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        pci_config(self)
        self.start_compute('host1', pci_devices=HOST_DEVICES)
        self.image = self.images.create_image('vhdx')
        self.gpu_flavor = self.pci_flavor('gpu:1')

    def test_suspend_is_refused_and_the_server_keeps_running(self):
        server, _port = self.boot(self.image, flavor_id=self.gpu_flavor)

        self.api.post_server_action(server['id'], {'suspend': None})

        event = self._wait_for_action_fail_completion(
            server, 'suspend', 'compute_suspend_instance')
        # An ACTIVE server shows no fault: the reason is the action's.
        self.assertIn('Hyper-V cannot save a VM with PCI devices',
                      event['details'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual(hyperv_const.RUNNING, self.vm_of(server).power_state)


class PCILiveMigrationTest(PCITestMixin, test_migration.MigrationTestBase):

    def setUp(self):
        super().setUp()
        # Tagged live_migratable, so that nova's conductor lets the move
        # through to the driver, which knows Hyper-V cannot.
        pci_config(self, live_migratable=True)
        self.start_compute('host1', pci_devices=HOST_DEVICES)
        self.start_compute('host2', pci_devices=HOST_DEVICES)

    def test_live_migration_is_refused_before_anything_moves(self):
        server, port = self.boot(self.image, host='host1',
                                 flavor_id=self.pci_flavor('gpu:1'))

        server, migration = self.live_migrate(server, 'host2',
                                              migration_status='error')

        self.assertEqual('error', migration['status'])
        self.assert_runs_on('host1', server, port)
        self.assertEqual((GPU['address'],),
                         self.vm_of(server, 'host1').pci_devices)
        self.assertIsNone(self.vm_of(server, 'host2'))
        event = self._wait_for_action_fail_completion(
            server, 'live-migration',
            'compute_check_can_live_migrate_destination')
        self.assertIn('PCI device(s) 0000:81:00.0', event['details'])
        self.assertIn('cold migrate', event['details'])
        self.assertEqual(('available', None),
                         self.tracked_devices('host2')[GPU['address']])
