"""The Hyper-V compute driver: VMs, disks, migrations and the host.

Knows nothing of Open vSwitch or neutron: NICs are connected to a Hyper-V
vSwitch by a VIF driver handed in by the driver that extends this one
(:mod:`compute_hyperv_ovs.driver`).
"""
