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

Usage: python tools/bench_boot.py [--servers 20] [--rounds 3]
                                  [--profile FILE] [--short]
"""

import argparse
import collections
from concurrent import futures
import cProfile
import io
import logging
import os
import pstats
import re
import resource
import statistics
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

# First, as nova-compute's entry point does: the tests package lets nova
# pick its concurrency mode (tests/__init__.py), native threads under
# tox.ini's OS_NOVA_DISABLE_EVENTLET_PATCHING=true; nova then refuses any
# import of eventlet, so the POSTs below go out from native threads.
from tests.functional import base  # noqa: E402

import benchlib  # noqa: E402

FIGURES = collections.OrderedDict()
OPTIONS = argparse.Namespace(servers=20, rounds=3, profile=None)
# This driver's median round over the fake driver's, in a full run.
TARGET = 1.3
# The medians of the run, for the target: {'fake1': s, 'host1': s}.
MEDIANS = {}


def _cpu(after, before):
    return (after.ru_utime - before.ru_utime +
            after.ru_stime - before.ru_stime)


class BootBenchmark(base.HyperVOVSTestBase):

    # Casts stay casts: the API answers each POST at once, as deployed.
    CAST_AS_CALL = False

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--profile', metavar='FILE',
                        help="profile this driver's rounds into FILE "
                             "(pstats; prints the top by own time)")
    benchlib.add_short_option(parser, servers=3, rounds=1)
    benchlib.parse(parser, namespace=OPTIONS)
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
