"""HyperVOVSVIFDriver: the vNIC on the vSwitch, then the port in a real OVS."""

from nova.compute import utils as compute_utils
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova import test
from os_vif import objects as osv_objects
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from compute_hyperv_ovs.os_vif_plugin import plugin
from compute_hyperv_ovs import vif
from tests.fixtures.hyperv import constants as hyperv_const
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import ovs

VSWITCH = 'ovs-switch'
MAC = 'fa:16:3e:00:00:01'


def make_vif(vif_type=network_model.VIF_TYPE_OVS, details=None,
             port_id=None):
    """A nova VIF as neutron binds it for this host."""
    port_id = port_id or uuidutils.generate_uuid()
    network = network_model.Network(id=uuidutils.generate_uuid(),
                                    bridge='br-int', label='private',
                                    subnets=[])
    return network_model.VIF(id=port_id, address=MAC, network=network,
                             type=vif_type, details=details or {},
                             active=False, ovs_interfaceid=port_id)


class VIFDriverTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        osv_objects.register_all()
        self.ovs = self.useFixture(ovs.OpenVSwitchFixture())
        self.flags(ovsdb_connection=self.ovs.connection, timeout=3,
                   group=plugin.CONFIG_GROUP)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        self.hosts = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.host = self.hosts.add_host('host1', vswitch_name=VSWITCH)

        vif_plugin = plugin.HyperVOvsPlugin.load(plugin.PLUGIN_NAME)
        self.vif_plugin = vif_plugin
        self.addCleanup(vif_plugin.close)
        with self.hosts.building('host1'):
            self.vif_driver = vif.HyperVOVSVIFDriver(vif_plugin)
            self.vmutils = utilsfactory.get_vmutils()

        self.instance = objects.Instance(
            id=1, uuid=uuidutils.generate_uuid(), project_id='p',
            user_id='u')
        self.vmutils.create_vm(self.instance.name, False, 1, '/instances',
                               [self.instance.uuid])

    def vif_with_nic(self, **kwargs):
        nova_vif = make_vif(**kwargs)
        self.vmutils.create_nic(self.instance.name, nova_vif['id'], MAC)
        return nova_vif

    def nic(self, nova_vif):
        return self.host.vms[self.instance.name].nics[nova_vif['id']]

    # ---- ovs VIFs ----

    def test_plug_ovs_vif_connects_vnic_and_registers_ovs_port(self):
        nova_vif = self.vif_with_nic()

        self.vif_driver.plug(self.instance, nova_vif)

        nic = self.nic(nova_vif)
        self.assertEqual((VSWITCH, nova_vif['id']),
                         (nic.vswitch, nic.switch_port))
        self.assertEqual([nova_vif['id']], self.ovs.list_ports('br-int'))
        iface = self.ovs.get_interface(nova_vif['id'])
        self.assertEqual({'iface-id': nova_vif['id'],
                          'iface-status': 'active',
                          'attached-mac': MAC,
                          'vm-uuid': self.instance.uuid,
                          'created-by': 'compute-hyperv-ovs',
                          'compute-host': self.vif_plugin.compute_host},
                         iface['external_ids'])

    def test_plug_without_vnic_fails_before_adding_ovs_port(self):
        nova_vif = make_vif()  # no vNIC of that name on the VM

        self.assertRaises(os_win_exc.HyperVvNicNotFound,
                          self.vif_driver.plug, self.instance, nova_vif)

        self.assertEqual([], self.ovs.list_ports('br-int'))
        self.assertIsNone(self.ovs.get_interface(nova_vif['id']))

    def test_plug_without_configured_vswitch_adds_no_ovs_port(self):
        self.host.remove_vswitch(VSWITCH)
        nova_vif = self.vif_with_nic()

        self.assertRaises(os_win_exc.HyperVvSwitchNotFound,
                          self.vif_driver.plug, self.instance, nova_vif)

        self.assertIsNone(self.nic(nova_vif).vswitch)
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_unplug_removes_ovs_port_and_twice_is_harmless(self):
        nova_vif = self.vif_with_nic()
        self.vif_driver.plug(self.instance, nova_vif)

        self.vif_driver.unplug(self.instance, nova_vif)
        self.vif_driver.unplug(self.instance, nova_vif)

        self.assertEqual([], self.ovs.list_ports('br-int'))
        self.assertIsNone(self.ovs.get_interface(nova_vif['id']))

    def test_unplug_keeps_other_ports(self):
        kept, removed = self.vif_with_nic(), self.vif_with_nic()
        self.vif_driver.plug(self.instance, kept)
        self.vif_driver.plug(self.instance, removed)

        self.vif_driver.unplug(self.instance, removed)

        self.assertEqual([kept['id']], self.ovs.list_ports('br-int'))

    # ---- hyperv VIFs ----

    def test_plug_hyperv_vif_is_left_to_the_neutron_hyperv_agent(self):
        nova_vif = self.vif_with_nic(vif_type=network_model.VIF_TYPE_HYPERV)

        self.vif_driver.plug(self.instance, nova_vif)

        self.assertIsNone(self.nic(nova_vif).vswitch)
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_unplug_hyperv_vif_leaves_ovs_alone(self):
        self.ovs.add_port('br-int', 'patch-tun')
        nova_vif = make_vif(vif_type=network_model.VIF_TYPE_HYPERV)

        self.vif_driver.unplug(self.instance, nova_vif)

        self.assertEqual(['patch-tun'], self.ovs.list_ports('br-int'))

    # ---- refused VIFs ----

    def assert_names_types(self, exc, vif_type):
        message = exc.format_message()
        self.assertIn('vif_type=%s' % vif_type, message)
        self.assertIn('plugs ovs or hyperv only', message)

    def test_plug_refuses_other_vif_types_naming_supported_ones(self):
        for vif_type in (network_model.VIF_TYPE_BRIDGE,
                         network_model.VIF_TYPE_VHOSTUSER):
            nova_vif = self.vif_with_nic(vif_type=vif_type)

            exc = self.assertRaises(
                nova_exception.VirtualInterfacePlugException,
                self.vif_driver.plug, self.instance, nova_vif)

            self.assert_names_types(exc, vif_type)
            self.assertIsNone(self.nic(nova_vif).vswitch)
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_unplug_of_refused_vif_types_does_not_raise(self):
        # As for hybrid plugs below: plug refused these before touching the
        # vNIC or OVS, and raising here left the VM's disks behind (see
        # test_boot BadInputTest.test_port_bound_as_tap_is_refused).
        self.ovs.add_port('br-int', 'other-port')
        for vif_type in (network_model.VIF_TYPE_BRIDGE,
                         network_model.VIF_TYPE_VHOSTUSER):
            self.vif_driver.unplug(self.instance, make_vif(vif_type=vif_type))

        self.assertEqual(['other-port'], self.ovs.list_ports('br-int'))

    def test_plug_refuses_hybrid_plug_naming_firewall_driver(self):
        nova_vif = self.vif_with_nic(details={'ovs_hybrid_plug': True})

        exc = self.assertRaises(
            nova_exception.VirtualInterfacePlugException,
            self.vif_driver.plug, self.instance, nova_vif)

        self.assertIn('firewall_driver', exc.format_message())
        self.assertIn(nova_vif['id'], exc.format_message())
        self.assertIsNone(self.nic(nova_vif).vswitch)
        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_unplug_of_refused_hybrid_plug_vif_does_not_raise(self):
        # Plug refused this VIF before touching the vNIC or OVS, so there
        # is nothing to remove; raising here makes destroy() stop before
        # deleting the VM's disks (see test_vmops
        # test_destroy_after_refused_hybrid_plug_removes_instance_files).
        nova_vif = self.vif_with_nic(details={'ovs_hybrid_plug': True})
        self.assertRaises(nova_exception.VirtualInterfacePlugException,
                          self.vif_driver.plug, self.instance, nova_vif)

        self.vif_driver.unplug(self.instance, nova_vif)

        self.assertEqual([], self.ovs.list_ports('br-int'))

    def test_refusals_fit_whole_in_the_build_fault(self):
        # The driver turns a plug refusal into BuildAbortException, and nova
        # keeps 255 characters of the fault message (compute_hyperv_ovs.
        # exception: "Messages stay short").
        for vif_type, details in ((network_model.VIF_TYPE_VHOSTUSER, {}),
                                  (network_model.VIF_TYPE_OVS,
                                   {'ovs_hybrid_plug': True})):
            nova_vif = self.vif_with_nic(vif_type=vif_type, details=details)
            exc = self.assertRaises(
                nova_exception.VirtualInterfacePlugException,
                self.vif_driver.plug, self.instance, nova_vif)
            abort = nova_exception.BuildAbortException(
                instance_uuid=self.instance.uuid,
                reason=exc.format_message())

            fault = compute_utils.exception_to_dict(abort)

            self.assertEqual(abort.format_message(), fault['message'])

    # ---- OVSDB down ----

    def test_plug_with_ovsdb_down_names_the_connection(self):
        nova_vif = self.vif_with_nic()
        self.ovs.stop()

        exc = self.assertRaises(
            nova_exception.VirtualInterfacePlugException,
            self.vif_driver.plug, self.instance, nova_vif)

        self.assertIn(self.ovs.connection, exc.format_message())
        self.assertIn('ovsdb_connection', exc.format_message())

    def test_unplug_with_ovsdb_down_logs_error_and_returns(self):
        nova_vif = self.vif_with_nic()
        self.vif_driver.plug(self.instance, nova_vif)
        self.ovs.stop()

        self.vif_driver.unplug(self.instance, nova_vif)

        log = self.stdlog.logger.output
        self.assertIn('ERROR [compute_hyperv_ovs.vif]', log)
        self.assertIn('Could not remove OVS port %s' % nova_vif['id'], log)
        self.assertIn(self.ovs.connection, log)

    # ---- the vSwitch and its Open vSwitch extension ----

    def test_check_vswitch_accepts_enabled_extension(self):
        self.vif_driver.check_vswitch([make_vif()])

    def test_check_vswitch_ignores_instances_without_ovs_vifs(self):
        self.host.remove_vswitch(VSWITCH)
        self.vif_driver.check_vswitch([])
        self.vif_driver.check_vswitch(
            [make_vif(vif_type=network_model.VIF_TYPE_HYPERV)])

    def test_check_vswitch_refusals(self):
        ext = hyperv_const.OVS_EXTENSION
        cases = [
            ('disabled', 'Enable-VMSwitchExtension -VMSwitchName %s -Name '
                         '"%s"' % (VSWITCH, ext)),
            ('not-running', 'enabled but not running (EnabledState 6)'),
            ('absent', 'has no Open vSwitch extension'),
        ]
        for state, words in cases:
            self.host.remove_vswitch(VSWITCH)
            self.host.add_vswitch(VSWITCH, ovs_extension=state)
            exc = self.assertRaises(nova_exception.InvalidInput,
                                    self.vif_driver.check_vswitch,
                                    [make_vif()])
            self.assertIn(words, exc.format_message())
            self.assertIn('[hyperv] vswitch_name', exc.format_message())

    def test_check_vswitch_missing_or_unset(self):
        self.flags(vswitch_name='missing', group='hyperv')
        exc = self.assertRaises(nova_exception.InvalidInput,
                                self.vif_driver.check_vswitch, [make_vif()])
        self.assertIn('no vSwitch named missing ([hyperv] vswitch_name)',
                      exc.format_message())
        self.flags(vswitch_name=None, group='hyperv')
        exc = self.assertRaises(nova_exception.InvalidInput,
                                self.vif_driver.check_vswitch, [make_vif()])
        self.assertIn('[hyperv] vswitch_name is not set',
                      exc.format_message())
