#!/usr/bin/env bash
# Runs the in-guest randomized tester of the ULS series (kernel/tests/uls_fuzz.c) for as long as
# asked: builds the guest kernel (or the debug kernel), boots one guest with two e1000 NICs and
# runs uls_fuzz in it; the guest's console is saved. //kernel:vm_test runs it for a bounded time
# in CI; this is the longer run on demand.
#
#   bazel run //kernel:fuzz -- [--seconds S] [--seed X] [--workers W] [--smp N] [--debug]
#                              [--unprotected] [--cpu MODEL] [--log-dir DIR]
#
#   --seconds S    how long the storm lasts (default 300)
#   --seed X       the seed (default: the guest's clock; printed either way)
#   --workers W    worker processes besides the main one (default 3)
#   --smp N        virtual CPUs (default 2)
#   --debug        the debug kernel (KASAN, lockdep, ...)
#   --unprotected  boot with uls.protect=0
#   --cpu MODEL    the guest's CPU model (kernel/vm.sh --cpu): `max` has protection keys, so the
#                  extensions' wrpkru really writes PKRU (before 0017 that killed the fuzzer)
#   --log-dir DIR  where the console goes (default: a new directory under /tmp)
#
# Exit status: 0 if uls_fuzz passed, 1 if it failed (the console says why: "uls_fuzz: FAIL ..."),
# 2 for a usage or set-up error. Needs root (QEMU, the kernel build's work directory).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$here/build.sh" ] || [ ! -x "$here/uls_fuzz" ]; then
  for r in "${RUNFILES_DIR:-}" "$0.runfiles" "${BASH_SOURCE[0]}.runfiles"; do
    if [ -n "$r" ] && [ -x "$r/ulsnet/kernel/uls_fuzz" ]; then here="$r/ulsnet/kernel"; break; fi
  done
fi
if [ ! -x "$here/uls_fuzz" ]; then
  echo "kernel/fuzz.sh: no uls_fuzz binary next to the script: run it as bazel run //kernel:fuzz" >&2
  exit 2
fi

seconds=300; seed=""; workers=3; smp=2; debug=0; protect=1; logdir=""; cpu=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --smp) smp="$2"; shift 2 ;;
    --debug) debug=1; shift ;;
    --unprotected) protect=0; shift ;;
    --cpu) cpu="$2"; shift 2 ;;
    --log-dir) logdir="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "kernel/fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$seconds" "$workers" "$smp" ${seed:+"$seed"}; do
  case "$v" in ''|*[!0-9]*) echo "kernel/fuzz.sh: '$v' is not a number" >&2; exit 2 ;; esac
done
[ "$seconds" -ge 1 ] || { echo "kernel/fuzz.sh: --seconds must be at least 1" >&2; exit 2; }

image="$(bash "$here/build.sh" $([ "$debug" = 1 ] && echo --debug) | tail -n 1)"
[ -f "$image" ] || { echo "kernel/fuzz.sh: the kernel build printed no image ('$image')" >&2; exit 2; }
tmp="$(mktemp -d /tmp/ulsnet-fuzz.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
[ -n "$logdir" ] || logdir="$(mktemp -d /tmp/ulsnet-fuzz-logs.XXXXXX)"
bash "$here/initramfs.sh" --out "$tmp/initrd" --bin "$here/uls_fuzz" >/dev/null

args="seconds=$seconds,workers=$workers${seed:+,seed=$seed}"
append="slub_debug=FZPU ulsnet.args=$args"
[ "$protect" = 0 ] && append="$append uls.protect=0"
# Boot, the storm, the checks afterwards, and a margin for the slow debug kernel.
timeout_s=$((seconds * 2 + 300))
echo "kernel/fuzz.sh: $image, $smp vCPUs, $args$([ "$protect" = 0 ] && echo ', unprotected')${cpu:+, CPU $cpu}; console: $logdir/single.log"
set +e
PATH="$PATH:/usr/sbin:/sbin" bash "$here/vm.sh" --kernel "$image" --initrd "$tmp/initrd" --log-dir "$logdir" \
  --hosts 1 --smp "$smp" --nics 2 ${cpu:+--cpu "$cpu"} --run /bin/uls_fuzz --append "$append" --timeout "$timeout_s"
set -e
grep -a "uls_fuzz: \(calls=\|first failure\|FAIL\)" "$logdir/single.log" || true
if grep -aq "ULSNET-TEST uls_fuzz pass" "$logdir/single.log"; then
  echo "kernel/fuzz.sh: pass"
  exit 0
fi
echo "kernel/fuzz.sh: FAIL (console: $logdir/single.log)"
exit 1
