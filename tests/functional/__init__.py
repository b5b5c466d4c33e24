from nova import thread_pool_factory

# nova 34's services end a graceful shutdown by shutting down nova's
# process-wide thread pools for good (ComputeManager.cleanup_host calls
# thread_pool_factory.shutdown_all_executors; so do the scheduler's and the
# conductor's).  nova's ServiceFixture turns that into a no-op only while
# the fixture lives, but a compute manager's shutdown runs in a thread of
# its own and can end after its test's clean-up: the pools are then shut
# for the rest of the worker process and every later test in it fails to
# start a service.  A test process never needs that shutdown.
thread_pool_factory.shutdown_all_executors = lambda: None
