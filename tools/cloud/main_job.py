"""The main job on the all-in-one cloud (issue 8), with its assertions.

Runs through the ``openstack`` CLI (every command is printed with ``$``);
openstacksdk only polls (server status, ports) and reads placement.  What it
reads on the hosts: each simulated Hyper-V host's state file, each host's
own OVSDB (``ovs-vsctl``) and ovs-vswitchd (``ovs-appctl ofproto/trace``),
libvirt (``virsh``) and the compute logs.

  1. a VXLAN network and subnet; a server on hv1 and one on kvm1
  2. both ACTIVE on their hosts; both ports ACTIVE and bound to them
  3. hv1: the VM on the simulated host, the OVS Interface, the local VLAN
     tag, the network-vif-plugged event
  3a. nova-compute on hv1 restarted finds the same host (state in its dir)
  4. tunnels hv1 <-> kvm1 and a trace of a frame each way
  4a. security groups on hv1 and kvm1: each server's group allows only TCP
     22 and ICMP from the other server; ofproto/trace (following conntrack)
     of a new TCP 22 packet reaching the VM's port and of a TCP 80 packet
     dropped; a TCP 80 rule added through the API reaches the flows
     within the agent's next loops (how long it took is printed)
  4b. a Cinder volume (RBD on the one-node Ceph) attached to the hv1
     server: its connection info, hv1's rbd-wnbd mapping of the image (the
     simulated host maps only images the cloud's Ceph has, read through
     the host's own Ceph configuration) and the passthrough disk it became
  5. live migration (block, shared-nothing) of the hv1 server to hv2, with
     its volume: mapped on hv2, unmapped on hv1, cinder's attachment hv2's
  5b. the volume detached from the server on hv2 and deleted
  5a. a Cinder volume (RBD on the one-node Ceph) attached to the kvm1
     server: its connection info, the rbd network disk in the domain XML,
     QEMU's librbd client watching the image; detached live, deleted, the
     image gone from the pool
  6. delete both: nothing left on any host, in placement or in neutron

Step 0 prints each host's agent as neutron reports it (alive, binary, the
object versions neutron-server recorded for it) and the version it runs;
the summary says what worked across the Hyper-V hosts' agent/server skew
(neutron 24.2.2 agent, neutron 29 server).
Prints boot-to-ACTIVE on hv1 and kvm1 and the network-vif-plugged wait.
Exit status 0 when every check passed.  Run by ``tools/cloud/main-job``
with the cloud's virtualenv and OS_CLIENT_CONFIG_FILE set.
"""

import configparser
import datetime
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

import importlib.util

import openstack

CLOUD = 'hyperv-ovs-admin'
MICROVERSION = os.environ.get('NOVA_MICROVERSION', '2.79')
STATE = os.path.join(os.environ.get('HYPERV_OVS_CLOUD_DIR',
                                    '/var/tmp/hyperv-ovs-cloud'), 'state')
BIN = os.path.dirname(sys.executable)
HOST_IP = {'hv1': '127.0.0.11', 'hv2': '127.0.0.12', 'kvm1': '127.0.0.13'}
FLAVOR = 'cloud.small'
TOOLS = os.path.dirname(os.path.abspath(__file__))
# os-win's Msvm_ComputerSystem EnabledState values.
POWER_STATES = {2: 'Running', 3: 'Off', 32768: 'Paused', 32769: 'Saved'}
NET = 'job-net'
# The agent release each host runs (tools/cloud/versions, passed by
# tools/cloud/main-job): the Hyper-V hosts' 24.2.2, kvm1's 29.
AGENT_VERSION = {'hv1': os.environ.get('HV_AGENT_VERSION', '24.2.2'),
                 'hv2': os.environ.get('HV_AGENT_VERSION', '24.2.2'),
                 'kvm1': os.environ.get('KVM_AGENT_VERSION', '29.0.0')}
DB_SOCKET = os.path.join(STATE, 'mariadb', 'mysqld.sock')
CEPH_CONF = os.path.join(STATE, 'ceph', 'ceph.conf')
# What tools/cloud/lib/ceph and lib/cinder set up.
CEPH_POOL = 'volumes'
CEPH_MON = ('127.0.0.1', '16789')
CEPH_USER = 'cinder'
# cinder's API microversion for attachments with their connection info.
VOLUME_MICROVERSION = '3.27'
# What worked across the agent/server skew, for the summary.
SKEW = {}


class Checks(object):
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = []

    def skip(self, what):
        """A check that cannot run yet; counted apart, never as passed."""
        self.skipped.append(what)
        print('    skip %s' % what)

    def __call__(self, condition, what):
        if condition:
            self.passed += 1
            print('    ok   %s' % what)
        else:
            self.failed.append(what)
            print('    FAIL %s' % what)
        return condition


check = Checks()


def _guide_commands():
    """tools/guide_commands.py (stdlib only), loaded by its path."""
    path = os.path.join(os.path.dirname(TOOLS), 'guide_commands.py')
    spec = importlib.util.spec_from_file_location('guide_commands', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_guide_commands():
    """The operator's guide's cloud commands, as the guide writes them.

    Each ``openstack`` and ``nova-manage`` line of the guide's
    ``linux-runnable`` console blocks (tests/unit/test_guide_commands.py
    checks that this step exists) runs against this cloud, as the admin
    and with the controller's nova.conf, and must exit 0.
    """
    guide_commands = _guide_commands()
    for command in guide_commands.cloud_commands():
        try:
            if command.program == 'openstack':
                osc(*command.argv[1:], fmt=False)
            else:
                run([os.path.join(BIN, command.program), '--config-file',
                     os.path.join(STATE, 'etc', 'nova.conf')] +
                    command.argv[1:])
        except RuntimeError as exc:
            check(False, 'the guide\'s %r runs: %s' % (command, exc))
        else:
            check(True, 'the guide\'s %r runs' % command)


def step(text):
    print('\n== %s' % text, flush=True)


def host_dir(host):
    return os.path.join(STATE, 'hosts', host)


def run(cmd, quiet=False):
    if not quiet:
        print('  $ %s' % ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd),
                                                   proc.returncode,
                                                   proc.stderr.strip()))
    return proc.stdout


def osc(*args, fmt=True, volume_api=None):
    """An ``openstack`` CLI command; parsed JSON output with fmt."""
    extra = ['--os-volume-api-version', volume_api] if volume_api else []
    cmd = [os.path.join(BIN, 'openstack'), '--os-cloud', CLOUD,
           '--os-compute-api-version', MICROVERSION] + extra + list(args)
    printable = ['openstack'] + extra + list(args)
    print('  $ %s' % ' '.join(printable), flush=True)
    out = run(cmd + (['-f', 'json'] if fmt else []), quiet=True)
    return json.loads(out) if fmt and out.strip() else out


def vsctl(host, *args):
    return run(['ovs-vsctl', '--timeout=10',
                '--db=unix:%s/ovs/db.sock' % host_dir(host)] + list(args),
               quiet=True)


def _ovsdb_value(value):
    if isinstance(value, list) and len(value) == 2:
        kind, payload = value
        if kind == 'set':
            return [_ovsdb_value(v) for v in payload]
        if kind == 'map':
            return {k: _ovsdb_value(v) for k, v in payload}
        if kind == 'uuid':
            return payload
    return value


def ovs_find(host, table, *conditions, columns='name,ofport,external_ids'):
    out = vsctl(host, '--format=json', '--columns=' + columns, 'find',
                table, *conditions)
    doc = json.loads(out)
    return [dict(zip(doc['headings'], (_ovsdb_value(v) for v in row)))
            for row in doc['data']]


def br_int_ports(host):
    return [p for p in vsctl(host, 'list-ports', 'br-int').split()
            if not p.startswith(('patch-', 'int-'))]


def tunnel_ofport(host, remote):
    found = [t['ofport'] for t in ovs_find(host, 'Interface', 'type=vxlan',
                                           columns='name,ofport,options')
             if t['options'].get('remote_ip') == HOST_IP[remote]]
    return found[0] if found else None


def leaves_through(out, vni, ofport):
    """True when the trace's br-tun part sends the VNI to the tunnel.

    That is: a set_field (or load) of the VNI into tun_id, then an output
    to the tunnel's ofport.

    The OpenFlow part of the trace is read, not the datapath actions: on
    the simulated hosts' dummy datapath a VXLAN port is a plain dummy
    port, so the datapath actions show no set(tunnel(...)).
    """
    part = out.split('bridge("br-tun")', 1)
    if len(part) < 2 or ofport is None:
        return False
    tun = part[1]
    sets_vni = re.search(r'(load:%#x->NXM_NX_TUN_ID\[\]|set_field:%#x->tun_id)'
                         % (vni, vni), tun)
    return bool(sets_vni) and bool(
        re.search(r'output:%d\b' % ofport, tun[sets_vni.start():]))


def trace(host, in_port, src, dst):
    """An ICMP echo request from port src (on in_port) to port dst.

    With the OVS firewall on, the packet must carry src's own addresses
    (anything else is dropped as spoofed) and pass through conntrack as a
    new connection (``--ct-next trk,new``); src's group allows it out.
    """
    flow = ('in_port=%s,dl_src=%s,dl_dst=%s,icmp,nw_src=%s,nw_dst=%s,'
            'icmp_type=8,icmp_code=0' % (
                in_port, src['mac_address'], dst['mac_address'],
                src['fixed_ips'][0]['ip_address'],
                dst['fixed_ips'][0]['ip_address']))
    cmd = ['ovs-appctl', '-t', '%s/ovs/ovs-vswitchd.ctl' % host_dir(host),
           'ofproto/trace', 'br-int', flow, '--ct-next', 'trk,new']
    print('  $ %s' % ' '.join(cmd[:2] + ['%s/ovs/ovs-vswitchd.ctl'
                                         % host_dir(host)] + cmd[3:]))
    return run(cmd, quiet=True)


def show_trace(out):
    """Print the br-tun part of a trace and its datapath actions."""
    tun = out.split('bridge("br-tun")', 1)
    for line in (tun[1] if len(tun) > 1 else out).splitlines():
        line = line.strip()
        if line and not line.startswith('-'):
            print('    | %s' % line)


def sim_state(host):
    """The simulated Hyper-V host's whole state file (a dict)."""
    with open(os.path.join(host_dir(host), 'hyperv-host.json')) as f:
        return json.load(f)


def vm_in(state, name):
    """The VM named name in a simulated host's state (a dict), or None."""
    return next((vm for vm in state['vms'] if vm['name'] == name), None)


def sim_vm(host, name):
    """The VM named name in the simulated Hyper-V host's state, or None."""
    return vm_in(sim_state(host), name)


def log_times(path, server_id, port_id):
    """When nova-compute began and ended its wait for network-vif-plugged.

    :returns: (start, end) datetimes from the compute log (DEBUG lines);
        None where not found.
    """
    start = end = None
    event = 'network-vif-plugged-%s' % port_id
    with open(path) as f:
        for line in f:
            if event not in line:
                continue
            stamp = datetime.datetime.strptime(line[:23],
                                               '%Y-%m-%d %H:%M:%S.%f')
            if 'Preparing to wait for external event' in line:
                start = start or stamp
            elif ('Processing event' in line or 'Received event' in line):
                end = end or stamp
    return start, end


def wait_for(what, func, timeout=180, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = func()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError('timed out after %ss waiting for %s'
                               % (timeout, what))
        time.sleep(interval)


def eventually(func, timeout, interval=0.5):
    """Whether func() became true within timeout seconds (no raise)."""
    deadline = time.monotonic() + timeout
    while not func():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def agent_polling_interval(host):
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(os.path.join(host_dir(host), 'ovs_agent.ini'))
    return cp.getfloat('agent', 'polling_interval', fallback=2.0)


def agent_release(host):
    """The release the host's agent logs at start ("... version X")."""
    found = None
    with open(os.path.join(host_dir(host), 'agent.log')) as f:
        for line in f:
            m = re.search(r'neutron-openvswitch-agent version (\S+)', line)
            if m:
                found = m.group(1)
    return found


def recorded_resource_versions():
    """The object versions neutron-server recorded per agent host.

    An agent's state report carries the versions of the objects it
    consumes; neutron-server keeps them (agents.resource_versions) to
    downgrade what it pushes to that agent.  The API does not show them,
    so they are read from neutron's database, read-only.
    """
    out = run(['mariadb', '--no-defaults', '--socket=' + DB_SOCKET, '-uroot',
               '-N', '-B', '-e', "SELECT host, resource_versions FROM "
               "neutron.agents WHERE `binary` = 'neutron-openvswitch-agent'"],
              quiet=True)
    found = {}
    for line in out.splitlines():
        host, _, versions = line.partition('\t')
        found[host] = json.loads(versions) if versions not in ('', 'NULL') \
            else {}
    return found


def br_int_ofport(host, iface):
    return int(vsctl(host, 'get', 'Interface', iface, 'ofport').strip())


def sg_trace(host, iface, src_port, dst_port, proto, tp_dst=None):
    """ofproto/trace of a new packet from src_port's server to dst_port's.

    It enters br-int from br-tun (patch-tun) with the network's local VLAN
    tag, as a packet from the other host does, and the trace follows
    conntrack with the state new (``--ct-next trk,new``).

    :returns: (reaches the VM's port, the trace's output)
    """
    tag = vsctl(host, 'get', 'Port', iface, 'tag').strip()
    flow = ('in_port=%d,dl_vlan=%s,dl_src=%s,dl_dst=%s,%s,nw_src=%s,'
            'nw_dst=%s' % (br_int_ofport(host, 'patch-tun'), tag,
                           src_port['mac_address'],
                           dst_port['mac_address'], proto,
                           src_port['fixed_ips'][0]['ip_address'],
                           dst_port['fixed_ips'][0]['ip_address']))
    if proto == 'tcp':
        flow += ',tp_src=40000,tp_dst=%d,tcp_flags=syn' % tp_dst
    elif proto == 'icmp':
        flow += ',icmp_type=8,icmp_code=0'
    cmd = ['ovs-appctl', '-t', '%s/ovs/ovs-vswitchd.ctl' % host_dir(host),
           'ofproto/trace', 'br-int', flow, '--ct-next', 'trk,new']
    out = run(cmd, quiet=True)
    # The verdict is in the last conntrack pass: an output to the VM's
    # ofport there, and datapath actions that are not a drop.
    last = out.rsplit('resume conntrack', 1)[-1]
    actions = re.findall(r'^Datapath actions: (.*)$', out, re.M)
    reaches = bool(re.search(r'\boutput:%d\b' % br_int_ofport(host, iface),
                             last)) and bool(actions) and \
        actions[-1].strip() != 'drop'
    return reaches, out


def show_sg_trace(out):
    """The firewall's tables in the last conntrack pass, and the verdict."""
    last = out.rsplit('resume conntrack', 1)[-1]
    for line in last.splitlines():
        line = line.strip()
        if re.match(r'^\d+\. ', line) or line.startswith(
                ('ct(', 'output:', 'Datapath actions')):
            print('    | %s' % line)


def boot(conn, name, image, az_host):
    server = osc('server', 'create', '--flavor', FLAVOR, '--image', image,
                 '--network', NET, '--availability-zone', az_host, name)
    t0 = time.monotonic()

    def active():
        s = conn.compute.get_server(server['id'])
        if s.status == 'ERROR':
            raise RuntimeError('server %s went to ERROR: %s'
                               % (name, s.fault))
        return s if s.status == 'ACTIVE' else None
    s = wait_for('%s ACTIVE' % name, active, interval=0.1)
    return s, time.monotonic() - t0


def _wait_trace(host, iface, src, dst, proto, tp_dst, want, timeout):
    """Trace until the verdict is want (reaches or not); seconds taken."""
    t0 = time.monotonic()
    while True:
        reaches, out = sg_trace(host, iface, src, dst, proto, tp_dst)
        if reaches == want or time.monotonic() - t0 > timeout:
            return reaches == want, time.monotonic() - t0, out


def security_groups(conn, hosts):
    """Step 4a on each host: host -> (its VM's Interface, its port, peer)."""
    ports = {}
    for host, (iface, port, peer) in sorted(hosts.items()):
        peer_ip = peer['fixed_ips'][0]['ip_address']
        sg = osc('security', 'group', 'create', '--description',
                 'main job: TCP 22 and ICMP from %s only' % peer_ip,
                 'job-sg-%s' % host)
        for proto, extra in (('tcp', ['--dst-port', '22']), ('icmp', [])):
            osc('security', 'group', 'rule', 'create', '--ingress',
                '--protocol', proto, '--remote-ip', peer_ip + '/32',
                *extra, sg['id'])
        osc('port', 'set', '--no-security-group', '--security-group',
            sg['id'], port['id'], fmt=False)
        ports[host] = sg
    for host, (iface, port, peer) in sorted(hosts.items()):
        interval = agent_polling_interval(host)
        print('  %s (agent neutron %s, polling_interval %s s): server port '
              '%s (%s), group job-sg-%s' % (
                  host, AGENT_VERSION[host], interval, port['id'],
                  port['fixed_ips'][0]['ip_address'], host))
        # The group replaced the default one, whose rule lets in anything
        # from the same group: wait until the agent applied the change.
        ok, took, out = _wait_trace(host, iface['name'], peer, port, 'tcp',
                                    80, False, 30)
        print('  $ ovs-appctl ofproto/trace br-int <TCP 80 from %s> '
              '--ct-next trk,new' % peer['fixed_ips'][0]['ip_address'])
        show_sg_trace(out)
        check(ok, '%s: a new TCP 80 packet from the other server is dropped'
              % host)
        reaches, out = sg_trace(host, iface['name'], peer, port, 'tcp', 22)
        print('  $ ovs-appctl ofproto/trace br-int <TCP 22 from %s> '
              '--ct-next trk,new' % peer['fixed_ips'][0]['ip_address'])
        show_sg_trace(out)
        check(reaches, "%s: a new TCP 22 packet from the other server "
              "reaches the VM's port" % host)
        reaches, out = sg_trace(host, iface['name'], peer, port, 'icmp')
        check(reaches, '%s: an ICMP echo request from the other server '
              "reaches the VM's port" % host)
        osc('security', 'group', 'rule', 'create', '--ingress', '--protocol',
            'tcp', '--dst-port', '80', '--remote-ip',
            peer['fixed_ips'][0]['ip_address'] + '/32', ports[host]['id'])
        # From the moment the API has the rule.
        t0 = time.monotonic()
        # The server tells the agent at once (RPC); the agent rewrites the
        # port's flows in its next rpc_loop iterations.
        limit = 3 * interval + 5
        ok, took, out = _wait_trace(host, iface['name'], peer, port, 'tcp',
                                    80, True, 60)
        took = time.monotonic() - t0
        print('  $ ovs-appctl ofproto/trace br-int <TCP 80 from %s> '
              '--ct-next trk,new' % peer['fixed_ips'][0]['ip_address'])
        show_sg_trace(out)
        print('  %s: the TCP 80 rule reached the flows %.1f s after the API '
              'answered (polling_interval %s s)' % (host, took, interval))
        check(ok and took <= limit, "%s: after the TCP 80 rule, a new TCP 80 "
              "packet reaches the VM's port within %.0f s (took %.1f s)"
              % (host, limit, took))
        if host == 'hv1':
            SKEW['security group RPC'] = ok


def rbd_images():
    """The images in Cinder's pool, read with the rbd CLI."""
    return json.loads(run(['rbd', '--conf', CEPH_CONF, 'ls', '--format',
                           'json', CEPH_POOL], quiet=True))


def rbd_watchers(image):
    """Clients watching an image: an open librbd (QEMU's) is one."""
    out = run(['rbd', '--conf', CEPH_CONF, 'status', '--format', 'json',
               '%s/%s' % (CEPH_POOL, image)], quiet=True)
    return json.loads(out).get('watchers', [])


def rbd_disks(instance_name):
    """kvm1's network disks of the rbd protocol in the live domain XML.

    :returns: a list of (the <disk> element, its XML text)
    """
    xml = run(['virsh', '-c', 'qemu:///system', 'dumpxml', instance_name],
              quiet=True)
    found = []
    for disk in ElementTree.fromstring(xml).iter('disk'):
        source = disk.find('source')
        if (disk.get('type') == 'network' and source is not None and
                source.get('protocol') == 'rbd'):
            found.append((disk, ElementTree.tostring(disk, 'unicode')))
    return found


def volume_status(conn, volume_id, want, timeout=120):
    """Wait until the volume's status is want; fail early on error."""
    def reached():
        v = conn.block_storage.get_volume(volume_id)
        if v.status.startswith('error'):
            raise RuntimeError('volume %s went to %s' % (volume_id, v.status))
        return v if v.status == want else None
    return wait_for('volume %s %s' % (volume_id, want), reached,
                    timeout=timeout, interval=0.5)


def create_volume(conn, name):
    """A 1 GB Cinder volume, available.

    :returns: (the openstacksdk volume, the name of its RBD image)
    """
    t0 = time.monotonic()
    vol = osc('volume', 'create', '--size', '1', name)
    vol = volume_status(conn, vol['id'], 'available')
    print('  volume %s: %s, %s GB, on %s, created in %.1f s' % (
        vol.id, vol.status, vol.size, vol.host, time.monotonic() - t0))
    return vol, 'volume-%s' % vol.id


def attach_volume(conn, server, vol):
    """Attach the volume to the server; print its connection info.

    :returns: (the volume, in-use, its connection info properties)
    """
    t0 = time.monotonic()
    osc('server', 'add', 'volume', server.id, vol.id)
    vol = volume_status(conn, vol.id, 'in-use')
    print('  attached to %s in %.1f s' % (server.name,
                                          time.monotonic() - t0))
    attachment, = osc('volume', 'attachment', 'list', '--volume-id', vol.id,
                      volume_api=VOLUME_MICROVERSION)
    info = osc('volume', 'attachment', 'show', attachment['ID'],
               volume_api=VOLUME_MICROVERSION)
    props = info.get('Properties') or {}
    print('  connection info (attachment %s, %s, %s):' % (
        attachment['ID'], info.get('Status'), info.get('Attach Mode')))
    for key in ('driver_volume_type', 'name', 'hosts', 'ports',
                'cluster_name', 'auth_enabled', 'auth_username',
                'secret_type', 'secret_uuid', 'discard'):
        print('    %s: %s' % (key, props.get(key)))
    return vol, props


def detach_volume(conn, server, vol):
    """Detach the volume from the server, until it is available."""
    t0 = time.monotonic()
    osc('server', 'remove', 'volume', server.id, vol.id, fmt=False)
    volume_status(conn, vol.id, 'available')
    print('  detached in %.1f s' % (time.monotonic() - t0))


def delete_volume(conn, vol, image):
    """Delete the volume; check that its RBD image went with it."""
    osc('volume', 'delete', vol.id, fmt=False)
    wait_for('volume %s deleted' % vol.id,
             lambda: conn.block_storage.find_volume(vol.id) is None,
             timeout=120, interval=0.5)
    check(image not in rbd_images(), 'the volume and its image are deleted '
          '(pool %s: %s)' % (CEPH_POOL, rbd_images()))


def volumes(conn, kvm, instance_name):
    """Step 5a: a Cinder RBD volume on kvm1's server."""
    vol, image = create_volume(conn, 'job-vol')
    check(vol.host.startswith('controller@ceph'),
          'the volume is on cinder-volume\'s RBD back end (%s)' % vol.host)
    check(image in rbd_images(), 'image %s is in Ceph pool %s'
          % (image, CEPH_POOL))

    vol, props = attach_volume(conn, kvm, vol)
    check(props.get('driver_volume_type') == 'rbd',
          'the connection info says driver_volume_type rbd')
    check(props.get('name') == '%s/%s' % (CEPH_POOL, image) and
          list(zip(props.get('hosts', []), props.get('ports', []))) ==
          [CEPH_MON], 'it names %s/%s on the monitor %s:%s'
          % ((CEPH_POOL, image) + CEPH_MON))
    disks = rbd_disks(instance_name)
    print('  $ virsh -c qemu:///system dumpxml %s   (its rbd network disks)'
          % instance_name)
    for _, text in disks:
        for line in text.strip().splitlines():
            print('    | %s' % line.rstrip())
    disk = disks[0][0] if len(disks) == 1 else None
    if disk is not None:
        source, host = disk.find('source'), disk.find('source/host')
        auth, secret = disk.find('auth'), disk.find('auth/secret')
        check(source.get('name') == '%s/%s' % (CEPH_POOL, image) and
              host is not None and
              (host.get('name'), host.get('port')) == CEPH_MON,
              'kvm1\'s domain has the rbd network disk %s/%s on %s:%s'
              % ((CEPH_POOL, image) + CEPH_MON))
        check(auth is not None and auth.get('username') == CEPH_USER and
              secret is not None and secret.get('type') == 'ceph' and
              secret.get('uuid') == props.get('secret_uuid'),
              'it authenticates as client.%s with libvirt\'s ceph secret '
              '%s' % (CEPH_USER, props.get('secret_uuid')))
        check(disk.findtext('serial') == vol.id,
              'the disk\'s serial is the volume id')
    else:
        check(False, 'kvm1\'s domain has exactly one rbd network disk '
              '(found %d)' % len(disks))
    watchers = rbd_watchers(image)
    print('  $ rbd status %s/%s: watchers %s' % (
        CEPH_POOL, image, [w.get('address') for w in watchers]))
    check(watchers, 'QEMU has the image open through librbd (a watcher)')

    detach_volume(conn, kvm, vol)
    check(not rbd_disks(instance_name),
          'the rbd disk is gone from kvm1\'s domain')
    check(eventually(lambda: not rbd_watchers(image), 30),
          'no client watches the image any more')
    delete_volume(conn, vol, image)


def hv_volume_disks(host, vm_name):
    """The VM's passthrough disks on a simulated host, with what they are.

    :returns: (a list of dicts: serial (the volume id), slot, number (the
        host disk number the VM's disk drive names), image (the RBD image
        mapped as that disk, or None), online and size (the host disk's),
        the image names the host's rbd-wnbd has mapped, sorted), read from
        one state of the host.
    """
    state = sim_state(host)
    st = state['storage']
    image_of = {v['uid']: name for name, v in st['rbd_mappings'].items()}
    disks = {d['number']: d for d in st['disks']}
    found = []
    for vol in (vm_in(state, vm_name) or {}).get('volumes', []):
        m = re.search(r'PHYSICALDISK\\(\d+)', vol['host_resource'])
        disk = disks.get(int(m.group(1))) if m else None
        found.append({
            'serial': vol['serial'], 'slot': '%s %s:%s' % (
                vol['controller_type'], vol['controller_addr'], vol['slot']),
            'number': int(m.group(1)) if m else None,
            'image': disk and image_of.get(disk['volume']['uid']),
            'online': disk and disk['online'],
            'size': disk and disk['size']})
    return found, sorted(st['rbd_mappings'])


def show_hv_volume_disks(host, vm_name):
    """Print and return hv_volume_disks(host, vm_name)."""
    disks, mappings = hv_volume_disks(host, vm_name)
    print('  %s: VM %s passthrough disks (the simulated host\'s state):'
          % (host, vm_name))
    for d in disks:
        print('    | %(slot)s serial %(serial)s -> host disk %(number)s '
              '(online %(online)s, %(size)s bytes) = rbd-wnbd mapping of '
              '%(image)s' % d)
    print('  %s: rbd-wnbd mappings %s' % (host, mappings))
    return disks, mappings


def attachment_hosts(vol):
    """The hosts of cinder's attachments of the volume (its connectors)."""
    return [a.get('host_name') for a in vol.attachments]


def hv_volume_attach(conn, hv, vm_name):
    """Step 4b: a Cinder RBD volume on hv1's server, through rbd-wnbd.

    :returns: (the volume, its pool/image name), for steps 5 and 5b.
    """
    vol, image = create_volume(conn, 'job-hv-vol')
    name = '%s/%s' % (CEPH_POOL, image)
    vol, props = attach_volume(conn, hv, vol)
    check(props.get('driver_volume_type') == 'rbd' and
          props.get('name') == name, 'cinder hands hv1 the rbd image %s'
          % name)
    disks, mappings = show_hv_volume_disks('hv1', vm_name)
    check(mappings == [name], "hv1's rbd-wnbd mapped %s from the cloud's "
          "Ceph, and nothing else" % name)
    check(len(disks) == 1 and disks[0]['image'] == name and
          disks[0]['serial'] == vol.id,
          "the VM's passthrough disk is that image's host disk, tagged "
          "with the volume id")
    check(len(disks) == 1 and disks[0]['online'] is False,
          'the host disk is offline (Hyper-V passes through offline disks '
          'only)')
    check(len(disks) == 1 and disks[0]['size'] == vol.size * 1024 ** 3,
          'the host disk has the image\'s size in Ceph (%s GiB)' % vol.size)
    check(attachment_hosts(vol) == ['hv1'], "cinder's attachment is hv1's "
          "(%s)" % attachment_hosts(vol))
    return vol, name


def hv_volume_moved(conn, vol, name, vm_name):
    """After step 5: the volume went with the VM from hv1 to hv2."""
    disks, mappings = show_hv_volume_disks('hv2', vm_name)
    check(mappings == [name] and len(disks) == 1 and
          disks[0]['image'] == name and disks[0]['serial'] == vol.id,
          "the VM on hv2 has the volume as hv2's host disk of %s" % name)
    _, left = hv_volume_disks('hv1', vm_name)
    check(left == [], 'hv1 unmapped the image once the VM had left (%s)'
          % left)
    vol = conn.block_storage.get_volume(vol.id)
    check(vol.status == 'in-use' and attachment_hosts(vol) == ['hv2'],
          "the volume is in-use, cinder's attachment now hv2's (%s)"
          % attachment_hosts(vol))


def hv_volume_detach(conn, hv, vol, name, vm_name):
    """Step 5b: detach from the server on hv2, delete the volume."""
    detach_volume(conn, hv, vol)
    check(hv_volume_disks('hv2', vm_name) == ([], []),
          'the passthrough disk and the mapping are gone from hv2')
    delete_volume(conn, vol, name.split('/', 1)[1])


def main():
    conn = openstack.connect(cloud=CLOUD)
    started = time.monotonic()
    times = {}

    step("0. each host's neutron-openvswitch-agent, as neutron reports it")
    recorded = recorded_resource_versions()
    for a in conn.network.agents(binary='neutron-openvswitch-agent'):
        if a.host not in AGENT_VERSION:
            continue
        rv = recorded.get(a.host, {})
        release = agent_release(a.host)
        print('  %-5s %s alive=%s, started %s, last report %s; runs neutron '
              '%s; neutron-server records it as a consumer of Port %s, '
              'Network %s, Subnet %s, SecurityGroup %s, SecurityGroupRule %s'
              % (a.host, a.binary, a.is_alive, a.started_at,
                 a.last_heartbeat_at, release, rv.get('Port'),
                 rv.get('Network'), rv.get('Subnet'),
                 rv.get('SecurityGroup'), rv.get('SecurityGroupRule')))
        check(a.is_alive, 'the agent on %s reports to neutron-server and is '
              'alive' % a.host)
        check(release == AGENT_VERSION[a.host], '%s runs neutron %s (%s)'
              % (a.host, AGENT_VERSION[a.host], release))
        check(bool(rv), 'neutron-server recorded the object versions the '
              'agent on %s consumes' % a.host)
        if a.host == 'hv1':
            SKEW['agent state reports'] = bool(a.is_alive and rv)

    step("0a. the operator's guide's openstack and nova-manage commands")
    run_guide_commands()

    step('1. a VXLAN network and subnet; a server on hv1 and one on kvm1')
    net = osc('network', 'create', '--provider-network-type', 'vxlan', NET)
    vni = net['provider:segmentation_id']
    osc('subnet', 'create', '--network', NET, '--subnet-range',
        '10.10.0.0/24', 'job-subnet')
    print('  network %s: vxlan VNI %s, MTU %s' % (net['id'], vni, net['mtu']))
    hv, times['hv1'] = boot(conn, 'job-hv1', 'hyperv-gen2', 'hyperv:hv1')
    kvm, times['kvm1'] = boot(conn, 'job-kvm1', 'kvm-halt', 'kvm:kvm1')

    step('2. both servers ACTIVE on their hosts; ports ACTIVE and bound')
    servers = {}
    ports = {}
    for s, host in ((hv, 'hv1'), (kvm, 'kvm1')):
        info = osc('server', 'show', s.id)
        servers[host] = info
        print('  %s: %s on %s (%s), boot to ACTIVE %.1f s' % (
            info['name'], info['status'], info['OS-EXT-SRV-ATTR:host'],
            info['OS-EXT-SRV-ATTR:hypervisor_hostname'], times[host]))
        check(info['status'] == 'ACTIVE', '%s is ACTIVE' % info['name'])
        check(info['OS-EXT-SRV-ATTR:host'] == host,
              '%s is on %s' % (info['name'], host))
        port, = osc('port', 'list', '--server', s.id, '--long')
        port = osc('port', 'show', port['ID'])
        ports[host] = port
        print('  port %s: %s, binding host %s, vif_type %s, vif_details %s'
              % (port['id'], port['status'], port['binding_host_id'],
                 port['binding_vif_type'], port['binding_vif_details']))
        check(port['status'] == 'ACTIVE', 'port of %s is ACTIVE'
              % info['name'])
        check(port['binding_host_id'] == host,
              'port of %s is bound to %s' % (info['name'], host))
        if host == 'hv1':
            SKEW['port binding'] = (port['status'] == 'ACTIVE' and
                                    port['binding_host_id'] == host and
                                    port['binding_vif_type'] == 'ovs')
    hv_port, kvm_port = ports['hv1'], ports['kvm1']

    step('3. hv1: the VM, its OVS port, the local VLAN tag, the event')
    name = servers['hv1']['OS-EXT-SRV-ATTR:instance_name']
    vm = sim_vm('hv1', name)
    check(vm is not None, 'VM %s exists on the simulated host hv1' % name)
    if vm:
        print('  VM %s: generation %d, %d vCPU, %d MB, %s' % (
            name, vm['generation'], vm['vcpus'], vm['memory_mb'],
            POWER_STATES.get(vm['power_state'], vm['power_state'])))
        for d in vm['drives']:
            print('    %s %s on %s controller %s slot %s' % (
                d['drive_type'], d['path'], d['controller_type'],
                d['controller_addr'], d['slot']))
        for nic in vm['nics'].values():
            print('    vNIC %s mac %s on vSwitch %r, switch port %s' % (
                nic['name'], nic['mac'], nic['vswitch'], nic['switch_port']))
        check(vm['generation'] == 2, 'generation 2 (hw_machine_type)')
        check(vm['vcpus'] == 1 and vm['memory_mb'] == 128,
              '1 vCPU and 128 MB as the flavor says')
        nic = vm['nics'].get(hv_port['id'])
        check(nic is not None and nic['vswitch'] == 'external',
              'vNIC named after the port, on vSwitch external')
    iface, = ovs_find('hv1', 'Interface',
                      'external_ids:iface-id=%s' % hv_port['id'],
                      columns='name,ofport,external_ids,error')
    tag = vsctl('hv1', 'get', 'Port', iface['name'], 'tag').strip()
    print('  OVS Interface %s: ofport %s, error %s, tag %s' % (
        iface['name'], iface['ofport'], iface['error'] or None, tag))
    for k, v in sorted(iface['external_ids'].items()):
        print('    external_ids:%s=%s' % (k, v))
    check(iface['ofport'] not in ([], -1), 'the Interface has an ofport')
    check(iface['external_ids'].get('attached-mac') ==
          hv_port['mac_address'], 'attached-mac is the port MAC')
    check(iface['external_ids'].get('vm-uuid') == hv.id,
          'vm-uuid is the server')
    check(tag.isdigit(), 'the agent gave the port local VLAN tag %s' % tag)
    api_log = os.path.join(STATE, 'logs', 'nova-api.log')
    with open(api_log) as f:
        events = [line.strip() for line in f
                  if 'network-vif-plugged:%s' % hv_port['id'] in line]
    for line in events:
        print('  nova-api: %s' % line[:60] + ' ... ' +
              line[line.find('Creating event'):])
    check(events, 'nova-api recorded network-vif-plugged for the port')
    SKEW['network-vif-plugged'] = bool(events)
    waits = {}
    for host, s, port in (('hv1', hv, hv_port), ('kvm1', kvm, kvm_port)):
        start, end = log_times(os.path.join(host_dir(host),
                                            'nova-compute.log'),
                               s.id, port['id'])
        waits[host] = ((end - start).total_seconds()
                       if start and end else None)
        print('  %s nova-compute: waited for network-vif-plugged from %s '
              'to %s' % (host, start and start.time(), end and end.time()))
    check(waits['hv1'] is not None,
          'hv1 nova-compute waited for network-vif-plugged and got it')

    step('3a. nova-compute on hv1 restarted: the same simulated host')
    run([os.path.join(TOOLS, 'cloud'), 'restart', 'compute-hv1'])
    wait_for('nova-compute on hv1 up', lambda: [
        s for s in conn.compute.services(binary='nova-compute', host='hv1')
        if s.state == 'up'], timeout=90, interval=1)
    info = osc('server', 'show', hv.id)
    vm = sim_vm('hv1', name)
    print('  %s: %s, power state %s; VM %s on hv1: %s' % (
        info['name'], info['status'], info['OS-EXT-STS:power_state'], name,
        vm and POWER_STATES.get(vm['power_state'], vm['power_state'])))
    check(info['status'] == 'ACTIVE' and
          info['OS-EXT-STS:power_state'] == 1,
          'the server is still ACTIVE and running')
    check(vm is not None and vm['power_state'] == 2,
          'the restarted nova-compute finds the VM running on hv1')
    check(ovs_find('hv1', 'Interface',
                   'external_ids:iface-id=%s' % hv_port['id']),
          'its OVS port is still on hv1')

    step('4. tunnels between hv1 and kvm1, and a frame traced each way')
    kvm_iface, = ovs_find('kvm1', 'Interface',
                          'external_ids:iface-id=%s' % kvm_port['id'])
    for here, there in (('hv1', 'kvm1'), ('kvm1', 'hv1')):
        tunnels = ovs_find(here, 'Interface', 'type=vxlan',
                           columns='name,ofport,options')
        to = [t for t in tunnels
              if t['options'].get('remote_ip') == HOST_IP[there]]
        print('  %s br-tun: %s' % (here, ', '.join(
            '%s -> %s' % (t['name'], t['options']['remote_ip'])
            for t in tunnels)))
        check(to, '%s has a VXLAN port to %s (%s)' % (here, there,
                                                      HOST_IP[there]))
    for here, there, src_if, src, dst in (
            ('hv1', 'kvm1', iface, hv_port, kvm_port),
            ('kvm1', 'hv1', kvm_iface, kvm_port, hv_port)):
        out = trace(here, src_if['ofport'], src, dst)
        port = tunnel_ofport(here, there)
        ok = leaves_through(out, vni, port)
        show_trace(out)
        check(ok, 'the frame leaves %s through its tunnel to %s (ofport %s) '
              'with VNI %s' % (here, there, port, vni))

    print('  (kvm1 runs the userspace datapath with its tunnel address on lo, '
          'not on an OVS bridge, so its datapath reports "native tunnel '
          'routing failed" and sends nothing; the simulated hosts\' dummy '
          'datapath sends nothing either.  The checks read the OpenFlow '
          'pipeline: VNI set, tunnel port chosen.)')

    step('4a. security groups: only TCP 22 and ICMP from the other server')
    security_groups(conn, {'hv1': (iface, hv_port, kvm_port),
                           'kvm1': (kvm_iface, kvm_port, hv_port)})

    step('4b. a Cinder volume (RBD) on %s: attached through rbd-wnbd'
         % servers['hv1']['name'])
    hv_vol, hv_vol_name = hv_volume_attach(conn, hv, name)

    step('5. live migration of %s from hv1 to hv2 (block migration), with '
         'its volume' % servers['hv1']['name'])
    t0 = time.monotonic()
    osc('server', 'migrate', '--live-migration', '--block-migration',
        '--host', 'hv2', '--wait', hv.id, fmt=False)
    info = osc('server', 'show', hv.id)
    print('  %s: %s on %s after %.1f s' % (info['name'], info['status'],
                                           info['OS-EXT-SRV-ATTR:host'],
                                           time.monotonic() - t0))
    check(info['OS-EXT-SRV-ATTR:host'] == 'hv2' and
          info['status'] == 'ACTIVE', 'the server is ACTIVE on hv2')
    check(sim_vm('hv2', name) is not None and sim_vm('hv1', name) is None,
          'the VM moved from the simulated hv1 to hv2')
    port = wait_for('port bound to hv2 and ACTIVE', lambda: (
        lambda p: p if p.binding_host_id == 'hv2' and p.status == 'ACTIVE'
        else None)(conn.network.get_port(hv_port['id'])), timeout=60)
    check(port.binding_host_id == 'hv2', 'the port is bound to hv2 and %s'
          % port.status)
    iface2 = wait_for('the port tagged on hv2', lambda: [
        i for i in ovs_find('hv2', 'Interface', 'external_ids:iface-id=%s'
                            % hv_port['id'])
        if vsctl('hv2', 'get', 'Port', i['name'], 'tag').strip().isdigit()],
        timeout=60)[0]
    tag2 = vsctl('hv2', 'get', 'Port', iface2['name'], 'tag').strip()
    print('  hv2 OVS Interface %s: ofport %s, tag %s' % (
        iface2['name'], iface2['ofport'], tag2))
    check(True, 'the port is on hv2 with tag %s' % tag2)
    gone = wait_for('the port gone from hv1', lambda: not ovs_find(
        'hv1', 'Interface', 'external_ids:iface-id=%s' % hv_port['id'])
        or None, timeout=60)
    check(gone, 'the port is gone from hv1')
    out = trace('kvm1', kvm_iface['ofport'], kvm_port, hv_port)
    port = tunnel_ofport('kvm1', 'hv2')
    show_trace(out)
    check(leaves_through(out, vni, port), "kvm1's tunnel to hv2 (ofport %s) "
          "carries the network (VNI %s)" % (port, vni))

    hv_volume_moved(conn, hv_vol, hv_vol_name, name)

    step('5b. the volume detached from %s on hv2, deleted'
         % servers['hv1']['name'])
    hv_volume_detach(conn, hv, hv_vol, hv_vol_name, name)

    step('5a. a Cinder volume (RBD) on %s: attach, detach, delete'
         % servers['kvm1']['name'])
    volumes(conn, kvm, servers['kvm1']['OS-EXT-SRV-ATTR:instance_name'])

    step('6. delete both servers: nothing left behind')
    osc('server', 'delete', '--wait', hv.id, kvm.id, fmt=False)
    placement = conn.session
    for s, host, instance in ((hv, 'hv2', name),
                              (kvm, 'kvm1',
                               servers['kvm1']['OS-EXT-SRV-ATTR:'
                                               'instance_name'])):
        allocs = placement.get(
            '/allocations/%s' % s.id,
            endpoint_filter={'service_type': 'placement'}).json()
        ports_left = list(conn.network.ports(device_id=s.id))
        print('  %s: placement allocations %s; neutron ports %s' % (
            s.name, allocs['allocations'], [p.id for p in ports_left]))
        check(allocs['allocations'] == {}, 'no placement allocation for %s'
              % s.name)
        check(not ports_left, 'the neutron port of %s is gone' % s.name)
    for host in ('hv1', 'hv2'):
        check(sim_vm(host, name) is None, 'no VM on the simulated %s' % host)
    domains = run(['virsh', '-c', 'qemu:///system', 'list', '--all',
                   '--name'], quiet=True).split()
    check(servers['kvm1']['OS-EXT-SRV-ATTR:instance_name'] not in domains,
          'no libvirt domain on kvm1')
    for host in ('hv1', 'hv2', 'kvm1'):
        left = br_int_ports(host)
        print('  %s br-int ports: %s' % (host, left))
        check(not left, 'no VM port on %s br-int' % host)
    for host, entry in (('hv1', name), ('hv2', name), ('kvm1', kvm.id)):
        path = os.path.join(host_dir(host), 'instances', entry)
        check(not os.path.exists(path), 'no instance files %s' % path)
    osc('network', 'delete', NET, fmt=False)
    for host in ('hv1', 'kvm1'):
        osc('security', 'group', 'delete', 'job-sg-%s' % host, fmt=False)

    step('boot to ACTIVE, same flavor (%s) and network' % FLAVOR)
    for host in ('hv1', 'kvm1'):
        wait = waits[host]
        print('  %-5s %5.1f s, of which waiting for network-vif-plugged %s'
              % (host, times[host],
                 '%.1f s' % wait if wait is not None else 'not logged'))
    print('\n== across the agent/server skew (hv1: neutron-openvswitch-agent '
          '%s, neutron-server 29)' % AGENT_VERSION['hv1'])
    for what in ('agent state reports', 'port binding',
                 'network-vif-plugged', 'security group RPC'):
        print('  %-22s %s' % (what, {True: 'works', False: 'FAILED',
                                     None: 'not reached'}[SKEW.get(what)]))
    print('\n== main job: %d checks passed, %d failed, %d skipped, %.0f s'
          % (check.passed, len(check.failed), len(check.skipped),
             time.monotonic() - started))
    for what in check.failed:
        print('  FAILED: %s' % what)
    for what in check.skipped:
        print('  skipped: %s' % what)
    _result(check.passed, len(check.failed), len(check.skipped))
    return 1 if check.failed else 0


def _result(passed, failed, skipped=0):
    """Hand the counts to tools/cloud/main-job for its closing line."""
    path = os.environ.get('MAIN_JOB_RESULT')
    if path:
        with open(path, 'w') as f:
            f.write('%d %d %d\n' % (passed, failed, skipped))


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as exc:
        print('\n== main job ABORTED: %s' % exc)
        _result(check.passed, len(check.failed) + 1, len(check.skipped))
        sys.exit(1)
