"""VMOps: images Hyper-V cannot boot are refused, and nothing is left over."""

import contextlib
import os
import subprocess

import fixtures
from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova import test
from os_vif import objects as osv_objects
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import imagecache
from compute_hyperv_ovs.hyperv import serialconsole
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vif
from compute_hyperv_ovs import vmops
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

# What the compute manager passes for an image-backed instance.
IMAGE_BACKED_BDI = {'root_device_name': '/dev/sda', 'ephemerals': [],
                    'block_device_mapping': [], 'swap': None}
# ... and for one booted from a volume.
VOLUME_BACKED_BDI = {
    'root_device_name': '/dev/sda', 'ephemerals': [], 'swap': None,
    'block_device_mapping': [{'mount_device': '/dev/sda', 'boot_index': 0,
                              'connection_info': {}}]}


GEN1, GEN2 = 'hyperv-gen1', 'hyperv-gen2'


def image_meta(disk_format, machine_type=None, image_id=None):
    properties = {}
    if machine_type:
        properties['hw_machine_type'] = machine_type
    return objects.ImageMeta.from_dict(
        {'id': image_id or uuidutils.generate_uuid(),
         'disk_format': disk_format, 'properties': properties})


class FakeVirtAPI(object):
    """nova's ComputeVirtAPI, for a spawn that fails before any wait."""

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield


def make_vmops(vif_plugin):
    """The OVS driver's VMOps, built as HyperVOVSDriver builds it."""
    return vmops.VMOps(FakeVirtAPI(), vif.HyperVOVSVIFDriver(vif_plugin),
                       imagecache.ImageCache(),
                       serialconsole.SerialConsoleOps())


class VMOpsTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.hosts.add_host('host1')
        # Nothing here reaches OVSDB: the connection opens on first plug.
        vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        with self.hosts.building('host1'):
            self.vmops = make_vmops(vif_plugin)

    def instance(self, image_id=None, root_gb=1, disk_format='vhdx'):
        flavor = objects.Flavor(
            id=1, flavorid='1', name='m1.test', memory_mb=1024, vcpus=1,
            root_gb=root_gb, ephemeral_gb=0, swap=0, extra_specs={})
        return objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(),
            image_ref=image_id or uuidutils.generate_uuid(),
            flavor=flavor, old_flavor=None, new_flavor=None,
            memory_mb=1024, vcpus=1, root_gb=root_gb, ephemeral_gb=0,
            config_drive='', metadata={}, numa_topology=None,
            pci_requests=objects.InstancePCIRequests(requests=[]),
            project_id='p', user_id='u',
            # What nova-api copies from the image (instance.image_meta).
            system_metadata={'image_disk_format': disk_format})


class CheckImageTestCase(VMOpsTestCase):

    def check(self, meta, bdi=IMAGE_BACKED_BDI):
        self.vmops.check_image(self.instance(meta.id), meta, bdi)

    def test_non_vhd_disk_formats_refused_naming_the_format(self):
        for disk_format in ('qcow2', 'raw'):
            meta = image_meta(disk_format)

            exc = self.assertRaises(exception.ImageNotVHD, self.check, meta)

            self.assertIsInstance(exc, nova_exception.ImageUnacceptable)
            message = exc.format_message()
            self.assertIn(meta.id, message)
            self.assertIn('disk_format is %s' % disk_format, message)
            self.assertIn('qemu-img convert', message)

    def test_generation2_vhd_refused(self):
        meta = image_meta('vhd', GEN2)

        exc = self.assertRaises(exception.Generation2NeedsVHDX,
                                self.check, meta)

        self.assertIsInstance(exc, nova_exception.ImageUnacceptable)
        self.assertIn(meta.id, exc.format_message())

    def test_generation1_vhd_accepted(self):
        self.check(image_meta('vhd', GEN1))
        self.check(image_meta('vhd'))  # host default: generation 1

    def test_generation2_vhdx_accepted(self):
        self.check(image_meta('vhdx', GEN2))

    def test_boot_from_volume_is_not_checked(self):
        self.check(image_meta('qcow2'), VOLUME_BACKED_BDI)
        self.check(image_meta('vhd', GEN2),
                   VOLUME_BACKED_BDI)


class CachedImageMixin(object):

    def cached_image(self, fmt, size):
        """An image already in the image cache, as the base driver finds it."""
        image_id = uuidutils.generate_uuid()
        base_dir = os.path.join(self.instances_path, '_base')
        os.makedirs(base_dir, exist_ok=True)
        args = {'vhd': ['-f', 'vpc', '-o', 'subformat=dynamic'],
                'vhdx': ['-f', 'vhdx']}[fmt]
        subprocess.check_call(
            ['qemu-img', 'create'] + args +
            [os.path.join(base_dir, '%s.%s' % (image_id, fmt)), size],
            stdout=subprocess.DEVNULL)
        return image_id


class CreateRootDeviceTestCase(CachedImageMixin, VMOpsTestCase):

    def create_root(self, instance, vm_gen=constants.VM_GEN_1):
        root_disk_info = {'type': constants.DISK}
        self.vmops._create_root_device(
            nova_context.get_admin_context(), instance, root_disk_info,
            vm_gen)
        return root_disk_info['path']

    def instance_dir_content(self, instance):
        path = os.path.join(self.instances_path, instance.name)
        return os.listdir(path) if os.path.exists(path) else []

    def test_root_disk_of_fitting_image_is_created(self):
        instance = self.instance(self.cached_image('vhdx', '32M'))

        path = self.create_root(instance)

        self.assertEqual(
            os.path.join(self.instances_path, instance.name, 'root.vhdx'),
            path)
        self.assertEqual(['root.vhdx'], self.instance_dir_content(instance))

    def test_vhdx_image_larger_than_root_disk_refused_leaving_nothing(self):
        instance = self.instance(self.cached_image('vhdx', '2G'), root_gb=1)

        exc = self.assertRaises(exception.RootDiskTooSmall,
                                self.create_root, instance)

        self.assertIsInstance(exc, nova_exception.FlavorDiskSmallerThanImage)
        self.assertIn('%d bytes' % (2 * 1024 ** 3), exc.format_message())
        self.assertIn('larger root_gb', exc.format_message())
        self.assertEqual([], self.instance_dir_content(instance))

    def test_vhd_image_larger_than_root_disk_refused_leaving_nothing(self):
        instance = self.instance(self.cached_image('vhd', '2G'), root_gb=1,
                                 disk_format='vhd')

        exc = self.assertRaises(exception.RootDiskTooSmall,
                                self.create_root, instance)

        self.assertIsInstance(exc, nova_exception.FlavorDiskSmallerThanImage)
        self.assertIn('larger root_gb', exc.format_message())
        self.assertEqual([], self.instance_dir_content(instance))

    def test_generation2_on_vhd_root_refused_as_needing_vhdx(self):
        instance = self.instance(self.cached_image('vhd', '32M'),
                                 disk_format='vhd')

        exc = self.assertRaises(exception.Generation2NeedsVHDX,
                                self.create_root, instance,
                                constants.VM_GEN_2)

        self.assertIn(instance.image_ref, exc.format_message())


class DestroyAfterRefusedPlugTestCase(CachedImageMixin, VMOpsTestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()  # as HyperVOVSDriver does
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group=plugin.CONFIG_GROUP)
        self.flags(vswitch_name='ovs-switch', group='hyperv')
        self.hosts['host1'].add_vswitch('ovs-switch')
        vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.addCleanup(vif_plugin.close)
        with self.hosts.building('host1'):
            self.vmops = make_vmops(vif_plugin)

    def test_destroy_after_refused_hybrid_plug_removes_instance_files(self):
        # neutron bound the port with ovs_hybrid_plug (iptables firewall
        # driver): the build is refused, and deleting the server then runs
        # destroy() with the same network_info.
        instance = self.instance(self.cached_image('vhdx', '32M'))
        port_id = uuidutils.generate_uuid()
        network_info = network_model.NetworkInfo([network_model.VIF(
            id=port_id, address='fa:16:3e:00:00:01', type='ovs',
            details={'ovs_hybrid_plug': True}, active=False,
            ovs_interfaceid=port_id,
            network=network_model.Network(
                id=uuidutils.generate_uuid(), bridge='br-int',
                label='private', subnets=[]))])
        bdi = {'root_device_name': '/dev/sda', 'ephemerals': [],
               'block_device_mapping': [], 'swap': None}
        meta = image_meta('vhdx', image_id=instance.image_ref)
        self.assertRaises(nova_exception.VirtualInterfacePlugException,
                          self.vmops.spawn, nova_context.get_admin_context(),
                          instance, meta, [], None, network_info, bdi)

        self.vmops.destroy(instance, network_info, bdi)

        self.assertEqual({}, dict(self.hosts['host1'].vms))
        self.assertFalse(os.path.exists(
            os.path.join(self.instances_path, instance.name)))


class NICHotplugRefusalTestCase(VMOpsTestCase):
    """Refusals happen before anything changes (no vNIC, no OVS port)."""

    def setUp(self):
        super().setUp()
        with self.hosts.building('host1'):
            self.vmutils = utilsfactory.get_vmutils()
        self.port_id = uuidutils.generate_uuid()
        self.vif = network_model.VIF(
            id=self.port_id, address='fa:16:3e:00:00:02', type='ovs',
            details={}, active=False, ovs_interfaceid=self.port_id,
            network=network_model.Network(
                id=uuidutils.generate_uuid(), bridge='br-int',
                label='private', subnets=[]))

    def vm(self, generation, state):
        instance = self.instance()
        self.vmutils.create_vm(instance.name, False, generation,
                               self.instances_path, [instance.uuid])
        if state != os_win_const.HYPERV_VM_STATE_DISABLED:
            self.vmutils.set_vm_state(instance.name,
                                      os_win_const.HYPERV_VM_STATE_ENABLED)
            self.vmutils.set_vm_state(instance.name, state)
        return instance

    def assert_refused(self, instance, *words):
        for operation in (self.vmops.attach_interface,
                          self.vmops.detach_interface):
            exc = self.assertRaises(exception.NICHotplugRefused, operation,
                                    instance, self.vif)
            for word in words + (self.port_id, 'stop the server'):
                self.assertIn(word, str(exc))
        self.assertEqual({}, dict(
            self.hosts['host1'].vms[instance.name].nics))

    def test_running_generation1_refused(self):
        instance = self.vm(1, os_win_const.HYPERV_VM_STATE_ENABLED)
        self.assert_refused(instance, 'generation 1',
                            'generation 2 VMs only')

    def test_paused_vm_refused(self):
        instance = self.vm(2, os_win_const.HYPERV_VM_STATE_PAUSED)
        self.assert_refused(instance, 'while it is paused')

    def test_running_generation2_on_old_windows_refused(self):
        self.hosts['host1'].windows_version = '6.3.9600'
        instance = self.vm(2, os_win_const.HYPERV_VM_STATE_ENABLED)
        self.assert_refused(instance, 'Windows Server 2016', '6.3.9600')
