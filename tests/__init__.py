# nova decides the concurrency mode before anything else is imported, as
# nova-compute's entry point does (nova/cmd/compute.py): native threading
# unless OS_NOVA_DISABLE_EVENTLET_PATCHING says otherwise (tox.ini sets it
# per environment).  The driver's package then makes os-win importable in
# that mode (compute_hyperv_ovs.compat).
from nova import monkey_patch  # noqa: E402

monkey_patch.patch(backend='threading')
# Then the driver's package, before anything imports os_win (the simulated
# host does).
import compute_hyperv_ovs  # noqa: E402,F401
