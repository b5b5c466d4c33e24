"""nova's in-process stack with simulated Hyper-V hosts and real OVS.

Each compute host is three things: a simulated Hyper-V host (the only
fake), a private ovsdb-server + ovs-vswitchd, and a neutron-openvswitch-
agent stand-in reading that OVSDB and posting ``network-vif-plugged``
through nova's API.  nova itself (API, conductor, scheduler, placement,
compute manager) is real and loads the driver by its configured name.
"""

import copy
import os
import sys

import fixtures
import nova.conf
from nova.tests.functional import integrated_helpers
from oslo_utils import uuidutils

from compute_hyperv_ovs import conf  # noqa: F401 (registers the options)
from tests.fixtures.hyperv import fixture as hyperv_fixture
from tests.fixtures import images
from tests.fixtures import neutron_agent
from tests.fixtures import ovs

CONF = nova.conf.CONF

DRIVER = 'compute_hyperv_ovs.driver.HyperVOVSDriver'
VSWITCH = 'external'
OVSDB_GROUP = 'os_vif_hyperv_ovs'


# neutron-openvswitch-agent on a Windows host in 2026.2: the last release
# with Windows code (neutron 25 removed it), tools/cloud/versions.
WINDOWS_AGENT_RELEASE = '24.2.2'
# The first release that defers ports at ofport -1 (bug #2155883).
DEFERS_FAILED_PORTS_FROM = (28, 0, 1)


def _binds_failed_ports(release):
    return tuple(int(p) for p in release.split('.')) < DEFERS_FAILED_PORTS_FROM


class HyperVOVSTestBase(integrated_helpers._IntegratedTestBase):
    """Starts no compute by itself: tests call :meth:`start_compute`."""

    ADMIN_API = True
    microversion = 'latest'
    # Seconds nova waits for network-vif-plugged.  Short, so a missing event
    # fails the test quickly; the stand-in agent answers within a second.
    VIF_PLUGGING_TIMEOUT = 30

    def setUp(self):
        self.ovs = {}
        self.agents = {}
        self.switch_ports = {}
        self._ports_made = 0
        super().setUp()
        # Replaces nova's (it stubs nova's glance API again): snapshots
        # keep their data.
        self.glance = self.useFixture(images.GlanceFixture(self))
        self.images = self.useFixture(images.DiskImagesFixture(self.glance))
        self.flavor_id = self._create_flavor(
            memory_mb=1024, vcpu=2, disk=2, ephemeral=0)

    def _setup_services(self):
        # A pip-installed nova keeps api-paste.ini under <prefix>/etc/nova.
        self.flags(api_paste_config=os.path.join(
            sys.prefix, 'etc', 'nova', 'api-paste.ini'), group='wsgi')
        self.flags(compute_driver=DRIVER)
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.flags(vswitch_name=VSWITCH, group='hyperv')
        self.flags(vif_plugging_timeout=self.VIF_PLUGGING_TIMEOUT,
                   vif_plugging_is_fatal=True)
        self.flags(timeout=5, group=OVSDB_GROUP)
        self.hyperv = self.useFixture(hyperv_fixture.HyperVHostsFixture())
        self.vif_plugged = None  # needs the API, made once it exists
        super()._setup_services()
        self.vif_plugged = neutron_agent.VifPluggedNotifier(
            self.admin_api, self.neutron)

    def _setup_compute_service(self):
        return None

    def start_compute(self, hostname, hyperv_datapath=True, ovs_ssl=None,
                      agent_release=WINDOWS_AGENT_RELEASE, **host_kwargs):
        """Start nova-compute on a new simulated Hyper-V host.

        Each host has its own instances path, ``<CONF.instances_path>/
        <hostname>`` (shared-nothing: each Windows host has a local disk
        under the same ``instances_path``; no nova option says so), its
        own vSwitch named ``VSWITCH`` and its own Open vSwitch.

        :param hyperv_datapath: the host's OVS behaves like OVS for
            Windows (a port has a valid ofport only while its VM runs,
            ``ovs.HyperVSwitchPorts``); False: every port gets an ofport at
            once, as on a Linux datapath.
        :param ovs_ssl: None: the driver reaches OVSDB over TCP; else a
            dict of SSL option overrides (``{}`` for none): OVSDB also
            listens for SSL and the driver uses ``ssl:`` with the
            fixture's client key, certificate and CA, as overridden.
        :param agent_release: the neutron-openvswitch-agent release the
            host runs, as far as the stand-in tells them apart: before
            28.0.1 a port at ofport -1 is bound at once, from 28.0.1 on it
            is deferred until it gets a valid ofport
            (``neutron_agent.NeutronOVSAgentStandIn``).  Default: the
            release a Windows host runs in 2026.2 (the last with Windows
            code).
        :param host_kwargs: more ``SimulatedHyperVHost`` arguments, e.g.
            ``cpu_features``.
        :returns: the compute service.
        """
        ovs_fixture = self.useFixture(ovs.OpenVSwitchFixture(
            hyperv_datapath=hyperv_datapath, ssl=ovs_ssl is not None))
        self.ovs[hostname] = ovs_fixture
        host_kwargs.setdefault('vswitch_name', VSWITCH)
        host_kwargs.setdefault('instances_path', os.path.join(
            CONF.instances_path, hostname))
        sim_host = self.hyperv.add_host(hostname, **host_kwargs)
        if hyperv_datapath:
            self.switch_ports[hostname] = switch_ports = self.useFixture(
                ovs.HyperVSwitchPorts(ovs_fixture,
                                      sim_host.ovs_switch_ports))
            sim_host.switch_port_listeners.append(switch_ports.sync)
        # Read by the driver when it is built, so each host's driver talks
        # to its own OVSDB.
        self.flags(ovsdb_connection=ovs_fixture.connection,
                   group=OVSDB_GROUP)
        if ovs_ssl is not None:
            ssl_options = dict(ssl_key_file=ovs_fixture.pki['client_key'],
                               ssl_cert_file=ovs_fixture.pki['client_cert'],
                               ssl_ca_cert_file=ovs_fixture.pki['ca_cert'])
            ssl_options.update(ovs_ssl)
            self.flags(ovsdb_connection=ovs_fixture.ssl_connection,
                       group=OVSDB_GROUP, **ssl_options)
        with self.hyperv.building(hostname):
            compute = self.start_service('compute', host=hostname)
        self.computes[hostname] = compute
        self.agents[hostname] = self.useFixture(
            neutron_agent.NeutronOVSAgentStandIn(
                ovs_fixture, hostname, on_port_up=self._port_up,
                binds_failed_ports=_binds_failed_ports(agent_release)))
        return compute

    def _port_up(self, host, iface_id, external_ids):
        if self.vif_plugged is not None:
            self.vif_plugged.port_up(host, iface_id, external_ids)

    def host(self, hostname):
        """The simulated Hyper-V host's state."""
        return self.hyperv.hosts[hostname]

    def create_port(self, network=None):
        """A neutron port that is DOWN until its host's agent wires it.

        nova waits for ``network-vif-plugged`` only for ports that are not
        ACTIVE (vmops ``_get_neutron_events``), as with a real neutron.
        """
        port = copy.deepcopy(self.neutron.port_1)
        port.update({
            'id': uuidutils.generate_uuid(),
            'mac_address': 'fa:16:3e:%02x:%02x:%02x' % tuple(
                os.urandom(3)),
            'status': 'DOWN',
        })
        self._ports_made += 1
        port['fixed_ips'] = [dict(port['fixed_ips'][0],
                                  ip_address='192.168.1.%d' % (
                                      100 + self._ports_made))]
        if network is not None:
            port['network_id'] = network['id']
        self.neutron._ports[port['id']] = port
        return port

    def boot(self, image_id, port=None, expected_state='ACTIVE',
             host=None, **kwargs):
        """Boot a server on one port; returns (server, port)."""
        port = port or self.create_port()
        server = self._create_server(
            image_uuid=image_id, flavor_id=kwargs.pop('flavor_id',
                                                      self.flavor_id),
            networks=[{'port': port['id']}], host=host,
            expected_state=expected_state, **kwargs)
        return server, port

    def vm_of(self, server, hostname=None):
        """The simulated VM behind a server (None when it does not exist)."""
        hostname = hostname or server['OS-EXT-SRV-ATTR:host']
        name = server['OS-EXT-SRV-ATTR:instance_name']
        return self.host(hostname).vms.get(name)

    def instances_dir(self, hostname):
        """The host's local instances path."""
        return self.host(hostname).instances_path

    def base_dir(self, hostname):
        """The host's image cache (``<instances path>/_base``)."""
        return os.path.join(self.instances_dir(hostname), '_base')

    def instance_dir(self, server, hostname=None):
        """The server's directory on a host.

        nova's Hyper-V driver keeps a server's disks and logs in
        ``<instances path>/<instance name>``.  The host is, by default, the
        server's current one, or the only compute host when the server has
        none (a refused build).
        """
        hostname = hostname or server['OS-EXT-SRV-ATTR:host']
        if hostname is None:
            if len(self.hyperv.hosts) != 1:
                raise ValueError('server %s has no host; name the host '
                                 'whose instance directory you mean'
                                 % server['id'])
            hostname, = self.hyperv.hosts
        return os.path.join(self.instances_dir(hostname),
                            server['OS-EXT-SRV-ATTR:instance_name'])
