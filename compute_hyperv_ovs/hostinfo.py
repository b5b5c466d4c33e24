"""Host facts the preflight check needs and os-win 5.9.0 has no call for.

os-win answers "does vSwitch X exist, which extensions does it carry"
(``NetworkUtils.get_vswitch_extensions``) and "is live migration enabled"
(``LiveMigrationUtils.check_live_migration_config``), but it has no call
that lists every vSwitch, reads a VM's "limit processor features" setting
back, or reads a Windows service's state.  This class asks WMI for those
three through os-win's own WMI connection handling
(``os_win.utils.baseutils.BaseUtilsVirt``), the way os-win's utils do.

Only :mod:`compute_hyperv_ovs.status` uses it; the driver does not.  In
tests, ``tests/fixtures/hyperv/hostinfoutils.py`` replaces it with the
simulated host's ``SimulatedHostInfoUtils``, as it replaces os-win's
classes.
"""

from os_win.utils import baseutils

# Win32_Service.State of a service that runs (Microsoft, "Win32_Service
# class", State property).
SERVICE_RUNNING = 'Running'


class HostInfoUtils(baseutils.BaseUtilsVirt):
    """WMI reads for :mod:`compute_hyperv_ovs.status`.

    :param host: the Windows host to ask, ``.`` for this one.
    """

    # Msvm_VirtualSystemSettingData.VirtualSystemType of a VM (not a
    # snapshot or a planned VM); os-win vmutils uses the same value.
    _VM_TYPE_REALIZED = 'Microsoft:Hyper-V:System:Realized'
    _CIMV2_NAMESPACE = '//%s/root/cimv2'

    def list_vswitches(self):
        """Names of every Hyper-V vSwitch of the host.

        ``Msvm_VirtualEthernetSwitch`` (root/virtualization/v2), one
        instance per vSwitch, named by ``ElementName`` (what
        ``Get-VMSwitch`` shows as Name; os-win looks vSwitches up by it).

        :returns: list of str.
        """
        return [vswitch.ElementName
                for vswitch in self._conn.Msvm_VirtualEthernetSwitch()]

    def get_vm_processor_limits(self):
        """Whether each VM was created with limited processor features.

        ``Msvm_ProcessorSettingData.LimitProcessorFeatures`` of each VM's
        realized settings, which nova's Hyper-V driver sets from ``[hyperv]
        limit_cpu_features`` when it creates the VM (os-win
        ``VMUtils.update_vm``).

        :returns: dict of VM name (str) to bool.
        """
        limits = {}
        for vssd in self._conn.Msvm_VirtualSystemSettingData(
                VirtualSystemType=self._VM_TYPE_REALIZED):
            # A VM's resource settings' InstanceIDs start with its
            # settings' InstanceID (the query os-win's vmutils makes).
            procs = self._conn.query(
                "SELECT LimitProcessorFeatures FROM "
                "Msvm_ProcessorSettingData WHERE InstanceID LIKE '%s%%'"
                % vssd.InstanceID)
            if procs:
                limits[vssd.ElementName] = bool(
                    procs[0].LimitProcessorFeatures)
        return limits

    def get_service_state(self, service_name):
        """The state of a Windows service, or None when it is not installed.

        ``Win32_Service`` (root/cimv2) ``State``: ``Running``, ``Stopped``,
        ``Start Pending``... (Microsoft, "Win32_Service class").

        :param service_name: the service's short name, e.g. ``MSiSCSI``.
        :returns: str or None.
        """
        conn = self._get_wmi_conn(self._CIMV2_NAMESPACE % self._host)
        services = conn.Win32_Service(Name=service_name)
        return services[0].State if services else None
