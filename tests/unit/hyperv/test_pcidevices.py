"""PCI passthrough (Discrete Device Assignment) on the simulated host.

The instance carries what nova's PCI tracker claimed (``pci_requests``
from the flavor's alias, ``pci_devices`` with the claimed addresses); the
VM is created through the core's VMOps and read back as the simulated
Hyper-V host holds it.  Each refusal leaves no VM and no device assigned.
"""

import os

from nova import exception as nova_exception
from nova import objects
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import hostops
from compute_hyperv_ovs.hyperv import livemigrationops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.unit.hyperv import core_host
from tests.unit.hyperv import test_migrationops

GPU = {'vendor_id': '10de', 'product_id': '1eb8'}
GPU_ADDRESSES = ('0000:81:00.0', '0000:82:00.0')
NIC = {'address': '0000:3b:00.0', 'vendor_id': '8086', 'product_id': '1572'}


def with_devices(instance, *devices, **request_kwargs):
    """``instance`` as nova's claim leaves it: one alias request per id."""
    requests, claimed = [], []
    for dev in devices:
        request_id = uuidutils.generate_uuid()
        requests.append(objects.InstancePCIRequest(
            count=1, alias_name='a-%s' % dev['product_id'],
            spec=[{'vendor_id': dev['vendor_id'],
                   'product_id': dev['product_id']}],
            request_id=request_id, **request_kwargs))
        claimed.append(objects.PciDevice(
            address=dev['address'], vendor_id=dev['vendor_id'],
            product_id=dev['product_id'], request_id=request_id,
            dev_type='type-PCI'))
    instance.pci_requests = objects.InstancePCIRequests(
        requests=requests, instance_uuid=instance.uuid)
    instance.pci_devices = objects.PciDeviceList(objects=claimed)
    return instance


def gpu(address=GPU_ADDRESSES[0]):
    return dict(GPU, address=address)


class PCIHostTestBase(core_host.CoreSpawnTestBase):
    """host1 with two GPUs and a NIC dismounted for DDA."""

    def setUp(self):
        super().setUp()
        for address in GPU_ADDRESSES:
            self.sim.add_assignable_device(address, '10DE', '1EB8')
        self.sim.add_assignable_device(NIC['address'], '8086', '1572')
        self.image_id = self.add_image('vhdx')

    def pci_instance(self, *devices):
        return with_devices(self.instance(self.image_id, 'vhdx'), *devices)

    def other_vm_holding(self, address):
        """A VM made by hand (not nova's) that holds the device.

        Hyper-V gives it the first free device of the ids: ``address``
        must be that one.
        """
        with self.hosts.building('host1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.create_vm('stray', False, 2, self.tmp, [])
        vmutils.update_vm('stray', 512, None, 1, None, False, 1.0,
                          host_shutdown_action=(
                              os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF))
        dev = self.sim.assignable_devices[address]
        vmutils.add_pci_device('stray', dev.vendor_id, dev.product_id)
        self.assertEqual('stray', self.sim.pci_device_holder(address))


class PCISpawnTestCase(PCIHostTestBase):

    def test_host_reports_devices_as_nova_tracker_reads_them(self):
        with self.hosts.building('host1'):
            resources = hostops.HostOps().get_available_resource()

        devices = jsonutils.loads(resources['pci_passthrough_devices'])

        # Lower case ids: nova matches [pci] device_spec's normalised ids
        # against them verbatim.
        self.assertEqual(
            [{'address': '0000:81:00.0', 'vendor_id': '10de',
              'product_id': '1eb8', 'label': 'label_10de_1eb8',
              'dev_type': 'type-PCI', 'numa_node': None},
             {'address': '0000:82:00.0', 'vendor_id': '10de',
              'product_id': '1eb8', 'label': 'label_10de_1eb8',
              'dev_type': 'type-PCI', 'numa_node': None},
             {'address': '0000:3b:00.0', 'vendor_id': '8086',
              'product_id': '1572', 'label': 'label_8086_1572',
              'dev_type': 'type-PCI', 'numa_node': None}],
            [{k: v for k, v in d.items() if k != 'dev_id'}
             for d in devices])
        self.assertIn('VEN_10DE&DEV_1EB8', devices[0]['dev_id'])

    def test_claimed_devices_are_assigned_to_a_vm_turned_off_with_host(self):
        self.flags(dynamic_memory_ratio=2.0, group='hyperv')
        instance = self.pci_instance(gpu(), NIC)
        instance.flavor.extra_specs = {'pci_passthrough:alias': 'a:1,b:1'}

        vm = self.spawn(instance)

        self.assertEqual((GPU_ADDRESSES[0], NIC['address']), vm.pci_devices)
        self.assertEqual(os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF,
                         vm.host_shutdown_action)
        # DDA takes no dynamic memory: the ratio is not applied.
        self.assertFalse(vm.dynamic_memory_enabled)
        self.assertEqual('Running', vm.power_state_name)

    def test_vm_without_devices_keeps_hyperv_default_stop_action(self):
        vm = self.spawn(self.instance(self.image_id, 'vhdx'))

        self.assertEqual((), vm.pci_devices)
        self.assertIsNone(vm.host_shutdown_action)

    def test_device_held_by_another_vm_refused_leaving_nothing(self):
        # A VM nova does not know holds the GPU nova claimed; the other GPU
        # is free, so Hyper-V gives the first instance that one.
        self.other_vm_holding(GPU_ADDRESSES[0])
        first = self.spawn(self.pci_instance(gpu()))
        self.assertEqual((GPU_ADDRESSES[1],), first.pci_devices)
        instance = self.pci_instance(gpu(GPU_ADDRESSES[1]))
        instance.id = 2

        exc = self.assertRaises(exception.PciDeviceNotAssignable,
                                self.spawn, instance)

        self.assertIsInstance(exc, nova_exception.InvalidInput)
        message = exc.format_message()
        self.assertIn('PCI device 0000:82:00.0 (10de:1eb8)', message)
        self.assertIn('Remove-VMAssignableDevice', message)
        self.assertNotIn(instance.name, self.sim.vms)
        self.assertFalse(os.path.exists(
            os.path.join(self.tmp, instance.name)))
        self.assertEqual((GPU_ADDRESSES[0],), self.sim.vms['stray']
                         .pci_devices)
        self.assertEqual((GPU_ADDRESSES[1],), self.sim.vms[first.name]
                         .pci_devices)

    def test_second_device_refused_removes_the_first(self):
        self.other_vm_holding(NIC['address'])
        instance = self.pci_instance(gpu(), NIC)
        with self.hosts.building('host1'):
            root = os.path.join(self.tmp, 'root.vhdx')
            utilsfactory.get_vhdutils().create_dynamic_vhd(root, 1 << 30)

        self.assertRaises(
            exception.PciDeviceNotAssignable, self.vmops.create_instance,
            instance, [], {'type': 'DISK', 'path': root, 'disk_bus': 'IDE',
                           'drive_addr': 0, 'ctrl_disk_addr': 0},
            {'ephemerals': [], 'block_device_mapping': []}, 1,
            objects.ImageMeta.from_instance(instance))

        # create_instance leaves the VM for its caller to destroy, but
        # not half assigned: the GPU went back.
        self.assertEqual((), self.sim.vms[instance.name].pci_devices)
        self.assertIsNone(self.sim.pci_device_holder(GPU_ADDRESSES[0]))

    def test_device_given_back_to_the_host_refused_before_any_vm(self):
        self.sim.mount_device_on_host(GPU_ADDRESSES[0])
        instance = self.pci_instance(gpu())

        exc = self.assertRaises(exception.PciDeviceNotAssignable,
                                self.spawn, instance)

        self.assertIn('Dismount-VMHostAssignableDevice',
                      exc.format_message())
        self.assertEqual({}, dict(self.sim.vms))

    def test_neutron_port_pci_request_refused(self):
        instance = self.instance(self.image_id, 'vhdx')
        instance.pci_requests = objects.InstancePCIRequests(requests=[
            objects.InstancePCIRequest(count=1, spec=[{}],
                                       alias_name=None)])

        exc = self.assertRaises(nova_exception.InstanceUnacceptable,
                                self.spawn, instance)

        self.assertIn('SR-IOV', exc.format_message())
        self.assertEqual({}, dict(self.sim.vms))

    def test_suspend_refused_and_vm_keeps_running(self):
        instance = self.pci_instance(gpu())
        self.spawn(instance)

        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.vmops.suspend, instance)

        self.assertIsInstance(exc.inner_exception,
                              nova_exception.InstanceSuspendFailure)

        self.assertEqual('Running', self.sim.vms[instance.name]
                         .power_state_name)

    def test_delete_gives_the_devices_back(self):
        instance = self.pci_instance(gpu())
        self.spawn(instance)

        self.vmops.destroy(instance, [], None)

        self.assertIsNone(self.sim.pci_device_holder(GPU_ADDRESSES[0]))

    def test_live_migration_refused_on_the_destination_check(self):
        instance = self.pci_instance(gpu())
        instance.host = 'host1'
        with self.hosts.building('host1'):
            ops = livemigrationops.LiveMigrationOps(
                self.vmops, self.image_cache, None)

        exc = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            ops.check_can_live_migrate_destination, self.context, instance,
            {}, {'hypervisor_hostname': 'host2'})

        self.assertIn('0000:81:00.0', exc.format_message())
        self.assertIn('cold migrate', exc.format_message())


class SimulatedDDARulesTestCase(PCIHostTestBase):
    """The simulated host refuses what Hyper-V refuses (cited there)."""

    def vm(self, name='vm1', shutdown_action=(
            os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF)):
        with self.hosts.building('host1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.create_vm(name, False, 2, self.tmp, [])
        vmutils.update_vm(name, 512, None, 1, None, False, 1.0,
                          host_shutdown_action=shutdown_action)
        return vmutils

    def test_stop_action_other_than_turn_off_refused(self):
        for action, name in (
                (None, 'Save'), (os_win_const.HOST_SHUTDOWN_ACTION_SAVE,
                                 'Save'),
                (os_win_const.HOST_SHUTDOWN_ACTION_SHUTDOWN, 'ShutDown')):
            vmutils = self.vm('vm-%s' % action, shutdown_action=action)
            exc = self.assertRaises(os_win_exc.HyperVException,
                                    vmutils.add_pci_device,
                                    'vm-%s' % action, '10de', '1eb8')
            self.assertIn('automatic stop action is %s' % name, str(exc))
            self.assertEqual((), self.sim.vms['vm-%s' % action].pci_devices)

    def test_running_vm_refused(self):
        vmutils = self.vm()
        vmutils.set_vm_state('vm1', hyperv_const.RUNNING)

        exc = self.assertRaises(os_win_exc.HyperVException,
                                vmutils.add_pci_device, 'vm1', '10de',
                                '1eb8')

        self.assertIn('while it is Running', str(exc))
        self.assertEqual((), self.sim.vms['vm1'].pci_devices)

    def test_devices_run_out(self):
        vmutils = self.vm()
        vmutils.add_pci_device('vm1', '10DE', '1eb8')
        vmutils.add_pci_device('vm1', '10de', '1EB8')

        self.assertRaises(os_win_exc.PciDeviceNotFound,
                          vmutils.add_pci_device, 'vm1', '10de', '1eb8')
        self.assertEqual(GPU_ADDRESSES, self.sim.vms['vm1'].pci_devices)

    def test_vm_with_device_cannot_be_saved_get_dynamic_memory_or_save(self):
        vmutils = self.vm()
        vmutils.add_pci_device('vm1', '10de', '1eb8')
        vmutils.set_vm_state('vm1', hyperv_const.RUNNING)

        self.assertRaises(os_win_exc.HyperVException, vmutils.set_vm_state,
                          'vm1', hyperv_const.SAVED)
        vmutils.set_vm_state('vm1', hyperv_const.OFF)
        self.assertRaises(os_win_exc.HyperVException, vmutils.update_vm,
                          'vm1', 512, None, 1, None, False, 2.0)
        self.assertRaises(
            os_win_exc.HyperVException, vmutils.update_vm, 'vm1', 512,
            None, 1, None, False, 1.0,
            host_shutdown_action=os_win_const.HOST_SHUTDOWN_ACTION_SAVE)
        self.assertRaises(
            os_win_exc.HyperVException, vmutils.update_vm, 'vm1', 512,
            None, 1, None, False, 1.0,
            host_shutdown_action=os_win_const.HOST_SHUTDOWN_ACTION_SHUTDOWN)
        # Nor can the host take the device back meanwhile.
        self.assertRaises(os_win_exc.HyperVException,
                          self.sim.mount_device_on_host, GPU_ADDRESSES[0])

    def test_remove_and_old_windows(self):
        vmutils = self.vm()
        vmutils.add_pci_device('vm1', '10de', '1eb8')
        vmutils.add_pci_device('vm1', '8086', '1572')

        vmutils.remove_pci_device('vm1', '10DE', '1EB8')
        self.assertEqual((NIC['address'],), self.sim.vms['vm1'].pci_devices)
        vmutils.remove_all_pci_devices('vm1')
        self.assertEqual((), self.sim.vms['vm1'].pci_devices)

        self.sim.windows_version = '6.3.9600'
        self.assertRaises(NotImplementedError, vmutils.add_pci_device,
                          'vm1', '10de', '1eb8')
        with self.hosts.building('host1'):
            self.assertEqual(
                [], utilsfactory.get_hostutils().get_pci_passthrough_devices())


class PCIResizeTestCase(test_migrationops.MigrationOpsTestBase):

    def test_refused_device_on_the_destination_leaves_no_vm_keeps_disks(self):
        # host2 offers no free GPU: Hyper-V refuses it after the VM is
        # defined; the re-created VM goes, the disks stay for a revert.
        self.dest.sim.add_assignable_device(GPU_ADDRESSES[0], '10de', '1eb8')
        self.running_vm_on_source()
        self.migrate_away()
        self.dest.vmutils.create_vm('stray', False, 2, self.dest.path(),
                                    [])
        self.dest.vmutils.update_vm(
            'stray', 512, None, 1, None, False, 1.0,
            host_shutdown_action=os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF)
        self.dest.vmutils.add_pci_device('stray', '10de', '1eb8')
        with_devices(self.instance, gpu())

        self.assertRaises(exception.PciDeviceNotAssignable, self.finish)

        self.assertNotIn(self.name, self.dest.sim.vms)
        self.assertTrue(os.path.exists(
            self.dest.path(self.name, 'root.vhdx')))

    def test_resize_assigns_the_new_flavors_devices(self):
        # The VM is re-created on the destination: the old flavor's
        # devices went with the source's VM, the new one's are added.
        self.src.sim.add_assignable_device(NIC['address'], '8086', '1572')
        self.dest.sim.add_assignable_device(GPU_ADDRESSES[0], '10de', '1eb8')
        self.running_vm_on_source()
        self.src.vmutils.set_vm_state(self.name, hyperv_const.OFF)
        self.src.vmutils.update_vm(
            self.name, 1024, None, 2, None, False, 1.0,
            host_shutdown_action=os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF)
        self.src.vmutils.add_pci_device(self.name, '8086', '1572')
        self.migrate_away()
        self.assertIsNone(self.src.sim.pci_device_holder(NIC['address']))
        with_devices(self.instance, gpu())

        self.finish()

        vm = self.dest.sim.vms[self.name]
        self.assertEqual((GPU_ADDRESSES[0],), vm.pci_devices)
        self.assertEqual('Running', vm.power_state_name)
