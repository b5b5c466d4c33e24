"""Plug/unplug latency of the hyperv_ovs plugin against a real Open vSwitch.

Prints, for N ports on a private ovsdb-server + ovs-vswitchd:
- plug and unplug latency of the plugin (median, 99th percentile);
- in the same run, interleaved with them, a bare ovsdbapp transaction
  (ovsdbapp's own ``Connection`` and ``impl_idl.OvsdbIdl``, nothing of the
  plugin) doing the same add-port and external_ids write, and a bare
  del-port; each waits for ovs-vswitchd to apply it, as the plugin does;
  and the ratio of the plugin's medians to them (target: at most 1.1);
- the OVSDB requests of a plug and of an unplug, counted by a loopback
  proxy on a separate plugin (so that the proxy's hop is not timed):
  one write transaction each, and no other request (the ofport read-back
  is answered from the connection's replica).

Usage: python tools/bench_plug.py [--ports 500] [--timeout 30] [--short]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

# First, as nova-compute's entry point does: nova picks its concurrency
# mode (native threads under tox.ini's OS_NOVA_DISABLE_EVENTLET_PATCHING)
# before os-vif, ovsdbapp or oslo.service are imported, since they would
# import eventlet, which nova's threading mode then refuses.
import tests  # noqa: E402,F401

from os_vif import objects as osv_objects  # noqa: E402
from os_vif.objects import vif as osv_vif  # noqa: E402
from ovsdbapp.backend.ovs_idl import connection as ovs_connection  # noqa
from ovsdbapp.schema.open_vswitch import impl_idl  # noqa: E402

import benchlib  # noqa: E402
from compute_hyperv_ovs.os_vif_plugin import plugin  # noqa: E402
from tests.fixtures import ovs  # noqa: E402

BRIDGE = 'br-int'
# The tables the plugin replicates; the bare connection replicates the same.
TABLES = ('Open_vSwitch', 'Bridge', 'Port', 'Interface')
# Plugs (and unplugs) counted through the proxy.
COUNTED = 10
TARGET = 1.1


def make_vif(port_id, i):
    profile = osv_vif.VIFPortProfileOpenVSwitch(interface_id=port_id)
    network = osv_objects.network.Network(
        id=benchlib.port_uuid('cccccccc', 0), bridge=BRIDGE)
    return osv_vif.VIFOpenVSwitch(
        id=port_id, address=benchlib.mac(i), network=network,
        port_profile=profile, plugin=plugin.PLUGIN_NAME)


def bare_api(connection, timeout):
    """ovsdbapp as its own documentation uses it, nothing of the plugin."""
    idl = ovs_connection.OvsdbIdl.from_server(connection, 'Open_vSwitch',
                                              helper_tables=TABLES)
    return impl_idl.OvsdbIdl(ovs_connection.Connection(idl, timeout))


def timed(func, *args, results=None):
    start = time.perf_counter()
    result = func(*args)
    elapsed = time.perf_counter() - start
    if results is not None:
        results.append(result)
    return elapsed


def wrong_ports(switch, wanted):
    """What differs between br-int and the ports that should be on it.

    :param wanted: {port name: external_ids it must carry}.
    :returns: list of strings, one per port that is missing, carries other
        external_ids or has no valid ofport (empty: all right).
    """
    on_bridge = set(switch.list_ports(BRIDGE))
    interfaces = {iface['name']: iface for iface in switch.list_interfaces()}
    wrong = []
    for name, external_ids in sorted(wanted.items()):
        iface = interfaces.get(name)
        if name not in on_bridge or iface is None:
            wrong.append('%s: not on %s' % (name, BRIDGE))
        elif iface['external_ids'] != external_ids:
            wrong.append('%s: external_ids %s, not %s' % (
                name, iface['external_ids'], external_ids))
        elif not iface['ofport'] or iface['ofport'] < 1:
            wrong.append('%s: ofport %s (error %s)' % (
                name, iface['ofport'], iface['error']))
    return wrong


def count_requests(switch, timeout, instance):
    """OVSDB requests per plug and per unplug, through a counting proxy.

    :returns: ({method: count per plug}, {method: count per unplug}).
    """
    with tempfile.TemporaryDirectory() as directory:
        proxy = benchlib.CountingProxy(switch.port, directory)
        try:
            counted = plugin.HyperVOvsPlugin(benchlib.plugin_config(
                ovsdb_connection='tcp:127.0.0.1:%d' % proxy.port,
                timeout=timeout))
            vifs = [make_vif(benchlib.port_uuid('eeeeeeee', i), i)
                    for i in range(COUNTED + 1)]
            # The first connects (schema, monitors): not counted.
            counted.plug(vifs[0], instance)
            start = time.monotonic()
            for vif in vifs[1:]:
                counted.plug(vif, instance)
            middle = time.monotonic()
            for vif in vifs[1:]:
                counted.unplug(vif, instance)
            end = time.monotonic()
            counted.unplug(vifs[0], instance)
            counted.close()
            # The proxy logs a request when it has forwarded it.
            time.sleep(0.2)
            plugs = proxy.methods_between(start, middle)
            unplugs = proxy.methods_between(middle, end)
        finally:
            proxy.close()
    return ({m: n / float(COUNTED) for m, n in plugs.items()},
            {m: n / float(COUNTED) for m, n in unplugs.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=500)
    parser.add_argument('--timeout', type=int, default=30)
    benchlib.add_short_option(parser, ports=20)
    args = benchlib.parse(parser)
    osv_objects.register_all()
    targets = benchlib.Targets(args.short)

    with ovs.OpenVSwitchFixture() as switch:
        hv_plugin = plugin.HyperVOvsPlugin(benchlib.plugin_config(
            ovsdb_connection=switch.connection, timeout=args.timeout))
        # The bare baseline gets its own connection to the same server.
        bare = bare_api(switch.connection, args.timeout)
        instance = osv_objects.instance_info.InstanceInfo(
            uuid=benchlib.port_uuid('dddddddd', 0), name='instance-00000001')

        def bare_plug(name, external_ids):
            with bare.transaction(check_error=True) as txn:
                txn.add(bare.add_port(BRIDGE, name, may_exist=True))
                txn.add(bare.db_set('Interface', name,
                                    ('external_ids', external_ids)))

        def bare_unplug(name):
            bare.del_port(name, bridge=BRIDGE, if_exists=True).execute(
                check_error=True)

        plug_s, unplug_s, bare_plug_s, bare_unplug_s = [], [], [], []
        statuses = []
        vifs = [make_vif(benchlib.port_uuid('aaaaaaaa', i), i)
                for i in range(args.ports)]
        bare_names = [benchlib.port_uuid('bbbbbbbb', i)
                      for i in range(args.ports)]
        bare_ids = [{'iface-id': name, 'iface-status': 'active',
                     'attached-mac': vif.address, 'vm-uuid': instance.uuid}
                    for name, vif in zip(bare_names, vifs)]
        # One of each first, not timed: connecting is not a plug.
        warm = make_vif(benchlib.port_uuid('ffffffff', 0), 0)
        hv_plugin.plug(warm, instance)
        hv_plugin.unplug(warm, instance)
        bare_plug('warm-up', {})
        bare_unplug('warm-up')
        for i, vif in enumerate(vifs):
            # Interleaved, so machine noise hits both series alike.
            plug_s.append(timed(hv_plugin.plug, vif, instance,
                                results=statuses))
            bare_plug_s.append(timed(bare_plug, bare_names[i],
                                     bare_ids[i]))
        # Right before timing the unplugs: every port is on br-int, with
        # neutron's external_ids and the ownership markers, and up.
        wanted = {vif.id: {'iface-id': vif.id,
                           'iface-status': 'active',
                           'attached-mac': vif.address,
                           'vm-uuid': instance.uuid,
                           plugin.OWNER_KEY: plugin.OWNER,
                           plugin.OWNER_HOST_KEY: hv_plugin.compute_host}
                  for vif in vifs}
        wanted.update(zip(bare_names, bare_ids))
        wrong = wrong_ports(switch, wanted)
        wrong += ['%s: plug returned ofport %s (error %s)' % (
            vif.id, status.ofport, status.error)
            for vif, status in zip(vifs, statuses) if not status.is_up]
        for i, vif in enumerate(vifs):
            unplug_s.append(timed(hv_plugin.unplug, vif, instance))
            bare_unplug_s.append(timed(bare_unplug, bare_names[i]))
        ports_left = [p for p in switch.list_ports(BRIDGE)
                      if p.startswith(('aaaaaaaa', 'bbbbbbbb'))]
        hv_plugin.close()
        bare.ovsdb_connection.stop()
        per_plug, per_unplug = count_requests(switch, args.timeout, instance)
        ports_left += [p for p in switch.list_ports(BRIDGE)
                       if p.startswith('eeeeeeee')]

    ms = 1000.0
    plug_ratio = statistics.median(plug_s) / statistics.median(bare_plug_s)
    unplug_ratio = (statistics.median(unplug_s) /
                    statistics.median(bare_unplug_s))
    print('hyperv_ovs plugin vs. bare ovsdbapp, %d ports%s, real '
          'ovsdb-server + ovs-vswitchd on loopback TCP' % (
              args.ports, ' (short round)' if args.short else ''))
    for what, series in (('plug', plug_s),
                         ('bare add-port + external_ids', bare_plug_s),
                         ('unplug', unplug_s),
                         ('bare del-port', bare_unplug_s)):
        print('  %-29s median %.2f ms  p99 %.2f ms' % (
            what, statistics.median(series) * ms,
            benchlib.percentile(series, 99) * ms))
    print('  OVSDB requests per plug: %s; per unplug: %s' % (
        per_plug, per_unplug))
    print('  ports wrong after the plugs: %d%s' % (
        len(wrong), ''.join('\n    ' + line for line in wrong[:10])))
    print('  plugin ports left after unplug: %d' % len(ports_left))
    targets.check('plug median / bare median <= %.1fx' % TARGET,
                  plug_ratio <= TARGET, '%.2fx' % plug_ratio)
    targets.check('unplug median / bare median <= %.1fx' % TARGET,
                  unplug_ratio <= TARGET, '%.2fx' % unplug_ratio)
    # One write transaction each and no other request; python-ovs' echo
    # (its keep-alive when a connection was idle) is not the plugin's.
    right = not wrong and not ports_left and all(
        counts.get('transact') == 1.0 and
        not set(counts) - {'transact', 'echo'}
        for counts in (per_plug, per_unplug))
    return targets.exit_code(right)


if __name__ == '__main__':
    sys.exit(main())
