"""Makes ``compute_driver = compute_hyperv_ovs.driver.HyperVOVSDriver`` load.

nova's ``load_compute_driver()`` imports ``'nova.virt.' + compute_driver``
(nova commit 8eb03de1, Newton), so an out-of-tree driver needs a module
under ``nova.virt``.  This one only re-exports the real class; the wheel
installs this folder alone and none of nova's own files.
"""

from compute_hyperv_ovs import driver

HyperVOVSDriver = driver.HyperVOVSDriver
