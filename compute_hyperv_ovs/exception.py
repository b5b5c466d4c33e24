"""Errors this driver raises, worded for the operator who reads the fault.

Each subclasses the nova exception that makes the compute manager abort
the build without rescheduling (``ComputeManager._build_and_run_instance``
turns ``ImageUnacceptable`` and ``FlavorDiskTooSmall`` into
``BuildAbortException``), since another host would refuse the same input.
Messages stay short: nova keeps the first 255 characters of a fault's
message, after its own "Build of instance <uuid> aborted: " prefix.
"""

from nova import exception
from nova.i18n import _


class ImageNotVHD(exception.ImageUnacceptable):
    msg_fmt = _("Image %(image_id)s: %(reason)s; Hyper-V boots VHD or VHDX "
                "disks (or ISO images, from a DVD) only, convert it with "
                "qemu-img convert -O vhdx")


class ImageNotISO(exception.ImageUnacceptable):
    msg_fmt = _("Image %(image_id)s is declared disk_format=iso but its "
                "content is not an ISO 9660 or UDF image; upload the ISO "
                "file itself, or declare the image's real disk_format")


class Generation2NeedsVHDX(exception.ImageUnacceptable):
    msg_fmt = _("Image %(image_id)s: hw_machine_type=hyperv-gen2 boots VHDX "
                "only, but its disk is VHD; convert it to VHDX or use "
                "hyperv-gen1")


class ConfigDriveFormatUnsupported(exception.InvalidInput):
    msg_fmt = _("config_drive_format=%(format)s is not supported: Hyper-V "
                "config drives are ISO 9660 (as DVD or VHD); set [DEFAULT] "
                "config_drive_format = iso9660")


class RootDiskTooSmall(exception.FlavorDiskSmallerThanImage):
    msg_fmt = _("Flavor's disk is too small for the image: its virtual disk "
                "is %(image_size)i bytes, the flavor allows %(flavor_size)i; "
                "use a flavor with a larger root_gb")


class ImageCopyFailed(exception.NovaException):
    """Copying a cached image failed on this host (e.g. its disk is full).

    Not an image problem: the compute manager reschedules the build, and
    this host's log and the instance action event say what failed.
    """
    msg_fmt = _("Image %(image_id)s could not be copied to %(path)s in this "
                "host's image cache: %(reason)s; check the free space and "
                "permissions of the instances path")


class ImageResizeFailed(exception.NovaException):
    """Resizing a cached VHD image to the flavor's root disk failed."""
    msg_fmt = _("Image %(image_id)s could not be resized to %(size_gb)s GB "
                "at %(path)s in this host's image cache: %(reason)s; a VHD "
                "image must be a fixed or dynamic (not differencing) disk")


# The vSwitch checks below run before a VM is created.  A host whose
# [hyperv] vswitch_name cannot carry Open vSwitch ports fails every build
# the same way, so the build is aborted (no reschedule) with a fault that
# says what to fix on this host.  (Subclassing InvalidInput is what makes
# the compute manager abort rather than reschedule.)


class VswitchNotSet(exception.InvalidInput):
    msg_fmt = _("[hyperv] vswitch_name is not set: set it to the Hyper-V "
                "vSwitch whose Open vSwitch extension is enabled")


class VswitchNotFound(exception.InvalidInput):
    msg_fmt = _("Hyper-V has no vSwitch named %(vswitch)s ([hyperv] "
                "vswitch_name); create it and enable its Open vSwitch "
                "extension, or name the vSwitch that has it")


class OvsExtensionMissing(exception.InvalidInput):
    msg_fmt = _("vSwitch %(vswitch)s ([hyperv] vswitch_name) has no Open "
                "vSwitch extension; install Open vSwitch for Windows and "
                "enable the extension on it")


class OvsExtensionDisabled(exception.InvalidInput):
    msg_fmt = _("vSwitch %(vswitch)s ([hyperv] vswitch_name): the Open "
                "vSwitch extension is not enabled; run "
                "Enable-VMSwitchExtension -VMSwitchName %(vswitch)s -Name "
                "\"%(extension)s\"")


class OvsExtensionNotRunning(exception.InvalidInput):
    msg_fmt = _("vSwitch %(vswitch)s ([hyperv] vswitch_name): the Open "
                "vSwitch extension %(extension)s is enabled but not running "
                "(EnabledState %(state)s); check Get-VMSwitchExtension and "
                "the Open vSwitch for Windows installation")


# NIC hot-plug (server add port / remove port).  nova 28's compute manager
# answers any failed attach with its own "Failed to attach network adapter
# device" and unbinds the port; these messages reach nova-compute's log and
# the instance.interface_attach.error notification.  They subclass
# NovaException, which is what makes the manager clean up.


class NICHotplugRefused(exception.NovaException):
    msg_fmt = _("Port %(port)s: %(reason)s; stop the server (openstack "
                "server stop), then %(operation)s the port")


class NICHotplugFailed(exception.NovaException):
    msg_fmt = _("Port %(port)s: Hyper-V could not %(operation)s the vNIC of "
                "instance %(instance)s: %(reason)s")


class AttachNoVifPlugged(exception.VirtualInterfaceCreateException):
    msg_fmt = _("Port %(port)s: no network-vif-plugged within %(timeout)s "
                "s of adding it; the port was removed again. Check that "
                "neutron-openvswitch-agent runs on this host and sees it on "
                "the bridge")


class VMRequestRefused(exception.InvalidInput):
    """A flavor extra spec or image property the Hyper-V driver refuses.

    Raised before anything of the VM is created (``hyperv.vmsettings``);
    an ``InvalidInput``, so the build is aborted with this message rather
    than rescheduled to hosts that would refuse it alike.
    """
    msg_fmt = _("%(reason)s")


class PciDeviceNotAssignable(exception.InvalidInput):
    """A PCI device nova claimed here that Hyper-V cannot assign.

    nova's PCI tracker and the host disagree (the device was given back to
    the host, or a VM nova does not know holds it): this host must be
    fixed, so the build aborts with what to do rather than rescheduling.
    The VM gets none of the instance's devices.
    """
    msg_fmt = _("PCI device %(address)s (%(vendor_id)s:%(product_id)s) "
                "%(reason)s")


class ImageSerialPortInvalid(exception.InvalidInput):
    """An image's ``interactive_serial_port`` / ``logging_serial_port``."""
    msg_fmt = _("Image property %(name)s=%(value)s: a Hyper-V VM has COM1 "
                "and COM2 only; set it to 1 or 2")
