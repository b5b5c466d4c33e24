"""What nova-api loads of compute-hyperv-ovs: its extra spec validators.

Kept apart from ``compute_hyperv_ovs``, whose import prepares os-win for
nova-compute (``compute_hyperv_ovs.compat``) and fails in a process that
has imported eventlet, as nova-api may: nothing here imports os-win or
the driver.
"""
