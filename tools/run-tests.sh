#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, tox, then the
# unit and functional tests in nova 34's native threading mode (py311), the
# same boot, live migration and delete in eventlet mode (eventlet), and the
# style check (pep8).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-host.sh
python3.11 -m tox -e py311,eventlet,pep8 -- "$@"
