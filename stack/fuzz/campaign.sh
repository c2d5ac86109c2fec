#!/usr/bin/env bash
# A fuzzing campaign over every target of stack/fuzz, one after another, bounded per target:
#   bazel run //stack/fuzz:campaign -- --runs 10000000     (executions per target)
#   bazel run //stack/fuzz:campaign -- --seconds 600       (time per target)
# Crashing inputs are kept in --artifacts DIR (default: /tmp/ulsnet-fuzz-artifacts). Prints each
# target's summary line and exits non-zero if any target crashed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${RUNFILES_DIR:-$0.runfiles}
dir="$base/ulsnet/stack/fuzz"
[ -d "$dir" ] || dir=$here
args=("$@")
have_artifacts=0
for a in "$@"; do [ "$a" = --artifacts ] && have_artifacts=1; done
[ $have_artifacts -eq 1 ] || args+=(--artifacts /tmp/ulsnet-fuzz-artifacts)
fail=0
summary=()
# Every fuzzer this target was given (its data: the *_fuzz binaries).
for bin in "$dir"/*_fuzz; do
  [ -x "$bin" ] || continue
  out=$("$dir/run_fuzz.sh" "$bin" "${args[@]}" 2>&1)
  rc=$?
  echo "$out" | grep -v '^FUZZ-SUMMARY' | tail -n 3
  line=$(echo "$out" | grep '^FUZZ-SUMMARY' | tail -1)
  echo "$line"
  summary+=("$line")
  [ $rc -eq 0 ] || fail=1
done
echo "== campaign"
printf '%s\n' "${summary[@]}"
exit $fail
