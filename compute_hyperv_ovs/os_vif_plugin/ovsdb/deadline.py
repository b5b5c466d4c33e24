"""One deadline per port operation, and which one this thread runs under.

Every public port operation (:mod:`.api`) gets one deadline, ``timeout``
seconds from its call, and everything it waits for counts against it:
connecting, waiting behind another operation, the round trip to
ovsdb-server and ovs-vswitchd applying the change.  The deadline is kept
per thread (green thread under eventlet), so the layers below (the
connection's lock, the transaction) find it without it being passed
through ovsdbapp's own signatures; the connection thread runs under none
and waits without one.
"""

import contextlib
import threading
import time

import ovs.poller

_current = threading.local()


class Deadline(object):
    """A point in time, ``seconds`` from now (monotonic clock).

    :param seconds: int or float, the operation's whole budget.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        """Seconds left (float), never negative."""
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        """Whether the end has passed (bool)."""
        return time.monotonic() >= self.end

    def block(self, *waiters):
        """Block until one of ``waiters`` wakes or the deadline ends.

        :param waiters: python-ovs ``wait`` methods, each called with the
            poller (``f(poller)``), e.g. ``idl.wait``, ``stream.run_wait``.

        python-ovs' poller is green under eventlet monkey patching (it
        falls back to the patched ``select``), so this yields there.
        """
        poller = ovs.poller.Poller()
        for wait in waiters:
            wait(poller)
        poller.timer_wait(int(self.remaining() * 1000))
        poller.block()


def current():
    """The deadline of the operation this thread runs, or None."""
    return getattr(_current, 'deadline', None)


def current_or_new(seconds):
    """This thread's deadline, or a new one of ``seconds`` when it has none.

    For the layers below an operation, which may also be called outside
    one (ovsdbapp calls ``create_transaction`` for its own commands).
    """
    return current() or Deadline(seconds)


@contextlib.contextmanager
def operation(seconds):
    """Run the body under one deadline of ``seconds``.

    Nested (an operation made of several), the outer deadline is kept, so
    the whole operation still ends within its caller's budget.

    :yields: the :class:`Deadline` in force.
    """
    outer = current()
    if outer is not None:
        yield outer
        return
    _current.deadline = Deadline(seconds)
    try:
        yield _current.deadline
    finally:
        _current.deadline = None
