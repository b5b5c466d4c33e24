"""The main job: boot a server end to end and show what happened.

nova's API, conductor, scheduler, placement and compute manager run
in-process; the Hyper-V host is simulated; Open vSwitch (ovsdb-server and
ovs-vswitchd) is real; a neutron-openvswitch-agent stand-in reads OVSDB and
posts network-vif-plugged to nova's API.  The job boots a server from a
real VHDX image, prints the VM on the host, the OVS rows with their
external_ids and the event, then deletes the server and prints the
clean-up.  Exit status 0 when every step looked as it should.

Usage (from the repository root): python tools/main_job.py
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from tests.functional import base  # noqa: E402  (imports nova.test first)

OUT = sys.__stdout__


def say(text='', *args):
    OUT.write((text % args if args else text) + '\n')
    OUT.flush()


class MainJob(base.HyperVOVSTestBase):

    def show_vm(self, server):
        vm = self.vm_of(server)
        say('  VM %s: generation %d, %d vCPUs, %d MB, state %s',
            server['OS-EXT-SRV-ATTR:instance_name'], vm.generation,
            vm.vcpus, vm.memory_mb, vm.power_state_name)
        for disk in vm.disks:
            info = self.host('host1').disks[disk.path]
            say('    disk %s (%s, %s slot %s) parent %s', disk.path,
                info.format, disk.controller, disk.slot, info.parent)
        for name, nic in vm.nics.items():
            say('    vNIC %s mac %s -> vSwitch %r, switch port %s', name,
                nic.mac, nic.vswitch, nic.switch_port)
        return vm

    def show_ovs(self, port_id):
        switch = self.ovs['host1']
        say('  br-int ports: %s', switch.list_ports('br-int'))
        iface = switch.get_interface(port_id)
        if iface:
            say('  Interface %s: ofport %s, error %s', iface['name'],
                iface['ofport'], iface['error'])
            for key, value in sorted(iface['external_ids'].items()):
                say('    external_ids:%s=%s', key, value)
        return iface

    def test_boot_and_delete(self):
        compute = self.start_compute('host1')
        say('== nova-compute on simulated Hyper-V host1, driver %s',
            type(compute.manager.driver).__module__ + '.' +
            type(compute.manager.driver).__name__)
        pids = self.ovs['host1'].pids
        say('  OVSDB %s (ovsdb-server pid %s, ovs-vswitchd pid %s)',
            self.ovs['host1'].connection, pids['ovsdb-server'],
            pids['ovs-vswitchd'])

        image = self.images.create_image(
            'vhdx', properties={'hw_machine_type': 'hyperv-gen2'},
            name='cirros-gen2.vhdx')
        port = self.create_port()
        say('== image %s (VHDX made by qemu-img), port %s status %s',
            image, port['id'], port['status'])

        server, port = self.boot(image, port=port)
        say('== server %s is %s on %s', server['id'], server['status'],
            server['OS-EXT-SRV-ATTR:host'])
        vm = self.show_vm(server)
        say('== Open vSwitch (read back with ovs-vsctl):')
        iface = self.show_ovs(port['id'])
        say('== events posted by the neutron agent stand-in:')
        for event in self.vif_plugged.events_sent:
            say('  %s server %s tag %s -> nova answered %s', event['name'],
                event['server_uuid'], event['tag'], event['code'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(2, vm.generation)
        self.assertEqual(port['id'], iface['external_ids']['iface-id'])
        self.assertEqual(1, len(self.vif_plugged.events_sent))

        self._delete_server(server)
        say('== server deleted')
        say('  VM on host1: %s', self.vm_of(server, 'host1'))
        say('  br-int ports: %s', self.ovs['host1'].list_ports('br-int'))
        say('  instance dir %s exists: %s', self.instance_dir(server),
            os.path.exists(self.instance_dir(server)))
        allocations = self._get_allocations_by_server_uuid(server['id'])
        say('  placement allocations: %s', allocations)
        self.assertIsNone(self.vm_of(server, 'host1'))
        self.assertEqual([], self.ovs['host1'].list_ports('br-int'))
        self.assertFalse(os.path.exists(self.instance_dir(server)))
        self.assertEqual({}, allocations)


def main():
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(MainJob))
    say('== main job %s', 'passed' if result.wasSuccessful() else 'FAILED')
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
