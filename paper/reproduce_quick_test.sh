#!/usr/bin/env bash
# `//paper:reproduce --quick` as a user runs it (root): the short experiments run, a report with
# four verdicts comes out, a second run keeps the finished results instead of re-running, a run
# cut short is resumed, and a file made with other arguments is run again.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "needs root: the experiments build network namespaces and VMs" >&2
  exit 1
fi
bin="$TEST_SRCDIR/ulsnet/paper/reproduce"
out="$TEST_TMPDIR/quick"
rm -rf "$out"
"$bin" --quick --out "$out" > "$TEST_TMPDIR/first.log" 2>&1 || { tail -40 "$TEST_TMPDIR/first.log"; exit 1; }
for f in throughput.json jitter.json micro.json vm-micro.json vm-jitter.json; do [ -s "$out/results/$f" ] || { echo "no $f"; exit 1; }; done
grep -q '"schema":"ulsnet.throughput.v2"' "$out/results/throughput.json"
[ "$(grep -c '^\*\*Verdict: ' "$out/report.md")" -eq 4 ]
grep -q '^\[1/5\] throughput, namespaces (--quick): running' "$TEST_TMPDIR/first.log"
grep -q 'done in' "$TEST_TMPDIR/first.log"
[ -s "$out/figures/figures.json" ]
# The PDF, when its converters are installed (tools/setup.sh installs them).
if command -v pandoc > /dev/null && command -v groff > /dev/null && command -v pdfinfo > /dev/null; then
  [ "$(head -c 4 "$out/report.pdf")" = "%PDF" ] || { echo "no report.pdf"; exit 1; }
fi
# Resumable: nothing re-runs when every result is there.
start=$(date +%s)
"$bin" --quick --out "$out" > "$TEST_TMPDIR/second.log" 2>&1 || { cat "$TEST_TMPDIR/second.log"; exit 1; }
[ "$(grep -c 'kept from an earlier run' "$TEST_TMPDIR/second.log")" -eq 5 ] || { cat "$TEST_TMPDIR/second.log"; exit 1; }
! grep -q ': running' "$TEST_TMPDIR/second.log"
# A broken result is not kept: it is run again.
echo '{"broken": ' > "$out/results/micro.json"
"$bin" --quick --out "$out" > "$TEST_TMPDIR/third.log" 2>&1 || { cat "$TEST_TMPDIR/third.log"; exit 1; }
grep -q '^\[3/5\] micro-benchmarks: .*micro.json is not a micro result; running it again' "$TEST_TMPDIR/third.log"
grep -q '^\[3/5\] micro-benchmarks: running' "$TEST_TMPDIR/third.log"
[ "$(grep -c 'kept from an earlier run' "$TEST_TMPDIR/third.log")" -eq 4 ]
# A run cut short is resumed, not started over: jitter.json as if its last measurement never ran.
/usr/bin/python3 - "$out/results/jitter.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["measurements"] = d["measurements"][:-1]
d["complete"] = False
json.dump(d, open(sys.argv[1], "w"))
PY
"$bin" --quick --out "$out" --only jitter > "$TEST_TMPDIR/fourth.log" 2>&1 || { cat "$TEST_TMPDIR/fourth.log"; exit 1; }
grep -q '^\[1/1\] service under competition, host (--quick): running' "$TEST_TMPDIR/fourth.log"
n=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["measurements"]) - 1)' "$out/results/jitter.json")
[ "$(grep -c 'kept from' "$TEST_TMPDIR/fourth.log")" -eq "$n" ] || { cat "$TEST_TMPDIR/fourth.log"; exit 1; }
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["complete"] and d["points_reused"] > 0' "$out/results/jitter.json"
# A file made with other arguments (as a full run finds a --quick run's files) is run again.
/usr/bin/python3 - "$out/results/.reproduce-args" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert "micro.json" in d and "jitter.json" in d, d.keys()
d["micro.json"] = d["micro.json"] + ["--made-up-by-the-test"]
json.dump(d, open(sys.argv[1], "w"))
PY
"$bin" --quick --out "$out" --only micro > "$TEST_TMPDIR/fifth.log" 2>&1 || { cat "$TEST_TMPDIR/fifth.log"; exit 1; }
grep -q 'micro-benchmarks: .*micro.json was made with other arguments' "$TEST_TMPDIR/fifth.log" || { cat "$TEST_TMPDIR/fifth.log"; exit 1; }
grep -q '^\[1/1\] micro-benchmarks: running' "$TEST_TMPDIR/fifth.log"
# --from and --quick together are refused.
set +e
"$bin" --quick --from "$out/results" > /dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ]
echo PASS
