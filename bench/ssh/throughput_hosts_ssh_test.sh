#!/usr/bin/env bash
# //bench/ssh:throughput_hosts_ssh_test: `//bench:throughput --hosts=ssh` hands over to
# //bench/ssh:ssh_throughput (found in its runfiles) with the other arguments: its usage errors come
# back with exit 2, the flags reach it unchanged, --help is its help. No host is contacted (the
# whole run through the hand-off is in ssh_throughput_test).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
RUNFILES=${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-ulsnet}
MAIN=$RUNFILES/bench/throughput
[ -x "$MAIN" ] || fail "//bench:throughput not in the runfiles ($RUNFILES)"

expect() {  # expect EXIT_CODE WORDS -- COMMAND...
  local want=$1 words=$2 out rc=0
  shift 3
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
  case "$out" in *"$words"*) ;; *) fail "'$*' did not say '$words': $out";; esac
  echo "ok: exit $rc, '$words': $*"
}
# A missing --sender: ssh_throughput's usage error (the namespace runner has no such flag).
expect 2 "--sender is required" -- "$MAIN" --hosts=ssh --proxy p.lab --receiver r.lab
expect 2 "--sender is required" -- "$MAIN" --proxy p.lab --hosts ssh --receiver r.lab
# Its own flags reach it and are checked there, before any host is contacted.
expect 2 "--loads: '0' is not a fraction of the PDR" -- "$MAIN" --hosts=ssh --sender s --proxy p --receiver r --loads 0
expect 2 "--mode: 'bridge' is neither relay nor router" -- "$MAIN" --sender s --proxy p --receiver r --hosts=ssh --mode bridge
expect 0 "ssh_throughput: the throughput experiment across real hosts over SSH" -- "$MAIN" --hosts=ssh --help
# Without --hosts=ssh those flags are the namespace runner's error, not a hand-off.
expect 2 "were not expected: r --receiver p --proxy s --sender" -- "$MAIN" --sender s --proxy p --receiver r
echo PASS
