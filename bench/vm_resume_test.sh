#!/usr/bin/env bash
# //bench:vm_resume_test: //bench:vm_forward and //bench:vm_jitter resume launch by launch, on the
# real ULS kernel in QEMU (root; skipped otherwise). Each runs tiny with two launches, is "cut
# short" in its second launch (that launch's rows marked failed, the file marked incomplete) and
# rerun with the same --out: the first launch is kept as it was, the second booted again, the
# file complete; a rerun of the finished file boots nothing; another configuration is refused
# with exit 2 and the file untouched.
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-ulsnet}
PY=/usr/bin/python3
T=${TEST_TMPDIR:-$(mktemp -d)}
export TMPDIR=$T
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (QEMU hosts in a private network namespace)"; exit 0; fi
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 0; }

# cut_second FILE: mark the second launch's rows failed and the file incomplete; prints both points
cut_second() {
  $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
points = []
for r in d["runs"]:
    if r["point"] not in points: points.append(r["point"])
assert len(points) == 2, points
for r in d["runs"]:
    if r["point"] == points[1]: r["error"] = "made up by the test"
d["complete"] = False
json.dump(d, open(sys.argv[1], "w"))
print(points[0], points[1])
PY
}
check_resumed() {  # FILE FULL: first point's rows unchanged, second's re-measured, complete
  $PY - "$1" "$2" <<'PY'
import json, sys
d, full = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert d["complete"] is True and d["points_reused"] == 1, (d["complete"], d["points_reused"])
first = full["runs"][0]["point"]
kept = [r for r in d["runs"] if r["point"] == first]
assert kept == [r for r in full["runs"] if r["point"] == first], "the kept launch's rows changed"
again = [r for r in d["runs"] if r["point"] != first]
assert again and all("error" not in r for r in again), again
assert len(d["runs"]) == len(full["runs"])
PY
}

for exp in vm_forward vm_jitter; do
  BIN=$RUNFILES/bench/$exp
  OUT=$T/$exp.json
  if [ $exp = vm_forward ]; then
    ARGS=(--paths kernel --rates 500,1000 --seconds 1 --out "$OUT"); OTHER=(--protection none)
  else
    # Two launches of one protection mode (the points kernel#1 and kernel#2), a 5 ms warm-up.
    ARGS=(--count 20 --hogs 0 --protection kernel --launches 2 --warmup-ms 5 --out "$OUT"); OTHER=(--period-us 2000)
  fi
  "$BIN" "${ARGS[@]}" >"$T/$exp.1.log" 2>&1 || { tail -30 "$T/$exp.1.log"; fail "$exp: first run"; }
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["complete"] is True and d["points_reused"] == 0' "$OUT" \
    || fail "$exp: first run's file"
  if [ $exp = vm_jitter ]; then
    # Each row says which launch and which clock ran it (from QEMU's command line): under auto,
    # icount exactly when the launches ran under TCG; the warm-up is left out of the statistics.
    $PY - "$OUT" <<'PY' || fail "vm_jitter: launches, clock or warm-up"
import json, sys
d = json.load(open(sys.argv[1]))
plan = d["clock_plan"]
want = "icount" if plan["accelerator"] == "tcg" else "wall"
assert plan["clock"] == want, plan
rows = d["runs"]
assert sorted({r["launch"] for r in rows}) == [1, 2], rows
for r in rows:
    assert r["clock"] == want and r["accel"] == plan["accelerator"], (r["clock"], r["accel"], plan)
    assert r["warmup_samples"] == 5 and r["samples"] == 15, (r["warmup_samples"], r["samples"])
    assert len(r["raw"]["due_ns"]) == 20
t = d["targets"]
assert t == [] or t[0]["launches"] == 2, t
PY
  fi
  cp "$OUT" "$T/$exp.full.json"
  read -r first second < <(cut_second "$OUT")
  "$BIN" "${ARGS[@]}" >"$T/$exp.2.log" 2>&1 || { tail -30 "$T/$exp.2.log"; fail "$exp: resumed run"; }
  [ "$(grep -c 'kept from' "$T/$exp.2.log")" = 1 ] || { cat "$T/$exp.2.log"; fail "$exp: not exactly one launch kept"; }
  check_resumed "$OUT" "$T/$exp.full.json" || fail "$exp: resumed file ($first kept, $second again)"
  # Finished: a rerun boots nothing and keeps both.
  "$BIN" "${ARGS[@]}" >"$T/$exp.3.log" 2>&1 || { tail -30 "$T/$exp.3.log"; fail "$exp: rerun of a finished file"; }
  [ "$(grep -c 'kept from' "$T/$exp.3.log")" = 2 ] || { cat "$T/$exp.3.log"; fail "$exp: a finished launch ran again"; }
  cp "$OUT" "$T/$exp.before.json"
  rc=0
  "$BIN" "${ARGS[@]}" "${OTHER[@]}" >"$T/$exp.4.log" 2>&1 || rc=$?
  [ "$rc" = 2 ] || { cat "$T/$exp.4.log"; fail "$exp: another configuration gave exit $rc, not 2"; }
  grep -qF 'another configuration' "$T/$exp.4.log" || { cat "$T/$exp.4.log"; fail "$exp: no reason given"; }
  cmp -s "$OUT" "$T/$exp.before.json" || fail "$exp: the refused run changed the file"
  echo "$exp: resumed ($first kept, $second booted again), finished file kept, another configuration refused"
done
echo PASS
