#!/usr/bin/env bash
# //bench:tables_test: the README's tables from stored results (bench/reference/), read as a user
# runs `bazel run //bench:tables -- FILE`: a VM run with the search gives its NDR/PDR brackets
# (search launches apart, their accounting counted), the sweep's fraction per row and the
# targets' intervals; an older VM run (no search) gives no bracket table; the namespace run its
# brackets; a file that is not a result is refused with a non-zero exit.
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-ulsnet}
TABLES=$RUNFILES/bench/tables
REF=$RUNFILES/bench/reference
fail() { echo "FAIL: $*" >&2; exit 1; }
has() { grep -qF -- "$2" <<<"$1" || fail "no '$2' in the output of $3"; }

# What the stored file holds, read here independently of the tables code: its search launches
# and the sandbox's brackets, and its PDR ratio to the kernel relay's as the bracket arithmetic
# gives it (lower / lower, [lower / upper, upper / lower]; a relay censored at the tester's
# ceiling has no upper bound, so the ratio's lower end is 0).
read -r launches ndr pdr ceiling trials ratio < <(python3 - "$REF/throughput-vm-search-tcg.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cap = lambda m: [c for c in d["capacity"] if c["method"] == m][0]
c, k = cap("sandbox")["pdr"], cap("kernel-socket")["pdr"]
s = cap("sandbox")
b = lambda k: "[%d,_%d)" % (s[k]["lower_pps"], s[k]["upper_pps"])
lo = c["lower_pps"] / k["upper_pps"] if k.get("upper_pps") else 0.0
r = "%.2f_|_[%.2f,_%.2f]" % (c["lower_pps"] / k["lower_pps"], lo, c["upper_pps"] / k["lower_pps"])
print(sum(1 for r in d["results"] if r.get("purpose") == "search"), b("ndr"), b("pdr"),
      round(s["search_ceiling_pps"]), len(s["steps"]), r)
PY
)
[ "$launches" -gt 0 ] || fail "no search launches in the stored VM search file"
out=$("$TABLES" "$REF/throughput-vm-search-tcg.json")
has "$out" "**NDR and PDR** ([passed, failed) datagrams/s; one launch of the VMs per trial, 2 s streams; $launches search launches, 0 with a non-zero \`unaccounted\` (sum 0))" vm-search
has "$out" "| sandbox | uls | relay | 24 | ${ndr//_/ } | ${pdr//_/ } | $ceiling | $trials |" vm-search
has "$out" "| pdr of sandbox:uls vs kernel-socket:batched (relay) | >= 2 | ${ratio//_/ } | not met |" vm-search
has "$out" "| sandbox | uls | relay | load 50% PDR |" vm-search
grep -q '| search |' <<<"$out" && fail "search launches listed among the rows"

out=$("$TABLES" "$REF/throughput-vm-tcg.json")
grep -qF 'NDR and PDR' <<<"$out" && fail "a bracket table for a VM run without the search"
has "$out" "| capacity vs kernel-socket batched relay | >= 2 |" vm-tcg

out=$("$TABLES" "$REF/throughput-default.json")
has "$out" "| method | variant | mode | B | NDR | PDR | search ceiling | trials |" default

echo '{"schema": "nope"}' > "${TEST_TMPDIR:-/tmp}/bad.json"
if "$TABLES" "${TEST_TMPDIR:-/tmp}/bad.json" >/dev/null 2>&1; then fail "a file that is not a result was accepted"; fi
echo PASS
