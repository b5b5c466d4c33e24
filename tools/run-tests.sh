#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, tox, then the
# unit and functional tests (py311) and the style check (pep8).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-host.sh
python3.11 -m tox -e py311,pep8 -- "$@"
