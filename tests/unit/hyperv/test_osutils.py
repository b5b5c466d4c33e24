"""One os-win utils object, and one WMI connection, per OS thread."""

import threading

from os_win.utils import baseutils
import testtools

from compute_hyperv_ovs.hyperv import osutils


class _Utils(object):
    """Stands for an os-win utils class: records the thread that built it."""

    def __init__(self, label):
        self.label = label
        self.thread = threading.get_ident()

    def whoami(self):
        return self.thread


def _in_thread(func):
    result = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join()
    return result[0]


class PerThreadTestCase(testtools.TestCase):

    def test_each_thread_gets_its_own_object_built_there(self):
        built = []

        def factory(label):
            built.append(_Utils(label))
            return built[-1]

        utils = osutils.per_thread(factory, 'vmutils')
        here = utils.whoami()
        # Looked up in the other thread: a bound method fetched here would
        # carry this thread's object along.
        there = _in_thread(lambda: utils.whoami())

        self.assertEqual(threading.get_ident(), here)
        self.assertNotEqual(here, there)
        self.assertEqual(2, len(built))
        self.assertEqual(['vmutils', 'vmutils'], [u.label for u in built])

    def test_a_thread_keeps_its_object(self):
        utils = osutils.per_thread(_Utils, 'x')
        self.assertIs(utils._for_this_thread(), utils._for_this_thread())

    def test_built_at_once_for_the_building_thread(self):
        def factory():
            raise RuntimeError('no WMI here')

        self.assertRaises(RuntimeError, osutils.per_thread, factory)


class ThreadLocalConnectionsTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        saved = baseutils.BaseUtils._WMI_CONS
        self.addCleanup(setattr, baseutils.BaseUtils, '_WMI_CONS', saved)
        baseutils.BaseUtils._WMI_CONS = {}

    def test_os_win_cache_keeps_one_connection_per_thread(self):
        osutils.use_thread_local_connections()
        osutils.use_thread_local_connections()  # idempotent
        cons = baseutils.BaseUtils._WMI_CONS
        cons['//./root/virtualization/v2'] = 'main'

        def other():
            seen = '//./root/virtualization/v2' in cons
            cons['//./root/virtualization/v2'] = 'other'
            return seen, cons['//./root/virtualization/v2']

        self.assertEqual((False, 'other'), _in_thread(other))
        self.assertEqual('main', cons['//./root/virtualization/v2'])
        self.assertEqual(1, len(cons))
