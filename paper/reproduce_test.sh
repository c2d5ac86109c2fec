#!/usr/bin/env bash
# //paper:reproduce end to end on a tiny synthetic result set: report, figures, README block, and
# clear errors for bad input.
set -euo pipefail
bin="$TEST_SRCDIR/ulsnet/paper/reproduce"
work="$TEST_TMPDIR/repro"
rm -rf "$work" && mkdir -p "$work/in" "$work/out"
cat > "$work/in/netns.json" <<'J'
{"schema": "ulsnet.throughput.v2",
 "environment": {"date": "2026-01-01T00:00:00Z", "describe": "abc", "cpu_model": "cpu", "cores": 2, "kernel": "k"},
 "config": {"sizes": [64]},
 "capacity": [{"method": "sandbox", "variant": "af_xdp", "mode": "relay", "protection": "mprotect",
               "ndr": {"lower_pps": 100, "upper_pps": 110, "censored": false, "status": "measured"},
               "pdr": {"lower_pps": 120, "upper_pps": 130, "censored": false, "status": "measured"}, "steps": []}],
 "results": [],
 "targets": [{"target": "pdr of sandbox:af_xdp vs kernel-socket:batched (relay)", "value": 2.5, "interval": [2.2, 2.8]}]}
J
cat > "$work/in/junk.json" <<'J'
{"hello": 1}
J
printf 'top\n<!-- verdicts:begin -->\nold\n<!-- verdicts:end -->\nend\n' > "$work/README.md"

"$bin" --from "$work/in" --out "$work/out" --readme "$work/README.md" > "$work/stdout"
grep -q '^C1 Throughput' "$work/stdout"
for id in C1 C2 C3 C4; do grep -q "^## $id: " "$work/out/report.md"; done
[ "$(grep -c '^\*\*Verdict: ' "$work/out/report.md")" -eq 4 ]
# The one measured comparison: [2.2, 2.8] against a goal of 2 holds.
grep -q '| netns PDR, sandbox:af_xdp / kernel-socket:batched.*| holds |' "$work/out/report.md"
grep -q 'junk.json: not a result this report reads' "$work/out/report.md"
[ -s "$work/out/figures/figures.json" ]
grep -q '!\[netns-capacity\](figures/netns-capacity.png)' "$work/out/report.md"
[ "$(head -c 8 "$work/out/figures/netns-capacity.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
grep -q '^| \[C1 Throughput\](out/report.md#c1-throughput) | \*\*' "$work/README.md"
! grep -q '^old$' "$work/README.md"
head -1 "$work/README.md" | grep -q '^top$'

# Bad input: one clear line and exit 2.
set +e
"$bin" --from "$work/in" --quick > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--from only judges' "$work/err" || { echo "--from with --quick: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --from "$work/in" --bogus > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] || { echo "unknown flag: rc $rc"; exit 1; }
"$bin" --from "$work/missing" > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'cannot read' "$work/err" || { echo "missing dir: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --from "$work/in" --ssh a,b,c > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--from only judges' "$work/err" || { echo "--from with --ssh: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --ssh a,b > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] || { echo "--ssh with two hosts: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --only ssh > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--only ssh needs --ssh' "$work/err" || { echo "--only ssh alone: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --ssh-arg=--ssh-port=22 > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--ssh-arg needs --ssh' "$work/err" || { echo "--ssh-arg alone: rc $rc"; cat "$work/err"; exit 1; }
"$bin" --only bogus > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] || { echo "--only bogus: rc $rc"; cat "$work/err"; exit 1; }
printf 'no markers\n' > "$work/R2.md"
"$bin" --from "$work/in" --out "$work/out2" --readme "$work/R2.md" --no-figures > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'markers' "$work/err" || { echo "no markers: rc $rc"; cat "$work/err"; exit 1; }
echo PASS
