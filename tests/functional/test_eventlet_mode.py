"""nova-compute in eventlet mode: boot, live-migrate and delete a server.

nova 34 runs nova-compute with native threads by default (the whole suite
runs so); eventlet mode (``[DEFAULT] concurrency_backend = eventlet``) is
deprecated but supported until 2027.2 at the earliest, and there os-win
takes the real eventlet instead of the driver's stand-in
(compute_hyperv_ovs.compat).  ``tox -e eventlet`` runs this module with
``OS_NOVA_DISABLE_EVENTLET_PATCHING=false``; in a threading run it skips.
"""

import os
import sys

from nova import utils as nova_utils

from compute_hyperv_ovs import compat
from tests.functional import test_migration


def _eventlet_run():
    return os.environ.get('OS_NOVA_DISABLE_EVENTLET_PATCHING',
                          '').lower() in ('0', 'false', 'no')


class EventletModeTest(test_migration.MigrationTestBase):

    def setUp(self):
        if not _eventlet_run():
            self.skipTest('runs in eventlet mode only: tox -e eventlet')
        super().setUp()
        self.start_compute('host1')
        self.start_compute('host2')

    def test_nova_and_os_win_run_on_eventlet(self):
        self.assertFalse(nova_utils.concurrency_mode_threading())
        # os-win imported the real eventlet, not the stand-in.
        self.assertFalse(compat.uses_stand_in(sys.modules['os_win._utils']))

    def test_boot_live_migrate_and_delete(self):
        server, port = self.boot(self.image, host='host1')
        self.assert_runs_on('host1', server, port)

        server, _migration = self.live_migrate(server, 'host2')

        self.assert_runs_on('host2', server, port)
        self.assert_gone_from('host1', server, port)
        self._delete_server(server)
        self.assert_gone_from('host2', server, port)
