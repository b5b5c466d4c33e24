"""Instance diagnostics from Hyper-V's VM summary and resource metering.

nova 28's Hyper-V driver and compute-hyperv had none (nova's API answered
501).  Every host reports, without metering,
``Msvm_VirtualSystemManagementService.GetSummaryInformation`` through
os-win's ``VMUtils.get_vm_summary_info`` (state, number of virtual
processors, memory in use, uptime); with it the flavor's memory and the
VM's disks make the base of the answer.

With ``[hyperv] enable_instance_metrics_collection`` Hyper-V's resource
metering is turned on for each VM (:meth:`DiagnosticsOps.enable_metrics`:
its CPU, memory and disks when it is created and at each start, its
switch ports -- with their meter ACLs -- at each start, because Hyper-V
drops CPU, memory and network metering when a VM stops and refuses to
meter a port of a VM that is off; compute-hyperv 16
``vmops.configure_instance_metrics`` and ``vif.enable_metrics``), and the
counters are read through os-win's ``MetricsUtils`` and converted to
nova's units (``nova.objects.diagnostics``):

=================  ==========================  ===========================
nova's field       Hyper-V's metric (os-win)   conversion
=================  ==========================  ===========================
cpu_details[i]     Aggregated Average CPU      average MHz / host clock
.time (ns)         Utilization, MHz;           MHz = host processors kept
                   OnTimeInMilliseconds        busy on average; times the
                   (``get_cpu_metrics``)       VM's on-time in ns gives
                                               its CPU time, shared evenly
                                               by its vCPUs (Hyper-V does
                                               not meter them one by one)
cpu_details[i]     the same                    that share of the vCPUs'
.utilisation (%)                               capacity, in percent
nic_details        Filtered Incoming/Outgoing  MB x 2**20
.rx/tx_octets      Network Traffic, MB
                   (``get_vnic_metrics``)
disk_details       Disk Data Read/Written, MB  MB x 2**20
.read/write_bytes  (``get_disk_metrics``)
=================  ==========================  ===========================

Hyper-V meters neither packets, errors nor drops of a port, nor request
counts of a disk (its "Average Normalized Disk Throughput" is an average
rate of 8 KiB units, not a count): those fields stay None.  Hyper-V
keeps whole MB, so traffic and I/O grow in 1 MiB steps.  os-win answers
0 for what is not metered (no metric value exists: it does not refuse),
so with the option off every counter is None rather than a false 0.
"""

from nova.compute import power_state
import nova.conf
from nova import exception
from nova.objects import diagnostics
from nova.virt import configdrive
from os_win import utilsfactory
from oslo_log import log as logging
from oslo_utils import units

from compute_hyperv_ovs import conf  # noqa: F401
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# os-win's summary gives UpTime in milliseconds; nova's model has seconds.
_MS_PER_S = 1000
_NS_PER_MS = 1000 * 1000


def _mac_address(hyperv_mac):
    """'FA163E000001' (Hyper-V's form) -> 'fa:16:3e:00:00:01'."""
    digits = hyperv_mac.replace(':', '').replace('-', '').lower()
    return ':'.join(digits[i:i + 2] for i in range(0, len(digits), 2))


def cpu_time_ns(average_mhz, host_clock_mhz, on_time_ms):
    """The CPU time a VM used, from Hyper-V's average CPU in MHz.

    :param average_mhz: "Aggregated Average CPU Utilization" (MHz).
    :param host_clock_mhz: the host processors' clock (Win32_Processor
        MaxClockSpeed, MHz).
    :param on_time_ms: how long the VM has been on (ms).
    :returns: int, nanoseconds, summed over the VM's vCPUs.
    """
    if not host_clock_mhz:
        return 0
    return int(on_time_ms * _NS_PER_MS * average_mhz / host_clock_mhz)


class DiagnosticsOps(object):
    """Diagnostics of this host's VMs, in nova's model."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._metricsutils = osutils.per_thread(
            utilsfactory.get_metricsutils)
        self._networkutils = osutils.per_thread(
            utilsfactory.get_networkutils)
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)

    # ---- metering ----
    def enable_metrics(self, instance_name):
        """Turn on the running VM's resource metering, when configured.

        Called when the VM starts (the event handler's callback): the
        VM's CPU, memory and disks, then each connected vNIC's meter ACLs
        and port metrics.  Failures are logged, not raised: the VM runs
        on, without some counters.

        :returns: True when everything could be enabled (False also when
            ``[hyperv] enable_instance_metrics_collection`` is off).
        """
        if not CONF.hyperv.enable_instance_metrics_collection:
            return False
        try:
            self._metricsutils.enable_vm_metrics_collection(instance_name)
            for nic_name in self._vmutils.get_vm_nic_names(instance_name):
                self._networkutils.add_metrics_collection_acls(nic_name)
                self._metricsutils.enable_port_metrics_collection(nic_name)
        except Exception as exc:
            LOG.warning('Resource metering of VM %(vm)s could not be '
                        'turned on; its diagnostics will lack counters: '
                        '%(error)s', {'vm': instance_name, 'error': exc})
            return False
        return True

    # ---- reading ----
    def get_instance_diagnostics(self, instance):
        """Diagnostics in nova's versioned model (API microversion 2.48+).

        :param instance: nova.objects.Instance (its VM is ``instance.name``).
        :returns: nova.objects.diagnostics.Diagnostics with ``state``,
            ``driver='hyperv'``, ``uptime`` (s since the VM last started; 0
            when it is not running), ``config_drive``, one CPU entry per
            virtual processor (``id``; with metering ``time`` in ns and
            ``utilisation`` in %), ``memory_details`` in MiB (``maximum``:
            the flavor's memory, ``used``: what Hyper-V reports the VM
            uses), with metering one NIC entry per connected vNIC
            (``mac_address``, ``rx_octets``, ``tx_octets``), and one disk
            entry per attached virtual disk, DVD image (a config drive
            among them) or passthrough volume, as os-win's
            ``get_vm_storage_paths`` lists them (with metering
            ``read_bytes`` and ``write_bytes``; volumes: None).  See the
            module docstring for the conversions.
        :raises nova.exception.InstanceNotFound: no VM of that name here.
        """
        name = instance.name
        if not self._vmutils.vm_exists(name):
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        summary = self._vmutils.get_vm_summary_info(name)
        state = power_state.STATE_MAP[
            constants.POWER_STATE[summary['EnabledState']]]
        diags = diagnostics.Diagnostics(
            state=state, driver='hyperv', hypervisor='hyperv',
            hypervisor_os='windows',
            uptime=int(summary['UpTime'] or 0) // _MS_PER_S,
            config_drive=configdrive.required_by(instance))
        metered = CONF.hyperv.enable_instance_metrics_collection
        vcpus = int(summary['NumberOfProcessors'] or 0)
        cpu_time, utilisation = (self._cpu_usage(name) if metered
                                 else (None, None))
        for vcpu in range(vcpus):
            diags.add_cpu(id=vcpu,
                          time=None if cpu_time is None
                          else cpu_time // max(vcpus, 1),
                          utilisation=utilisation)
        diags.memory_details = diagnostics.MemoryDiagnostics(
            maximum=instance.flavor.memory_mb,
            used=int(summary['MemoryUsage'] or 0))
        if metered:
            for vnic in self._metricsutils.get_vnic_metrics(name):
                diags.add_nic(mac_address=_mac_address(vnic['address']),
                              rx_octets=int(vnic['rx_mb']) * units.Mi,
                              tx_octets=int(vnic['tx_mb']) * units.Mi)
        disk_io = ({disk['host_resource'].lower(): disk for disk in
                    self._metricsutils.get_disk_metrics(name)}
                   if metered else {})
        disk_files, volume_drives = self._vmutils.get_vm_storage_paths(name)
        for path in disk_files:
            io = disk_io.get(path.lower())
            if io is None:
                diags.add_disk()
            else:
                diags.add_disk(read_bytes=int(io['read_mb']) * units.Mi,
                               write_bytes=int(io['write_mb']) * units.Mi)
        for _volume in volume_drives:
            diags.add_disk()
        return diags

    def _cpu_usage(self, instance_name):
        """(CPU time in ns over all vCPUs, utilisation in %) of the VM."""
        average_mhz, vcpus, on_time_ms = self._metricsutils.get_cpu_metrics(
            instance_name)
        host_clock_mhz = int(
            self._hostutils.get_cpus_info()[0]['MaxClockSpeed'])
        total_ns = cpu_time_ns(average_mhz, host_clock_mhz, on_time_ms)
        capacity_mhz = host_clock_mhz * vcpus
        utilisation = (int(round(100.0 * average_mhz / capacity_mhz))
                       if capacity_mhz else 0)
        return total_ns, utilisation

    def get_diagnostics(self, instance):
        """The same facts as a flat dict (API microversions before 2.48).

        :returns: dict of ``state``, ``driver``, ``uptime`` (s),
            ``config_drive``, ``num_cpus``, ``num_disks``,
            ``memory_maximum_mb``, ``memory_used_mb``; with metering also
            ``cpu<N>_time`` (ns), ``memory_average_mb`` (Hyper-V's
            "Aggregated Average Memory Utilization"), ``nic<N>_mac``,
            ``nic<N>_rx_octets``, ``nic<N>_tx_octets``,
            ``disk<N>_read_bytes`` and ``disk<N>_write_bytes`` (in the
            order of the versioned model's lists).
        :raises nova.exception.InstanceNotFound: no VM of that name here.
        """
        diags = self.get_instance_diagnostics(instance)
        result = {
            'state': diags.state,
            'driver': diags.driver,
            'uptime': diags.uptime,
            'config_drive': diags.config_drive,
            'num_cpus': diags.num_cpus,
            'num_disks': diags.num_disks,
            'memory_maximum_mb': diags.memory_details.maximum,
            'memory_used_mb': diags.memory_details.used,
        }
        if not CONF.hyperv.enable_instance_metrics_collection:
            return result
        result['memory_average_mb'] = int(
            self._metricsutils.get_memory_metrics(instance.name))
        for index, cpu in enumerate(diags.cpu_details):
            result['cpu%d_time' % index] = cpu.time
        for index, nic in enumerate(diags.nic_details):
            result['nic%d_mac' % index] = nic.mac_address
            result['nic%d_rx_octets' % index] = nic.rx_octets
            result['nic%d_tx_octets' % index] = nic.tx_octets
        for index, disk in enumerate(diags.disk_details):
            result['disk%d_read_bytes' % index] = disk.read_bytes
            result['disk%d_write_bytes' % index] = disk.write_bytes
        return result
