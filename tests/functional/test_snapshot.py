"""Snapshots (create image) and shelve through nova onto a Hyper-V host.

nova 28's Hyper-V driver takes a Hyper-V checkpoint of the VM, uploads a
copy of the root disk (merged with its base image when it is a
differencing disk) and removes the checkpoint again; shelve does the same,
then unshelve boots from that image.
"""

import os
import time

import fixtures
from oslo_concurrency import processutils

from tests.functional import base


class SnapshotTest(base.HyperVOVSTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def _image_format(self, image_id):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'image')
        self.glance.download(None, image_id, dst_path=path)
        out, _err = processutils.execute('qemu-img', 'info', path)
        return out.split('file format: ', 1)[1].split()[0]

    def test_create_image_uploads_the_root_disk_and_drops_the_checkpoint(
            self):
        server, port = self.boot(self.image)

        image_id = self._create_image(server['id'], 'snap')

        image = self.glance.show(None, image_id)
        self.assertEqual('active', image['status'])
        self.assertEqual('vhdx', image['disk_format'])
        self.assertEqual('vhdx', self._image_format(image_id))
        vm = self.vm_of(server)
        self.assertEqual((), vm.checkpoints)
        self.assertEqual('Running', vm.power_state_name)

    def test_shelve_offload_and_unshelve(self):
        server, port = self.boot(self.image)
        name = server['OS-EXT-SRV-ATTR:instance_name']

        self.api.post_server_action(server['id'], {'shelve': None})
        server = self._wait_for_state_change(server, 'SHELVED_OFFLOADED')

        self.assertNotIn(name, self.host('host1').vms)
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports())

        self.api.post_server_action(server['id'], {'unshelve': None})
        server = self._wait_for_state_change(server, 'ACTIVE')

        vm = self.vm_of(server)
        self.assertEqual('Running', vm.power_state_name)
        self.assertEqual((), vm.checkpoints)
        iface = self.ovs['host1'].get_interface(port['id'])
        self.assertEqual(server['id'], iface['external_ids']['vm-uuid'])

    def _create_image(self, server_id, name):
        resp = self.api.post_server_action(
            server_id, {'createImage': {'name': name}})
        image_id = resp['image_id']
        self._wait_for_image(image_id)
        # The image turns active when its data is uploaded; the driver
        # removes its checkpoint after that, and nova clears the task
        # only once the whole snapshot returned.
        self._wait_for_server_parameter(
            {'id': server_id}, {'OS-EXT-STS:task_state': None})
        return image_id

    def _wait_for_image(self, image_id):
        for _ in range(100):
            if self.glance.show(None, image_id)['status'] == 'active':
                return
            time.sleep(0.1)
        self.fail('image %s never became active' % image_id)
