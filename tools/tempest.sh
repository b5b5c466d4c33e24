#!/usr/bin/env bash
# tempest on the mixed cloud, from a fresh Debian 12 machine as root:
# installs and brings up the cloud (or reuses a running one), installs
# tempest into its own virtualenv, runs a selection on the Hyper-V hosts
# and the KVM smoke selection on kvm1, and takes the cloud down again
# (--keep leaves it up).
#
#   tools/tempest.sh [full|smoke|hyperv-volume|kvm-volume] [--keep]
#
# full (default): the Hyper-V selection (tools/tempest/hyperv-include.txt
# minus hyperv-exclude.txt, volume tests included); smoke:
# tools/tempest/hyperv-smoke.txt, then the Hyper-V volume selection
# (hyperv-volume.txt); both are followed by the KVM smoke and KVM volume
# selections (kvm-smoke.txt, kvm-volume.txt).  hyperv-volume and
# kvm-volume: that volume selection alone.
# Each selection prints "tempest NAME: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
selection=full keep=0
for arg in "$@"; do
    case $arg in
        full|smoke|hyperv-volume|kvm-volume) selection=$arg ;;
        --keep) keep=1 ;;
        *) echo "usage: tools/tempest.sh [full|smoke|hyperv-volume|kvm-volume] [--keep]" >&2; exit 2 ;;
    esac
done
tools/cloud/cloud up
rc=$?
if [ $rc -eq 0 ]; then
    tools/tempest/tempest run "$selection"
    rc=$?
else
    echo "tempest $selection: 0 passed, 1 failed, 0 skipped (the cloud did not come up)"
fi
if [ $keep -eq 0 ]; then
    tools/cloud/cloud down || rc=1
fi
exit $rc
