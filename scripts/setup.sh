#!/usr/bin/env bash
# Installs everything strata's commands need on a fresh Debian machine (run as root):
# Debian packages (QEMU, fio, busybox, a guest kernel), npm packages, the native addon
# (built by npm ci through node-gyp), the TypeScript build and the guest image.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v qemu-storage-daemon >/dev/null || need_pkgs+=(qemu-system-common)
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
command -v fio >/dev/null || need_pkgs+=(fio)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v g++ >/dev/null || need_pkgs+=(g++ make python3)
# libvirt: the libvirt VM test (vm-tests/cases/libvirt.test.ts) runs a real libvirtd.
{ [ -x /usr/sbin/libvirtd ] && command -v virsh >/dev/null; } || need_pkgs+=(libvirt-daemon-system libvirt-clients)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
elif [ ! -f build/Release/strata_native.node ]; then
  npm run build:native
fi
echo "setup: tsc"
npx tsc -p tsconfig.json
if [ -x scripts/build-guest-image.sh ]; then
  bash scripts/build-guest-image.sh
fi
