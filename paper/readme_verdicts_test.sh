#!/usr/bin/env bash
# The README's verdict block is generated: it must equal what //paper:reproduce makes from
# paper/results and bench/reference now (re-run `bazel run //paper:reproduce -- --from
# paper/results --from bench/reference --readme README.md` after changing any of them).
set -euo pipefail
bin="$TEST_SRCDIR/ulsnet/paper/reproduce"
work="$TEST_TMPDIR/readme"
rm -rf "$work" && mkdir -p "$work/paper"
cp "$TEST_SRCDIR/ulsnet/README.md" "$work/README.md"
# Same layout as the workspace, so the block's links come out the same (paper/report.md).
"$bin" --from "$TEST_SRCDIR/ulsnet/paper/results" --from "$TEST_SRCDIR/ulsnet/bench/reference" --out "$work/paper" --readme "$work/README.md" --no-figures > /dev/null
if ! diff -u "$TEST_SRCDIR/ulsnet/README.md" "$work/README.md"; then
  echo "README.md's verdict block is stale: regenerate it with //paper:reproduce --readme README.md"
  exit 1
fi
grep -q '<!-- verdicts:begin -->' "$work/README.md"
[ "$(sed -n '/verdicts:begin/,/verdicts:end/p' "$work/README.md" | grep -c '^| \[C[1-4] ')" -eq 4 ]
echo PASS
