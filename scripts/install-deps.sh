#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, test and demo ixgate.
# Idempotent: installs nothing when everything is there.
set -euo pipefail

DEBIAN_PACKAGES=(
  gcc libc6-dev make          # building
  util-linux coreutils procps # unshare, nsenter, setpriv, timeout: the lab sandbox
  iproute2 iputils-ping       # the lab's namespaces, links and probes
  bird2 frr gobgpd            # the telco routers, and GoBGP as the ixgate stand-in
  netsniff-ng                 # trafgen, the flood generator
  nftables                    # the firewall's test oracle
  curl                        # the mobile client
  haproxy                     # the proxy benchmark's yardstick (Debian's 2.6)
  openssl                     # the client that keeps its TLS session (resumption)
)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The routing packages would start their daemons on the host; the labs
  # start their own, in namespaces. Keep the services down while installing.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=true
  fi
  trap '[ "$made_policy" = true ] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: no Rust toolchain (cargo) on PATH; ixgate needs Rust 1.95 or later from rustup" >&2
  exit 1
fi
# The fuzzer's driver, from crates.io.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet

if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
