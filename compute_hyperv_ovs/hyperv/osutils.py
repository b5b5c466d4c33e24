"""os-win utils objects, one per OS thread.

nova 34 calls a compute driver from several OS threads (the executors of
``nova.thread_pool_factory``, ``[DEFAULT] default_thread_pool_size``),
where nova 28 ran every driver call on one OS thread of green threads.
An os-win utils object holds its WMI connection (``_conn``, and the
``Msvm_VirtualSystemManagementService`` object it caches) and os-win keeps
connections in a class-wide cache, ``BaseUtils._WMI_CONS``
(``os_win/utils/baseutils.py``).  WMI is COM: an interface pointer belongs
to the apartment of the thread that obtained it and is used from another
thread only after it is marshalled, else the call fails with
``RPC_E_WRONG_THREAD`` (0x8001010E) or, for objects that do not check, is
unsafe ("Processes, Threads, and Apartments", Microsoft COM documentation;
learn.microsoft.com/windows/win32/com/processes--threads--and-apartments).
Under eventlet os-win made every WMI call from the one OS thread, apart from
the event listeners it hands to ``tpool`` (``vmutils.
get_vm_power_state_change_listener``).

The rule here: **no os-win utils object, and so no WMI connection, is used
by more than one OS thread.**  :func:`per_thread` gives each thread its own
utils object, built on first use in that thread, and
:func:`use_thread_local_connections` makes os-win's connection cache keep
one connection per thread.  One connection per nova worker thread costs a
few WMI sessions; serialising every call on one thread instead would hold
every other operation of the host for the length of a live migration (os-win
waits for the WMI job on the calling thread).

Look attributes up in the thread that uses them: a bound method fetched
in one thread and called in another carries the first thread's object
along.

The simulated Hyper-V host of the tests refuses a utils object used from a
thread other than the one that built it.
"""

import collections.abc
import threading

from os_win.utils import baseutils


class _PerThread(object):
    """Forwards attribute access to the calling thread's utils object."""

    def __init__(self, factory, args, kwargs):
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._local = threading.local()
        # Built now, for the constructing thread: failures to reach the
        # host show at driver start-up rather than at the first call.
        self._local.utils = self._build()
        # Kept for introspection only (the simulated host finds from it
        # which host a proxy belongs to); calls always go through
        # _for_this_thread().
        self._first = self._local.utils

    def _build(self):
        return self._factory(*self._args, **self._kwargs)

    def _for_this_thread(self):
        utils = getattr(self._local, 'utils', None)
        if utils is None:
            utils = self._local.utils = self._build()
        return utils

    def __getattr__(self, name):
        return getattr(self._for_this_thread(), name)

    def __repr__(self):
        return '<per-thread %r>' % (self._factory,)


def per_thread(factory, *args, **kwargs):
    """An os-win utils object of ``factory(*args, **kwargs)`` per thread.

    :param factory: e.g. ``os_win.utilsfactory.get_vmutils``.
    :returns: a proxy whose attributes are those of the calling thread's
        utils object.
    """
    return _PerThread(factory, args, kwargs)


class _ThreadLocalConnections(collections.abc.MutableMapping):
    """A mapping with one set of entries per thread."""

    def __init__(self):
        self._local = threading.local()

    def _entries(self):
        entries = getattr(self._local, 'entries', None)
        if entries is None:
            entries = self._local.entries = {}
        return entries

    def __getitem__(self, key):
        return self._entries()[key]

    def __setitem__(self, key, value):
        self._entries()[key] = value

    def __delitem__(self, key):
        del self._entries()[key]

    def __iter__(self):
        return iter(self._entries())

    def __len__(self):
        return len(self._entries())


def use_thread_local_connections():
    """Make os-win cache one WMI connection per thread (idempotent).

    os-win 5.9.0's ``BaseUtils._get_wmi_conn`` keeps connections in the
    class attribute ``_WMI_CONS`` and only reads it with ``in``, ``[]``
    and ``[]=``, so a thread-local mapping in its place keeps os-win's
    caching within a thread.
    """
    if not isinstance(baseutils.BaseUtils._WMI_CONS,
                      _ThreadLocalConnections):
        baseutils.BaseUtils._WMI_CONS = _ThreadLocalConnections()
