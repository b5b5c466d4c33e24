"""A VIF driver for the Hyper-V core's own tests: it records, nothing more.

The core knows no network back end (compute_hyperv_ovs.hyperv.driver); its
tests give it this one, so that what the core asks of a back end, and in
which order, is what they check.
"""

from nova.network import model as network_model
from oslo_utils import uuidutils

# The vNIC MAC address the core's tests give their VIFs.
MAC = 'fa:16:3e:00:00:01'


class RecordingVIFDriver(object):
    """The network back end's side of VMOps: what was (un)plugged."""

    def __init__(self):
        self.calls = []

    def plug(self, instance, vif):
        self.calls.append(('plug', vif['id']))

    def unplug(self, instance, vif):
        self.calls.append(('unplug', vif['id']))


def ovs_vif():
    """A neutron port on br-int as nova hands it to the core: one VIF."""
    return network_model.VIF(
        id=uuidutils.generate_uuid(), address=MAC, type='ovs',
        network=network_model.Network(id=uuidutils.generate_uuid(),
                                      bridge='br-int', subnets=[]))
