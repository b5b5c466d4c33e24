"""Disks and images through nova's API, read back on the simulated host.

Disk QoS from the flavor, boot from an ISO image, image pre-caching and
trusted image certificates, each as a user or operator asks for it.
"""

import os

from tests.functional import base


class DiskQoSTest(base.HyperVOVSTestBase):
    """``quota:disk_total_*`` limits the server's disks on Hyper-V."""

    CAST_AS_CALL = False

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')
        self.image = self.images.create_image('vhdx')
        self.limited_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=2, ephemeral=1,
            extra_spec={'quota:disk_total_iops_sec': '500'})
        # 4 MiB/s is 512 normalised (8 KB) IOPS.
        self.other_flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=3, ephemeral=1,
            extra_spec={'quota:disk_total_bytes_sec': str(4 * 1024 * 1024)})

    def disk_qos(self, server, hostname=None):
        """{file name: (minimum, maximum) IOPS} of the VM's disks."""
        vm = self.vm_of(server, hostname)
        self.assertEqual(2, len(vm.disks))  # root and ephemeral
        return {os.path.basename(path): qos
                for path, qos in vm.disk_qos.items()}

    def test_boot_limits_root_and_ephemeral_disks(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)

        self.assertEqual({'root.vhdx': (0, 500), 'eph0.vhdx': (0, 500)},
                         self.disk_qos(server))

    def test_resize_applies_the_new_limit_and_revert_the_old(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)

        server = self._resize_server(server, self.other_flavor_id)

        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual({'root.vhdx': (0, 512), 'eph0.vhdx': (0, 512)},
                         self.disk_qos(server))

        server = self._revert_resize(server)

        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual({'root.vhdx': (0, 500), 'eph0.vhdx': (0, 500)},
                         self.disk_qos(server))

    def test_resize_to_a_flavor_without_quota_lifts_the_limit(self):
        server, _port = self.boot(self.image, host='host1',
                                  flavor_id=self.limited_flavor_id)
        unlimited = self._create_flavor(memory_mb=1024, vcpu=2, disk=3,
                                        ephemeral=1)

        server = self._resize_server(server, unlimited)
        server = self._confirm_resize(server)

        self.assertEqual({}, self.disk_qos(server))
