#!/usr/bin/env bash
# Fails if a layer's libraries depend on a layer above them (each argument: one genquery's output,
# the offending labels, one per line). See tools/BUILD.
bad=0
for f in "$@"; do
  if [ -s "$f" ]; then
    echo "FAIL: $(basename "$f") is not empty:"
    sed 's/^/  /' "$f"
    bad=1
  else
    echo "ok: $(basename "$f") (nothing above)"
  fi
done
[ "$#" -ge 3 ] || { echo "FAIL: expected three query outputs, got $#"; exit 1; }
exit $bad
