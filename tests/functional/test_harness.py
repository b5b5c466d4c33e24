"""The functional harness itself: what one test leaves for the next."""

import subprocess
import sys

import testtools


class ThreadPoolShutdownTest(testtools.TestCase):

    def test_late_service_shutdown_leaves_thread_pools_for_later_tests(self):
        # A compute service's graceful shutdown ends in its own thread,
        # possibly after the test that stopped it is gone; it must not
        # leave the worker process unable to start nova's thread pools.
        # Run in a child process: a failure here would otherwise break
        # every later test in this worker.
        code = (
            'import tests.functional\n'
            'from nova import thread_pool_factory as pools\n'
            'pools.shutdown_all_executors()\n'
            'pools.get_executor(pools.ExecutorType.CACHE_IMAGES)\n')
        child = subprocess.run([sys.executable, '-c', code],
                               capture_output=True, text=True, timeout=120)
        self.assertEqual(0, child.returncode, child.stderr[-2000:])
