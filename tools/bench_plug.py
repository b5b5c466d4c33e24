"""Plug/unplug latency of the hyperv_ovs plugin against a real Open vSwitch.

Prints, for N ports on a private ovsdb-server + ovs-vswitchd:
- plug and unplug latency of the plugin (median, 99th percentile);
- OVSDB write transactions and ofport read-backs per plug;
- in the same run, interleaved with the plugin's plugs, a bare ovsdbapp
  transaction doing the same add-port and external_ids write, and the ratio
  of the two medians (target: at most 1.5).

Usage: python tools/bench_plug.py [--ports 500] [--timeout 30]
"""

import argparse
import os
import statistics
import sys
import time
import types

from os_vif import objects as osv_objects
from os_vif.objects import vif as osv_vif

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from compute_hyperv_ovs.os_vif_plugin import ovsdb  # noqa: E402
from compute_hyperv_ovs.os_vif_plugin import plugin  # noqa: E402
from tests.fixtures import ovs  # noqa: E402

BRIDGE = 'br-int'


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100.0 * (len(ordered) - 1)))
    return ordered[index]


def port_uuid(prefix, i):
    # Neutron port ids are UUIDs, and so are Windows OVS port names.
    return '%s-0000-4000-8000-%012d' % (prefix, i)


def make_vif(port_id, i):
    profile = osv_vif.VIFPortProfileOpenVSwitch(interface_id=port_id)
    network = osv_objects.network.Network(id=port_uuid('cccccccc', 0),
                                          bridge=BRIDGE)
    return osv_vif.VIFOpenVSwitch(
        id=port_id, address='fa:16:3e:%02x:%02x:%02x' % (
            i >> 16 & 255, i >> 8 & 255, i & 255),
        network=network, port_profile=profile, plugin=plugin.PLUGIN_NAME)


class TransactionCounter(object):
    """Counts what one plugin sends to OVSDB and reads back.

    ``writes``: transactions queued on the ovsdbapp connection, i.e. sent to
    ovsdb-server.  ``read_backs``: Interface reads after a plug; ovsdbapp
    runs read-only commands on its local replica of the database, so they
    cost no round trip.
    """

    def __init__(self, client):
        self.writes = 0
        self.read_backs = 0
        connection = client.api.ovsdb_connection
        queue_txn = connection.queue_txn
        read_status = client._read_status

        def counting_queue_txn(txn):
            self.writes += 1
            return queue_txn(txn)

        def counting_read_status(*args):
            self.read_backs += 1
            return read_status(*args)

        connection.queue_txn = counting_queue_txn
        client._read_status = counting_read_status


def timed(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=500)
    parser.add_argument('--timeout', type=int, default=30)
    args = parser.parse_args()
    osv_objects.register_all()

    with ovs.OpenVSwitchFixture() as switch:
        config = types.SimpleNamespace(ovsdb_connection=switch.connection,
                                       timeout=args.timeout)
        hv_plugin = plugin.HyperVOvsPlugin(config)
        # The bare baseline gets its own connection to the same server.
        bare = ovsdb.OvsdbClient(switch.connection, args.timeout).api
        counter = TransactionCounter(hv_plugin.ovsdb)
        instance = osv_objects.instance_info.InstanceInfo(
            uuid=port_uuid('dddddddd', 0), name='instance-00000001')

        def bare_plug(name, external_ids):
            with bare.transaction(check_error=True) as txn:
                txn.add(bare.add_port(BRIDGE, name, may_exist=True))
                txn.add(bare.db_set('Interface', name,
                                    ('external_ids', external_ids)))

        plug_s, unplug_s, bare_s = [], [], []
        vifs = [make_vif(port_uuid('aaaaaaaa', i), i)
                for i in range(args.ports)]
        for i, vif in enumerate(vifs):
            # Interleaved, so machine noise hits both series alike.
            plug_s.append(timed(hv_plugin.plug, vif, instance))
            bare_s.append(timed(bare_plug, port_uuid('bbbbbbbb', i), {
                'iface-id': port_uuid('bbbbbbbb', i),
                'iface-status': 'active',
                'attached-mac': vif.address,
                'vm-uuid': instance.uuid}))
        writes, reads = counter.writes, counter.read_backs
        for vif in vifs:
            unplug_s.append(timed(hv_plugin.unplug, vif, instance))
        ports_left = len([p for p in switch.list_ports(BRIDGE)
                          if p.startswith('aaaaaaaa')])
        hv_plugin.close()
        bare.ovsdb_connection.stop()

    ms = 1000.0
    ratio = statistics.median(plug_s) / statistics.median(bare_s)
    print('hyperv_ovs plugin vs. bare ovsdbapp, %d ports, real '
          'ovsdb-server + ovs-vswitchd on loopback TCP' % args.ports)
    print('  plug   median %.2f ms  p99 %.2f ms' % (
        statistics.median(plug_s) * ms, percentile(plug_s, 99) * ms))
    print('  unplug median %.2f ms  p99 %.2f ms' % (
        statistics.median(unplug_s) * ms, percentile(unplug_s, 99) * ms))
    print('  bare add-port + external_ids transaction: median %.2f ms  '
          'p99 %.2f ms' % (statistics.median(bare_s) * ms,
                           percentile(bare_s, 99) * ms))
    print('  per plug: %.2f OVSDB write transactions, %.2f read-backs of '
          'ofport/error (local replica)' % (writes / float(args.ports),
                                            reads / float(args.ports)))
    print('  plug median / bare median: %.2fx (target <= 1.5x)' % ratio)
    print('  plugin ports left after unplug: %d' % ports_left)
    return 0 if ratio <= 1.5 and ports_left == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
