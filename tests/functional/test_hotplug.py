"""NIC hot-plug through nova's API: ``server add port`` / ``remove port``.

Hyper-V adds or removes a NIC of a running VM only for generation 2 VMs
on Windows Server 2016 or later; an Off VM of either generation takes the
change (the simulated host enforces it, ``SimulatedVMUtils.create_nic``).
Each case reads back the simulated host (the VM's vNICs and their switch
ports) and the host's real OVSDB.
"""

from concurrent import futures
import time

from nova.tests.functional.api import client
from os_win import constants as os_win_const

from tests.functional import test_boot

NOTIFICATION_TIMEOUT = 20


class HotplugTestBase(test_boot.BootTestBase):

    WINDOWS_VERSION = '10.0.17763'  # Windows Server 2019

    def setUp(self):
        super().setUp()
        self.start_compute('host1', windows_version=self.WINDOWS_VERSION)

    def gen2_server(self):
        image = self.images.create_image(
            'vhdx', properties={'hw_machine_type': 'hyperv-gen2'})
        return self.boot(image)

    def gen1_server(self):
        return self.boot(self.images.create_image('vhd'))

    def attach(self, server, port):
        """``openstack server add port``; returns the attachment."""
        attachment = self.api.attach_interface(
            server['id'], {'interfaceAttachment': {'port_id': port['id']}})
        self.notifier.wait_for_versioned_notifications(
            'instance.interface_attach.end', timeout=NOTIFICATION_TIMEOUT)
        return attachment.body['interfaceAttachment']

    def detach(self, server, port):
        """``openstack server remove port``."""
        self.api.detach_interface(server['id'], port['id'])
        self.notifier.wait_for_versioned_notifications(
            'instance.interface_detach.end', timeout=NOTIFICATION_TIMEOUT)

    def attach_refused(self, server, port):
        """An attach nova refuses; returns the driver's reason.

        nova 28's compute manager answers every failed driver attach with
        its own "Failed to attach network adapter device" (HTTP 500); the
        driver's reason reaches the instance.interface_attach.error
        notification and nova-compute's log.
        """
        exc = self.assertRaises(
            client.OpenStackApiException, self.api.attach_interface,
            server['id'], {'interfaceAttachment': {'port_id': port['id']}})
        self.assertEqual(500, exc.response.status_code)
        self.assertIn('Failed to attach network adapter device',
                      str(exc))
        error, = self.notifier.wait_for_versioned_notifications(
            'instance.interface_attach.error', timeout=NOTIFICATION_TIMEOUT)
        fault = error['payload']['nova_object.data']['fault']
        reason = fault['nova_object.data']['exception_message']
        # The same reason is in nova-compute's log.
        self.assertIn(reason, self.stdlog.logger.output)
        # The instance action records the failure.
        action = [a for a in self.api.get_instance_actions(server['id'])
                  if a['action'] == 'attach_interface'][0]
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        self.assertEqual(['Error'], [e['result'] for e in events])
        return reason

    def assert_not_attached(self, server, port):
        """Nothing of the port on the host, in OVS, in nova or bound."""
        self.assertNotIn(port['id'], self.vm_of(server).nics)
        self.assertNotIn(port['id'], self.host('host1').switch_ports)
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports())
        self.assertNotIn(port['id'], [
            a['port_id'] for a in self.api.get_port_interfaces(server['id'])])
        # nova unbinds a port it could not attach (_deallocate_port_for_
        # instance): no device, no host.
        neutron_port = self.neutron.show_port(port['id'])['port']
        self.assertEqual('', neutron_port['device_id'])
        self.assertIsNone(neutron_port.get('binding:host_id'))

    def assert_vnic(self, server, port):
        nic = self.vm_of(server).nics[port['id']]
        self.assertEqual(port['mac_address'].lower(), nic.mac.lower())
        self.assertEqual(test_boot.base.VSWITCH, nic.vswitch)
        self.assertEqual(port['id'], nic.switch_port)

    def assert_ovs_port_registered(self, server, port):
        """The external_ids of a boot, at whatever ofport."""
        iface = self.ovs['host1'].get_interface(port['id'])
        self.assertEqual({'iface-id': port['id'],
                          'attached-mac': port['mac_address'],
                          'iface-status': 'active',
                          'vm-uuid': server['id'],
                          'created-by': 'compute-hyperv-ovs',
                          'compute-host': 'host1'},
                         iface['external_ids'])
        return iface


class HotplugTest(HotplugTestBase):

    def test_gen2_running_attach_waits_for_event_then_detach(self):
        server, first = self.gen2_server()
        port = self.create_port()

        attachment = self.attach(server, port)

        self.assertEqual(port['id'], attachment['port_id'])
        self.assertEqual(os_win_const.HYPERV_VM_STATE_ENABLED,
                         self.vm_of(server).power_state)
        self.assert_vnic(server, port)
        self.assertIn(port['id'], self.host('host1').switch_ports)
        self.assert_ovs_port('host1', server, port)
        # The attach returned only once neutron had wired the port, as a
        # boot does: network-vif-plugged was already sent.
        self.assert_vif_plugged_sent('host1', server, port)
        self.assertEqual('ACTIVE',
                         self.neutron.show_port(port['id'])['port']['status'])
        self.assertEqual({first['id'], port['id']}, {
            a['port_id'] for a in self.api.get_port_interfaces(server['id'])})

        self.detach(server, port)

        self.assertNotIn(port['id'], self.vm_of(server).nics)
        self.assertNotIn(port['id'], self.host('host1').switch_ports)
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports())
        self.assertEqual([first['id']], [
            a['port_id'] for a in self.api.get_port_interfaces(server['id'])])
        # The first port is untouched.
        self.assert_ovs_port('host1', server, first)
        self.assertEqual(
            'ACTIVE', self.api.get_server(server['id'])['status'])

    def test_gen2_running_attach_returns_only_after_the_event(self):
        server, first = self.gen2_server()
        # neutron's side is played by hand: no event until the test sends
        # it.
        self.agents['host1'].stop()
        port = self.create_port()

        pool = futures.ThreadPoolExecutor(max_workers=1)
        self.addCleanup(pool.shutdown)
        attach = pool.submit(self.attach, server, port)
        time.sleep(3)

        # The VM runs, its vNIC is on the vSwitch and its OVS port is up:
        # the attach still waits for neutron.
        self.assertFalse(attach.done())
        self.assertNotIn('instance.interface_attach.end', [
            n['event_type'] for n in self.notifier.versioned_notifications])
        self.assert_vnic(server, port)
        self.assert_ovs_port('host1', server, port)

        self.vif_plugged.port_up('host1', port['id'], {})

        self.assertEqual(port['id'], attach.result(timeout=60)['port_id'])
        self.assertIn(port['id'], [
            a['port_id'] for a in self.api.get_port_interfaces(server['id'])])

    def test_gen2_running_add_network(self):
        # openstack server add network: nova asks neutron for a new port.
        server, first = self.gen2_server()

        attachment = self.api.attach_interface(
            server['id'], {'interfaceAttachment': {
                'net_id': self.neutron.network_1['id']}}).body[
                    'interfaceAttachment']
        self.notifier.wait_for_versioned_notifications(
            'instance.interface_attach.end', timeout=NOTIFICATION_TIMEOUT)

        port = self.neutron.show_port(attachment['port_id'])['port']
        self.assertNotEqual(first['id'], port['id'])
        self.assert_vnic(server, port)
        self.assert_ovs_port('host1', server, port)

        self.detach(server, port)

        self.assertNotIn(port['id'], self.vm_of(server).nics)
        self.assertNotIn(port['id'], self.ovs['host1'].list_ports())

    def test_gen1_running_attach_refused(self):
        server, first = self.gen1_server()
        port = self.create_port()

        reason = self.attach_refused(server, port)

        self.assertIn('generation 1', reason)
        self.assertIn('stop the server', reason)
        self.assert_not_attached(server, port)
        self.assertEqual([first['id']], list(self.vm_of(server).nics))
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])

    def test_gen1_running_detach_refused(self):
        server, first = self.gen1_server()

        exc = self.assertRaises(
            client.OpenStackApiException, self.api.detach_interface,
            server['id'], first['id'])
        # nova 28's API does not translate InterfaceDetachFailed.
        self.assertEqual(500, exc.response.status_code)
        self.assertIn('InterfaceDetachFailed', str(exc))
        # nova sends no error notification for a detach; its log has the
        # driver's reason.
        self.assertIn('cannot remove a NIC from generation 1',
                      self.stdlog.logger.output)

        self.assert_vnic(server, first)
        self.assert_ovs_port('host1', server, first)
        self.assertEqual([first['id']], [
            a['port_id'] for a in self.api.get_port_interfaces(server['id'])])

    def test_stopped_vms_of_either_generation_accept_attach(self):
        for make_server in (self.gen1_server, self.gen2_server):
            server, first = make_server()
            server = self._stop_server(server)
            port = self.create_port()

            self.attach(server, port)

            self.assertEqual(os_win_const.HYPERV_VM_STATE_DISABLED,
                             self.vm_of(server).power_state)
            self.assert_vnic(server, port)
            iface = self.assert_ovs_port_registered(server, port)
            # OVS for Windows: no switch port while the VM is off.
            self.assertEqual(-1, iface['ofport'])

            self._start_server(server)

            self.assert_ovs_port('host1', server, port)
            self.assert_ovs_port('host1', server, first)
            self.assert_vif_plugged_sent('host1', server, port)

            server = self._stop_server(server)
            self.detach(server, port)
            self.assertNotIn(port['id'], self.vm_of(server).nics)
            self.assertNotIn(port['id'], self.ovs['host1'].list_ports())
            self.notifier.reset()

    def test_attach_without_network_vif_plugged_leaves_nothing(self):
        server, first = self.gen2_server()
        self.agents['host1'].stop()
        self.flags(vif_plugging_timeout=2)
        port = self.create_port()

        reason = self.attach_refused(server, port)

        self.assertIn('network-vif-plugged', reason)
        self.assertIn(port['id'], reason)
        self.assertIn('neutron-openvswitch-agent', reason)
        self.assert_not_attached(server, port)
        self.assertEqual([first['id']], list(self.vm_of(server).nics))
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])


class OldWindowsHotplugTest(HotplugTestBase):

    WINDOWS_VERSION = '6.3.9600'  # Windows Server 2012 R2

    def test_gen2_running_attach_refused_before_server_2016(self):
        server, first = self.gen2_server()
        port = self.create_port()

        reason = self.attach_refused(server, port)

        self.assertIn('Windows Server 2016', reason)
        self.assertIn('6.3.9600', reason)
        self.assert_not_attached(server, port)
        self.assertEqual([first['id']], list(self.vm_of(server).nics))

    def test_stopped_gen2_accepts_attach_before_server_2016(self):
        server, first = self.gen2_server()
        server = self._stop_server(server)
        port = self.create_port()

        self.attach(server, port)

        self.assert_vnic(server, port)
        self.assert_ovs_port_registered(server, port)
        self._start_server(server)
        self.assert_ovs_port('host1', server, port)
