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

out=$("$TABLES" "$REF/throughput-vm-search-tcg.json")
has "$out" "**NDR and PDR** ([passed, failed) datagrams/s; one launch of the VMs per trial, 2 s streams; 17 search launches, 0 with a non-zero \`unaccounted\` (sum 0))" vm-search
has "$out" "| sandbox | uls | relay | 24 | [6754, 10081) | [10081, 13407) | 27018 | 6 |" vm-search
has "$out" "| pdr of sandbox:uls vs kernel-socket:batched (relay) | >= 2 | 0.92 | [0.83, 1.22] | not met |" vm-search
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
