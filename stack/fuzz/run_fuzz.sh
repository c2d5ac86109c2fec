#!/usr/bin/env bash
# Runs one libFuzzer target of stack/fuzz: first every input of its regressions directory once
# (each was a crash: it must pass now), then a campaign from a copy of its seed corpus, bounded
# by time (--seconds N) or by executions (--runs N). Prints one summary line:
#   FUZZ-SUMMARY target=<name> executions=<n> seconds=<s> new_inputs=<n> result=clean|CRASH
# A crash keeps its input (in the test's undeclared outputs, or --artifacts DIR) and fails.
set -uo pipefail

usage() { echo "usage: run_fuzz.sh FUZZER (--seconds N | --runs N) [--artifacts DIR]" >&2; exit 2; }
[ $# -ge 3 ] || usage
bin=$1; shift
seconds=""; runs=""; artifacts=""
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --artifacts) artifacts=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$seconds$runs" ] || usage
[ -x "$bin" ] || { echo "run_fuzz.sh: $bin is not an executable fuzzer" >&2; exit 2; }
name=$(basename "$bin")
here=$(dirname "$0")
# The data files, by their paths in the runfiles tree (bazel test) or in the source tree.
base=${RUNFILES_DIR:-${TEST_SRCDIR:-}}
if [ -n "$base" ] && [ -d "$base/ulsnet/stack/fuzz" ]; then data="$base/ulsnet/stack/fuzz"; else data="$here"; fi
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts=${artifacts:-${TEST_UNDECLARED_OUTPUTS_DIR:-$work/artifacts}}
mkdir -p "$work/corpus" "$artifacts"
seeds=$(ls "$data/corpus/$name" 2>/dev/null | wc -l)
[ "$seeds" -gt 0 ] || { echo "run_fuzz.sh: no seed corpus at $data/corpus/$name" >&2; exit 1; }
cp "$data/corpus/$name"/* "$work/corpus/"

regressions=("$data/regressions/$name"/*)
if [ -e "${regressions[0]}" ]; then
  echo "== $name: ${#regressions[@]} regression input(s)"
  "$bin" -runs=1 "${regressions[@]}" || { echo "FUZZ-SUMMARY target=$name result=REGRESSION"; exit 1; }
fi

limit=()
[ -n "$seconds" ] && limit+=(-max_total_time="$seconds")
[ -n "$runs" ] && limit+=(-runs="$runs")
echo "== $name: campaign (${seconds:+$seconds s}${runs:+$runs executions}) from $seeds seed(s)"
start=$(date +%s)
"$bin" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=2048 -print_final_stats=1 \
  -dict="$data/header.dict" -artifact_prefix="$artifacts/" "$work/corpus" > "$work/log" 2>&1
rc=$?
end=$(date +%s)
tail -n 40 "$work/log"
execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$work/log" | tail -1)
new=$(( $(ls "$work/corpus" | wc -l) - seeds ))
if [ "$rc" -ne 0 ]; then
  echo "FUZZ-SUMMARY target=$name executions=${execs:-?} seconds=$((end - start)) new_inputs=$new result=CRASH (input kept in $artifacts)"
  exit 1
fi
echo "FUZZ-SUMMARY target=$name executions=${execs:-?} seconds=$((end - start)) new_inputs=$new result=clean"
