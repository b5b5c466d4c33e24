"""What lets os-win 5.9.0 run inside nova 34's nova-compute.

nova 34 runs nova-compute in native threading mode by default and, in that
mode, forbids any import of eventlet: ``nova.monkey_patch.poison_eventlet``
puts a finder on ``sys.meta_path`` that raises ImportError for every
``eventlet*`` name.  os-win 5.9.0 (retired upstream, the last release)
imports eventlet at package import (``os_win/__init__.py`` l.19) and in six
more modules, but only ever uses five names from it, each with a plain
fallback when eventlet has not monkey patched the process
(shared/research/nova34.md section 2d):

- ``eventlet.patcher.original(name)``: the unpatched stdlib module;
- ``eventlet.patcher.is_monkey_patched(name)``: whether to hand blocking
  WMI event waits to ``tpool``;
- ``eventlet.tpool.execute(f, *args, **kwargs)``;
- ``eventlet.getcurrent()``: ``_utils.avoid_blocking_call`` calls
  directly when the current greenlet has no parent (a native thread);
- ``eventlet.import_patched(name)``: ``_utils`` takes its socket module
  through it.

:func:`install` puts a stand-in module named ``eventlet``, offering exactly
those five names with their unpatched meaning, in ``sys.modules`` (nova's
finder is consulted only for names missing from there), imports the seven
os-win modules that import eventlet (each keeps its reference to the
stand-in), and takes the stand-in out again.  So no other code ever sees an
``eventlet`` module: nova's own ``poison_eventlet`` (which refuses to run
once ``eventlet`` is in ``sys.modules``) and the libraries that test
``'eventlet' in sys.modules`` (oslo.rootwrap, kombu) keep their threading
paths, and any real ``eventlet`` import stays refused.  In eventlet mode
(``[DEFAULT] concurrency_backend = eventlet``, deprecated in nova 34) the
real eventlet is loaded and nothing is installed.

This is the only module of the package that knows which concurrency mode
nova runs in.
"""

import importlib
import sys
import types

STAND_IN_NAME = 'eventlet'
_MARK = '_compute_hyperv_ovs_stand_in'


def _build_stand_in():
    patcher = types.ModuleType('eventlet.patcher')
    patcher.original = importlib.import_module
    patcher.is_monkey_patched = lambda name: False
    tpool = types.ModuleType('eventlet.tpool')
    tpool.execute = lambda func, *args, **kwargs: func(*args, **kwargs)
    stand_in = types.ModuleType(STAND_IN_NAME)
    stand_in.__doc__ = ('compute-hyperv-ovs stand-in for eventlet under '
                        "nova's native threading mode (os-win only).")
    # A package, so "from eventlet import patcher" resolves the attribute
    # first and never asks the import system (and nova's finder).
    stand_in.__path__ = []
    stand_in.patcher = patcher
    stand_in.tpool = tpool
    # os-win only asks whether the current greenlet has a parent (it is a
    # green thread); a native thread's answer is no.
    stand_in.getcurrent = lambda: types.SimpleNamespace(parent=None)
    stand_in.import_patched = importlib.import_module
    for module in (stand_in, patcher, tpool):
        setattr(module, _MARK, True)
    return stand_in


def threading_mode():
    """True when nova runs with native threads (no eventlet patching).

    Decided by nova's ``nova.monkey_patch.patch()``, which nova-compute's
    entry point runs before it loads any driver.
    """
    from nova import monkey_patch
    return not monkey_patch.is_patched()


# Every os-win 5.9.0 module that imports eventlet (shared/research/
# nova34.md section 2d); the others reach it only through these.
OS_WIN_EVENTLET_MODULES = (
    'os_win',
    'os_win._utils',
    'os_win.utils.compute.vmutils',
    'os_win.utils.compute.clusterutils',
    'os_win.utils.network.networkutils',
    'os_win.utils.io.namedpipe',
    'os_win.utils.io.ioutils',
)


def install():
    """Make os-win importable in the concurrency mode nova runs in.

    Idempotent.  Does nothing when nova monkey patched the process
    (eventlet mode) or os-win is already imported.

    :raises RuntimeError: the real eventlet is loaded but nova did not
        monkey patch (something imported eventlet early, which nova's own
        threading mode refuses too).
    """
    if 'os_win' in sys.modules or not threading_mode():
        return
    if STAND_IN_NAME in sys.modules:
        raise RuntimeError(
            'eventlet is imported but nova runs in native threading mode; '
            'something imported eventlet before nova-compute started')
    sys.modules[STAND_IN_NAME] = _build_stand_in()
    try:
        for name in OS_WIN_EVENTLET_MODULES:
            importlib.import_module(name)
    finally:
        del sys.modules[STAND_IN_NAME]


def uses_stand_in(module):
    """Whether an imported module took the stand-in for eventlet (tests)."""
    return any(getattr(value, _MARK, False)
               for value in vars(module).values())
