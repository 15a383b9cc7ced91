#!/usr/bin/env bash
# Installs the Debian packages Switchboard builds against, if any are missing.
# Debian 12 with Swift 6.3 on PATH; run as root or with sudo available.
set -euo pipefail

packages=(libsqlite3-dev libcurl4-openssl-dev libssl-dev libolm-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "Installing Debian packages: ${missing[*]}" >&2
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    # Keep package scripts from starting distribution daemons on all interfaces.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        if [[ -x $candidate/swift ]]; then export PATH="$candidate:$PATH"; fi
    done
fi
command -v swift >/dev/null || { echo "Swift 6.3 is not on PATH; install it from swift.org first." >&2; exit 1; }
