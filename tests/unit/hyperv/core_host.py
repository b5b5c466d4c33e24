"""One simulated host with the Hyper-V core's VMOps on it, for spawns.

The VIF driver records (the network back end is not the core's
business); glance's side of an image download is
``images.ImageDownloadsFixture``; nova's DB lookups of a spawn's device
metadata answer that there is none.
"""

import fixtures
from nova import context as nova_context
from nova.network import model as network_model
from nova import objects
from nova import test
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import imagecache
from compute_hyperv_ovs.hyperv import serialconsole
from compute_hyperv_ovs.hyperv import snapshotops
from compute_hyperv_ovs.hyperv import vmops
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images
from tests.unit.hyperv import recording_vif
from tests.unit import test_vmops


def flavor(root_gb=1, ephemeral_gb=0, **specs):
    return objects.Flavor(name='f-%s' % uuidutils.generate_uuid()[:4],
                          root_gb=root_gb, ephemeral_gb=ephemeral_gb,
                          memory_mb=1024, vcpus=1, swap=0,
                          extra_specs=dict(specs))


class CoreSpawnTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.tmp)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.sim = self.hosts.add_host('host1')
        self.vifs = recording_vif.RecordingVIFDriver()
        with self.hosts.building('host1'):
            self.image_cache = imagecache.ImageCache()
            self.vmops = vmops.VMOps(test_vmops.FakeVirtAPI(), self.vifs,
                                     self.image_cache,
                                     serialconsole.SerialConsoleOps())
            self.snapshotops = snapshotops.SnapshotOps()
        self.useFixture(fixtures.MockPatch(
            'nova.objects.VirtualInterfaceList.get_by_instance_uuid',
            return_value=[]))
        self.useFixture(fixtures.MockPatch(
            'nova.objects.BlockDeviceMappingList.get_by_instance_uuid',
            return_value=objects.BlockDeviceMappingList(objects=[])))
        self.disk_images = self.useFixture(
            images.DiskImagesFixture(glance=None))
        self.glance_files = {}
        self.downloads = self.useFixture(
            images.ImageDownloadsFixture(self.glance_files))
        self.context = nova_context.get_admin_context()

    def add_image(self, file_format, size_gb=0.0625):
        image_id = uuidutils.generate_uuid()
        self.glance_files[image_id] = self.disk_images.make_file(
            file_format, size_gb)
        return image_id

    def instance(self, image_id, disk_format, the_flavor=None,
                 machine_type=None):
        system_metadata = {'image_disk_format': disk_format}
        if machine_type:
            system_metadata['image_hw_machine_type'] = machine_type
        return objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u', host='host1', image_ref=image_id,
            flavor=the_flavor or flavor(), old_flavor=None, config_drive='',
            system_metadata=system_metadata, metadata={},
            numa_topology=None,
            pci_requests=objects.InstancePCIRequests(requests=[]))

    def spawn(self, instance, ephemerals=()):
        """Spawn as the compute manager asks; returns the VM's view."""
        bdi = {'root_device_name': '/dev/sda', 'swap': None,
               'block_device_mapping': [],
               'ephemerals': [{'size': size, 'device_name': '/dev/sd%s' % c}
                              for size, c in zip(ephemerals, 'bcd')]}
        self.vmops.spawn(self.context, instance,
                         objects.ImageMeta.from_instance(instance), [], None,
                         network_model.NetworkInfo([]), bdi)
        return self.sim.vms[instance.name]
