"""os-win under nova 34's native threading mode (the suite's default)."""

import os
import sys

from nova import utils as nova_utils
import testtools

from compute_hyperv_ovs import compat


def _threading_run():
    return os.environ.get('OS_NOVA_DISABLE_EVENTLET_PATCHING',
                          '').lower() in ('1', 'true', 'yes')


@testtools.skipUnless(_threading_run(), 'a threading-mode run only')
class ThreadingModeTestCase(testtools.TestCase):

    def test_nova_runs_native_threads(self):
        self.assertTrue(nova_utils.concurrency_mode_threading())

    def test_no_eventlet_module_is_visible(self):
        # nova's poison_eventlet and libraries testing for eventlet (kombu,
        # oslo.rootwrap) must find none, stand-in included.
        self.assertNotIn('eventlet', sys.modules)

    def test_os_win_modules_took_the_stand_in(self):
        for name in compat.OS_WIN_EVENTLET_MODULES:
            self.assertIn(name, sys.modules)
        self.assertTrue(compat.uses_stand_in(sys.modules['os_win._utils']))
        self.assertTrue(compat.uses_stand_in(
            sys.modules['os_win.utils.compute.vmutils']))

    def test_real_eventlet_stays_refused(self):
        with testtools.ExpectedException(ImportError, '.*threading mode.*'):
            __import__('eventlet.hubs')

    def test_os_win_blocking_calls_run_in_the_calling_thread(self):
        from os_win import _utils
        self.assertEqual(42, _utils.avoid_blocking_call(lambda: 42))

    def test_install_again_changes_nothing(self):
        compat.install()
        self.assertNotIn('eventlet', sys.modules)
