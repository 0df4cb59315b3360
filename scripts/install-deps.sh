#!/usr/bin/env bash
# Install the Debian packages the tests and the demo need (as root, non-interactively).
# Installing miniupnpd must not start it: while apt runs, a policy-rc.d that refuses every
# service start is put in place, unless the machine already has one (then it is left alone).
set -euo pipefail

PACKAGES=(python3 python3-venv python3-dev gcc git make iproute2 nftables natpmpc miniupnpd-nftables miniupnpc coturn cron procps shellcheck)

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} Debian packages are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
    if [ "$made_policy" -eq 1 ]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# portmap.natpmp install-deps: start no service during this install\nexit 101\n' > "$POLICY"
    chmod 0755 "$POLICY"
    made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
