#!/usr/bin/env bash
# Builds the VM-test guest: a Debian kernel (vmlinuz) and a small initramfs (initramfs.cpio.gz)
# under .cache/guest/, from Debian packages only. Nothing is downloaded at test time.
#
#   bash scripts/build-guest-image.sh           # build if out of date
#   bash scripts/build-guest-image.sh --force   # rebuild
#
# Contents of the initramfs: busybox-static (shell + tools), the kernel modules the guest needs
# (virtio transport, virtio_blk, qemu_fw_cfg, ext4 and their dependencies, loaded in the order
# written to /etc/modules.order), fio, mkfs.ext4/e2fsck, blkdiscard/fstrim with their shared
# libraries, and vm-tests/guest/init as /init.
#
# Idempotent: .cache/guest/stamp records the package versions and a hash of the inputs; when it
# matches, the script does nothing. Missing Debian packages are installed with apt-get (root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.cache/guest"
force=0
[ "${1:-}" = "--force" ] && force=1
export DEBIAN_FRONTEND=noninteractive

log() { echo "build-guest-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"; fi
}

# --- host packages --------------------------------------------------------------------------
need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v fio >/dev/null || need+=(fio)
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v blkdiscard >/dev/null || [ -x /usr/sbin/blkdiscard ] || [ -x /sbin/blkdiscard ] || need+=(util-linux)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if ! busybox --list | grep -qx sh; then die "/bin/busybox has no sh applet"; fi

# Kernel package: the one linux-image-amd64 depends on (e.g. linux-image-6.1.0-NN-amd64).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
  log "apt-cache knows no linux-image-amd64; running apt-get update"
  as_root apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || die "cannot resolve the kernel package behind linux-image-amd64"
kver_pkg=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
[ -n "$kver_pkg" ] && [ "$kver_pkg" != "(none)" ] || die "no candidate version for $kpkg"

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
fio_bin=$(command -v fio)
mkfs_bin=$(command -v mkfs.ext4 || echo /usr/sbin/mkfs.ext4)
e2fsck_bin=$(command -v e2fsck || echo /usr/sbin/e2fsck)
blkdiscard_bin=$(command -v blkdiscard || echo /usr/sbin/blkdiscard)
fstrim_bin=$(command -v fstrim || echo /usr/sbin/fstrim)

inputs_hash=$(cat "$0" vm-tests/guest/init | sha256sum | cut -c1-16)
stamp_text="kernel=$kpkg $kver_pkg
busybox=$(pkgver busybox-static)
fio=$(pkgver fio)
e2fsprogs=$(pkgver e2fsprogs)
util-linux=$(pkgver util-linux)
inputs=$inputs_hash"

if [ "$force" = 0 ] && [ -f "$out/stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ] \
   && [ "$(cat "$out/stamp")" = "$stamp_text" ]; then
  log "up to date ($kpkg $kver_pkg)"
  exit 0
fi

mkdir -p "$out/debs"
# --- kernel ---------------------------------------------------------------------------------
deb=$(ls "$out/debs/${kpkg}_"*.deb 2>/dev/null | head -1 || true)
want_deb="${kpkg}_$(echo "$kver_pkg" | sed 's/:/%3a/')_amd64.deb"
if [ -z "$deb" ] || [ "$(basename "$deb")" != "$want_deb" ]; then
  rm -f "$out/debs/${kpkg}_"*.deb
  log "apt-get download $kpkg ($kver_pkg)"
  ( cd "$out/debs" && apt-get download -q -o APT::Sandbox::User=root "$kpkg=$kver_pkg" >/dev/null )
  deb=$(ls "$out/debs/${kpkg}_"*.deb | head -1)
fi
kroot="$out/kernel-root"
rm -rf "$kroot" && mkdir -p "$kroot"
dpkg-deb -x "$deb" "$kroot"
kver=$(ls "$kroot/lib/modules" | head -1)
[ -n "$kver" ] || die "no /lib/modules in $deb"
[ -f "$kroot/boot/vmlinuz-$kver" ] || die "no /boot/vmlinuz-$kver in $deb"
moddir="$kroot/lib/modules/$kver"

# --- initramfs tree -------------------------------------------------------------------------
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,run,root,lib/modules/"$kver"}
ln -s lib "$stage/lib64"

cp /bin/busybox "$stage/bin/busybox"
for applet in $(busybox --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$stage/bin/$applet"
done

# Modules: resolve depends= from each .ko's .modinfo section, emit a dependency-first order.
declare -A modpath=() seen=()
order=()
while IFS= read -r ko; do
  name=$(basename "$ko"); name=${name%%.ko*}; name=${name//-/_}
  modpath[$name]=$ko
done < <(find "$moddir/kernel" -name '*.ko*')
builtin_has() { grep -qE "/$1\.ko\$" "$moddir/modules.builtin" 2>/dev/null || grep -qE "/${1//_/-}\.ko\$" "$moddir/modules.builtin" 2>/dev/null; }
modinfo_field() { # file field
  local f="$1"
  case "$f" in
    *.ko) tr '\0' '\n' < "$f" ;;
    *.ko.xz) xz -dc "$f" | tr '\0' '\n' ;;
    *.ko.zst) zstd -dc "$f" | tr '\0' '\n' ;;
  esac | sed -n "s/^$2=//p" | head -1
}
add_mod() { # name
  local m=${1//-/_}
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  if [ -z "${modpath[$m]:-}" ]; then
    builtin_has "$m" && return 0
    die "module $m is neither a .ko in $kpkg nor built in"
  fi
  local deps; deps=$(modinfo_field "${modpath[$m]}" depends)
  local d
  for d in ${deps//,/ }; do add_mod "$d"; done
  order+=("$m")
}
for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk qemu_fw_cfg \
         crc16 crc32c_generic libcrc32c mbcache jbd2 ext4; do
  add_mod "$m"
done
: > "$stage/etc/modules.order"
for m in "${order[@]}"; do
  src=${modpath[$m]}
  rel=${src#"$moddir/"}
  mkdir -p "$stage/lib/modules/$kver/$(dirname "$rel")"
  case "$src" in
    *.ko) cp "$src" "$stage/lib/modules/$kver/$rel" ;;
    *.ko.xz) xz -dc "$src" > "$stage/lib/modules/$kver/${rel%.xz}"; rel=${rel%.xz} ;;
    *.ko.zst) zstd -dc "$src" > "$stage/lib/modules/$kver/${rel%.zst}"; rel=${rel%.zst} ;;
  esac
  echo "$m /lib/modules/$kver/$rel" >> "$stage/etc/modules.order"
done
log "modules: ${order[*]}"

# Binaries with their shared libraries (ldd), keeping library paths as on the host.
copy_with_libs() { # src dst
  local src="$1" dst="$2"
  mkdir -p "$stage/$(dirname "$dst")"
  cp -L "$src" "$stage/$dst"
  local lib
  for lib in $(ldd "$src" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}'); do
    [ -f "$stage/$lib" ] && continue
    mkdir -p "$stage/$(dirname "$lib")"
    cp -L "$lib" "$stage/$lib"
  done
}
copy_with_libs "$fio_bin" /usr/bin/fio
copy_with_libs "$mkfs_bin" /usr/sbin/mkfs.ext4
copy_with_libs "$e2fsck_bin" /usr/sbin/e2fsck
copy_with_libs "$blkdiscard_bin" /usr/sbin/blkdiscard
copy_with_libs "$fstrim_bin" /usr/sbin/fstrim
# The dynamic loader lives at /lib64/ld-linux-x86-64.so.2 (a symlink into lib/ here).
if [ ! -e "$stage/lib64/ld-linux-x86-64.so.2" ]; then
  cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib/ld-linux-x86-64.so.2"
fi
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$stage/etc/mke2fs.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$stage/etc/passwd"
printf 'root:x:0:\n' > "$stage/etc/group"
echo "$kver" > "$stage/etc/kernel-release"
# /usr/lib mirrors (Debian's merged /usr): /usr/lib/x86_64-linux-gnu is where most libs live.
[ -d "$stage/usr/lib" ] || mkdir -p "$stage/usr/lib"

install -m 0755 vm-tests/guest/init "$stage/init"

# --- pack -----------------------------------------------------------------------------------
tmp_img="$out/initramfs.cpio.gz.tmp"
( cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner 0:0 ) \
  | gzip -6 > "$tmp_img"
cp "$kroot/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$tmp_img" "$out/initramfs.cpio.gz"
echo "$kver" > "$out/kernel-release"
rm -rf "$kroot" "$stage"
printf '%s' "$stamp_text" > "$out/stamp"
log "built $out/vmlinuz ($kver) and initramfs.cpio.gz ($(du -h "$out/initramfs.cpio.gz" | cut -f1))"
