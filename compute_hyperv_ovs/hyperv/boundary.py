"""Where os-win's errors become nova's: the driver facade's edge.

nova's compute manager knows nova's exceptions (``InstanceNotFound`` makes
it treat a VM as gone, a ``NovaException``'s message reaches the instance
fault), not os-win's.  nova 28's driver (``driver.convert_exceptions``
with ``decorate_all_methods``) wrapped the methods of its own class only,
so a method a subclass overrides lost the conversion.  Here a base class
wraps each public method of every class built on it when the class is
made (``__init_subclass__``): the core's facade and any back end's driver
on top of it alike, with no metaclass to clash with another one.

The converted error says which driver operation failed and keeps os-win's
message; os-win's exception stays chained as its cause in the log.
"""

import functools
import inspect

from nova import exception as nova_exception
from nova.i18n import _
from os_win import exceptions as os_win_exc

_MARK = '_converts_os_win_errors'


def _instance_id(signature, args, kwargs, error):
    """The uuid of the call's ``instance`` argument, else the VM's name."""
    try:
        instance = signature.bind_partial(*args, **kwargs).arguments.get(
            'instance')
    except TypeError:
        instance = None
    uuid = getattr(instance, 'uuid', None)
    return uuid or error.kwargs.get('vm_name') or _('(unknown)')


def converting(operation, function):
    """``function`` with os-win's exceptions raised as nova's.

    :param operation: the name the error gives the failing operation.
    :returns: the wrapper; it raises ``nova.exception.InstanceNotFound``
        for ``HyperVVMNotFoundException`` and ``nova.exception.
        NovaException`` for any other ``OSWinException``; everything else
        passes unchanged.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except os_win_exc.HyperVVMNotFoundException as exc:
            raise nova_exception.InstanceNotFound(
                _('Hyper-V has no VM for %(operation)s: %(error)s') % {
                    'operation': operation, 'error': exc},
                instance_id=_instance_id(signature, args, kwargs, exc),
            ) from exc
        except os_win_exc.OSWinException as exc:
            raise nova_exception.NovaException(
                _('Hyper-V failed in %(operation)s: %(error)s') % {
                    'operation': operation, 'error': exc}) from exc

    setattr(wrapper, _MARK, True)
    return wrapper


class ConvertsOSWinErrors(object):
    """Base class: its subclasses' public methods convert os-win errors.

    ``__init__`` is wrapped too (the driver talks to Hyper-V when it is
    built).  Static and class methods, properties and names starting with
    ``_`` are left as they are.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if name != '__init__' and name.startswith('_'):
                continue
            if not inspect.isfunction(member) or getattr(member, _MARK,
                                                         False):
                continue
            setattr(cls, name, converting(name, member))
