#!/usr/bin/env bash
# Builds a gzipped initramfs for the virtual hosts: busybox (static) + /init (kernel/guest-init.sh)
# + any extra static binaries, which end up in /bin.
#
#   kernel/initramfs.sh --out FILE [--bin PATH]...
#
# The guest's role and test come from the kernel command line (see guest-init.sh), so one
# initramfs serves sender, proxy and receiver. Takes < 1 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=""
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "kernel/initramfs.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "kernel/initramfs.sh: --out FILE is required" >&2; exit 2; }
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "kernel/initramfs.sh: $busybox not found: run tools/setup.sh (busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would not run in an initramfs without libc.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "kernel/initramfs.sh: $busybox is dynamically linked (install busybox-static)" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,root}
cp "$busybox" "$root/bin/busybox"
cp "$here/guest-init.sh" "$root/init"
chmod 755 "$root/init"
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "kernel/initramfs.sh: $b is not an executable" >&2; exit 1; }
  if ldd "$b" >/dev/null 2>&1; then
    echo "kernel/initramfs.sh: $b is dynamically linked; the guest has no libc (link it statically)" >&2
    exit 1
  fi
  cp "$b" "$root/bin/"
done
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out"
echo "$out"
