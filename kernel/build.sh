#!/usr/bin/env bash
# Builds the ulsnet guest kernel: Debian's linux-source-6.1 + kernel/patches (in `series`
# order) + kernel/config/ulsnet.config merged onto tinyconfig, out of tree, with ccache.
#
#   bazel run //kernel:build                 # prints the bzImage's path on the last line
#   kernel/build.sh [--work DIR] [--jobs N] [--debug]
#
# --debug: the debug kernel, config/debug.config merged on top (KASAN, lockdep, sleeping in
# atomic context, list debugging), in DIR/debug: for the tests, never for measurements.
#
# Work directory (default $ULSNET_KERNEL_DIR or /var/tmp/ulsnet-kernel) keeps the patched source
# tree and the build tree between runs: the tree is reused only if the source tarball, every
# patch and the config fragment are byte-identical to what built it (their sha256 is the
# identity), so a changed patch always means a fresh extract. Cold: ~5 min on 2 cores;
# unchanged: seconds; a changed patch: a full recompile answered by ccache.
# Everything it reads is local (no download). Fails loudly: a patch that does not apply, a config
# option that does not end up as the fragment says, a missing tool.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Run from the source tree, the patches and config are next to the script; under `bazel run`
# they are in the binary's runfiles.
if [ ! -f "$here/patches/series" ]; then
  for r in "${RUNFILES_DIR:-}" "$0.runfiles" "${BASH_SOURCE[0]}.runfiles"; do
    if [ -n "$r" ] && [ -f "$r/ulsnet/kernel/patches/series" ]; then here="$r/ulsnet/kernel"; break; fi
  done
fi
tarball=/usr/src/linux-source-6.1.tar.xz
work="${ULSNET_KERNEL_DIR:-/var/tmp/ulsnet-kernel}"
jobs="$(nproc)"
debug=0
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --debug) debug=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "kernel/build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "kernel/build.sh: $*" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
for t in make gcc bc bison flex cpio xz ccache patch sha256sum; do
  command -v "$t" >/dev/null || die "'$t' not found: run tools/setup.sh"
done
[ -f "$tarball" ] || die "$tarball not found: run tools/setup.sh (package linux-source-6.1)"

series="$here/patches/series"
fragment="$here/config/ulsnet.config"
[ -f "$series" ] || die "missing $series"
[ -f "$fragment" ] || die "missing $fragment"
fragments=("$fragment")
if [ "$debug" -eq 1 ]; then
  [ -f "$here/config/debug.config" ] || die "missing $here/config/debug.config"
  fragments+=("$here/config/debug.config")
  work="$work/debug"
fi
patches=()
while read -r line; do
  line="${line%%#*}"; line="$(echo "$line" | xargs)"
  [ -z "$line" ] && continue
  [ -f "$here/patches/$line" ] || die "series names $line, which is not in kernel/patches/"
  patches+=("$here/patches/$line")
done < "$series"

# The identity of what we build.
fragment_sums="$(sha256sum "${fragments[@]}" | cut -d' ' -f1)"
id="$( { sha256sum "$tarball" | cut -d' ' -f1; for p in "${patches[@]}"; do sha256sum "$p"; done |
         cut -d' ' -f1; echo "$fragment_sums"; } | sha256sum | cut -c1-16)"
# One source tree and one build tree, always at the same paths (so that ccache, hashing paths
# relative to the work directory, finds every object a patch does not change). When the
# identity changes the source tree is extracted afresh with every file's time set to now
# (tar -m): make then recompiles everything, and ccache answers for all unchanged files.
src="$work/src"
out="$work/build"
mkdir -p "$work"

if [ "$(cat "$src/.ulsnet-id" 2>/dev/null)" != "$id" ]; then
  rm -rf "$src" "$src.tmp"
  mkdir -p "$src.tmp"
  echo "kernel/build.sh: extracting $tarball" >&2
  tar -xmf "$tarball" -C "$src.tmp" --strip-components=1
  for p in "${patches[@]}"; do
    echo "kernel/build.sh: applying $(basename "$p")" >&2
    # --dry-run first: a patch that does not apply leaves the tree untouched and stops the build.
    if ! patch -d "$src.tmp" -p1 --forward --batch --dry-run -s < "$p" >/dev/null; then
      patch -d "$src.tmp" -p1 --forward --batch --dry-run < "$p" >&2 || true
      rm -rf "$src.tmp"
      die "patch $(basename "$p") does not apply to linux-source-6.1"
    fi
    patch -d "$src.tmp" -p1 --forward --batch -s < "$p"
  done
  echo "$id" > "$src.tmp/.ulsnet-id"
  mv "$src.tmp" "$src"
  rm -f "$out/.config"  # configure again against the new tree
fi

# The user API header the patches add must be the one user space builds against (kernel/uapi).
for h in "$here"/uapi/linux/*.h; do
  [ -f "$h" ] || continue
  cmp -s "$h" "$src/include/uapi/linux/$(basename "$h")" ||
    die "kernel/uapi/linux/$(basename "$h") differs from the one the patch series adds"
done

mkdir -p "$out"
# The build tree is configured afresh only when the fragments' contents changed (a stamp of
# their sha256 next to .config): a fresh checkout's newer file times must not cost a rebuild.
config_id="$(echo "$fragment_sums" | sha256sum | cut -c1-16)"
if [ ! -f "$out/.config" ] || [ "$(cat "$out/.ulsnet-config-id" 2>/dev/null)" != "$config_id" ]; then
  rm -rf "$out" && mkdir -p "$out"
  make -s -C "$src" O="$out" tinyconfig >/dev/null
  "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
  make -s -C "$src" O="$out" olddefconfig >/dev/null
  echo "$config_id" > "$out/.ulsnet-config-id"
fi
# Every option of the fragments must have survived olddefconfig (a dependency we missed would
# silently drop it otherwise).
bad=0
for f in "${fragments[@]}"; do
  while read -r line; do
    case "$line" in CONFIG_*=*) ;; *) continue ;; esac
    grep -qx "$line" "$out/.config" || { echo "kernel/build.sh: config: '$line' ($(basename "$f")) did not stick" >&2; bad=1; }
  done < "$f"
done
[ "$bad" -eq 0 ] || die "the config fragment does not hold (see above)"

echo "kernel/build.sh: building bzImage in $out (jobs $jobs, ccache)" >&2
export CCACHE_DIR="${CCACHE_DIR:-$work/ccache}"
# Trees of different patch sets live at different paths: hash relative paths so that the
# objects a patch does not touch come from the cache.
export CCACHE_BASEDIR="$work" CCACHE_NOHASHDIR=true
make -s -C "$src" O="$out" -j"$jobs" CC="ccache gcc" KBUILD_BUILD_USER=ulsnet \
  KBUILD_BUILD_HOST=ulsnet bzImage >&2
image="$out/arch/x86/boot/bzImage"
[ -f "$image" ] || die "no bzImage produced"
# Keep the image of this identity where tests and the launcher can name it.
mkdir -p "$work/images"
cp -f "$image" "$work/images/bzImage-$id"
ln -sfn "$out" "$work/current"
echo "$work/images/bzImage-$id"
