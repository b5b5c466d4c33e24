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
                "only, convert it with qemu-img convert -O vhdx")


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
