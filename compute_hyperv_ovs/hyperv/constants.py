"""Names and numbers the Hyper-V driver's modules share.

Values that os-win or nova define are taken from them; the strings here are
the ones os-win's utils expect (drive and controller types) or the ones
nova's API exposes (image properties, flavor extra specs).
"""

from nova.compute import power_state
from nova.objects import fields as obj_fields
from os_win import constants as os_win_const
from oslo_utils import units

# Hyper-V's EnabledState of a VM -> nova's power state.  A VM shutting down
# is reported off: nova must not act on a VM that is about to stop.
POWER_STATE = {
    os_win_const.HYPERV_VM_STATE_ENABLED: power_state.RUNNING,
    os_win_const.HYPERV_VM_STATE_DISABLED: power_state.SHUTDOWN,
    os_win_const.HYPERV_VM_STATE_SHUTTING_DOWN: power_state.SHUTDOWN,
    os_win_const.HYPERV_VM_STATE_PAUSED: power_state.PAUSED,
    os_win_const.HYPERV_VM_STATE_SUSPENDED: power_state.SUSPENDED,
}

# Win32_Processor.Architecture (os-win's ARCH_*) -> nova's architecture.
ARCHITECTURE = {
    os_win_const.ARCH_X86_64: obj_fields.Architecture.X86_64,
    os_win_const.ARCH_I686: obj_fields.Architecture.I686,
    os_win_const.ARCH_IA64: obj_fields.Architecture.IA64,
    os_win_const.ARCH_ARMV7: obj_fields.Architecture.ARMV7,
    os_win_const.ARCH_PPC: obj_fields.Architecture.PPC,
    os_win_const.ARCH_MIPS: obj_fields.Architecture.MIPS,
    os_win_const.ARCH_ALPHA: obj_fields.Architecture.ALPHA,
}

# Drive and controller types, as os-win's vmutils takes them.
CTRL_TYPE_IDE = os_win_const.CTRL_TYPE_IDE
CTRL_TYPE_SCSI = os_win_const.CTRL_TYPE_SCSI
DISK = os_win_const.DISK
DVD = os_win_const.DVD
VOLUME = 'VOLUME'

# Disk file formats (os-win's VHD utils and the file extensions).
DISK_FORMAT_VHD = 'VHD'
DISK_FORMAT_VHDX = 'VHDX'
# An ISO 9660 (or UDF) image: glance's disk_format iso, booted from a DVD.
DISK_FORMAT_ISO = 'ISO'
# The config drive's formats: its ISO image on a DVD, or that ISO as a VHD.
CONFIG_DRIVE_DVD_FORMAT = 'ISO'
CONFIG_DRIVE_DISK_FORMAT = DISK_FORMAT_VHD

# VM generations and the values of the hw_machine_type image property that
# choose them.
VM_GEN_1 = 1
VM_GEN_2 = 2
IMAGE_PROP_VM_GEN = {'hyperv-gen1': VM_GEN_1, 'hyperv-gen2': VM_GEN_2}

HOST_POWER_ACTION_SHUTDOWN = 'shutdown'
HOST_POWER_ACTION_REBOOT = 'reboot'
HOST_POWER_ACTION_STARTUP = 'startup'

# The serial console: every Hyper-V VM has COM1 and COM2; the guest's
# console (a Linux guest's ttyS0) is COM1.  'ro' ports only feed the
# console log, 'rw' ports may also be offered interactively.
SERIAL_CONSOLE_PORT = 1
SERIAL_CONSOLE_BUFFER_SIZE = 4 * units.Ki
SERIAL_PORT_TYPE_RO = 'ro'
SERIAL_PORT_TYPE_RW = 'rw'

FLAVOR_SPEC_SECURE_BOOT = 'os:secure_boot'
