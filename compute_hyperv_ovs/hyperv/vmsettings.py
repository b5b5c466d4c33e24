"""What a flavor and an image ask of a VM's definition, checked up front.

:meth:`VMSettingsBuilder.settings` reads the requests once, before the
VM or any of its files exists, and either refuses them with
``VMRequestRefused`` (an ``InvalidInput``: the build aborts with the
reason, which says what to change) or returns the
:class:`VMSettings` that ``vmops.VMOps.create_instance`` applies:

- secure boot: image ``os_secure_boot`` / flavor ``os:secure_boot``
  = ``required`` (nova 28 ``vmops._requires_secure_boot``);
- virtual NUMA: ``hw:numa_nodes``, ``hw:numa_cpus.N``, ``hw:numa_mem.N``
  and the image's ``hw_numa_*`` (nova 28 / compute-hyperv 16
  ``vmops._get_instance_vnuma_config``), even cells only;
- nested virtualization: ``vmx`` in flavor ``hw:cpu_features`` or image
  ``hw_cpu_features`` (compute-hyperv 16 ``vmops._requires_nested_virt``);
- dynamic memory: ``[hyperv] dynamic_memory_ratio``, off for vNUMA,
  nested virtualization (compute-hyperv 16
  ``vmops._get_instance_dynamic_memory_ratio``) and PCI devices
  (:mod:`.pcidevices`).

Refused because this driver cannot honour them: CPU pinning, huge pages,
nova's vTPM (``hw:tpm_*``), compute-hyperv's vTPM / shielded VMs
(``os_vtpm``, ``os_shielded_vm``: they need a PDK from Barbican) and
RemoteFX (``os:resolution``, ``os:monitors``, ``os:vram``: Microsoft
removed RemoteFX vGPU).
"""

import dataclasses

import nova.conf
from nova import exception as nova_exception
from nova.i18n import _
from nova.objects import fields
from nova import utils as nova_utils
from nova.virt import hardware
from os_win import utilsfactory
from oslo_log import log as logging

from compute_hyperv_ovs import exception
from compute_hyperv_ovs.hyperv import constants
from compute_hyperv_ovs.hyperv import osutils
from compute_hyperv_ovs.hyperv import pcidevices

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# The CPU feature whose request turns on nested virtualization (Intel
# VT-x; compute-hyperv 16 looks for the same name).
NESTED_VIRT_FEATURE = 'vmx'

# Image properties nova's ImageMeta does not know; read from what nova-api
# copied of the image into the instance's system metadata.
IMAGE_PROP_CPU_FEATURES = 'hw_cpu_features'
IMAGE_PROP_VTPM = 'os_vtpm'
IMAGE_PROP_SHIELDED_VM = 'os_shielded_vm'
IMAGE_PROP_PDK_REFERENCE = 'img_pdk_reference'

FLAVOR_SPEC_CPU_FEATURES = 'hw:cpu_features'
FLAVOR_SPECS_REMOTEFX = ('os:resolution', 'os:monitors', 'os:vram')

# Microsoft's notice: RemoteFX vGPU was deprecated with Windows Server
# 2019, disabled by the July 2020 updates and removed by the April 2021
# ones, for architectural security flaws (KB4570006, CVE-2020-1036).
REMOTEFX_NOTICE = 'https://support.microsoft.com/help/4570006'


@dataclasses.dataclass(frozen=True)
class VMSettings(object):
    """The parts of a VM's definition that flavor and image choose.

    :ivar secure_boot: turn on UEFI Secure Boot (generation 2 VMs only).
    :ivar secure_boot_msft_ca: trust the Microsoft UEFI CA template (the
        one non-Windows boot loaders are signed with) instead of the
        Windows one.
    :ivar memory_per_numa_node: MB in each virtual NUMA node, or None when
        the VM has no virtual NUMA topology.
    :ivar vcpus_per_numa_node: virtual processors in each node, or None.
    :ivar dynamic_memory_ratio: os-win's ``dynamic_mem_ratio``; above 1
        the VM starts with ``memory_mb / ratio`` MB and may grow to
        ``memory_mb``.
    :ivar nested_virtualization: expose the processor's virtualization
        extensions to the guest.
    """

    secure_boot: bool = False
    secure_boot_msft_ca: bool = False
    memory_per_numa_node: int = None
    vcpus_per_numa_node: int = None
    dynamic_memory_ratio: float = 1.0
    nested_virtualization: bool = False

    @property
    def vnuma_enabled(self):
        return self.memory_per_numa_node is not None


def image_properties(instance):
    """Every property of the instance's image, known to nova or not.

    nova's ``ImageMeta`` drops properties it has no field for (such as
    compute-hyperv's ``os_vtpm`` or ``hw_cpu_features``); nova-api keeps
    all of them, as strings, in the instance's system metadata
    (``nova.utils.get_system_metadata_from_image``).

    :returns: dict of property name -> string value.
    """
    return nova_utils.get_image_from_system_metadata(
        instance.system_metadata or {})['properties']


def _cpu_features(value):
    return {f.strip().lower() for f in (value or '').split(',')
            if f.strip()}


class VMSettingsBuilder(object):
    """Turns a flavor and an image into :class:`VMSettings`, or refuses."""

    def __init__(self):
        self._hostutils = osutils.per_thread(utilsfactory.get_hostutils)

    def settings(self, instance, image_meta, vm_gen, flavor=None):
        """Check the requests of ``flavor`` and the image; build settings.

        :param instance: the ``nova.objects.Instance``.
        :param image_meta: the instance's ``nova.objects.ImageMeta``.
        :param vm_gen: the VM's generation (1 or 2).
        :param flavor: the flavor to check (a resize's new one); default
            ``instance.flavor``.
        :returns: :class:`VMSettings`.
        :raises compute_hyperv_ovs.exception.VMRequestRefused: (an
            ``InvalidInput``) a request this host or driver cannot honour,
            with what to change.
        """
        flavor = flavor or instance.flavor
        specs = flavor.extra_specs or {}
        raw_props = image_properties(instance)
        self._refuse_remotefx(instance, specs)
        self._refuse_nova_vtpm(instance, flavor, image_meta)
        secure_boot = self._secure_boot(instance, flavor, image_meta, vm_gen)
        self._refuse_secure_vm(instance, image_meta, raw_props, secure_boot)
        mem_per_node, cpus_per_node = self._vnuma(instance, flavor,
                                                  image_meta)
        nested = self._nested_virtualization(instance, specs, raw_props)
        ratio = self._dynamic_memory_ratio(
            instance, mem_per_node is not None, nested,
            pcidevices.flavor_requests_devices(flavor))
        os_type = image_meta.properties.get('os_type')
        return VMSettings(
            secure_boot=secure_boot,
            secure_boot_msft_ca=(secure_boot and
                                 os_type != fields.OSType.WINDOWS),
            memory_per_numa_node=mem_per_node,
            vcpus_per_numa_node=cpus_per_node,
            dynamic_memory_ratio=ratio,
            nested_virtualization=nested)

    @staticmethod
    def _unacceptable(instance, reason):
        # nova keeps 255 characters of a fault's message, its own prefix
        # included: reasons stay short, the log has them whole.
        LOG.error('Refusing the VM: %s', reason, instance=instance)
        return exception.VMRequestRefused(reason=reason)

    # ---- refusals ----

    def _refuse_remotefx(self, instance, specs):
        """RemoteFX vGPU is gone from Windows; refuse flavors asking for it.

        nova 28 / compute-hyperv 16 ``vmops._configure_remotefx`` attached
        a RemoteFX 3D adapter for ``os:resolution`` (with ``os:monitors``,
        ``os:vram``).  Microsoft removed RemoteFX vGPU (KB4570006), so
        an old flavor that still carries these keys is refused, not run
        without the adapter it asks for.
        """
        asked = sorted(k for k in FLAVOR_SPECS_REMOTEFX if k in specs)
        if asked:
            LOG.error('The flavor asks for a RemoteFX vGPU (%(keys)s): '
                      'Microsoft deprecated RemoteFX vGPU with Windows '
                      'Server 2019 and removed it from every Windows '
                      'release with the April 2021 updates (%(notice)s)',
                      {'keys': ', '.join(asked), 'notice': REMOTEFX_NOTICE},
                      instance=instance)
            raise self._unacceptable(instance, _(
                'Microsoft removed RemoteFX vGPU (KB4570006): use a flavor '
                'without %s') % ', '.join(asked))

    def _refuse_nova_vtpm(self, instance, flavor, image_meta):
        """nova's own vTPM request (``hw:tpm_*``) is not implemented here.

        nova's scheduler already sends such a request only to hosts with
        a ``COMPUTE_SECURITY_TPM_*`` trait, which this driver does not
        report; this refuses it should it arrive anyway (a rebuild).
        """
        try:
            vtpm = hardware.get_vtpm_constraint(flavor, image_meta)
        except (nova_exception.Invalid,
                nova_exception.FlavorImageConflict) as exc:
            raise self._unacceptable(instance, exc.format_message())
        if vtpm is not None:
            raise self._unacceptable(instance, _(
                'vTPM %s (hw:tpm_version / hw_tpm_version) is not supported '
                'by the Hyper-V driver: remove it from flavor and '
                'image') % vtpm.version)

    def _refuse_secure_vm(self, instance, image_meta, raw_props,
                          secure_boot):
        """Refuse compute-hyperv's vTPM and shielded VM image properties.

        compute-hyperv 16 ``vmops._configure_secure_vm`` builds them for
        ``os_vtpm=required`` / ``os_shielded_vm=required`` when the VM has
        secure boot, its ``os_type`` is one os-win gives a vTPM to
        (``os_win.constants.VTPM_SUPPORTED_OS``), the host is guarded
        (``hostutils.is_host_guarded``) and a PDK (shielding data file)
        comes from Barbican (``img_pdk_reference``).  This driver has no
        Barbican client and builds no PDK, so it always refuses, naming
        every requirement that is missing besides.
        """
        asked = [prop for prop in (IMAGE_PROP_SHIELDED_VM, IMAGE_PROP_VTPM)
                 if raw_props.get(prop) == fields.SecureBoot.REQUIRED]
        if not asked:
            return
        missing = []
        if not secure_boot:
            missing.append(_('secure boot'))
        if image_meta.properties.get('os_type') != fields.OSType.WINDOWS:
            missing.append('os_type=windows')
        if not self._hostutils.is_host_guarded():
            missing.append(_('a guarded host'))
        also = (_('; also missing: %s') % ', '.join(missing)
                if missing else '')
        raise self._unacceptable(instance, _(
            '%(props)s=required is not supported: this driver gets no '
            'shielding data (PDK, %(pdk)s) from Barbican%(also)s. Remove '
            'the property') % {'props': ' / '.join(asked), 'also': also,
                               'pdk': IMAGE_PROP_PDK_REFERENCE})

    # ---- secure boot ----

    def _secure_boot(self, instance, flavor, image_meta, vm_gen):
        """Whether to turn on secure boot.

        Only ``required`` does (as in nova 28; ``optional`` and
        ``disabled`` leave it off).  As nova 28, an image must say its
        ``os_type``: it chooses between the Windows and the Microsoft
        UEFI CA templates, and a guess would leave one kind of guest
        unable to boot.

        :raises compute_hyperv_ovs.exception.VMRequestRefused: flavor
            and image disagree, generation 1, or no ``os_type``.
        """
        try:
            policy = hardware.get_secure_boot_constraint(flavor, image_meta)
        except nova_exception.FlavorImageConflict:
            raise self._unacceptable(instance, _(
                'flavor os:secure_boot=%(flavor)s conflicts with image '
                'os_secure_boot=%(image)s: set them to the same value, or '
                'remove one') % {
                    'flavor': flavor.extra_specs.get('os:secure_boot'),
                    'image': image_meta.properties.get('os_secure_boot')})
        except nova_exception.Invalid as exc:
            raise self._unacceptable(instance, exc.format_message())
        if policy != fields.SecureBoot.REQUIRED:
            return False
        if vm_gen != constants.VM_GEN_2:
            raise self._unacceptable(instance, _(
                'secure boot needs a generation 2 VM: set the image '
                'property hw_machine_type=hyperv-gen2 (a UEFI VHDX image)'))
        if not image_meta.properties.get('os_type'):
            raise self._unacceptable(instance, _(
                'secure boot needs the image property os_type (windows, or '
                'linux for the Microsoft UEFI CA)'))
        return True

    # ---- memory and processors ----

    def _vnuma(self, instance, flavor, image_meta):
        """Memory (MB) and processors per virtual NUMA node, or Nones.

        :raises compute_hyperv_ovs.exception.VMRequestRefused: CPU
            pinning, huge pages, or nodes of different sizes.
        """
        topology = hardware.numa_get_constraints(flavor, image_meta)
        if not topology:
            return None, None
        shared = (None, fields.CPUAllocationPolicy.SHARED)
        if topology.cpu_policy not in shared:
            raise self._unacceptable(instance, _(
                'Hyper-V cannot pin vCPUs to host CPUs (hw:cpu_policy / '
                'hw_cpu_policy=%s): use the shared policy') %
                topology.cpu_policy)
        cells = topology.cells
        if any(cell.pagesize for cell in cells):
            raise self._unacceptable(instance, _(
                'Hyper-V has no huge or explicit page sizes for VMs: remove '
                'hw:mem_page_size / hw_mem_page_size'))
        cpus = [len(cell.cpuset) + len(cell.pcpuset or ()) for cell in cells]
        memory = [cell.memory for cell in cells]
        if len(set(cpus)) > 1 or len(set(memory)) > 1:
            raise self._unacceptable(instance, _(
                'Hyper-V needs equal virtual NUMA nodes, asked: %(cpus)s '
                'vCPUs, %(mem)s MB; make hw:numa_cpus.N and hw:numa_mem.N '
                'equal or drop them') % {
                    'cpus': '/'.join(map(str, cpus)),
                    'mem': '/'.join(map(str, memory))})
        return memory[0], cpus[0]

    def _nested_virtualization(self, instance, specs, raw_props):
        """Whether the flavor or image asks for ``vmx``.

        :raises compute_hyperv_ovs.exception.VMRequestRefused: another
            CPU feature is asked for (Hyper-V cannot add single features),
            or the host cannot nest.
        """
        features = (_cpu_features(specs.get(FLAVOR_SPEC_CPU_FEATURES)) |
                    _cpu_features(raw_props.get(IMAGE_PROP_CPU_FEATURES)))
        if not features:
            return False
        others = features - {NESTED_VIRT_FEATURE}
        if others:
            raise self._unacceptable(instance, _(
                'Hyper-V cannot expose CPU feature(s) %(others)s: '
                'hw:cpu_features / hw_cpu_features accept only %(vmx)s') % {
                    'others': ', '.join(sorted(others)),
                    'vmx': NESTED_VIRT_FEATURE})
        if not self._hostutils.supports_nested_virtualization():
            raise self._unacceptable(instance, _(
                'nested virtualization (%s) needs a Windows Server 2016 '
                'or later host') % NESTED_VIRT_FEATURE)
        return True

    @staticmethod
    def _dynamic_memory_ratio(instance, vnuma, nested, pci_devices=False):
        """``[hyperv] dynamic_memory_ratio``, or 1.0 where it cannot apply.

        Hyper-V does not combine dynamic memory with virtual NUMA, and a
        VM running Hyper-V itself cannot change its memory while it runs
        (Microsoft, "Run Hyper-V in a Virtual Machine with Nested
        Virtualization"); compute-hyperv 16 turns it off for both.  Nor
        does a VM with PCI devices assigned (Microsoft, "Plan for deploying
        devices by using Discrete Device Assignment": no dynamic memory),
        which nova 28 and compute-hyperv 16 left to fail in Hyper-V.
        """
        ratio = CONF.hyperv.dynamic_memory_ratio
        if ratio > 1 and (vnuma or nested or pci_devices):
            why = (_('virtual NUMA') if vnuma else
                   _('nested virtualization') if nested else
                   _('PCI devices (pci_passthrough:alias)'))
            LOG.info('Static memory for this VM ([hyperv] '
                     'dynamic_memory_ratio %(ratio)s not applied): it has '
                     '%(why)s', {'ratio': ratio, 'why': why},
                     instance=instance)
            return 1.0
        return ratio
