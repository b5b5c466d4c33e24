"""Errors this driver raises, worded for the operator who reads the fault.

Each subclasses the nova exception that makes the compute manager abort
the build without rescheduling (``ComputeManager._build_and_run_instance``
turns ``ImageUnacceptable`` and ``FlavorDiskTooSmall`` into
``BuildAbortException``), since another host would refuse the same input.
"""

from nova import exception
from nova.i18n import _


class ImageNotVHD(exception.ImageUnacceptable):
    msg_fmt = _("Image %(image_id)s is unacceptable: %(reason)s. Hyper-V "
                "boots VHD or VHDX images only: convert the image with "
                "'qemu-img convert -O vhdx' and upload it with "
                "disk_format=vhdx.")


class Generation2NeedsVHDX(exception.ImageUnacceptable):
    msg_fmt = _("Image %(image_id)s is unacceptable: it asks for a "
                "generation 2 VM (hw_machine_type=hyperv-gen2), which boots "
                "VHDX disks only, but its disk is VHD. Convert it to VHDX or "
                "set hw_machine_type=hyperv-gen1.")


class RootDiskTooSmall(exception.FlavorDiskSmallerThanImage):
    msg_fmt = _("Flavor's disk is too small for requested image: the "
                "flavor's root disk allows a virtual disk of "
                "%(flavor_size)i bytes, the image's virtual disk is "
                "%(image_size)i bytes. Boot it with a flavor whose root_gb "
                "is larger than the image's virtual size.")
