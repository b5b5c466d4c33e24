#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine as root: installs and brings
# up the mixed KVM + Hyper-V cloud on loopback (tools/cloud), runs the
# scenario of tools/cloud/main_job.py with its assertions, and takes the
# cloud down again (--keep leaves it up; a running cloud is reused).
set -euo pipefail
cd "$(dirname "$0")/.."
exec tools/cloud/main-job "$@"
