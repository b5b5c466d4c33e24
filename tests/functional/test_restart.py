"""nova-compute restarts on a host whose OVS or VMs changed meanwhile.

Each test stops the compute service of a simulated Hyper-V host, changes
the host behind nova's back (ovsdb-server down, a VM removed by hand, OVS's
database lost, ports edited), starts a new compute service for the same
host (a new driver, as a real restart has; the simulated host and its real
Open vSwitch keep their state) and checks what an operator would see:
the service, the servers' states, the OVS rows.
"""

import os
import time

from nova.compute import power_state
from nova import context as nova_context
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_concurrency import processutils

from tests.fixtures import ovs
from tests.functional import base
from tests.functional import test_boot

MARKERS = {'created-by': 'compute-hyperv-ovs'}


class RestartTestBase(test_boot.BootTestBase):

    def setUp(self):
        super().setUp()
        # Short back-off so a test sees the retry once OVSDB is back.
        self.flags(port_sync_max_interval=2, group=base.OVSDB_GROUP)
        self.start_compute('host1')
        self.image = self.images.create_image('vhdx')

    def stop_compute(self, hostname, forced_down=False):
        """Stop nova-compute; forced_down: tell nova's API it is down.

        The API deletes a server locally only when its compute service is
        known to be down (it is reported up until its report times out).
        """
        self.computes[hostname].stop()
        if forced_down:
            self.admin_api.put_service_force_down(
                self.service_id(hostname), True)

    def service_id(self, hostname):
        services = self.admin_api.get_services(binary='nova-compute',
                                               host=hostname)
        return services[0]['id']

    def start_compute_again(self, hostname):
        """A new nova-compute (new driver) for the same simulated host."""
        self.flags(ovsdb_connection=self.ovs[hostname].connection,
                   group=base.OVSDB_GROUP)
        with self.hyperv.building(hostname):
            compute = self.start_service('compute', host=hostname)
        self.computes[hostname] = compute
        return compute

    def wait_for(self, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out after %ss waiting for %s'
                          % (timeout, what))
            time.sleep(0.1)

    def wait_for_ovs_port(self, hostname, server, port):
        def port_right():
            iface = self.ovs[hostname].get_interface(port['id'])
            return (iface is not None and
                    iface['external_ids'].get('attached-mac') ==
                    port['mac_address'] and iface['ofport'] and
                    iface['ofport'] > 0)
        self.wait_for(port_right, 'OVS port %s' % port['id'])
        self.assert_ovs_port(hostname, server, port)

    def wait_for_no_ovs_port(self, hostname, port):
        self.wait_for(
            lambda: port['id'] not in self.ovs[hostname].list_ports(),
            'OVS port %s to be removed' % port['id'])

    def assert_service_up(self, hostname):
        services = self.admin_api.get_services(binary='nova-compute',
                                               host=hostname)
        self.assertEqual(['up'], [s['state'] for s in services])
        self.assertEqual(['enabled'], [s['status'] for s in services])

    def log_count(self, text):
        return self.stdlog.logger.output.count(text)


class OvsdbDownAtStartTest(RestartTestBase):
    """Item 1: nova-compute starts before ovsdb-server (host reboot)."""

    def test_servers_keep_their_state_and_ports_come_back_by_themselves(
            self):
        server1, port1 = self.boot(self.image)
        server2, port2 = self.boot(self.image)
        self.stop_compute('host1')
        # While the service is down OVS lost one port; then ovsdb-server
        # (and ovs-vswitchd) stop, as during a reboot.
        self.ovs['host1'].del_port(port2['id'])
        self.ovs['host1'].stop()

        self.start_compute_again('host1')

        self.assert_service_up('host1')
        for server in (server1, server2):
            server = self.api.get_server(server['id'])
            self.assertEqual('ACTIVE', server['status'])
            self.assertEqual(power_state.RUNNING,
                             server['OS-EXT-STS:power_state'])
            self.assertEqual('Running', self.vm_of(server).power_state_name)
        warning = 'Could not put the OVS ports of host host1 right'
        self.wait_for(lambda: self.log_count(warning) == 1,
                      'the port sync to report the outage')
        # Several attempts fail while OVSDB is down: still one warning.
        time.sleep(4)
        self.assertEqual(1, self.log_count(warning))

        self.ovs['host1'].start()

        self.wait_for_ovs_port('host1', server2, port2)
        self.wait_for_ovs_port('host1', server1, port1)
        recovered = 'OVS ports of host host1 put right after'
        self.wait_for(lambda: self.log_count(recovered) == 1,
                      'the port sync to report the recovery')
        self.assertEqual(1, self.log_count(warning))
        for server in (server1, server2):
            self.assertEqual('ACTIVE',
                             self.api.get_server(server['id'])['status'])

    def test_resume_on_host_boot_starts_the_vm_without_ovsdb(self):
        # [DEFAULT] resume_guests_state_on_host_boot: nova powers on the
        # VMs it expects running (driver.resume_state_on_host_boot).
        self.flags(resume_guests_state_on_host_boot=True)
        server, port = self.boot(self.image)
        self.stop_compute('host1')
        # The host rebooted: the VM is off, OVS is not up yet.
        with self.hyperv.building('host1'):
            vmutils = utilsfactory.get_vmutils()
        vmutils.set_vm_state(self.vm_of(server).name,
                             os_win_const.HYPERV_VM_STATE_DISABLED)
        self.ovs['host1'].stop()

        self.start_compute_again('host1')

        server = self.api.get_server(server['id'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('Running', self.vm_of(server).power_state_name)
        self.ovs['host1'].start()
        self.wait_for_ovs_port('host1', server, port)


class VmRemovedByHandTest(RestartTestBase):
    """Item 2: Remove-VM by hand while nova-compute was down."""

    def test_service_starts_and_nova_power_sync_sees_the_guest_missing(
            self):
        removed, removed_port = self.boot(self.image)
        kept, kept_port = self.boot(self.image)
        self.stop_compute('host1')
        removed_dir = self.instance_dir(removed)
        self.host('host1').remove_vm(self.vm_of(removed).name,
                                     turn_off=True)
        # Nothing in the simulated host's state went with the service.
        self.assertIsNone(self.vm_of(removed))
        self.assertTrue(os.path.isdir(removed_dir))

        self.start_compute_again('host1')

        self.assert_service_up('host1')
        # Its port is removed; the other server's is as it was.
        self.wait_for_no_ovs_port('host1', removed_port)
        self.assert_ovs_port('host1', kept, kept_port)
        self.assertEqual('ACTIVE', self.api.get_server(kept['id'])['status'])
        # nova's own rule for a guest the driver cannot find
        # (_sync_instance_power_state: vm_state ACTIVE, power state
        # NOSTATE -> "Instance is unexpectedly not found. Ignore."): the
        # power state becomes NOSTATE, the server stays ACTIVE.
        self.computes['host1'].manager._sync_power_states(
            nova_context.get_admin_context())
        self.wait_for(
            lambda: self.api.get_server(removed['id'])[
                'OS-EXT-STS:power_state'] == power_state.NOSTATE,
            'the power state sync')
        removed = self.api.get_server(removed['id'])
        self.assertEqual('ACTIVE', removed['status'])
        self.assertIn('Instance is unexpectedly not found. Ignore.',
                      self.stdlog.logger.output)
        kept = self.api.get_server(kept['id'])
        self.assertEqual(power_state.RUNNING, kept['OS-EXT-STS:power_state'])


class StartupReconciliationTest(RestartTestBase):
    """Item 3: the OVS ports are reconciled with the instances at start."""

    def add_foreign_ports(self):
        """Ports this service did not create; none may be touched."""
        switch = self.ovs['host1']
        foreign = {
            # neutron's own patch port to a physical bridge.
            'int-br-ext': {},
            # another tenant of the bridge, registered like a VIF.
            'tap-other': {'iface-id': 'other', 'attached-mac':
                          'fa:16:3e:00:00:99'},
            # another compute service's port (shared test database).
            'host2-port': dict(MARKERS, **{
                'compute-host': 'host2', 'iface-id': 'host2-port',
                'attached-mac': 'fa:16:3e:00:00:98', 'vm-uuid': 'x'}),
        }
        for name, external_ids in foreign.items():
            switch.add_port('br-int', name, external_ids)
        return {name: switch.get_interface(name)['external_ids']
                for name in foreign}

    def assert_foreign_ports_untouched(self, foreign):
        for name, external_ids in foreign.items():
            iface = self.ovs['host1'].get_interface(name)
            self.assertIsNotNone(iface, name)
            self.assertEqual(external_ids, iface['external_ids'])

    def test_lost_ovs_database_is_rebuilt(self):
        server1, port1 = self.boot(self.image)
        server2, port2 = self.boot(self.image)
        self.stop_compute('host1')
        # conf.db lost: OVS comes back with an empty database and br-int.
        switch = self.ovs['host1']
        switch.stop()
        os.remove(switch.db_path)
        processutils.execute(ovs.find_binary('ovsdb-tool'), 'create',
                             switch.db_path, ovs.OVS_SCHEMA,
                             env_variables=switch.env)
        switch.start()
        switch.add_bridge('br-int')
        self.assertEqual([], switch.list_ports())
        foreign = self.add_foreign_ports()

        self.start_compute_again('host1')

        self.wait_for_ovs_port('host1', server1, port1)
        self.wait_for_ovs_port('host1', server2, port2)
        self.assert_foreign_ports_untouched(foreign)
        self.wait_for(lambda: self.log_count(
            'reconciled with its instances: recreated 2, corrected 0, '
            'removed 0') == 1, 'the summary line')

    def test_wrong_and_stale_ports_are_put_right_others_left_alone(self):
        server1, port1 = self.boot(self.image)
        server2, port2 = self.boot(self.image)
        deleted, deleted_port = self.boot(self.image)
        foreign = self.add_foreign_ports()
        self.stop_compute('host1', forced_down=True)
        switch = self.ovs['host1']
        # Someone edited a port; another port lost its vm-uuid.
        switch.vsctl('set', 'Interface', port1['id'],
                     'external_ids:attached-mac="fa:16:3e:ff:ff:ff"')
        switch.vsctl('remove', 'Interface', port2['id'], 'external_ids',
                     'vm-uuid')
        # A server deleted while its compute service was down (nova's API
        # deletes it locally; the VM stays until nova cleans it up).
        self.api.delete_server(deleted['id'])
        self._wait_until_deleted(deleted)
        self.assertIn(deleted_port['id'], switch.list_ports())

        self.start_compute_again('host1')
        self.admin_api.put_service_force_down(self.service_id('host1'),
                                              False)

        self.wait_for_no_ovs_port('host1', deleted_port)
        self.wait_for_ovs_port('host1', server1, port1)
        self.wait_for(lambda: 'vm-uuid' in switch.get_interface(
            port2['id'])['external_ids'], 'vm-uuid to be written back')
        self.assert_ovs_port('host1', server2, port2)
        self.assert_foreign_ports_untouched(foreign)
        self.wait_for(lambda: self.log_count(
            'reconciled with its instances: recreated 0, corrected 2, '
            'removed 1') == 1, 'the summary line')


class UnplugRetriedTest(RestartTestBase):
    """Item 5 (unplug side): an unplug that could not run is retried."""

    def test_port_of_server_deleted_while_ovsdb_down_goes_when_it_is_back(
            self):
        server, port = self.boot(self.image)
        kept, kept_port = self.boot(self.image)
        self.ovs['host1'].stop()

        self._delete_server(server)

        # The server is gone, VM included, though its port could not be.
        self.assertIsNone(self.vm_of(server, 'host1'))
        self.assertFalse(os.path.exists(self.instance_dir(server, 'host1')))
        self.ovs['host1'].start()
        self.assertIn(port['id'], self.ovs['host1'].list_ports())

        # No operator action, no restart: the driver removes it.
        self.wait_for_no_ovs_port('host1', port)
        self.assert_ovs_port('host1', kept, kept_port)
