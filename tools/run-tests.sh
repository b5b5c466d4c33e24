#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, tox, then the
# unit and functional tests (py311), the style check (pep8) and a short
# round of each benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-host.sh
python3.11 -m tox -e py311,pep8 -- "$@"
# The benchmarks the README names (tox -e bench, bench-boot,
# bench-reconcile: the same scripts) in short rounds, so that none breaks
# unseen: each fails on an error or a wrong result, and prints its figures
# without checking its targets.  They run in py311's env, just built, with
# its settings (native threading mode) and the package py311 installed
# (tox exec installs none): the bench envs would each first build an env
# of their own, about a minute apiece on a fresh clone.
for bench in bench_plug bench_boot bench_reconcile; do
    python3.11 -m tox exec -e py311 --skip-pkg-install -- \
        python "tools/$bench.py" --short
done
