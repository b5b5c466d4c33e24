#!/usr/bin/env bash
# The main job, from a fresh machine: boots a server through nova's API on a
# simulated Hyper-V host with a real Open vSwitch and prints what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-host.sh
python3.11 -m tox -e main-job -- "$@"
