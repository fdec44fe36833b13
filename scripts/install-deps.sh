#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test ixgate.
# Idempotent: installs nothing when everything is there.
set -euo pipefail

# Debian packages: build tools now; the lab's routers and tools join this
# list as the testbed grows.
DEBIAN_PACKAGES=(gcc libc6-dev make)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: no Rust toolchain (cargo) on PATH; ixgate needs Rust 1.95 or later from rustup" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
