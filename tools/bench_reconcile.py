"""Start-up reconciliation of OVS ports against a real Open vSwitch.

Builds a bridge of N ports (default 1000) on a private ovsdb-server +
ovs-vswitchd (tests/fixtures/ovs.py), a mix of:

- ports this compute service owns that match its instances' VIFs,
- owned ports whose external_ids must be corrected,
- owned ports whose instance is gone (to remove),
- foreign ports (neutron-like VIF ports without the markers, and ports
  owned by another compute service),

plus VIFs whose port is missing (to recreate), and runs one pass of
``PortSync.sync`` (what nova-compute's start-up runs once it has read its
instances from nova's database; that database read is not measured here).

Prints:

- the JSON-RPC requests the driver sent to ovsdb-server, per phase
  (counted by a loopback proxy between the driver and ovsdb-server):
  connect, read, write; target: one read plus one write transaction;
- wall time of the pass, and the same without the wait for ovs-vswitchd
  to apply the change (ovsdbapp waits for ``cur_cfg``); target under 1 s;
  with the CPU time the process spent and the load average, since wall
  time on a shared machine says more about the machine;
- that the result is right (ports recreated, corrected, removed, foreign
  ports untouched).

The targets (one read plus one write transaction, the pass under 1 s of
wall time) decide the exit code of a full run; a short round (``--short``,
100 ports) only prints them, and fails only when the pass errors or its
result is wrong.

Usage: python tools/bench_reconcile.py [--ports 1000] [--timeout 60]
                                       [--short]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

# First, as nova-compute's entry point does: nova picks its concurrency
# mode (native threads under tox.ini's OS_NOVA_DISABLE_EVENTLET_PATCHING)
# before os-vif or oslo.service are imported, since they would import
# eventlet, which nova's threading mode then refuses.
import tests  # noqa: E402,F401

import benchlib  # noqa: E402
from compute_hyperv_ovs.os_vif_plugin import plugin  # noqa: E402
from compute_hyperv_ovs import portsync  # noqa: E402
from tests.fixtures import ovs  # noqa: E402

BRIDGE = 'br-int'
HOST = 'bench-host'
READS = benchlib.READS
port_uuid = benchlib.port_uuid
mac = benchlib.mac
# Targets of a full run: the pass in one read and one write transaction,
# within this many seconds of wall time.
TARGET_S = 1.0


def build_bridge(switch, n_ports):
    """Fill the bridge; returns (wanted specs, expected results)."""
    n_match = int(n_ports * 0.6)
    n_correct = n_ports // 10
    n_remove = n_ports // 10
    n_foreign = n_ports - n_match - n_correct - n_remove
    n_missing = n_ports // 10
    markers = {plugin.OWNER_KEY: plugin.OWNER, plugin.OWNER_HOST_KEY: HOST}

    def ids(i, **extra):
        out = {'iface-id': port_uuid('aaaaaaaa', i), 'iface-status': 'active',
               'attached-mac': mac(i), 'vm-uuid': port_uuid('bbbbbbbb', i)}
        out.update(markers)
        out.update(extra)
        return out

    wanted, rows = {}, []
    i = 0
    for _ in range(n_match):
        spec = plugin.PortSpec(BRIDGE, port_uuid('aaaaaaaa', i), ids(i), None)
        wanted[spec.name] = spec
        rows.append((spec.name, spec.external_ids))
        i += 1
    for _ in range(n_correct):
        spec = plugin.PortSpec(BRIDGE, port_uuid('aaaaaaaa', i), ids(i), None)
        wanted[spec.name] = spec
        wrong_mac = {'attached-mac': 'fa:16:3e:ff:ff:ff'}
        rows.append((spec.name, ids(i, **wrong_mac)))
        i += 1
    removed = []
    for _ in range(n_remove):
        rows.append((port_uuid('aaaaaaaa', i), ids(i)))
        removed.append(port_uuid('aaaaaaaa', i))
        i += 1
    foreign = {}
    for k in range(n_foreign):
        name = port_uuid('dddddddd', k)
        extra = ({} if k % 2 else
                 {plugin.OWNER_KEY: plugin.OWNER,
                  plugin.OWNER_HOST_KEY: 'other-host'})
        external_ids = {'iface-id': name, 'attached-mac': mac(k)}
        external_ids.update(extra)
        rows.append((name, external_ids))
        foreign[name] = external_ids
    for _ in range(n_missing):
        spec = plugin.PortSpec(BRIDGE, port_uuid('aaaaaaaa', i), ids(i), None)
        wanted[spec.name] = spec
        i += 1

    # One ovs-vsctl run per chunk (the command line has a length limit).
    for start in range(0, len(rows), 200):
        args = []
        for name, external_ids in rows[start:start + 200]:
            args += ['--', 'add-port', BRIDGE, name,
                     '--', 'set', 'Interface', name] + [
                         'external_ids:%s="%s"' % kv
                         for kv in external_ids.items()]
        switch.vsctl(*args)
    expected = {'recreated': n_missing, 'corrected': n_correct,
                'removed': n_remove, 'foreign': foreign,
                'removed_names': removed,
                'on_bridge': n_match + n_correct + n_remove + n_foreign}
    return wanted, expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--timeout', type=int, default=60)
    benchlib.add_short_option(parser, ports=100)
    args = benchlib.parse(parser)
    targets = benchlib.Targets(args.short)

    switch = ovs.OpenVSwitchFixture(timeout=args.timeout)
    switch.setUp()
    proxy = None
    try:
        wanted, expected = build_bridge(switch, args.ports)
        assert len(switch.list_ports()) == expected['on_bridge']
        proxy = benchlib.CountingProxy(switch.port, switch.dir)
        vif_plugin = plugin.HyperVOvsPlugin(benchlib.plugin_config(
            ovsdb_connection='tcp:127.0.0.1:%d' % proxy.port,
            timeout=args.timeout))
        vif_plugin.set_compute_host(HOST)
        sync = portsync.PortSync(None, vif_plugin, HOST, list_vms=None)

        c3 = time.process_time()
        t3 = time.monotonic()
        result = sync.sync(wanted, set(), lambda uuids: set())
        t4 = time.monotonic()
        c4 = time.process_time()
        # The proxy logs a message once it has forwarded it.
        time.sleep(0.2)
        during_pass = proxy.methods_since(t3)
        monitor_replied = proxy.reply_to_first_after(t3, READS)
        transact_sent = proxy.first_sent_after(t3, 'transact')
        committed = proxy.transact_reply_after(t3)
        ports_after = set(switch.list_ports())
        ids_after = {iface['name']: iface['external_ids']
                     for iface in switch.list_interfaces()}

        print('ports on the bridge before: %d (%d owned and matching, %d '
              'owned to correct, %d owned to remove, %d foreign); VIFs '
              'without a port: %d' % (
                  expected['on_bridge'],
                  len(wanted) - expected['corrected'] - expected['recreated'],
                  expected['corrected'], expected['removed'],
                  len(expected['foreign']), expected['recreated']))
        print('result (recreated, corrected, removed): %s; expected %s' % (
            result, (expected['recreated'], expected['corrected'],
                     expected['removed'])))
        # Every wanted port on the bridge with its external_ids (so the
        # corrected ones too), the foreign ones as they were, the removed
        # ones gone.
        wrong = ['%s: %s, wanted %s' % (name, ids_after.get(name), ids)
                 for name, ids in sorted(
                     [(n, s.external_ids) for n, s in wanted.items()] +
                     list(expected['foreign'].items()))
                 if name not in ports_after or ids_after.get(name) != ids]
        wrong += ['%s: not removed' % name for name in
                  sorted(set(expected['removed_names']) & ports_after)]
        ok = (result == (expected['recreated'], expected['corrected'],
                         expected['removed']) and not wrong)
        print('ports after: %d; ports wrong: %d%s; right: %s' % (
            len(ports_after), len(wrong),
            ''.join('\n  ' + line for line in wrong[:10]), ok))
        print('OVSDB requests of the pass (its own connection: schema, one '
              'monitor whose initial reply is the read, one transact): %s'
              % during_pass)
        reads = sum(during_pass.get(m, 0) for m in READS)
        writes = during_pass.get('transact', 0)
        print('reads: %d, write transactions: %d' % (reads, writes))
        print('pass wall time: %.3f s; CPU time of this process (all its '
              'threads) during it: %.3f s; load average: '
              '%.1f' % (t4 - t3, c4 - c3, os.getloadavg()[0]))
        if monitor_replied and committed:
            print('  connect + read (until the Open_vSwitch monitor reply): '
                  '%.3f s; the IDL loading the reply, diff, transaction '
                  'built and sent: %.3f s; ovsdb-server committing it: '
                  '%.3f s; waiting for ovs-vswitchd to apply it: %.3f s' % (
                      monitor_replied - t3, transact_sent - monitor_replied,
                      committed - transact_sent, t4 - committed))
            print('pass wall time without ovs-vswitchd\'s work: %.3f s'
                  % (committed - t3))
        targets.check('%d ports in one read plus one write transaction'
                      % args.ports, (reads, writes) == (1, 1),
                      '%d read(s), %d write transaction(s)' % (reads, writes))
        targets.check('pass wall time < %.1f s' % TARGET_S,
                      t4 - t3 < TARGET_S, '%.3f s' % (t4 - t3))
        return targets.exit_code(ok)
    finally:
        if proxy:
            proxy.close()
        switch.cleanUp()


if __name__ == '__main__':
    sys.exit(main())
