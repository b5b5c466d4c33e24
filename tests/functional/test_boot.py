"""Boot and delete servers through nova on simulated Hyper-V hosts + OVS."""

import os
import time

import fixtures
from os_win import constants as os_win_const

from tests.fixtures import ovs
from tests.functional import base


class BootTestBase(base.HyperVOVSTestBase):

    def assert_ovs_port(self, hostname, server, port):
        """The port as neutron-openvswitch-agent needs it, read from OVSDB."""
        switch = self.ovs[hostname]
        self.assertIn(port['id'], switch.list_ports('br-int'))
        iface = switch.get_interface(port['id'])
        self.assertEqual({'iface-id': port['id'],
                          'attached-mac': port['mac_address'],
                          'iface-status': 'active',
                          'vm-uuid': server['id'],
                          'created-by': 'compute-hyperv-ovs',
                          'compute-host': hostname},
                         iface['external_ids'])
        self.assertGreater(iface['ofport'], 0)

    def assert_nothing_left(self, server, hostname, port):
        self.assertIsNone(self.vm_of(server, hostname))
        self.assertNotIn(port['id'], self.ovs[hostname].list_ports('br-int'))
        self.assertFalse(os.path.exists(self.instance_dir(server, hostname)))

    def assert_no_allocation(self, server):
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            server['id']))

    def assert_vif_plugged_sent(self, hostname, server, port, timeout=10):
        """network-vif-plugged is posted, within ``timeout`` seconds.

        The agent stand-in reports a port from its own thread once it sees
        the ofport, as the real agent does, so after a path that does not
        wait for the event (a stopped VM started with a port attached) the
        event can still be on its way when the server is ACTIVE.
        """
        wanted = (hostname, 'network-vif-plugged', server['id'], port['id'])
        deadline = time.monotonic() + timeout
        while True:
            sent = [(e['host'], e['name'], e['server_uuid'], e['tag'])
                    for e in self.vif_plugged.events_sent]
            if wanted in sent or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertIn(wanted, sent)


class BootTest(BootTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')

    def assert_booted_on_host1(self, server, port, generation, disk_format):
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        vm = self.vm_of(server)
        self.assertEqual(generation, vm.generation)
        self.assertEqual(2, vm.vcpus)
        self.assertEqual(1024, vm.memory_mb)
        self.assertEqual(os_win_const.HYPERV_VM_STATE_ENABLED,
                         vm.power_state)
        self.assertEqual(server['id'], vm.instance_uuid)

        # Root disk: a differencing disk whose parent is the cached image.
        root = os.path.join(self.instance_dir(server),
                            'root.' + disk_format)
        self.assertIn(root, [d.path for d in vm.disks])
        # The VM's data root and disks are in host1's own instances path.
        self.assertEqual(self.instance_dir(server), vm.instance_path)
        self.assertTrue(root.startswith(self.instances_dir('host1')))
        disk = self.host('host1').disks[root]
        self.assertEqual(os_win_const.VHD_TYPE_DIFFERENCING, disk.type)
        self.assertEqual(self.base_dir('host1'), os.path.dirname(disk.parent))
        self.assertTrue(os.path.exists(disk.parent))

        # The vNIC, named after the port, on the configured vSwitch.
        nic = vm.nics[port['id']]
        self.assertEqual(port['mac_address'].lower(), nic.mac.lower())
        self.assertEqual(base.VSWITCH, nic.vswitch)
        self.assertEqual(port['id'], nic.switch_port)

        self.assert_ovs_port('host1', server, port)
        self.assert_vif_plugged_sent('host1', server, port)

    def test_boot_vhdx_generation2_then_delete(self):
        image = self.images.create_image(
            'vhdx', properties={'hw_machine_type': 'hyperv-gen2'})

        server, port = self.boot(image)

        self.assert_booted_on_host1(server, port, 2, 'vhdx')

        self._delete_server(server)

        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)

    def test_boot_vhd_generation1_then_delete(self):
        image = self.images.create_image('vhd')

        server, port = self.boot(image)

        self.assert_booted_on_host1(server, port, 1, 'vhd')
        self._delete_server(server)
        self.assert_nothing_left(server, 'host1', port)

    def test_boot_waits_for_network_vif_plugged(self):
        # Without the agent stand-in no event comes and nova's
        # vif_plugging_is_fatal turns the wait into a failed build.
        self.agents['host1'].stop()
        self.flags(vif_plugging_timeout=2)
        image = self.images.create_image('vhdx')

        server, port = self.boot(image, expected_state='ERROR')

        self.assertIn('no network-vif-plugged for port(s) %s' % port['id'],
                      server['fault']['message'])
        self.assertIn('neutron-openvswitch-agent', server['fault']['message'])
        self.assert_nothing_left(server, 'host1', port)
        self.assertEqual([], self.vif_plugged.events_sent)


class BadInputTest(BootTestBase):
    """Each case: ERROR, a fault saying what to do, nothing left behind."""

    def setUp(self):
        super().setUp()
        self.start_compute('host1')

    def boot_fails(self, image, **kwargs):
        server, port = self.boot(image, expected_state='ERROR', **kwargs)
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)
        self.assertEqual({}, self.host('host1').vms)
        return server['fault']['message']

    def test_qcow2_image_is_refused(self):
        image = self.images.create_image('qcow2')

        fault = self.boot_fails(image)

        self.assertIn('disk_format is qcow2', fault)
        self.assertIn('Hyper-V boots VHD or VHDX', fault)
        self.assertIn('qemu-img convert -O vhdx', fault)

    def test_raw_content_declared_vhdx_is_refused(self):
        image = self.images.create_image('raw', disk_format='vhdx',
                                         size_gb=0.01)

        fault = self.boot_fails(image)

        self.assertIn('neither VHD nor VHDX', fault)
        self.assertIn('Hyper-V boots VHD or VHDX', fault)
        self.assertEqual([], self.cached_images())

    def test_vhd_content_declared_vhdx_is_refused(self):
        image = self.images.create_image('vhd', disk_format='vhdx')

        fault = self.boot_fails(image)

        self.assertIn('declared disk_format=vhdx but its content is VHD',
                      fault)
        self.assertEqual([], self.cached_images())

    def test_image_larger_than_flavor_root_disk_is_refused(self):
        image = self.images.create_image('vhdx', size_gb=3)

        fault = self.boot_fails(image)

        self.assertIn("Flavor's disk is too small", fault)
        self.assertIn('3221225472 bytes', fault)
        self.assertIn('larger root_gb', fault)

    def test_generation2_vhd_is_refused(self):
        image = self.images.create_image(
            'vhd', properties={'hw_machine_type': 'hyperv-gen2'})

        fault = self.boot_fails(image)

        self.assertIn('hyperv-gen2 boots VHDX only', fault)

    def cached_images(self):
        # nova's image cache leaves its external lock files; images only.
        return [f for f in os.listdir(self.base_dir('host1'))
                if not f.endswith('.lock')]

    def test_port_bound_as_tap_is_refused(self):
        # A binding nova accepts and this driver cannot plug (nova 34 itself
        # refuses vif_type=bridge since it dropped Linux bridge).
        port = self.create_port()
        port['binding:vif_type'] = 'tap'

        fault = self.boot_fails(self.images.create_image('vhdx'), port=port)

        self.assertIn('vif_type=tap, this driver plugs ovs or hyperv only',
                      fault)

    def test_ovsdb_unreachable_at_plug(self):
        switch = self.ovs['host1']
        switch.stop()
        image = self.images.create_image('vhdx')

        server, port = self.boot(image, expected_state='ERROR')

        fault = server['fault']['message']
        self.assertIn('ovsdb-server at %s is unreachable' % switch.connection,
                      fault)
        self.assertIn('ovsdb_connection', fault)
        # The database survives on disk: read it back to see no port.
        switch.start()
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)


class TwoHostsTest(BootTestBase):

    def setUp(self):
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')

    def test_each_port_lands_in_its_own_hosts_ovsdb(self):
        image = self.images.create_image('vhdx')

        server1, port1 = self.boot(image, host='host1')
        server2, port2 = self.boot(image, host='host2')

        self.assert_ovs_port('host1', server1, port1)
        self.assert_ovs_port('host2', server2, port2)
        self.assertNotIn(port2['id'], self.ovs['host1'].list_ports('br-int'))
        self.assertNotIn(port1['id'], self.ovs['host2'].list_ports('br-int'))
        self.assertIsNone(self.vm_of(server1, 'host2'))
        self.assertIsNone(self.vm_of(server2, 'host1'))
        # Shared-nothing: each server's files are on its own host only.
        self.assertTrue(os.path.isdir(self.instance_dir(server1, 'host1')))
        self.assertFalse(os.path.exists(self.instance_dir(server1, 'host2')))
        self.assertTrue(os.path.isdir(self.instance_dir(server2, 'host2')))
        self.assertFalse(os.path.exists(self.instance_dir(server2, 'host1')))


class SslBootTest(BootTestBase):
    """The driver reaches its host's ovsdb-server over SSL."""

    def test_boot_and_delete_over_ssl(self):
        self.start_compute('host1', ovs_ssl={})
        image = self.images.create_image('vhdx')

        server, port = self.boot(image)

        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assert_ovs_port('host1', server, port)
        self.assert_vif_plugged_sent('host1', server, port)
        self._delete_server(server)
        self.assert_nothing_left(server, 'host1', port)

    def test_boot_with_a_ca_that_did_not_sign_the_server_fails(self):
        stranger = ovs.make_pki(os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'pki'))
        self.start_compute('host1', ovs_ssl={
            'ssl_ca_cert_file': stranger['ca_cert']})
        image = self.images.create_image('vhdx')

        server, port = self.boot(image, expected_state='ERROR')

        fault = server['fault']['message']
        self.assertIn('[os_vif_hyperv_ovs] ssl_ca_cert_file', fault)
        self.assert_nothing_left(server, 'host1', port)
        self.assert_no_allocation(server)
