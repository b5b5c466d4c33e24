"""PCI passthrough by Hyper-V's Discrete Device Assignment (DDA).

What nova asks: a flavor's ``pci_passthrough:alias`` names ``[pci]
alias`` entries; nova's PCI tracker claims matching devices of this host
(those :mod:`.hostops` reports and ``[pci] device_spec`` allows) and puts
them in ``instance.pci_devices`` before the driver creates the VM (at a
spawn, and on a resize's destination through the migration context).

What Hyper-V needs (Microsoft, "Plan for deploying devices by using
Discrete Device Assignment" and "Deploy graphics devices by using
Discrete Device Assignment"; nova 28 ``vmops.create_instance`` and
compute-hyperv 16 ``vmops.update_vm_resources`` / ``_attach_pci_devices``
did the same through os-win):

- the device is dismounted from the host by the operator beforehand
  (``Dismount-VMHostAssignableDevice``); os-win reports such devices
  (``hostutils.get_pci_passthrough_devices``);
- the VM is off when a device is added or removed;
- its automatic stop action is TurnOff: "Discrete Device Assignment
  imposes some restrictions to the VMs and the following step needs to be
  taken: Configure the Automatic Stop Action of a VM to TurnOff"
  (Microsoft, "Deploy graphics devices by using Discrete Device
  Assignment", Configure the VM for DDA).  Hyper-V's default, Save, cannot
  work (a DDA VM cannot be saved); compute-hyperv 16 set ShutDown
  (``vmops.update_vm_resources``), which Microsoft does not document for
  DDA.  The guest is thus powered off, not shut down, when the host shuts
  down;
- its memory is static: DDA does not work with dynamic memory
  (:mod:`.vmsettings` turns it off for such a flavor);
- the VM cannot be saved (suspended) or live migrated.

os-win adds a device by vendor and product id only
(``vmutils.add_pci_device``: the first dismounted device of those ids no
VM holds), not by address: on a host with several identical devices
Hyper-V may give the VM another one of them than the one nova claimed.
They are interchangeable and nova's count per vendor and product stays
right, so that is accepted; the fault of a failed add names both.
"""

from nova.i18n import _
from nova import objects
from os_win import constants as os_win_const
from os_win import exceptions as os_win_exc
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import osutils

LOG = logging.getLogger(__name__)

# The automatic stop action of a VM holding devices (os-win's
# Msvm_VirtualSystemSettingData.AutomaticShutdownAction value): TurnOff,
# the one Microsoft's DDA guide requires (see the module docstring).
DDA_HOST_SHUTDOWN_ACTION = os_win_const.HOST_SHUTDOWN_ACTION_TURN_OFF

# The flavor extra spec nova's PCI aliases are requested by.
FLAVOR_SPEC_ALIAS = 'pci_passthrough:alias'


def flavor_requests_devices(flavor):
    """Whether the flavor asks for PCI devices through an alias (bool)."""
    return bool((flavor.extra_specs or {}).get(FLAVOR_SPEC_ALIAS))


def claimed_devices(instance):
    """The PCI devices nova claimed for the instance's flavor aliases.

    :returns: list of ``nova.objects.PciDevice`` (``address``,
        ``vendor_id``, ``product_id``); empty when none.
    """
    if not instance.pci_requests or not instance.pci_requests.requests:
        return []
    return instance.get_pci_devices(
        source=objects.InstancePCIRequest.FLAVOR_ALIAS)


def neutron_requests(instance):
    """The instance's PCI requests made for neutron ports (SR-IOV)."""
    if not instance.pci_requests:
        return []
    return [request for request in instance.pci_requests.requests
            if request.source == objects.InstancePCIRequest.NEUTRON_PORT]


class PCIDeviceOps(object):
    """Assigns the devices nova claimed to a VM, or refuses, undone."""

    def __init__(self):
        self._vmutils = osutils.per_thread(utilsfactory.get_vmutils)
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)

    def check_assignable(self, instance):
        """Refuse, before the VM is created, devices the host does not offer.

        nova claimed them from the host's last report; the operator may
        have given one back to the host since (``Mount-
        VMHostAssignableDevice``).  Whether another VM holds one shows only
        when it is added (os-win has no query for it).

        :raises compute_hyperv_ovs.exception.PciDeviceNotAssignable: with
            the device and what to do.
        """
        devices = claimed_devices(instance)
        if not devices:
            return
        offered = {dev['address'].lower()
                   for dev in self._hostutils.get_pci_passthrough_devices()}
        for dev in devices:
            if dev.address.lower() not in offered:
                raise self._refusal(instance, dev, _(
                    'is not dismounted for DDA on this host any more; '
                    'dismount it (Dismount-VMHostAssignableDevice) or take '
                    'it out of [pci] device_spec'))

    def attach(self, instance, devices):
        """Add the claimed devices to the VM (off, stop action set).

        :param devices: :func:`claimed_devices` of the instance, which the
            caller needed first to set the VM's stop action.

        On failure the devices added so far are removed again.

        :raises compute_hyperv_ovs.exception.PciDeviceNotAssignable: no
            free device of a claimed device's vendor and product.
        """
        added = []
        for dev in devices:
            LOG.info('Assigning PCI device %(address)s (%(vendor)s:'
                     '%(product)s) to the VM',
                     {'address': dev.address, 'vendor': dev.vendor_id,
                      'product': dev.product_id}, instance=instance)
            try:
                self._vmutils.add_pci_device(instance.name, dev.vendor_id,
                                             dev.product_id)
            except os_win_exc.PciDeviceNotFound as exc:
                self._remove_added(instance, added)
                raise self._refusal(instance, dev, _(
                    'is held by another VM here or not dismounted; free '
                    'it (Get-VMHostAssignableDevice, Remove-'
                    'VMAssignableDevice)')) from exc
            except Exception:
                self._remove_added(instance, added)
                raise
            added.append(dev)

    def _remove_added(self, instance, added):
        # Best effort: the add's own error is what the caller reports.
        for dev in added:
            try:
                self._vmutils.remove_pci_device(instance.name, dev.vendor_id,
                                                dev.product_id)
            except Exception:
                LOG.exception('Could not remove PCI device %s from the VM '
                              'again; remove it with Remove-'
                              'VMAssignableDevice', dev.address,
                              instance=instance)

    @staticmethod
    def _refusal(instance, dev, reason):
        LOG.error('PCI device %(address)s (%(vendor)s:%(product)s) %(why)s',
                  {'address': dev.address, 'vendor': dev.vendor_id,
                   'product': dev.product_id, 'why': reason},
                  instance=instance)
        return exception.PciDeviceNotAssignable(
            address=dev.address, vendor_id=dev.vendor_id,
            product_id=dev.product_id, reason=reason)
