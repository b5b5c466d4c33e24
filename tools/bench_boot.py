"""20 servers booted at once through nova: this driver vs nova's fake driver.

Runs nova's in-process functional stack (real API, conductor, scheduler,
placement and compute manager; ``tests/functional/base.py``) with two
compute services in one run:

- ``host1``: this driver on a simulated Hyper-V host with a real
  ovsdb-server + ovs-vswitchd and the neutron-openvswitch-agent stand-in
  (which sends ``network-vif-plugged`` once it sees a port up);
- ``fake1``: nova's ``fake.FakeDriver`` (a host big enough for all of
  them), which neither plugs nor waits for anything.

Each round sends N ``POST /servers`` at once (one DOWN neutron port each),
forced onto one host, and times them until every server is ACTIVE; the
servers are then deleted (not timed).  Rounds alternate between the hosts,
after one warm-up round per host that is not counted.
Every server must be ACTIVE on its host; for this driver's rounds it also
checks that every port is in OVSDB exactly once (one Interface row, on
br-int), that each server's VM runs, and that the deletes leave no VM and
no OVS port behind.  Printed: per-round times, medians, and their ratio
(target: at most 1.3, which decides the exit code of a full run;
``--short``, 3 servers in one round, only prints it and fails only when a
boot or a check does).

Not a test: a small runner drives one test method of nova's functional
framework (it needs a testtools TestCase) and prints what it measured.

Usage: python tools/bench_boot.py [--servers 20] [--rounds 3] [--short]
                                  [--profile FILE] [--watchdog 1800]
"""

import argparse
import collections
from concurrent import futures
import contextlib
import cProfile
import faulthandler
import glob
import io
import logging
import os
import pstats
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

# First, as nova-compute's entry point does: the tests package lets nova
# pick its concurrency mode (tests/__init__.py), native threads under
# tox.ini's OS_NOVA_DISABLE_EVENTLET_PATCHING=true; nova then refuses any
# import of eventlet, so the POSTs below go out from native threads.
from tests.functional import base  # noqa: E402

import benchlib  # noqa: E402
import fixtures  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import utils as nova_utils  # noqa: E402
from oslo_db.sqlalchemy import enginefacade  # noqa: E402

FIGURES = collections.OrderedDict()
OPTIONS = argparse.Namespace(servers=20, rounds=3, profile=None,
                             watchdog=1800)
# This driver's median round over the fake driver's, in a full run.
TARGET = 1.3
# The medians of the run, for the target: {'fake1': s, 'host1': s}.
MEDIANS = {}


def _cpu(after, before):
    return (after.ru_utime - before.ru_utime +
            after.ru_stime - before.ru_stime)


class CellLockBeforeWriteLock(fixtures.Fixture):
    """One lock order for two of nova 34's test fixtures (threading mode).

    nova's ``DatabaseWriteLock`` serialises writer transactions per SQLite
    database; ``CellDatabases`` guards which cell untargeted code reaches
    with a ReaderWriterLock whose waiting writers block new readers.  With
    many boots at once they deadlock: a service's report (``Service.save``,
    a writer) holds the write lock and does a nested untargeted read, so
    waits for the cell read lock; the scheduler waits for the cell write
    lock (to switch cells), which blocks that read; the conductor, inside
    ``target_cell`` (cell read lock held), waits for the write lock to
    create its instance.  Seen in a full run of this benchmark, where
    every thread then waited forever.

    Here a writer transaction takes the cell read lock before the write
    lock, so any holder of the write lock already is a reader and its
    nested reads re-enter, whatever writer waits.  Both hosts' services run
    under it alike; nova-compute has neither lock outside nova's tests.
    """

    def _setUp(self):
        cells = getattr(nova_context.target_cell, '__self__', None)
        cell_lock = getattr(cells, '_cell_lock', None)
        if cell_lock is None:
            raise RuntimeError("nova's CellDatabases fixture is not in "
                               'place, or has no _cell_lock any more')
        write_locked = enginefacade._TransactionContextManager.\
            _transaction_scope

        @contextlib.contextmanager
        def scope(tcm_self, context):
            if tcm_self._mode is enginefacade._WRITER:
                with cell_lock.read_lock():
                    with write_locked(tcm_self, context) as resource:
                        yield resource
            else:
                with write_locked(tcm_self, context) as resource:
                    yield resource

        self.useFixture(fixtures.MockPatchObject(
            enginefacade._TransactionContextManager, '_transaction_scope',
            scope))


class BootBenchmark(base.HyperVOVSTestBase):

    # Casts stay casts: the API answers each POST at once, as deployed.
    CAST_AS_CALL = False

    def _set_timeout(self):
        # oslotest's per-test limit (tox.ini's OS_TEST_TIMEOUT, 300 s) is
        # too short for a full run, which is one test: the run's limit is
        # --watchdog's, less time for the clean-up to stop the services.
        self.useFixture(fixtures.Timeout(
            max(OPTIONS.watchdog - 120, OPTIONS.watchdog // 2), gentle=True))

    def _setup_services(self):
        # Before any service starts: see CellLockBeforeWriteLock.
        if nova_utils.concurrency_mode_threading():
            self.useFixture(CellLockBeforeWriteLock())
        super()._setup_services()

    def setUp(self):
        super().setUp()
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self.bench_ports = 0
        self.image = self.images.create_image('vhdx')
        self.start_compute('host1')
        # The fake driver's host; the driver is read when its service is
        # built, so host1 keeps this driver.
        self.flags(compute_driver='fake.FakeDriver')
        self.start_service('compute', host='fake1')
        self.flags(compute_driver=base.DRIVER)

    def boot_all(self, hostname):
        """POST N servers at once onto hostname; seconds until all ACTIVE."""
        self.phase = hostname
        ports = [self.create_port() for _ in range(OPTIONS.servers)]
        for port in ports:
            # base.create_port counts addresses in one /24; rounds need more.
            self.bench_ports += 1
            port['fixed_ips'][0]['ip_address'] = '10.%d.%d.%d' % (
                self.bench_ports >> 16 & 255, self.bench_ports >> 8 & 255,
                self.bench_ports & 255)
        requests = [{
            'name': 'bench-%s-%d' % (hostname, i),
            'imageRef': self.image,
            'flavorRef': self.flavor_id,
            'networks': [{'port': port['id']}],
            'availability_zone': 'nova:%s' % hostname,
        } for i, port in enumerate(ports)]
        self.notifier.reset()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        # One thread per POST, all sent at once, as N clients would.
        with futures.ThreadPoolExecutor(len(requests)) as pool:
            start = time.monotonic()
            servers = list(pool.map(
                lambda body: self.admin_api.post_server({'server': body}),
                requests))
            posted = time.monotonic() - start
        # nova sends instance.create.end once a server is ACTIVE (or
        # instance.create.error); waiting on them polls nothing, as polling
        # the in-process API would slow what is measured.
        self.notifier.wait_for_versioned_notifications(
            'instance.create.end', n_events=len(servers), timeout=300)
        elapsed = time.monotonic() - start
        cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF), usage)
        child_cpu = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN),
                         children)
        self.timeline.setdefault(hostname, []).append(
            'POSTs %.1f s, all ACTIVE %.1f s (CPU: this process %.1f s, '
            'its child processes %.1f s)' % (posted, elapsed, cpu, child_cpu))
        servers = [self.admin_api.get_server(s['id']) for s in servers]
        for server in servers:
            assert server['status'] == 'ACTIVE', server
            assert server['OS-EXT-SRV-ATTR:host'] == hostname, server
        return elapsed, servers, ports

    def spawn_times(self):
        """Durations nova's compute manager logs ("Took N seconds to ...").

        :returns: {'spawn the instance on the hypervisor': [seconds], ...}
        """
        took = collections.defaultdict(list)
        test = self

        class Recorder(logging.Handler):
            def emit(self, record):
                msg = record.getMessage()
                if record.name == 'placement.requestlog':
                    match = re.search(r'"(\w+) /placement/(\w+)'
                                      r'(?:/[^/ ?"]+)?(/\w+)?.*status: (\d+)',
                                      msg)
                    if match:
                        took['%s: placement %s %s%s %s' % (
                            (test.phase,) + match.groups(''))].append(0.0)
                    return
                match = re.search(r'Took ([0-9.]+) seconds to (.*?)\.?$',
                                  msg)
                if match:
                    took['%s: %s' % (test.phase, match.group(2))].append(
                        float(match.group(1)))

        handler = Recorder(logging.INFO)
        for name in ('nova.compute.manager', 'placement.requestlog'):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            self.addCleanup(logger.removeHandler, handler)
        return took

    def check_ovsdb(self, ports):
        """Each port exactly once in OVSDB: one Interface row, on br-int."""
        switch = self.ovs['host1']
        names = collections.Counter(
            iface['name'] for iface in switch.list_interfaces())
        on_bridge = collections.Counter(switch.list_ports('br-int'))
        for port in ports:
            assert names[port['id']] == 1, (port['id'], names[port['id']])
            assert on_bridge[port['id']] == 1, port['id']
        return len(ports)

    def check_running(self, servers):
        """Each of host1's servers has its VM, running."""
        for server in servers:
            vm = self.vm_of(server)
            assert vm is not None and vm.power_state_name == 'Running', (
                server['id'], vm and vm.power_state_name)
        return sum(1 for vm in self.host('host1').vms.values()
                   if vm.power_state_name == 'Running')

    def delete_all(self, servers, ports):
        self.phase += ' delete'
        for server in servers:
            self.admin_api.delete_server(server['id'])
        for server in servers:
            self._wait_until_deleted(server)
        if self.phase.startswith('host1'):
            # Nothing of them is left: no VM, no OVS port.
            assert not self.host('host1').vms, sorted(self.host('host1').vms)
            left = set(self.ovs['host1'].list_ports('br-int')) & {
                port['id'] for port in ports}
            assert not left, sorted(left)

    def test_boot(self):
        times = {'fake1': [], 'host1': []}
        self.timeline = {}
        took = self.spawn_times()
        profiler = cProfile.Profile() if OPTIONS.profile else None
        warmup = {}
        for hostname in ('fake1', 'host1'):
            # Not counted: the first boots fetch the image into host1's
            # cache and fill nova's and placement's caches.
            warmup[hostname], servers, ports = self.boot_all(hostname)
            self.delete_all(servers, ports)
        self.timeline = {}
        took.clear()
        for _round in range(OPTIONS.rounds):
            for hostname in ('fake1', 'host1'):
                if profiler is not None and hostname == 'host1':
                    profiler.enable()
                elapsed, servers, ports = self.boot_all(hostname)
                if profiler is not None and hostname == 'host1':
                    profiler.disable()
                times[hostname].append(elapsed)
                if hostname == 'host1':
                    FIGURES['ports checked in OVSDB'] = self.check_ovsdb(
                        ports)
                    FIGURES['VMs running on host1'] = self.check_running(
                        servers)
                self.delete_all(servers, ports)
        fake = statistics.median(times['fake1'])
        hyperv = statistics.median(times['host1'])
        MEDIANS.update(fake1=fake, host1=hyperv)
        FIGURES['servers per round'] = OPTIONS.servers
        FIGURES['warm-up round (not counted), s'] = (
            'fake driver %.2f, this driver %.2f' % (warmup['fake1'],
                                                    warmup['host1']))
        FIGURES['fake driver, s per round'] = ' '.join(
            '%.2f' % t for t in times['fake1'])
        FIGURES['this driver, s per round'] = ' '.join(
            '%.2f' % t for t in times['host1'])
        FIGURES['fake driver median, s'] = '%.2f' % fake
        FIGURES['this driver median, s'] = '%.2f' % hyperv
        for hostname, lines in sorted(self.timeline.items()):
            FIGURES['%s rounds' % hostname] = '; '.join(lines)
        for what, values in sorted(took.items()):
            if 'placement' in what:
                FIGURES[what] = '%d requests' % len(values)
                continue
            FIGURES['compute log: %s, s' % what] = (
                'n=%d median %.2f max %.2f' % (
                    len(values), statistics.median(values), max(values)))
        if profiler is not None:
            profiler.dump_stats(OPTIONS.profile)
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats('tottime').print_stats(25)
            FIGURES['profile (own time), also in ' + OPTIONS.profile] = (
                '\n' + out.getvalue())


def _children():
    """Pids of this process's children (ovsdb-server, ovs-vswitchd...)."""
    pids = set()
    for path in glob.glob('/proc/self/task/*/children'):
        with open(path) as children:
            pids.update(int(pid) for pid in children.read().split())
    return pids


def start_watchdog(seconds):
    """After ``seconds``, print every thread's stack and exit 1.

    A hang (a deadlock in nova's threads, or a clean-up waiting on one)
    then fails the run, where otherwise it would hold CI until its own
    limit.  The child processes the fixtures started (the private OVS
    daemons, ovsdb-client monitors) are stopped by pid first, and the
    temporary directory the fixtures nest theirs in is removed, since the
    fixtures' clean-up cannot run.
    """
    top = os.path.realpath(tempfile.gettempdir())

    def expire():
        # sys.__stderr__: the test fixtures may be capturing sys.stderr.
        print('bench_boot: still running after %d s (--watchdog); the '
              'threads:' % seconds, file=sys.__stderr__, flush=True)
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        for pid in _children():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        # nova's NestedTempfile points tempfile at a directory it made
        # under the one of the start; remove the outermost such.
        nested = os.path.realpath(tempfile.gettempdir())
        if nested != top and nested.startswith(top + os.sep):
            outer = os.path.join(top, nested[len(top) + 1:].split(os.sep)[0])
            # nova's threads still run and may add files meanwhile.
            for _attempt in range(5):
                shutil.rmtree(outer, ignore_errors=True)
                if not os.path.exists(outer):
                    break
                time.sleep(0.1)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--profile', metavar='FILE',
                        help="profile this driver's rounds into FILE "
                             "(pstats; prints the top by own time)")
    parser.add_argument('--watchdog', type=int, default=1800,
                        metavar='SECONDS',
                        help='fail (exit 1, printing every thread) when '
                             'the run takes longer')
    benchlib.add_short_option(parser, servers=3, rounds=1, watchdog=300)
    benchlib.parse(parser, namespace=OPTIONS)
    start_watchdog(OPTIONS.watchdog)
    targets = benchlib.Targets(OPTIONS.short)
    result = unittest.TestResult()
    try:
        BootBenchmark('test_boot').run(result)
    except SystemExit as exc:
        # testtools lets it through: nova-compute's service exits when it
        # cannot load its driver (the package not installed in this env).
        print('nova exited (code %s) during the benchmark; its log is '
              'captured unless OS_LOG_CAPTURE=false' % exc.code,
              file=sys.stderr)
        return 1
    for test, trace in result.errors + result.failures:
        print(trace, file=sys.stderr)
    if OPTIONS.short:
        print('short round: %d servers, %d round(s)' % (
            OPTIONS.servers, OPTIONS.rounds))
    for name, value in FIGURES.items():
        print('%-32s %s' % (name + ':', value))
    if MEDIANS:
        ratio = MEDIANS['host1'] / MEDIANS['fake1']
        targets.check('this driver / fake driver <= %.1fx' % TARGET,
                      ratio <= TARGET, '%.2fx' % ratio)
    return targets.exit_code(result.wasSuccessful() and bool(MEDIANS))


if __name__ == '__main__':
    sys.exit(main())
