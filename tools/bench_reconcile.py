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

Usage: python tools/bench_reconcile.py [--ports 1000] [--timeout 60]
"""

import argparse
import json
import multiprocessing
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from compute_hyperv_ovs.os_vif_plugin import plugin  # noqa: E402
from compute_hyperv_ovs import portsync  # noqa: E402
from tests.fixtures import ovs  # noqa: E402

BRIDGE = 'br-int'
HOST = 'bench-host'
# The IDL's requests whose reply carries the database's contents.
MONITORS = ('monitor', 'monitor_cond', 'monitor_cond_since')
READS = tuple('%s:Open_vSwitch' % m for m in MONITORS)


def port_uuid(prefix, i):
    return '%s-0000-4000-8000-%012d' % (prefix, i)


def mac(i):
    return 'fa:16:3e:%02x:%02x:%02x' % (i >> 16 & 255, i >> 8 & 255, i & 255)


def _proxy_main(target_port, log_path, ready):
    """The proxy's process: forward, and log JSON-RPC traffic to log_path.

    It runs in a process of its own so that reading the traffic takes no
    CPU from (and no GIL time of) the process under test.  Each line of the
    log: ``<monotonic time> request <method> <id>`` or ``<monotonic time>
    reply <id>``; CLOCK_MONOTONIC is the same clock in both processes.
    """
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    log = open(log_path, 'a', buffering=1)
    lock = threading.Lock()

    def record(line):
        with lock:
            log.write(line + '\n')

    def pump(src, dst, from_client):
        decoder = json.JSONDecoder()
        buf = ''
        while True:
            try:
                data = src.recv(262144)
            except OSError:
                data = b''
            if not data:
                for sock in (src, dst):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            dst.sendall(data)
            now = time.monotonic()
            buf += data.decode('utf-8')
            # A JSON-RPC message ends with '}'; only then try to decode, so
            # a large reply arriving in many chunks is decoded once.
            while buf.rstrip().endswith('}'):
                buf = buf.lstrip()
                try:
                    msg, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                if from_client and msg.get('method'):
                    method = msg['method']
                    if method in MONITORS:
                        # Which database: the IDL also monitors the
                        # server's own _Server database.
                        method += ':%s' % msg['params'][0]
                    msg_id = json.dumps(msg.get('id'))
                    record('%r request %s %s' % (now, method, msg_id))
                elif not from_client and 'result' in msg:
                    record('%r reply %s' % (now, json.dumps(msg.get('id'))))

    ready.put(listener.getsockname()[1])
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(('127.0.0.1', target_port))
        threading.Thread(target=pump, args=(client, server, True),
                         daemon=True).start()
        threading.Thread(target=pump, args=(server, client, False),
                         daemon=True).start()


class CountingProxy(object):
    """A loopback TCP proxy, in a process of its own, that logs JSON-RPC.

    Counts requests by method and tells when replies came back.
    """

    def __init__(self, target_port, directory):
        self.log_path = os.path.join(directory, 'jsonrpc.log')
        context = multiprocessing.get_context('spawn')
        ready = context.Queue()
        self.process = context.Process(
            target=_proxy_main, args=(target_port, self.log_path, ready),
            daemon=True)
        self.process.start()
        self.port = ready.get(timeout=30)

    def _events(self):
        requests, replies = [], {}
        try:
            with open(self.log_path) as log:
                lines = log.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            parts = line.split(' ')
            when = float(parts[0])
            if parts[1] == 'request':
                requests.append((when, parts[2], parts[3]))
            else:
                replies.setdefault(parts[2], when)
        return requests, replies

    def methods_since(self, start):
        counts = {}
        for when, method, _id in self._events()[0]:
            if when >= start:
                counts[method] = counts.get(method, 0) + 1
        return counts

    def reply_to_first_after(self, start, methods):
        """Reply time of the first request of ``methods`` after start."""
        requests, replies = self._events()
        ids = [i for when, method, i in requests
               if when >= start and method in methods]
        return replies.get(ids[0]) if ids else None

    def first_sent_after(self, start, method):
        times = [when for when, m, _i in self._events()[0]
                 if when >= start and m == method]
        return times[0] if times else None

    def transact_reply_after(self, start):
        """Reply time of the last transact request sent after start."""
        requests, replies = self._events()
        ids = [i for when, method, i in requests
               if when >= start and method == 'transact']
        return replies.get(ids[-1]) if ids else None

    def close(self):
        self.process.terminate()
        self.process.join(10)


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
    foreign = []
    for k in range(n_foreign):
        name = port_uuid('dddddddd', k)
        extra = ({} if k % 2 else
                 {plugin.OWNER_KEY: plugin.OWNER,
                  plugin.OWNER_HOST_KEY: 'other-host'})
        external_ids = {'iface-id': name, 'attached-mac': mac(k)}
        external_ids.update(extra)
        rows.append((name, external_ids))
        foreign.append(name)
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
    args = parser.parse_args()

    switch = ovs.OpenVSwitchFixture(timeout=args.timeout)
    switch.setUp()
    proxy = None
    try:
        wanted, expected = build_bridge(switch, args.ports)
        assert len(switch.list_ports()) == expected['on_bridge']
        proxy = CountingProxy(switch.port, switch.dir)

        class Config(object):
            ovsdb_connection = 'tcp:127.0.0.1:%d' % proxy.port
            timeout = args.timeout

        vif_plugin = plugin.HyperVOvsPlugin(Config())
        vif_plugin.set_compute_host(HOST)
        sync = portsync.PortSync(None, vif_plugin, HOST, list_vms=None)

        c3 = time.process_time()
        t3 = time.monotonic()
        result = sync.sync(wanted, set(), lambda uuids: set())
        t4 = time.monotonic()
        c4 = time.process_time()
        during_pass = proxy.methods_since(t3)
        monitor_replied = proxy.reply_to_first_after(t3, READS)
        transact_sent = proxy.first_sent_after(t3, 'transact')
        committed = proxy.transact_reply_after(t3)
        ports_after = set(switch.list_ports())

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
        ok = (result == (expected['recreated'], expected['corrected'],
                         expected['removed']) and
              set(wanted) <= ports_after and
              set(expected['foreign']) <= ports_after and
              not set(expected['removed_names']) & ports_after)
        print('ports after: %d; right: %s' % (len(ports_after), ok))
        print('OVSDB requests of the pass (its own connection: schema, one '
              'monitor whose initial reply is the read, one transact): %s'
              % during_pass)
        print('reads: %d, write transactions: %d' % (
            sum(during_pass.get(m, 0) for m in READS),
            during_pass.get('transact', 0)))
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
        return 0 if ok else 1
    finally:
        if proxy:
            proxy.close()
        switch.cleanUp()


if __name__ == '__main__':
    sys.exit(main())
