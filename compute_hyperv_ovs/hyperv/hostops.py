"""What this Hyper-V host offers nova: resources, inventory, identity.

Facts come from os-win's ``HostUtils`` (Win32_Processor, Win32_
OperatingSystem, Msvm_NumaNode) and ``DiskUtils`` (the instances path's
volume); the numbers and their shapes follow nova 28's
``nova/virt/hyperv/hostops.py`` so that a host upgraded from it keeps its
compute node record and placement inventory unchanged.
"""

import datetime
import platform
import time

from nova.compute import utils as compute_utils
import nova.conf
from nova import exception
from nova.i18n import _
from nova import objects
from nova.objects import fields as obj_fields
import os_resource_classes as orc
from os_win import constants as os_win_const
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import units

from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pathutils

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Hyper-V backs guest memory with the host's small (4 KiB) pages; it has
# no huge pages for VMs to ask for.
SMALL_PAGE_KB = 4

HYPERVISOR_TYPE = obj_fields.HVType.HYPERV

# (architecture, hypervisor type, VM mode) of the guests a Hyper-V host
# runs: generation 1 (BIOS) and generation 2 (UEFI) VMs are both hardware
# virtualised, 32- or 64-bit (nova 28 get_available_resource).  nova's
# HVSpec has no field for the generation; vmops picks it per image.
SUPPORTED_INSTANCES = [
    (obj_fields.Architecture.I686, HYPERVISOR_TYPE, obj_fields.VMMode.HVM),
    (obj_fields.Architecture.X86_64, HYPERVISOR_TYPE, obj_fields.VMMode.HVM),
]

_POWER_ACTIONS_BY_HYPERV = (constants.HOST_POWER_ACTION_SHUTDOWN,
                            constants.HOST_POWER_ACTION_REBOOT)


def _versions_int(version):
    """``'10.0.17763'`` -> 10000: major * 1000 + minor.

    nova 28's ``_get_hypervisor_version`` encoding, kept: the scheduler
    compares it with images' ``img_hv_requested_version`` (``>=10.0`` is
    10000), so a different encoding would change which hosts match.
    """
    major, minor = version.split('.')[:2]
    return int(major) * 1000 + int(minor)


class HostOps(object):
    """Host-level answers for the driver facade.

    os-win utils are per OS thread (:func:`osutils.per_thread`): nova 34
    calls these from its periodic task thread and its API worker threads.
    """

    def __init__(self):
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)
        self._diskutils = osutils.per_thread(utilsfactory.get_diskutils)
        self._pathutils = pathutils.PathUtils()

    # -- identity -------------------------------------------------------

    def get_hostname(self):
        """The compute node's name: the Windows computer name.

        nova 28 named its node ``platform.node()`` (driver
        ``get_available_nodes`` and ``hypervisor_hostname``); kept, so an
        upgraded host keeps its compute node record.

        :returns: str.
        """
        return platform.node()

    def get_host_ip_addr(self):
        """The address other hosts reach this one at.

        ``[DEFAULT] my_ip`` when set, else the host's first address (nova
        28 ``get_host_ip_addr``).  nova gives it to a cold migration's
        source, which copies the disks to this host's instances share.

        :returns: str, an IPv4 or IPv6 address.
        :raises nova.exception.InternalError: my_ip is unset and Windows
            lists no address for this host.
        """
        if CONF.my_ip:
            return CONF.my_ip
        addresses = self._hostutils.get_local_ips()
        if not addresses:
            raise exception.InternalError(_(
                'This host has no IP address and [DEFAULT] my_ip is not '
                'set; set my_ip to the address other compute hosts reach '
                'this one at.'))
        LOG.debug('[DEFAULT] my_ip is unset; using the host address %s',
                  addresses[0])
        return addresses[0]

    def get_windows_version(self):
        """The Windows version, e.g. ``'10.0.17763'`` (Server 2019).

        :returns: str, ``major.minor.build``.
        """
        return self._hostutils.get_windows_version()

    def is_windows_version_at_least(self, major, minor, build=0):
        """Whether Windows is at least ``major.minor.build`` (bool).

        For the facade's start-up check (nova 28 driver
        ``_check_minimum_windows_version`` asked for 6.2, Server 2012).
        """
        return self._hostutils.check_min_windows_version(major, minor, build)

    # -- resources ------------------------------------------------------

    def _processors(self):
        """Win32_Processor, one dict per socket.

        :raises nova.exception.InternalError: Windows lists no processor.
        """
        sockets = self._hostutils.get_cpus_info()
        if not sockets:
            raise exception.InternalError(_(
                'Windows reports no processor on this host (Win32_'
                'Processor is empty); check the host\'s WMI service.'))
        return sockets

    def _cpu_info(self, sockets):
        """The host CPU as nova's ``cpu_info`` dict.

        ``{'arch', 'model', 'vendor', 'topology': {'sockets', 'cores',
        'threads'}, 'features': [os-win feature names]}``, as nova 28
        ``_get_cpu_info`` built it; features are those os-win can ask
        Windows about (``IsProcessorFeaturePresent``).

        :param sockets: :meth:`_processors`.
        """
        first = sockets[0]
        cores = first['NumberOfCores']
        features = [name for key, name in
                    sorted(os_win_const.PROCESSOR_FEATURE.items())
                    if self._hostutils.is_cpu_feature_present(key)]
        return {
            'arch': constants.ARCHITECTURE.get(first['Architecture'],
                                               'Unknown'),
            'model': first['Name'],
            'vendor': first['Manufacturer'],
            'topology': {
                'sockets': len(sockets),
                'cores': cores,
                'threads': first['NumberOfLogicalProcessors'] // cores,
            },
            'features': features,
        }

    def _memory_mb(self):
        """(total, used) host memory in MiB; os-win answers in KiB."""
        total_kb, free_kb = self._hostutils.get_memory_info()
        total_mb = total_kb // units.Ki
        return total_mb, total_mb - free_kb // units.Ki

    def _disk_gb(self):
        """(total, free, used) GiB of the instances path's volume.

        Free space is the volume's now: dynamic VHDs may grow past it
        (nova 28 said as much), so ``disk_available_least`` is no promise.
        """
        total, free = self._diskutils.get_disk_capacity(
            self._pathutils.get_instances_dir())
        total_gb = total // units.Gi
        free_gb = free // units.Gi
        return total_gb, free_gb, total_gb - free_gb

    def _numa_topology(self):
        """The host's NUMA nodes as a nova ``NUMATopology``.

        Hyper-V offers no CPU pinning or huge pages, so no cell has
        dedicated CPUs (``pcpuset``), siblings or page sizes.  nova 28
        ``_get_host_numa_topology`` left ``pcpuset`` (NUMACell 1.4, nova 21)
        unset; here every field nova reads is set.  Each cell's memory is
        one pool of 4 KiB pages: nova's resource tracker books an
        instance's NUMA cells against the host cells' smallest page size
        (``hardware.numa_usage_from_instance_numa``) and fails a claim on
        a cell without pages, which nova 28's ``mempages=[]`` left.
        """
        cells = [objects.NUMACell(
            id=int(node['id']), cpuset=set(node['cpuset']), pcpuset=set(),
            memory=node['memory'], memory_usage=node['memory_usage'],
            cpu_usage=node['cpu_usage'], pinned_cpus=set(), siblings=[],
            mempages=[self._small_pages(node['memory'])], socket=None)
            for node in self._hostutils.get_numa_nodes()]
        return objects.NUMATopology(cells=cells)

    @staticmethod
    def _small_pages(memory_mb):
        return objects.NUMAPagesTopology(
            size_kb=SMALL_PAGE_KB, total=memory_mb * units.Ki // SMALL_PAGE_KB,
            used=0, reserved=0)

    def _pci_passthrough_devices(self):
        """Assignable PCI devices (Discrete Device Assignment), as JSON.

        A list of nova's PCI tracker dicts (``nova.pci.manager.
        PciDevTracker.update_devices_from_hypervisor_resources``):
        ``address`` (``dddd:bb:ss.f``), ``vendor_id``, ``product_id``,
        ``dev_id`` (os-win's DeviceID), ``label``, ``dev_type``
        ``type-PCI`` and ``numa_node`` None (os-win does not say; nova 28
        did the same).  Every device dismounted for DDA is listed, assigned
        or not: nova's tracker keeps which instance holds which.

        The ids are lower case: os-win reads them out of the device's
        instance path, where Windows writes them in upper case
        (``VEN_10DE&DEV_1EB8``), but nova matches ``[pci] device_spec``
        against them as it normalises the spec's (``'%04x'``, nova
        ``pci/devspec.py`` ``_set_pci_dev_info`` and ``match``): an id
        with a letter would match no spec (nova 28 and compute-hyperv 16
        passed os-win's case on).
        """
        devices = self._hostutils.get_pci_passthrough_devices()
        for device in devices:
            vendor_id = device['vendor_id'].lower()
            product_id = device['product_id'].lower()
            device.update(
                address=device['address'].lower(),
                vendor_id=vendor_id, product_id=product_id,
                label='label_%s_%s' % (vendor_id, product_id),
                dev_type=obj_fields.PciDeviceType.STANDARD,
                numa_node=None)
        return jsonutils.dumps(devices)

    def get_available_resource(self):
        """The host's resources, as nova's resource tracker reads them.

        :returns: dict with ``vcpus`` (logical processors),
            ``memory_mb``/``memory_mb_used`` (MiB), ``local_gb``/
            ``local_gb_used``/``disk_available_least`` (GiB of the
            instances path's volume), ``vcpus_used`` (0: the resource
            tracker counts instances), ``hypervisor_type`` ``'hyperv'``,
            ``hypervisor_version`` (int, see :func:`_versions_int`),
            ``hypervisor_hostname`` (:meth:`get_hostname`), ``cpu_info``
            (JSON), ``supported_instances`` (list of (arch, hv type, vm
            mode)), ``numa_topology`` (JSON of ``NUMATopology``) and
            ``pci_passthrough_devices`` (JSON list).
        :raises os_win.exceptions.OSWinException: WMI failed.
        :raises nova.exception.InternalError: Windows lists no processor.
        """
        sockets = self._processors()
        memory_mb, memory_mb_used = self._memory_mb()
        disk_gb, disk_free_gb, disk_used_gb = self._disk_gb()
        return {
            'vcpus': sum(socket['NumberOfLogicalProcessors']
                         for socket in sockets),
            'vcpus_used': 0,
            'memory_mb': memory_mb,
            'memory_mb_used': memory_mb_used,
            'local_gb': disk_gb,
            'local_gb_used': disk_used_gb,
            'disk_available_least': disk_free_gb,
            'hypervisor_type': HYPERVISOR_TYPE,
            'hypervisor_version': _versions_int(self.get_windows_version()),
            'hypervisor_hostname': self.get_hostname(),
            'cpu_info': jsonutils.dumps(self._cpu_info(sockets)),
            'supported_instances': list(SUPPORTED_INSTANCES),
            'numa_topology': self._numa_topology()._to_json(),
            'pci_passthrough_devices': self._pci_passthrough_devices(),
        }

    def update_provider_tree(self, provider_tree, nodename,
                             allocation_ratios, allocations=None):
        """Set the compute node's VCPU, MEMORY_MB and DISK_GB inventory.

        Totals are the host's (:meth:`get_available_resource`); reserved
        amounts are ``[DEFAULT] reserved_host_cpus``, ``reserved_host_
        memory_mb`` and ``reserved_host_disk_mb`` (rounded up to GiB), as
        nova 28 and nova 34's libvirt driver report them.  A class whose
        total is 0 is left out: placement refuses an inventory of 0 (nova
        34 libvirt ``update_provider_tree`` does the same).  No resources
        move between providers, so ``allocations`` is not changed.

        :param allocation_ratios: {resource class: float}, from
            ``ComputeDriver._get_allocation_ratios``.
        :raises KeyError: a ratio for VCPU, MEMORY_MB or DISK_GB is missing.
        """
        resources = self.get_available_resource()
        reserved = {
            orc.VCPU: CONF.reserved_host_cpus,
            orc.MEMORY_MB: CONF.reserved_host_memory_mb,
            orc.DISK_GB: compute_utils.convert_mb_to_ceil_gb(
                CONF.reserved_host_disk_mb),
        }
        totals = {orc.VCPU: resources['vcpus'],
                  orc.MEMORY_MB: resources['memory_mb'],
                  orc.DISK_GB: resources['local_gb']}
        inventory = {
            rc: {'total': total, 'min_unit': 1, 'max_unit': total,
                 'step_size': 1, 'reserved': reserved[rc],
                 'allocation_ratio': allocation_ratios[rc]}
            for rc, total in totals.items() if total}
        provider_tree.update_inventory(nodename, inventory)

    # -- host state and actions -----------------------------------------

    def get_host_uptime(self):
        """How long Windows has run, in the shape ``uptime`` prints.

        ``'HH:MM:SS up D days, H:MM:SS,  0 users,  load average: 0, 0,
        0'`` (local time, then whole seconds since Windows started): nova's
        libvirt driver returns the ``uptime`` command's line and the
        os-hypervisors API shows it as is; Windows has no user count or
        load average for it (``GetTickCount64`` is the only fact), so those
        are 0, as in nova 28 ``get_host_uptime``.  Unlike nova 28, no
        fraction of a second is shown (``uptime`` shows none).

        :returns: str.
        """
        up_seconds = int(self._hostutils.get_host_tick_count64()) // 1000
        return '%s up %s,  0 users,  load average: 0, 0, 0' % (
            time.strftime('%H:%M:%S'),
            datetime.timedelta(seconds=up_seconds))

    def host_power_action(self, action):
        """Shut down or reboot this Windows host.

        Windows does it forced (os-win ``HostUtils.host_power_action``:
        ``Win32_OperatingSystem.Win32Shutdown`` with the force flag):
        running programs are not asked, and each VM gets its Hyper-V
        automatic stop action.  nova 28 ``hostops.host_power_action`` did
        the same.

        :param action: ``'shutdown'`` or ``'reboot'``.
        :returns: ``action``, which nova's os-hosts API shows as the
            ``power_action`` it started.
        :raises NotImplementedError: ``'startup'``: a host that is off
            runs no nova-compute to start it (nova's API answers 501).
        :raises nova.exception.InvalidInput: any other action.
        """
        if action in _POWER_ACTIONS_BY_HYPERV:
            LOG.warning('Host %s requested by nova: Windows will stop this '
                        'nova-compute with its running VMs', action)
            self._hostutils.host_power_action(action)
            return action
        if action == constants.HOST_POWER_ACTION_STARTUP:
            raise NotImplementedError(_(
                'A Hyper-V host cannot be powered on through nova: it runs '
                'no nova-compute while it is off. Use its management '
                'controller (BMC) instead.'))
        raise exception.InvalidInput(reason=_(
            'Unknown host power action %(action)r; expected one of '
            '%(expected)s.') % {'action': action, 'expected': ', '.join(
                _POWER_ACTIONS_BY_HYPERV +
                (constants.HOST_POWER_ACTION_STARTUP,))})
