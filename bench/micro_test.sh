#!/bin/bash
# //bench:micro --benchmark_out=FILE runs each benchmark alone and rewrites FILE after each; run
# again with the same FILE and arguments, it keeps what FILE finished and runs only the rest.
set -euo pipefail
micro="$(dirname "$0")/micro"
[ -x "$micro" ] || micro="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-ulsnet}/bench/micro"
dir="${TEST_TMPDIR:-$(mktemp -d)}"
out="$dir/micro.json"
# BM_DomainInvoke/none: a counter that is always 0, whose cv Google Benchmark writes as NaN.
args=(--benchmark_filter='^BM_(NullSyscall|DomainInvoke/none|CopyFrame/64)$' --benchmark_repetitions=2
      --benchmark_min_time=0.01 --benchmark_out="$out" --benchmark_out_format=json)
fail() { echo "FAIL: $*"; exit 1; }

"$micro" "${args[@]}" > "$dir/1.out" 2> "$dir/1.err" || fail "first run: $(cat "$dir/1.err")"
python3 - "$out" <<'PY' || fail "first file"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["complete"] is True, d["complete"]
assert d["config"]["instances"] == ["BM_NullSyscall", "BM_DomainInvoke/none", "BM_CopyFrame/64"], d["config"]
assert not [b for b in d["benchmarks"] if "error" in b], [b for b in d["benchmarks"] if "error" in b]
pts = {b["point"] for b in d["benchmarks"]}
assert pts == set(d["config"]["instances"]), pts
# Two repetitions and their aggregates per instance, Google Benchmark's own rows.
for i in d["config"]["instances"]:
    it = [b for b in d["benchmarks"] if b["point"] == i and b["run_type"] == "iteration"]
    assert len(it) == 2 and all(b["real_time"] > 0 for b in it), it
assert d["context"]["num_cpus"] >= 1
PY
[ ! -e "$out.parts" ] || fail "the per-benchmark files were left behind"

# Cut short after the first instance (what an interrupted run leaves): only the rest runs.
python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["benchmarks"] = [b for b in d["benchmarks"] if b["point"] == "BM_NullSyscall"]
d["complete"] = False
json.dump(d, open(sys.argv[1], "w"))
PY
before=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([b['real_time'] for b in d['benchmarks'] if b['point']=='BM_NullSyscall'])" "$out")
"$micro" "${args[@]}" > "$dir/2.out" 2> "$dir/2.err" || fail "resumed run: $(cat "$dir/2.err")"
grep -q "1 of 3 benchmarks kept, 2 to run" "$dir/2.err" || fail "no resume line: $(cat "$dir/2.err")"
! grep -q "BM_NullSyscall done" "$dir/2.err" || fail "a kept benchmark ran again"
after=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([b['real_time'] for b in d['benchmarks'] if b['point']=='BM_NullSyscall'])" "$out")
[ "$before" = "$after" ] || fail "the kept rows changed: $before -> $after"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['complete'] and {b['point'] for b in d['benchmarks']} == set(d['config']['instances'])" "$out" \
  || fail "resumed file incomplete"

# Other arguments, the same file: refused (exit 2), naming --fresh; --fresh starts over.
rc=0; "$micro" "${args[@]/--benchmark_repetitions=2/--benchmark_repetitions=3}" > /dev/null 2> "$dir/3.err" || rc=$?
[ "$rc" -eq 2 ] || fail "another configuration: exit $rc"
grep -q -- "--fresh" "$dir/3.err" || fail "the refusal does not name --fresh: $(cat "$dir/3.err")"
"$micro" "${args[@]/--benchmark_repetitions=2/--benchmark_repetitions=3}" --fresh > /dev/null 2> "$dir/4.err" || fail "--fresh: $(cat "$dir/4.err")"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['config']['args'][1] == '--benchmark_repetitions=3', d['config']" "$out" \
  || fail "--fresh did not start over"
echo PASS
