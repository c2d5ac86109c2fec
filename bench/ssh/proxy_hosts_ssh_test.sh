#!/usr/bin/env bash
# //bench/ssh:proxy_hosts_ssh_test: `//bench:proxy --hosts=ssh` as a user runs it, on three
# network namespaces with an sshd each (bench/ssh/sshd_hosts.sh) reached over real ssh/scp (root;
# skipped with the reason when sshd is not installed or not root):
#   1. relay mode with --udp-test: 2000 numbered datagrams arrive whole; the status lines come from
#      the proxy's agent with the method's own counters, their forwarded sum is the final report's,
#      and the proxy's interfaces carried them; no agent or copied file left;
#   2. router mode (the sandbox on AF_XDP, --proxy-addresses adjust) with --exec-sender: a ping
#      through it passes (the command's exit status), its output is passed on, the report counts it;
#   3. standing until SIGTERM with --exec-receiver: the status lines while it stands, then the
#      final report, the receiver's command ended with its process group, nothing left;
#   3b. SIGINT during a long --udp-test: the stream ends early, its counts and the report come,
#      every datagram the sink got was forwarded, nothing left;
#   3c. the proxy's agent killed on its host: the tool ends (exit 1) saying the method ended
#      early without a report, and cleans up;
#   4. the errors: flags of real hosts without --hosts=ssh, a missing host, --arp, a method the
#      proxy host cannot run (sandbox:uls without /dev/uls), a sender command that fails (its
#      status, exit 1), a host that is not there.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

skip() { echo "SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }

RUNFILES=${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-ulsnet}
PROXY=$RUNFILES/bench/proxy
[ -x "$PROXY" ] && [ -x "$RUNFILES/bench/ssh/ulsnet_agent" ] || fail "//bench:proxy or its agent not in the runfiles"
T0=$(date +%s.%N)
. "$RUNFILES/bench/ssh/sshd_hosts.sh"

nothing_left() {  # nothing_left WHAT
  [ "$(agents_left)" = 0 ] || fail "$1: agents left running"
  [ -z "$(ls -A "$WORK/remote")" ] || fail "$1: copied files left: $(ls "$WORK/remote")"
  return 0
}

# ---- 1. relay mode, --udp-test -----------------------------------------------------------------
t1=$(date +%s.%N)
"$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket:batched --mode relay --json --interval 0.3 \
  --udp-test 2000 --udp-rate 2000 >"$WORK/relay.jsonl" 2>"$WORK/relay.err" \
  || { cat "$WORK/relay.err" >&2; fail "the relay run failed"; }
echo "relay over ssh: $(python3 -c "print(round($(date +%s.%N) - $t1, 1))") s"
python3 - "$WORK/relay.jsonl" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kinds = [e["event"] for e in ev]
assert kinds[0] == "up" and kinds[-1] == "final", kinds
up = ev[0]
assert up["hosts_kind"] == "ssh" and up["method"] == "kernel-socket" and up["variant"] == "batched", up
assert up["relay"] == {"listen": "10.201.1.2:9000", "to": "10.201.2.2:9000"}, up["relay"]
for role in ("sender", "proxy", "receiver"):
    h = up["hosts"][role]
    assert h["target"].startswith("10.251.") and h["ssh"].startswith("ssh ") and h["target"] in h["ssh"], h
assert up["hosts"]["proxy"]["in"]["ifname"] == "p0" and up["hosts"]["proxy"]["out"]["ifname"] == "p1", up
u = [e for e in ev if e["event"] == "udp_test"]
assert len(u) == 1, kinds
u = u[0]
assert u["sent"] == 2000 and u["received"] == 2000 and u["lost"] == 0, u
assert u["duplicates"] == 0 and u["corrupted"] == 0, u
assert "latency_ns" in u, "one machine's clock: the sink's delays are kept"
st = [e for e in ev if e["event"] == "status"]
assert len(st) >= 3, f"{len(st)} status lines"
assert st[-1].get("last") is True, st[-1]
assert any(s.get("method_counters") is not False and s["forwarded"] > 0 for s in st[:-1]), \
    "no status line before the last had the method's live counters"
final = ev[-1]
assert final["exit_status"] == 0 and "error" not in final, final
rep = final["report"]
assert rep["forwarded"] == 2000, rep["forwarded"]
assert rep["stop_reason"] == "told to stop", rep["stop_reason"]
assert sum(s["forwarded"] for s in st) == rep["forwarded"], [s["forwarded"] for s in st]
t = final["totals"]
assert t["forwarded"] == 2000 and t["interfaces"]["p0"]["rx"] >= 2000 and t["interfaces"]["p1"]["tx"] >= 2000, t
print("relay:", len(st), "status lines, forwarded", rep["forwarded"], "p1 out", t["interfaces"]["p1"]["tx"])
EOF
grep -q "preparing the hosts" "$WORK/relay.err" || fail "no progress on stderr with --json"
nothing_left "relay"

# ---- 2. router mode, --exec-sender -------------------------------------------------------------
"$PROXY" --hosts=ssh "${COMMON[@]}" --method sandbox:af_xdp --mode router --proxy-addresses adjust \
  --exec-sender "ping -c 3 -i 0.2 -W 2 10.201.2.2" >"$WORK/router.out" 2>&1 \
  || { cat "$WORK/router.out" >&2; fail "the router run failed"; }
grep -q "3 packets transmitted, 3 received" "$WORK/router.out" || { cat "$WORK/router.out" >&2; fail "ping's output not passed on"; }
grep -q "sender command 'ping -c 3 -i 0.2 -W 2 10.201.2.2': exit status 0" "$WORK/router.out" \
  || { cat "$WORK/router.out" >&2; fail "the ping's exit status not reported"; }
python3 - "$WORK/router.out" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
m = re.search(r"final report of the method:\n(\{.*?\n\})", text, re.S)
assert m, text
rep = json.loads(m.group(1))
assert rep["method"] == "sandbox" and rep["variant"] == "af_xdp" and rep["mode"] == "router", rep
assert rep["forwarded"] >= 6, rep["forwarded"]  # 3 echo requests and 3 replies
assert rep.get("addresses_adjusted"), rep.get("addresses_adjusted")
print("router: forwarded", rep["forwarded"])
EOF
ip -n "$PRX" -4 -o addr show dev p0 | grep -q "10.201.1.2/24" || fail "the proxy's address was not restored after adjust"
nothing_left "router"

# ---- 3. standing until SIGTERM, --exec-receiver ------------------------------------------------
"$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket:per-datagram --mode relay --interval 0.3 \
  --exec-receiver "sleep 300" >"$WORK/stand.out" 2>&1 &
tool=$!
for _ in $(seq 200); do
  grep -q " s  p0 in " "$WORK/stand.out" 2>/dev/null && break
  kill -0 "$tool" 2>/dev/null || break
  sleep 0.1
done
grep -q "is up on the proxy host" "$WORK/stand.out" || { cat "$WORK/stand.out" >&2; fail "the tool did not come up"; }
grep -q " s  p0 in " "$WORK/stand.out" || { cat "$WORK/stand.out" >&2; fail "no status line while standing"; }
ip netns pids "$RCV" | xargs -r ps -o args= -p | grep -q "^sleep 300" || fail "the receiver's command is not running"
kill -TERM "$tool"
rc=0
wait "$tool" || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/stand.out" >&2; fail "SIGTERM: exit $rc"; }
grep -q "stopped (stopped by a signal); final report of the method" "$WORK/stand.out" \
  || { cat "$WORK/stand.out" >&2; fail "no final report after SIGTERM"; }
grep -q "receiver command 'sleep 300': ended by Terminated (ended at stop)" "$WORK/stand.out" \
  || { cat "$WORK/stand.out" >&2; fail "the receiver's command was not ended"; }
if ip netns pids "$RCV" | xargs -r ps -o args= -p | grep -q "^sleep 300"; then fail "the receiver's command survived"; fi
nothing_left "SIGTERM"

# ---- 3b. SIGINT during --udp-test: the stream stops early, the report still comes --------------
"$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket:batched --mode relay --json --interval 0.3 \
  --udp-test 40000 --udp-rate 2000 >"$WORK/int.jsonl" 2>"$WORK/int.err" &
tool=$!
for _ in $(seq 200); do
  grep -q '"event":"status"' "$WORK/int.jsonl" 2>/dev/null && break
  sleep 0.1
done
sleep 1
t3=$(date +%s)
kill -INT "$tool"
rc=0
wait "$tool" || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/int.err" >&2; fail "SIGINT during the UDP test: exit $rc"; }
[ $(($(date +%s) - t3)) -le 20 ] || fail "SIGINT: the tool took over 20 s to end"
python3 - "$WORK/int.jsonl" <<'EOF'
import json, sys
ev = {}
for l in open(sys.argv[1]):
    e = json.loads(l)
    ev.setdefault(e["event"], []).append(e)
u = ev["udp_test"][0]
assert 0 < u["sent"] < 40000 and u["received"] <= u["sent"], u
f = ev["final"][0]
assert f["why"] == "stopped by a signal" and f["report"]["forwarded"] == u["received"], (f["why"], u)
print("SIGINT during the UDP test: sent", u["sent"], "received", u["received"])
EOF
nothing_left "SIGINT"

# ---- 3c. the proxy's agent killed on its host: the tool ends, says so, cleans up -------------------
"$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket:batched --mode relay --interval 0.3 \
  >"$WORK/kill.out" 2>&1 &
tool=$!
for _ in $(seq 200); do
  grep -q " s  p0 in " "$WORK/kill.out" 2>/dev/null && break
  sleep 0.1
done
pkill -KILL -f "^$WORK/remote/[^ ]*/ulsnet_agent proxy" || fail "no proxy agent to kill"
t4=$(date +%s)
rc=0
wait "$tool" || rc=$?
[ "$rc" = 1 ] || { cat "$WORK/kill.out" >&2; fail "the agent killed: exit $rc, expected 1"; }
[ $(($(date +%s) - t4)) -le 15 ] || fail "the agent killed: the tool took over 15 s to end"
grep -q "kernel-socket:batched ended early: proxy: the agent printed no report" "$WORK/kill.out" \
  || { cat "$WORK/kill.out" >&2; fail "the agent's death was not said"; }
nothing_left "agent killed"

# ---- 4. errors ---------------------------------------------------------------------------------
expect() {  # expect EXIT_CODE WORDS -- COMMAND...
  local want=$1 words=$2 out rc=0
  shift 3
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
  case "$out" in *"$words"*) ;; *) fail "'$*' did not say '$words': $out";; esac
  echo "ok: exit $rc, '$words'"
}
expect 2 "--sender names a real host's setting: it needs --hosts=ssh" -- \
  "$PROXY" --method kernel-socket --mode relay --sender 10.251.1.2
expect 2 "--receiver is missing" -- "$PROXY" --hosts=ssh --method kernel-socket --mode relay --sender a --proxy b
expect 2 "--arp is for the namespaces and VMs" -- "$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket --mode relay --arp
expect 1 "needs the ULS kernel (/dev/uls), which this host lacks" -- \
  "$PROXY" --hosts=ssh "${COMMON[@]}" --method sandbox:uls --mode router
expect 1 "sender command 'echo to stderr >&2; exit 3': exit status 3" -- \
  "$PROXY" --hosts=ssh "${COMMON[@]}" --method kernel-socket --mode relay --exec-sender "echo to stderr >&2; exit 3"
UNREACHABLE=("${COMMON[@]}")
UNREACHABLE[1]=10.251.1.99  # the sender
expect 1 "cannot connect to the sender host" -- "$PROXY" --hosts=ssh "${UNREACHABLE[@]}" --method kernel-socket --mode relay
nothing_left "errors"
echo "PASS in $(python3 -c "print(round($(date +%s.%N) - $T0, 1))") s"
