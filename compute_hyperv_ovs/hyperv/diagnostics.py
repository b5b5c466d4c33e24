"""Instance diagnostics from Hyper-V's VM summary.

nova 28's Hyper-V driver and compute-hyperv had none (nova's API answered
501); this reads what every Hyper-V host reports without metrics
collection: ``Msvm_VirtualSystemManagementService.GetSummaryInformation``
through os-win's ``VMUtils.get_vm_summary_info`` (state, number of virtual
processors, memory in use, uptime), the flavor's memory and the VM's disks.

Per-vCPU time and per-NIC and per-disk I/O counters need Hyper-V's
resource metering (``[hyperv] enable_instance_metrics_collection``,
os-win's ``MetricsUtils``); they are left as ``None``, which nova's model
allows, until that part of the feature set is built.
"""

from nova.compute import power_state
from nova import exception
from nova.objects import diagnostics
from nova.virt import configdrive
from os_win import utilsfactory

from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils

# os-win's summary gives UpTime in milliseconds; nova's model has seconds.
_MS_PER_S = 1000


class DiagnosticsOps(object):
    """Diagnostics of this host's VMs, in nova's model."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)

    def get_instance_diagnostics(self, instance):
        """Diagnostics in nova's versioned model (API microversion 2.48+).

        :param instance: nova.objects.Instance (its VM is ``instance.name``).
        :returns: nova.objects.diagnostics.Diagnostics with ``state``,
            ``driver='hyperv'``, ``uptime`` (s since the VM last started; 0
            when it is not running), ``config_drive``, one CPU entry per
            virtual processor (``id``; ``time`` and ``utilisation`` None),
            ``memory_details`` in MiB (``maximum``: the flavor's memory,
            ``used``: what Hyper-V reports the VM uses), and one disk entry
            per attached virtual disk, DVD image (a config drive among
            them) or passthrough volume, as os-win's
            ``get_vm_storage_paths`` lists them (counters None).
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
        for vcpu in range(int(summary['NumberOfProcessors'] or 0)):
            diags.add_cpu(id=vcpu)
        diags.memory_details = diagnostics.MemoryDiagnostics(
            maximum=instance.flavor.memory_mb,
            used=int(summary['MemoryUsage'] or 0))
        disk_files, volume_drives = self._vmutils.get_vm_storage_paths(name)
        for _disk in list(disk_files) + list(volume_drives):
            diags.add_disk()
        return diags

    def get_diagnostics(self, instance):
        """The same facts as a flat dict (API microversions before 2.48).

        :returns: dict of ``state``, ``driver``, ``uptime`` (s),
            ``config_drive``, ``num_cpus``, ``num_disks``,
            ``memory_maximum_mb``, ``memory_used_mb``.
        :raises nova.exception.InstanceNotFound: no VM of that name here.
        """
        diags = self.get_instance_diagnostics(instance)
        return {
            'state': diags.state,
            'driver': diags.driver,
            'uptime': diags.uptime,
            'config_drive': diags.config_drive,
            'num_cpus': diags.num_cpus,
            'num_disks': diags.num_disks,
            'memory_maximum_mb': diags.memory_details.maximum,
            'memory_used_mb': diags.memory_details.used,
        }
