#!/usr/bin/env bash
# Installs what the tests and the main job need on a fresh Debian machine:
# the system packages listed in bindep.txt, and tox. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

# bindep.txt lines are "package [profile]"; take the names.
packages=$(sed -e 's/#.*//' -e 's/\[.*\]//' bindep.txt | xargs)
missing=()
for pkg in $packages; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    # policy-rc.d on these machines stops Debian from starting the system
    # openvswitch service; the tests start private daemons of their own.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3.11 -m pip --version >/dev/null 2>&1 || { echo "python3.11 with pip is required" >&2; exit 1; }
python3.11 -m tox --version >/dev/null 2>&1 || python3.11 -m pip install -q 'tox>=4,<5'
