"""Flavor extra specs the Hyper-V driver reads that nova 34 does not know.

nova-api (microversion 2.86 and later) refuses an extra spec of a
namespace it knows (``hw:``) unless a validator describes it.  compute-
hyperv 16 read ``hw:cpu_features`` (``vmops._requires_nested_virt``) and
nova never declared it, so nova 34 refuses new flavors with it.  This
module declares it through nova's ``nova.api.extra_spec_validators``
entry point (``nova.api.validation.extra_specs.validators.
load_validators``); it takes effect where nova-api runs with this package
installed.

The name stays compute-hyperv's so that flavors made for it keep their
meaning here; only ``vmx`` (nested virtualization) is accepted, the one
CPU feature Hyper-V can expose on request.
"""

from nova.api.validation.extra_specs import base

EXTRA_SPEC_VALIDATORS = [
    base.ExtraSpecValidator(
        name='hw:cpu_features',
        description=(
            'CPU features to expose to the guest. Only supported by the '
            'compute-hyperv-ovs Hyper-V driver, which accepts vmx: '
            'nested virtualization (the guest may run Hyper-V), with '
            'static memory.'
        ),
        value={
            'type': str,
            'description': 'A comma-separated list of CPU features: vmx',
            'pattern': r'(?i)\s*vmx\s*(,\s*vmx\s*)*',
        },
    ),
]


def register():
    """The validators, for nova's ``nova.api.extra_spec_validators``."""
    return EXTRA_SPEC_VALIDATORS
