"""SnapshotOps on a simulated Hyper-V host, uploading to nova's glance
fixture: what the snapshot image holds and what the host keeps."""

import os

import fixtures
from nova.compute import task_states
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova import test
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_utils import units
from oslo_utils import uuidutils

from compute_hyperv_ovs.hyperv import snapshotops
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures.hyperv import vmutils as hyperv_vmutils
from tests.fixtures import images


class SnapshotTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('host1')
        with self.hosts.building('host1'):
            self.ops = snapshotops.SnapshotOps()
            self.vmutils = utilsfactory.get_vmutils()
            self.vhdutils = utilsfactory.get_vhdutils()
        self.glance = self.useFixture(images.GlanceFixture(self))
        self.context = nova_context.get_admin_context()
        self.instance = objects.Instance(id=1, uuid=uuidutils.generate_uuid())
        self.instance_dir = os.path.join(self.instances_path,
                                         self.instance.name)
        self.export_dir = os.path.join(self.instances_path, 'export',
                                       self.instance.name)
        self.task_states = []
        self.image_id = self.glance.create(
            self.context, {'name': 'snap', 'status': 'queued'})['id']

    def update_task_state(self, task_state, expected_state=None):
        self.task_states.append((task_state, expected_state))

    def vm_on(self, file_format, differencing=True):
        """A running VM whose root disk is (a child of) a cached image."""
        os.makedirs(self.instance_dir)
        root = os.path.join(self.instance_dir, 'root.' + file_format)
        if differencing:
            base_dir = os.path.join(self.instances_path, '_base')
            os.makedirs(base_dir)
            self.base = os.path.join(base_dir, 'image.' + file_format)
            self.vhdutils.create_dynamic_vhd(self.base, 64 * units.Mi)
            self.vhdutils.create_differencing_vhd(root, self.base)
            self.vhdutils.resize_vhd(root, 128 * units.Mi,
                                     is_file_max_size=False)
        else:
            self.vhdutils.create_dynamic_vhd(root, 128 * units.Mi)
        name = self.instance.name
        self.vmutils.create_vm(name, False, 1, self.instance_dir,
                               [self.instance.uuid])
        ctrl = self.vmutils.get_vm_ide_controller(name, 0)
        self.vmutils.attach_drive(name, root, ctrl, 0)
        self.vmutils.set_vm_state(name, hyperv_const.RUNNING)
        return root

    def snapshot(self):
        self.ops.snapshot(self.context, self.instance, self.image_id,
                          self.update_task_state)

    def uploaded_disk(self):
        """The uploaded data, as Hyper-V would read it from a file."""
        data = self.glance._imagedata[self.image_id]
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'uploaded')
        with open(path, 'wb') as f:
            f.write(data)
        return self.host.disks[path]

    def test_differencing_vhdx_root_uploads_one_flat_vhdx(self):
        root = self.vm_on('vhdx')

        self.snapshot()

        image = self.glance.show(self.context, self.image_id)
        self.assertEqual('vhdx', image['disk_format'])
        self.assertEqual('bare', image['container_format'])
        disk = self.uploaded_disk()
        self.assertEqual('VHDX', disk.format)
        self.assertIsNone(disk.parent)
        self.assertNotEqual(os_win_const.VHD_TYPE_DIFFERENCING, disk.type)
        # The guest's view: the grown child's size, not the image's.
        self.assertEqual(128 * units.Mi, disk.virtual_size)
        # The VM's own disks are as before: the root still a child of the
        # cached image, which kept its size.
        self.assertEqual(self.base, self.host.disks[root].parent)
        self.assertEqual(64 * units.Mi,
                         self.host.disks[self.base].virtual_size)

    def test_vhd_root_uploads_as_vhd(self):
        self.vm_on('vhd', differencing=False)

        self.snapshot()

        image = self.glance.show(self.context, self.image_id)
        self.assertEqual('vhd', image['disk_format'])
        self.assertEqual('VHD', self.uploaded_disk().format)

    def test_task_states_follow_nova(self):
        self.vm_on('vhdx')

        self.snapshot()

        self.assertEqual(
            [(task_states.IMAGE_PENDING_UPLOAD, None),
             (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD)],
            self.task_states)

    def test_checkpoint_and_export_dir_are_removed(self):
        self.vm_on('vhdx')

        self.snapshot()

        self.assertEqual((), self.host.vms[self.instance.name].checkpoints)
        self.assertFalse(os.path.exists(self.export_dir))

    def test_failed_upload_leaves_no_checkpoint_or_copies(self):
        self.vm_on('vhdx')
        # The user deleted the snapshot image while it was being made.
        self.glance.delete(self.context, self.image_id)

        self.assertRaises(nova_exception.ImageNotFound, self.snapshot)

        self.assertEqual((), self.host.vms[self.instance.name].checkpoints)
        self.assertFalse(os.path.exists(self.export_dir))
        self.assertEqual('Running',
                         self.host.vms[self.instance.name].power_state_name)

    def test_vm_without_root_disk_refused_without_leftovers(self):
        root = self.vm_on('vhdx', differencing=False)
        os.remove(root)

        exc = self.assertRaises(nova_exception.DiskNotFound, self.snapshot)

        self.assertIn(self.instance_dir, exc.format_message())
        self.assertEqual((), self.host.vms[self.instance.name].checkpoints)
        self.assertFalse(os.path.exists(self.export_dir))
        self.assertNotIn(self.image_id, self.glance._imagedata)

    def test_missing_vm_is_instance_not_found(self):
        exc = self.assertRaises(nova_exception.InstanceNotFound,
                                self.snapshot)

        self.assertIn(self.instance.uuid, exc.format_message())
        self.assertEqual([], self.task_states)

    def test_checkpoint_that_cannot_be_removed_does_not_fail_upload(self):
        self.vm_on('vhdx')
        name = self.instance.name
        real_take = self.vmutils.take_vm_snapshot

        def take_and_lose(vm_name, snapshot_name=None):
            # Someone removes the checkpoint by hand meanwhile.
            path = real_take(vm_name)
            self.vmutils.remove_vm_snapshot(path)
            return path

        self.useFixture(fixtures.MockPatchObject(
            hyperv_vmutils.SimulatedVMUtils, 'take_vm_snapshot',
            lambda utils, vm_name, snapshot_name=None: take_and_lose(
                vm_name)))

        self.snapshot()

        self.assertEqual('vhdx', self.glance.show(
            self.context, self.image_id)['disk_format'])
        self.assertIn('Could not remove the checkpoint',
                      self.stdlog.logger.output)
        self.assertIn('Remove-VMSnapshot', self.stdlog.logger.output)
        self.assertEqual((), self.host.vms[name].checkpoints)
        self.assertFalse(os.path.exists(self.export_dir))
