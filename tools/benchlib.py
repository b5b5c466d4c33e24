"""What the benchmarks share: configuration, short rounds, targets, a proxy.

Each benchmark (``tox -e bench``, ``bench-boot``, ``bench-reconcile``)
has a full run, whose targets decide its exit code, and a short round
(``--short``: few iterations) that CI runs after the test suite
(``tools/run-tests.sh``) so that none breaks unseen.  A short round fails
(exit 1) when the benchmark errors or its result is wrong; its figures are
printed, but its targets are not checked: a few iterations on a shared
2-core machine say too little.
"""

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import threading
import time

from oslo_config import cfg

from compute_hyperv_ovs import conf as hyperv_conf
from compute_hyperv_ovs.os_vif_plugin import plugin


def add_short_option(parser, **short):
    """Add ``--short``; with it, the given defaults apply instead.

    :param parser: argparse.ArgumentParser whose options are added first.
    :param short: option dest to its short-round value, e.g. ports=20;
        an option given on the command line wins.
    """
    parser.add_argument('--short', action='store_true',
                        help='a short round for CI (%s); figures are '
                             'printed, targets are not checked' % ', '.join(
                                 '%s=%s' % kv for kv in sorted(
                                     short.items())))
    parser.set_defaults(_short_values=short)


def parse(parser, argv=None, namespace=None):
    """Parse the command line, giving ``--short`` its values.

    An option given on the command line keeps its value, even one equal to
    its default; with ``--short``, the options of :func:`add_short_option`
    that were not given take the short round's value.

    :returns: the namespace (``namespace`` when given).
    """
    if namespace is None:
        namespace = argparse.Namespace()
    short = parser.get_default('_short_values') or {}
    # argparse sets no default on an attribute the namespace already has,
    # so one still holding the marker after parsing was not given.
    not_given = object()
    for dest in short:
        setattr(namespace, dest, not_given)
    args = parser.parse_args(argv, namespace=namespace)
    for dest, value in short.items():
        if getattr(args, dest) is not_given:
            setattr(args, dest,
                    value if args.short else parser.get_default(dest))
    return args


def plugin_config(**overrides):
    """``[os_vif_hyperv_ovs]`` as the plugin reads it in nova-compute.

    A ConfigOpts of its own, with every option of the package registered
    by the package itself (``compute_hyperv_ovs.conf.register_opts``) at
    its own default, so that a benchmark builds the plugin from the same
    options as the driver does and cannot drift from them; no
    configuration file is read.

    :param overrides: option name to value, e.g. ovsdb_connection=...
    :returns: the group's values, as ``HyperVOvsPlugin(config)`` takes.
    """
    conf = cfg.ConfigOpts()
    hyperv_conf.register_opts(conf)
    conf(args=[], project='compute-hyperv-ovs-bench',
         default_config_files=[], default_config_dirs=[])
    for name, value in overrides.items():
        conf.set_override(name, value, group=plugin.CONFIG_GROUP)
    return conf[plugin.CONFIG_GROUP]


class Targets(object):
    """Targets of a run: printed always, deciding the exit code in full runs.

    :param short: True for a short round (targets are only printed).
    """

    def __init__(self, short):
        self.short = short
        self.missed = []

    def check(self, what, met, figure):
        """Print ``what: figure`` with whether the target is met.

        :param what: the target, e.g. ``plug median / bare <= 1.1x``.
        :param met: bool.
        :param figure: the measured value, as printed.
        """
        if self.short:
            verdict = 'not checked in a short round'
        else:
            verdict = 'met' if met else 'MISSED'
            if not met:
                self.missed.append(what)
        print('target %s: %s (%s)' % (what, figure, verdict))

    def exit_code(self, right=True):
        """0 when the result is right and (in full runs) targets are met.

        :param right: whether the benchmark's result was correct; a wrong
            result fails a short round as well.
        """
        if not right:
            print('result WRONG')
            return 1
        return 1 if self.missed else 0


def percentile(values, pct):
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100.0 * (len(ordered) - 1)))
    return ordered[index]


def median_ms(values):
    return statistics.median(values) * 1000.0


def port_uuid(prefix, i):
    # Neutron port ids are UUIDs, and so are Windows OVS port names.
    return '%s-0000-4000-8000-%012d' % (prefix, i)


def mac(i):
    return 'fa:16:3e:%02x:%02x:%02x' % (i >> 16 & 255, i >> 8 & 255, i & 255)


# The IDL's requests whose reply carries the database's contents.
MONITORS = ('monitor', 'monitor_cond', 'monitor_cond_since')
READS = tuple('%s:Open_vSwitch' % m for m in MONITORS)


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
        return self.methods_between(start, float('inf'))

    def methods_between(self, start, end):
        """{method: requests forwarded from ``start`` to ``end``}.

        :param start, end: ``time.monotonic()`` values.
        """
        counts = {}
        for when, method, _id in self._events()[0]:
            if start <= when < end:
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
