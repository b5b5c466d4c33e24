"""compute-hyperv-ovs: a nova compute driver for Hyper-V hosts on OVS.

Importing the package first makes os-win importable under nova's native
threading mode (see :mod:`compute_hyperv_ovs.compat`): every module of the
package that uses os-win is imported through here, whether nova loads the
driver or stevedore loads the ``hyperv_ovs`` os-vif plugin.
"""

from compute_hyperv_ovs import compat

compat.install()
