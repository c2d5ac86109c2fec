#!/usr/bin/env bash
# //bench:jitter_test: //bench:jitter as a user runs it, kept tiny (50 invocations, 2 repetitions,
# 0 competitors, both services): the file holds every measurement's raw series and complete: true;
# the same --out resumes a run cut short (finished measurements kept as they were, an errored
# or missing one measured again, the statistics rebuilt from the kept raw series); another
# configuration is refused with exit 2 and the file untouched; --fresh starts over.
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-ulsnet}
JITTER=$RUNFILES/bench/jitter
PY=/usr/bin/python3
T=${TEST_TMPDIR:-$(mktemp -d)}
OUT=$T/jitter.json
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(--count 50 --warmup 5 --reps 2 --competitors 0 --services thread,sandbox --cpu 0 --out "$OUT")

"$JITTER" "${ARGS[@]}" >"$T/1.log" 2>&1 || { cat "$T/1.log"; fail "first run"; }
$PY - "$OUT" <<'PY' || fail "first run's file"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["complete"] is True and d["points_reused"] == 0, d["complete"]
m = d["measurements"]
assert [x["point"] for x in m] == ["1|thread|0", "1|sandbox|0", "2|thread|0", "2|sandbox|0"], [x["point"] for x in m]
for x in m:
    assert len(x["due_ns"]) == len(x["ran_ns"]) == 55, (x["point"], len(x["due_ns"]))
assert [r["samples"] for r in d["runs"]] == [100, 100], [r["samples"] for r in d["runs"]]
PY
cp "$OUT" "$T/full.json"

# Cut short: the last measurement never ran, the third failed.
$PY - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["measurements"] = d["measurements"][:3]
d["measurements"][2]["error"] = "made up by the test"
d["complete"] = False
del d["runs"]
json.dump(d, open(sys.argv[1], "w"))
PY
"$JITTER" "${ARGS[@]}" >"$T/2.log" 2>&1 || { cat "$T/2.log"; fail "resumed run"; }
[ "$(grep -c 'kept from' "$T/2.log")" = 2 ] || { cat "$T/2.log"; fail "not exactly two measurements kept"; }
$PY - "$OUT" "$T/full.json" <<'PY' || fail "resumed run's file"
import json, sys
d, full = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert d["complete"] is True and d["points_reused"] == 2, (d["complete"], d["points_reused"])
m = d["measurements"]
assert [x["point"] for x in m] == ["1|thread|0", "1|sandbox|0", "2|thread|0", "2|sandbox|0"]
assert m[0] == full["measurements"][0] and m[1] == full["measurements"][1], "kept measurements changed"
assert m[2]["due_ns"] != full["measurements"][2]["due_ns"] and "error" not in m[2], "the failed one was not re-run"
assert [r["samples"] for r in d["runs"]] == [100, 100]
# The statistics rebuilt from the raw series: two repetitions of 50 measured invocations each.
reps = d["runs"][0]["repetitions"]
assert len(reps) == 2 and all(r["samples"] == 50 for r in reps), reps
PY

# Another configuration: refused, file untouched.
cp "$OUT" "$T/before.json"
rc=0
"$JITTER" "${ARGS[@]}" --period-us 2000 >"$T/3.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || { cat "$T/3.log"; fail "another configuration gave exit $rc, not 2"; }
grep -qF 'period_us: 1000 there, 2000 here' "$T/3.log" || { cat "$T/3.log"; fail "no reason given"; }
cmp -s "$OUT" "$T/before.json" || fail "the refused run changed the file"

"$JITTER" "${ARGS[@]}" --period-us 2000 --fresh >"$T/4.log" 2>&1 || { cat "$T/4.log"; fail "--fresh"; }
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["points_reused"] == 0 and d["config"]["period_us"] == 2000' "$OUT" \
  || fail "--fresh did not start over"
echo PASS
