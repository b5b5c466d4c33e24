#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Run a real nova-compute on a simulated Hyper-V host (test tooling).

The all-in-one cloud (``tools/cloud``) starts one of these per Hyper-V
host::

    python tests/cloud/hyperv_compute.py --host hv1:127.0.0.11:DIR \\
        --peer hv2:127.0.0.12:DIR2 --vswitch external \\
        --guest-shutdown-seconds 1 --ceph-cluster --guest-console-echo \\
        -- --config-file DIR/nova.conf --log-file DIR/nova-compute.log

It installs the simulated Hyper-V host of ``tests/fixtures/hyperv/`` in
place of os-win's WMI classes, with the host's state kept in its directory
(``tests/fixtures/hyperv/state_files.py``), then runs nova's own compute entry
point, ``nova.cmd.compute.main``, which loads the driver named by
``compute_driver`` as on a real host.  Peers are the other simulated hosts
this host may live-migrate to or from (their state files are read and
written under their locks).  The instances path of a host is
``DIR/instances`` (shared-nothing).  With ``--ceph-cluster`` the hosts'
RBD volumes are the images of a real Ceph cluster (the cloud's, which
Cinder's RBD driver fills), read through each host's ``DIR/ceph``, the
host's ``%ProgramData%\\ceph`` (``tests/fixtures/hyperv/ceph_cluster.py``).

Never part of the shipped package.
"""

# First, as nova-compute itself: importing nova's entry point decides the
# concurrency mode (native threading unless [DEFAULT] concurrency_backend or
# OS_NOVA_DISABLE_EVENTLET_PATCHING says eventlet).
from nova.cmd import compute  # noqa: I100

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

# Then the driver's package, which makes os-win importable in that mode,
# before the simulated host imports os-win.
import compute_hyperv_ovs  # noqa: E402,F401
from nova import config  # noqa: E402
from nova.virt import node  # noqa: E402

from tests.fixtures.hyperv import ceph_cluster  # noqa: E402
from tests.fixtures.hyperv import fixture as hyperv_fixture  # noqa: E402
from tests.fixtures.hyperv import state_files  # noqa: E402
from tests.fixtures.hyperv import storage  # noqa: E402


def _host_spec(text):
    name, ip, directory = text.split(':', 2)
    return name, ip, os.path.abspath(directory)


def _seconds(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError('%s: not a number of seconds '
                                         '(0 or more)' % text)
    return value


def _keep_node_identity(node_uuid):
    """Record the simulated host's node uuid in ``state_path/compute_id``.

    On a real host nova's own ``get_local_node_uuid`` writes that file at
    the first start, and from the second start on nova-compute refuses to
    start without it ("No local node identity found, but this is not our
    first startup on this host").  The simulated host answers the uuid
    itself (HyperVHostsFixture patches ``get_local_node_uuid``), so the file
    is written here, once nova has read its configuration (state_path).
    """
    parse_args = config.parse_args

    def parse_args_and_keep_identity(*args, **kwargs):
        parse_args(*args, **kwargs)
        if node.read_local_node_uuid() is None:
            node.write_local_node_uuid(node_uuid)

    config.parse_args = parse_args_and_keep_identity


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', type=_host_spec, required=True,
                        help='NAME:IP:DIR of the host this process runs')
    parser.add_argument('--peer', type=_host_spec, action='append',
                        default=[], help='NAME:IP:DIR of another host')
    parser.add_argument('--vswitch', default='external',
                        help='the Hyper-V vSwitch (OVS-enabled) name')
    parser.add_argument(
        '--guest-shutdown-seconds', type=_seconds, default=1.0,
        metavar='SECONDS',
        help='seconds a simulated guest takes to turn off after a soft '
             'shutdown request (nova stop, rebuild, resize, shelve, soft '
             'reboot), on every simulated host of this process; nova '
             'waits for it up to its shutdown_timeout (60 s) before '
             'turning the VM off (default: %(default)s)')
    parser.add_argument(
        '--ceph-cluster', action='store_true',
        help="the hosts' rbd device map maps images of the real Ceph "
             "cluster named by each host's DIR/ceph/ceph.conf and "
             "DIR/ceph/keyring (Ceph for Windows' %%ProgramData%%\\ceph), "
             "read with this machine's rbd tool; without it, only images "
             "a test registered")
    parser.add_argument(
        '--guest-console-echo', action='store_true',
        help="the simulated guests print back what is typed on their "
             "serial console, as a Linux guest's getty on ttyS0 does; "
             "without it they only print their boot messages")
    parser.add_argument('nova_args', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv[1:])
    nova_args = [a for a in args.nova_args if a != '--']

    fixture = hyperv_fixture.HyperVHostsFixture()
    fixture.setUp()
    if args.ceph_cluster:
        storage.SAN.rbd_cluster = ceph_cluster.CephCluster()
    stores = []
    for name, ip, directory in [args.host] + args.peer:
        host = fixture.add_host(
            name, vswitch_name=args.vswitch, local_ips=[ip],
            instances_path=os.path.join(directory, 'instances'))
        host.guest_shutdown_seconds = args.guest_shutdown_seconds
        host.guest_console_echo = args.guest_console_echo
        if args.ceph_cluster:
            host.storage.ceph_conf_dir = os.path.join(directory, 'ceph')
        stores.append(state_files.HostStateStore(host, directory))
    synced = state_files.SyncedHosts(stores)
    synced.install()
    _keep_node_identity(stores[0].host.node_uuid)

    sys.argv = [os.path.join(os.path.dirname(sys.executable),
                             'nova-compute')] + nova_args
    with fixture.building(args.host[0]):
        return compute.main()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
