"""The VM definition that flavor and image choose, on the simulated host.

Each request is checked by creating the VM through ``VMOps`` and reading
it back as the simulated Hyper-V host holds it; each refusal leaves no VM.
"""

import os

from nova import exception as nova_exception
from nova import objects
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import block_device
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs_api import extra_specs
from tests.unit import test_vmops


def image_meta(**properties):
    return objects.ImageMeta.from_dict(
        {'id': uuidutils.generate_uuid(), 'name': 'img',
         'disk_format': 'vhdx', 'properties': properties})


class VMSettingsTestCase(test_vmops.VMOpsTestCase):

    def make_instance(self, extra_specs=None, image_props=None, vcpus=2,
                      memory_mb=1024):
        instance = self.instance()
        instance.flavor.extra_specs = dict(extra_specs or {})
        instance.flavor.vcpus = vcpus
        instance.flavor.memory_mb = memory_mb
        # nova-api keeps every image property in the system metadata.
        for key, value in (image_props or {}).items():
            instance.system_metadata['image_' + key] = str(value)
        return instance

    def create(self, instance, meta=None, vm_gen=constants.VM_GEN_2):
        """Create the VM as spawn does; returns the simulated VM."""
        meta = meta or image_meta()
        root = os.path.join(self.instances_path, instance.uuid + '.vhdx')
        with self.hosts.building('host1'):
            utilsfactory.get_vhdutils().create_dynamic_vhd(root, units.Gi)
        root_device = {'type': constants.DISK, 'path': root,
                       'disk_bus': block_device.BOOT_BUS[vm_gen],
                       'drive_addr': 0, 'ctrl_disk_addr': 0}
        self.vmops.create_instance(instance, [], root_device,
                                   {'ephemerals': [],
                                    'block_device_mapping': []},
                                   vm_gen, meta)
        return self.hosts['host1'].vms[instance.name]

    def refused(self, instance, meta=None, vm_gen=constants.VM_GEN_2):
        """The refusal's message; no VM was created.

        The build aborts (an InvalidInput) and the message fits in the
        255 characters nova keeps of a fault, after its "Build of instance
        <uuid> aborted: " prefix.
        """
        meta = meta or image_meta()
        exc = self.assertRaises(exception.VMRequestRefused,
                                self.create, instance, meta, vm_gen)
        self.assertIsInstance(exc, nova_exception.InvalidInput)
        self.assertNotIn(instance.name, self.hosts['host1'].vms)
        message = exc.format_message()
        self.assertLessEqual(len(message), 255 - len(
            'Build of instance %s aborted: ' % instance.uuid))
        return message


class SecureBootTestCase(VMSettingsTestCase):

    def test_flavor_required_windows_image_uses_windows_template(self):
        vm = self.create(self.make_instance({'os:secure_boot': 'required'}),
                         image_meta(os_type='windows'))

        self.assertTrue(vm.secure_boot)
        self.assertFalse(vm.secure_boot_msft_ca)

    def test_image_required_linux_image_uses_microsoft_uefi_ca(self):
        meta = image_meta(os_secure_boot='required', os_type='linux')

        vm = self.create(self.make_instance(), meta)

        self.assertTrue(vm.secure_boot)
        self.assertTrue(vm.secure_boot_msft_ca)

    def test_disabled_or_unset_leaves_secure_boot_off(self):
        for specs in ({}, {'os:secure_boot': 'disabled'}):
            instance = self.make_instance(specs)
            vm = self.create(instance, image_meta(os_type='windows'))
            self.assertFalse(vm.secure_boot)
            self.vmops.destroy(instance, [], None)

    def test_conflicting_flavor_and_image_refused(self):
        message = self.refused(
            self.make_instance({'os:secure_boot': 'required'}),
            image_meta(os_secure_boot='disabled', os_type='windows'))

        self.assertIn('os:secure_boot', message)
        self.assertIn('to the same value, or remove one', message)

    def test_generation1_refused_naming_the_image_property(self):
        message = self.refused(
            self.make_instance({'os:secure_boot': 'required'}),
            image_meta(os_type='windows'), vm_gen=constants.VM_GEN_1)

        self.assertIn('generation 2', message)
        self.assertIn('hw_machine_type=hyperv-gen2', message)

    def test_image_without_os_type_refused(self):
        message = self.refused(
            self.make_instance({'os:secure_boot': 'required'}))

        self.assertIn('os_type', message)

    def test_simulated_host_refuses_secure_boot_on_generation1(self):
        instance = self.make_instance()
        self.create(instance, vm_gen=constants.VM_GEN_1)

        self.assertRaises(os_win_exc.HyperVException,
                          self.vmops._vmutils.enable_secure_boot,
                          instance.name, msft_ca_required=False)


class SimulatedHostRulesTestCase(VMSettingsTestCase):
    """What the simulated Hyper-V host refuses, as Hyper-V does."""

    def running_vm(self):
        instance = self.make_instance()
        self.create(instance)
        self.hosts['host1'].start_by_hand(instance.name)
        return instance

    def test_firmware_and_processor_settings_need_an_off_vm(self):
        instance = self.running_vm()
        vmutils = self.vmops._vmutils

        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.enable_secure_boot, instance.name, False)
        self.assertRaises(os_win_exc.HyperVException,
                          vmutils.set_nested_virtualization, instance.name,
                          True)
        vm = self.hosts['host1'].vms[instance.name]
        self.assertFalse(vm.secure_boot)
        self.assertFalse(vm.nested_virtualization)

    def test_guarded_state_is_the_hosts(self):
        hostutils = self.vmops._hostutils
        self.assertFalse(hostutils.is_host_guarded())
        self.hosts['host1'].guarded = True
        self.assertTrue(hostutils.is_host_guarded())


class SecureVMTestCase(VMSettingsTestCase):

    def test_vtpm_refused_naming_every_missing_requirement(self):
        message = self.refused(self.make_instance(
            image_props={'os_vtpm': 'required'}))

        self.assertIn('os_vtpm=required', message)
        self.assertIn('not supported', message)
        self.assertIn('secure boot', message)
        self.assertIn('os_type=windows', message)
        self.assertIn('a guarded host', message)
        self.assertIn('Barbican', message)

    def test_shielded_vm_on_guarded_host_still_refused_for_the_pdk(self):
        self.hosts['host1'].guarded = True
        instance = self.make_instance(
            {'os:secure_boot': 'required'},
            image_props={'os_shielded_vm': 'required'})

        message = self.refused(instance, image_meta(os_type='windows'))

        self.assertIn('os_shielded_vm=required', message)
        self.assertNotIn('also missing', message)
        self.assertIn('PDK', message)

    def test_nova_vtpm_request_refused(self):
        message = self.refused(self.make_instance({'hw:tpm_version': '2.0',
                                                   'hw:tpm_model': 'tpm-crb'}))

        self.assertIn('vTPM 2.0', message)
        self.assertIn('hw:tpm_version', message)


class DynamicMemoryTestCase(VMSettingsTestCase):

    def test_ratio_above_one_starts_with_memory_divided_by_ratio(self):
        self.flags(dynamic_memory_ratio=3.0, group='hyperv')

        vm = self.create(self.make_instance(memory_mb=1024))

        self.assertTrue(vm.dynamic_memory_enabled)
        self.assertEqual(1024, vm.memory_mb)
        # 1024 / 3 = 341.3 -> 340, an even number of MB (os-win).
        self.assertEqual(340, vm.startup_memory_mb)

    def test_default_ratio_gives_static_memory(self):
        vm = self.create(self.make_instance(memory_mb=1024))

        self.assertFalse(vm.dynamic_memory_enabled)
        self.assertEqual(1024, vm.startup_memory_mb)

    def test_vnuma_forces_static_memory(self):
        self.flags(dynamic_memory_ratio=2.0, group='hyperv')

        vm = self.create(self.make_instance({'hw:numa_nodes': '2'}))

        self.assertTrue(vm.vnuma_enabled)
        self.assertFalse(vm.dynamic_memory_enabled)

    def test_nested_virtualization_forces_static_memory(self):
        self.flags(dynamic_memory_ratio=2.0, group='hyperv')

        vm = self.create(self.make_instance({'hw:cpu_features': 'vmx'}))

        self.assertTrue(vm.nested_virtualization)
        self.assertFalse(vm.dynamic_memory_enabled)
        self.assertEqual(1024, vm.startup_memory_mb)

    def test_simulated_host_refuses_dynamic_memory_with_vnuma(self):
        instance = self.make_instance()
        self.create(instance)
        self.vmops._vmutils.update_vm(instance.name, 1024, None, 2, None,
                                      False, 1.0, vnuma_enabled=True)

        self.assertRaises(os_win_exc.HyperVException,
                          self.vmops._vmutils.update_vm, instance.name,
                          1024, None, 2, None, False, 2.0)


class VNUMATestCase(VMSettingsTestCase):

    def test_even_nodes_from_flavor(self):
        vm = self.create(self.make_instance({'hw:numa_nodes': '2'},
                                            vcpus=4, memory_mb=2048))

        self.assertTrue(vm.vnuma_enabled)
        self.assertEqual(1024, vm.memory_per_numa_node)
        self.assertEqual(2, vm.vcpus_per_numa_node)

    def test_explicit_even_nodes_from_image(self):
        meta = image_meta(hw_numa_nodes=2, hw_numa_cpus=[{0, 1}, {2, 3}],
                          hw_numa_mem=[1024, 1024])

        vm = self.create(self.make_instance(vcpus=4, memory_mb=2048), meta)

        self.assertEqual(1024, vm.memory_per_numa_node)
        self.assertEqual(2, vm.vcpus_per_numa_node)

    def test_no_numa_request_no_vnuma(self):
        vm = self.create(self.make_instance())

        self.assertFalse(vm.vnuma_enabled)
        self.assertIsNone(vm.memory_per_numa_node)

    def test_uneven_processors_refused(self):
        message = self.refused(self.make_instance(
            {'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0',
             'hw:numa_cpus.1': '1,2,3', 'hw:numa_mem.0': '1024',
             'hw:numa_mem.1': '1024'}, vcpus=4, memory_mb=2048))

        self.assertIn('equal virtual NUMA nodes', message)
        self.assertIn('1/3 vCPUs', message)

    def test_uneven_memory_refused(self):
        message = self.refused(self.make_instance(
            {'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0,1',
             'hw:numa_cpus.1': '2,3', 'hw:numa_mem.0': '512',
             'hw:numa_mem.1': '1536'}, vcpus=4, memory_mb=2048))

        self.assertIn('512/1536 MB', message)

    def test_cpu_pinning_refused(self):
        message = self.refused(self.make_instance(
            {'hw:cpu_policy': 'dedicated'}))

        self.assertIn('cannot pin vCPUs', message)
        self.assertIn('hw:cpu_policy', message)

    def test_huge_pages_refused(self):
        message = self.refused(self.make_instance(
            {'hw:mem_page_size': 'large'}))

        self.assertIn('hw:mem_page_size', message)


class NestedVirtualizationTestCase(VMSettingsTestCase):

    def test_flavor_vmx_enables_nested_virtualization(self):
        vm = self.create(self.make_instance({'hw:cpu_features': 'VMX'}))

        self.assertTrue(vm.nested_virtualization)

    def test_image_vmx_enables_nested_virtualization(self):
        vm = self.create(self.make_instance(
            image_props={'hw_cpu_features': 'vmx'}))

        self.assertTrue(vm.nested_virtualization)

    def test_without_request_off(self):
        self.assertFalse(self.create(self.make_instance())
                         .nested_virtualization)

    def test_other_cpu_feature_refused(self):
        message = self.refused(self.make_instance(
            image_props={'hw_cpu_features': 'vmx,avx512f'}))

        self.assertIn('avx512f', message)
        self.assertIn('accept only vmx', message)

    def test_host_before_2016_refused(self):
        self.hosts['host1'].windows_version = '6.3.9600'

        message = self.refused(self.make_instance(
            {'hw:cpu_features': 'vmx'}), vm_gen=constants.VM_GEN_1)

        self.assertIn('Windows Server 2016', message)

    def test_api_validator_accepts_only_vmx(self):
        validator, = extra_specs.register()
        validator.validate('hw:cpu_features', 'vmx')
        validator.validate('hw:cpu_features', 'VMX, vmx')
        for bad in ('avx', 'vmx,avx', ''):
            self.assertRaises(nova_exception.ValidationError,
                              validator.validate, 'hw:cpu_features', bad)


class RemoteFXTestCase(VMSettingsTestCase):

    def test_each_remotefx_spec_refused_with_microsoft_notice(self):
        for key, value in (('os:resolution', '1920x1200'),
                           ('os:monitors', '2'), ('os:vram', '1024')):
            message = self.refused(self.make_instance({key: value}))

            self.assertIn(key, message)
            self.assertIn('Microsoft removed', message)
            self.assertIn('4570006', message)
