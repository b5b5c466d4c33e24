"""Flavor extra specs and image properties that shape the VM, end to end.

Each server is booted through nova 34's API, scheduler and compute
manager; the VM is then read as the simulated Hyper-V host holds it, and
placement is asked where the scheduler depends on it.
"""

import os_traits

from nova.tests.functional.api import client

from tests.functional import base

GEN2 = {'hw_machine_type': 'hyperv-gen2'}


class VMSettingsTestBase(base.HyperVOVSTestBase):

    HOST_KWARGS = {}

    def setUp(self):
        super().setUp()
        self.start_compute('host1', **self.HOST_KWARGS)
        self.gen2_linux = self.images.create_image(
            'vhdx', properties=dict(GEN2, os_type='linux'))

    def flavor(self, memory_mb=1024, vcpu=2, **extra_specs):
        return self._create_flavor(memory_mb=memory_mb, vcpu=vcpu, disk=2,
                                   extra_spec=extra_specs)

    def old_flavor(self, **extra_specs):
        """A flavor whose extra specs nova-api no longer validates.

        Before microversion 2.86 nova-api stored any extra spec, which is
        how flavors made for nova 28 still carry keys nova 34 refuses.
        """
        flavor_id = self._create_flavor(memory_mb=1024, vcpu=2, disk=2)
        self.admin_api.microversion = '2.85'
        try:
            self.admin_api.post_extra_spec(flavor_id,
                                           {'extra_specs': extra_specs})
        finally:
            self.admin_api.microversion = self.microversion
        return flavor_id

    def boot_refused(self, image, flavor_id):
        """Boot fails: ERROR, the fault, and no VM left."""
        server, _port = self.boot(image, flavor_id=flavor_id,
                                  expected_state='ERROR')
        vms = self.host('host1').vms
        self.assertNotIn(server['OS-EXT-SRV-ATTR:instance_name'], vms)
        return server['fault']['message']


class SecureBootTest(VMSettingsTestBase):

    def test_host_provider_has_the_secure_boot_trait(self):
        rp_uuid = self._get_provider_uuid_by_host('host1')

        self.assertIn(os_traits.COMPUTE_SECURITY_UEFI_SECURE_BOOT,
                      self._get_provider_traits(rp_uuid))

    def test_flavor_required_linux_image_boots_with_microsoft_ca(self):
        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            **{'os:secure_boot': 'required'}))

        vm = self.vm_of(server)
        self.assertEqual(2, vm.generation)
        self.assertTrue(vm.secure_boot)
        self.assertTrue(vm.secure_boot_msft_ca)

    def test_image_required_windows_image_uses_windows_template(self):
        image = self.images.create_image('vhdx', properties=dict(
            GEN2, os_type='windows', os_secure_boot='required'))

        server, _port = self.boot(image)

        vm = self.vm_of(server)
        self.assertTrue(vm.secure_boot)
        self.assertFalse(vm.secure_boot_msft_ca)

    def test_generation1_image_refused(self):
        image = self.images.create_image('vhdx', properties={
            'os_type': 'windows'})

        fault = self.boot_refused(image, self.flavor(
            **{'os:secure_boot': 'required'}))

        self.assertIn('secure boot needs a generation 2 VM', fault)
        self.assertIn('hw_machine_type=hyperv-gen2', fault)

    def test_no_secure_boot_by_default(self):
        server, _port = self.boot(self.gen2_linux)

        self.assertFalse(self.vm_of(server).secure_boot)


class SecureVMTest(VMSettingsTestBase):

    def test_vtpm_image_refused_saying_what_is_missing(self):
        image = self.images.create_image('vhdx', properties=dict(
            GEN2, os_type='windows', os_vtpm='required'))

        fault = self.boot_refused(image, self.flavor())

        self.assertIn('os_vtpm=required is not supported', fault)
        self.assertIn('Barbican', fault)
        self.assertIn('secure boot', fault)
        self.assertIn('a guarded host', fault)

    def test_nova_vtpm_request_finds_no_host(self):
        # nova's scheduler asks placement for a COMPUTE_SECURITY_TPM_*
        # trait, which this driver does not report.
        rp_uuid = self._get_provider_uuid_by_host('host1')
        self.assertFalse({os_traits.COMPUTE_SECURITY_TPM_2_0,
                          os_traits.COMPUTE_SECURITY_TPM_1_2} &
                         set(self._get_provider_traits(rp_uuid)))

        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            **{'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb'}),
            expected_state='ERROR')

        self.assertIn('No valid host', server['fault']['message'])


class DynamicMemoryTest(VMSettingsTestBase):

    def setUp(self):
        self.flags(dynamic_memory_ratio=2.0, group='hyperv')
        super().setUp()

    def test_ratio_gives_startup_memory_of_flavor_over_ratio(self):
        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            memory_mb=2048))

        vm = self.vm_of(server)
        self.assertTrue(vm.dynamic_memory_enabled)
        self.assertEqual(1024, vm.startup_memory_mb)
        self.assertEqual(2048, vm.memory_mb)

    def test_nested_virtualization_gets_static_memory(self):
        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            memory_mb=2048, **{'hw:cpu_features': 'vmx'}))

        vm = self.vm_of(server)
        self.assertTrue(vm.nested_virtualization)
        self.assertFalse(vm.dynamic_memory_enabled)
        self.assertEqual(2048, vm.startup_memory_mb)


class NestedVirtualizationTest(VMSettingsTestBase):

    def test_image_vmx_enables_nested_virtualization(self):
        image = self.images.create_image('vhdx', properties=dict(
            GEN2, hw_cpu_features='vmx'))

        server, _port = self.boot(image)

        self.assertTrue(self.vm_of(server).nested_virtualization)

    def test_api_refuses_other_cpu_features(self):
        flavor_id = self._create_flavor(memory_mb=1024, vcpu=2, disk=2)

        exc = self.assertRaises(
            client.OpenStackApiException, self.admin_api.post_extra_spec,
            flavor_id, {'extra_specs': {'hw:cpu_features': 'avx'}})

        self.assertEqual(400, exc.response.status_code)


class VNUMATest(VMSettingsTestBase):

    HOST_KWARGS = {'numa_nodes': 2}

    def setUp(self):
        self.flags(dynamic_memory_ratio=2.0, group='hyperv')
        self.flags(enabled_filters=['ComputeFilter', 'NUMATopologyFilter'],
                   group='filter_scheduler')
        super().setUp()

    def test_two_nodes_with_static_memory(self):
        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            memory_mb=2048, vcpu=4, **{'hw:numa_nodes': '2'}))

        vm = self.vm_of(server)
        self.assertTrue(vm.vnuma_enabled)
        self.assertEqual(1024, vm.memory_per_numa_node)
        self.assertEqual(2, vm.vcpus_per_numa_node)
        self.assertFalse(vm.dynamic_memory_enabled)

    def test_more_nodes_than_the_host_has_find_no_host(self):
        server, _port = self.boot(self.gen2_linux, flavor_id=self.flavor(
            memory_mb=2048, vcpu=4, **{'hw:numa_nodes': '4'}),
            expected_state='ERROR')

        self.assertIn('No valid host', server['fault']['message'])

    def test_uneven_nodes_refused(self):
        fault = self.boot_refused(self.gen2_linux, self.flavor(
            memory_mb=2048, vcpu=4, **{
                'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0',
                'hw:numa_cpus.1': '1,2,3', 'hw:numa_mem.0': '1024',
                'hw:numa_mem.1': '1024'}))

        self.assertIn('Hyper-V needs equal virtual NUMA nodes', fault)


class RemoteFXTest(VMSettingsTestBase):

    def test_api_no_longer_takes_remotefx_specs(self):
        flavor_id = self._create_flavor(memory_mb=1024, vcpu=2, disk=2)

        exc = self.assertRaises(
            client.OpenStackApiException, self.admin_api.post_extra_spec,
            flavor_id, {'extra_specs': {'os:resolution': '1920x1200'}})

        self.assertEqual(400, exc.response.status_code)

    def test_old_remotefx_flavor_refused_at_boot(self):
        fault = self.boot_refused(self.gen2_linux, self.old_flavor(
            **{'os:resolution': '1920x1200', 'os:monitors': '2'}))

        self.assertIn('Microsoft removed RemoteFX vGPU (KB4570006)', fault)
        self.assertIn('os:monitors, os:resolution', fault)


class RemoteFXResizeTest(VMSettingsTestBase):

    # nova casts resize_instance to the source host: its failure reaches
    # neither the destination's prep_resize nor the API, as in production
    # (with casts as calls, nova's own reschedule path would see it).
    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host2')

    def test_resize_to_old_remotefx_flavor_refused_before_anything_moves(self):
        server, _port = self.boot(self.gen2_linux, host='host1')
        vm_before = self.vm_of(server)

        self.api.post_server_action(server['id'], {'resize': {
            'flavorRef': self.old_flavor(**{'os:vram': '1024'})}})

        self._wait_for_migration_status(server, ['error'])
        event = self._wait_for_action_fail_completion(
            server, 'resize', 'compute_resize_instance')
        self.assertIn('Microsoft removed RemoteFX vGPU', event['details'])
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        vm = self.vm_of(server)
        self.assertEqual(vm_before.vm_id, vm.vm_id)
        self.assertEqual('Running', vm.power_state_name)
        self.assertNotIn(server['OS-EXT-SRV-ATTR:instance_name'],
                         self.host('host2').vms)
