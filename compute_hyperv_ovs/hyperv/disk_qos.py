"""Storage QoS of an instance's local disks, from its flavor.

Hyper-V limits a virtual hard disk in *normalised* IOPS: every 8 KB of
data counts as one I/O (Microsoft, "Storage Quality of Service for
Hyper-V", Windows Server 2012 R2 and later,
learn.microsoft.com/previous-versions/windows/it-pro/windows-server-2012-
r2-and-2012/dn282281(v=ws.11)).  It has a single limit per disk
(``IOPSLimit``, os-win ``VMUtils10.set_disk_qos_specs``), for reads and
writes together, and no byte rate of its own.

The flavor's extra specs that map onto it (nova 34 validates them,
``nova/api/validation/extra_specs/quota.py``):

- ``quota:disk_total_iops_sec``: the limit, as is;
- ``quota:disk_total_bytes_sec``: rounded up to whole 8 KB units (nova 28
  ``VolumeOps.bytes_per_sec_to_iops``).

With both, the stricter one is the limit, so that both hold; nova 28
(``VMOps._set_instance_disk_qos_specs``) took the IOPS one and ignored
the byte rate.  The read- or write-only specs (``quota:disk_read_*``,
``quota:disk_write_*``) have no Hyper-V equivalent and are refused rather
than silently not enforced.
"""

from nova import exception
from nova.i18n import _
from oslo_utils import units

# Hyper-V's unit of storage QoS: one normalised I/O per 8 KB.
NORMALISED_IO_BYTES = 8 * units.Ki

TOTAL_IOPS = 'quota:disk_total_iops_sec'
TOTAL_BYTES = 'quota:disk_total_bytes_sec'
UNSUPPORTED = tuple('quota:disk_%s_%s_sec' % (stat, metric)
                    for stat in ('read', 'write')
                    for metric in ('bytes', 'iops'))


def bytes_to_iops(bytes_per_sec):
    """Bytes per second as normalised IOPS, rounded up (8 KB units)."""
    return -(-bytes_per_sec // NORMALISED_IO_BYTES)


def _spec(flavor, instance_uuid, key):
    value = (flavor.extra_specs or {}).get(key)
    if value in (None, ''):
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise exception.InstanceUnacceptable(
            instance_id=instance_uuid,
            reason=_('flavor %(flavor)s: %(key)s=%(value)s is not a '
                     'non-negative integer') % {
                'flavor': flavor.name, 'key': key, 'value': value})
    return number


def check_flavor(instance_uuid, flavor):
    """Refuse disk QoS specs that Hyper-V cannot enforce.

    :param flavor: ``nova.objects.Flavor``.
    :raises nova.exception.InstanceUnacceptable: a read- or write-only
        disk quota, or a value that is not a non-negative integer.
    """
    given = sorted(key for key in UNSUPPORTED
                   if (flavor.extra_specs or {}).get(key) not in (None, ''))
    if given:
        raise exception.InstanceUnacceptable(
            instance_id=instance_uuid,
            reason=_('flavor %(flavor)s asks for %(keys)s: Hyper-V limits a '
                     'disk\'s reads and writes together only; use %(iops)s '
                     'or %(bytes)s instead') % {
                'flavor': flavor.name, 'keys': ', '.join(given),
                'iops': TOTAL_IOPS, 'bytes': TOTAL_BYTES})
    max_iops(instance_uuid, flavor)


def max_iops(instance_uuid, flavor):
    """The IOPS limit of each local disk, in normalised IOPS.

    :returns: an int; 0 when the flavor sets no limit.
    :raises nova.exception.InstanceUnacceptable: a value that is not a
        non-negative integer.
    """
    limits = [limit for limit in (
        _spec(flavor, instance_uuid, TOTAL_IOPS),
        bytes_to_iops(_spec(flavor, instance_uuid, TOTAL_BYTES)))
        if limit]
    return min(limits) if limits else 0
