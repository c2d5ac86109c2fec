# Sourced by the tests of real hosts over SSH (bench/ssh/ssh_throughput_test.sh,
# bench/ssh/proxy_hosts_ssh_test.sh): three network namespaces as the hosts, each with its own sshd.
#
# The hosts: sender, proxy and receiver, linked for the test traffic by veth pairs on
# bench/topology.h's plan (s0 10.201.1.1 -- p0 10.201.1.2, p1 10.201.2.1 -- r0 10.201.2.2), plus a
# management veth from the root namespace to each (10.251.{1,2,3}.0/24: the root side .1, the
# host .2; the sender reaches the receiver's management address through the root namespace).
# Each namespace runs its own sshd on its management address: host keys and a client key
# generated here, a private sshd_config (public key only, root by that key, no PAM, -D in the
# foreground, its PidFile here).
#
# Needs: skip and fail (the caller's); skips without root or sshd, fails without ip, ssh, scp,
# ssh-keygen or python3. Sets: NS (the three namespaces), SND PRX
# RCV, MGMT, WORK (a fresh directory; $WORK/remote is where the agents go), SSH_OPTS (ssh's
# options to reach a host as root), COMMON (the tools' host and SSH flags); defines
# agents_left (prints how many agents of this test still run) and cleanup, trapped on EXIT
# (everything made here removed: namespaces, veths, sshd processes, files).
SSHD=$(command -v sshd || true)
[ -z "$SSHD" ] && [ -x /usr/sbin/sshd ] && SSHD=/usr/sbin/sshd
[ -n "$SSHD" ] || skip "sshd is not installed (Debian's openssh-server; tools/setup.sh installs it)"
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, veth pairs, an sshd per namespace)"
for t in ip ssh scp ssh-keygen python3; do
  command -v "$t" >/dev/null || fail "$t is not installed"
done
SSHD_HOSTS_T0=$(date +%s.%N)
TAG=$$
NS=("ulsssh-$TAG-snd" "ulsssh-$TAG-prx" "ulsssh-$TAG-rcv")
MGMT=(10.251.1 10.251.2 10.251.3)
WORK=$(mktemp -d /tmp/ulsnet-ssh-test.XXXXXX)
SSHD_PIDS=()
MADE_RUN_SSHD=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  for p in "${SSHD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SSHD_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  for i in 0 1 2; do ip link del "us${TAG}m$i" 2>/dev/null || true; done
  [ "$MADE_RUN_SSHD" = 1 ] && rmdir /run/sshd 2>/dev/null || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

# ---- the hosts ---------------------------------------------------------------------------------
if ip -4 -o addr | grep -qE ' 10\.251\.[123]\.'; then
  fail "10.251.1-3.0/24 are in use on this machine; the test's management links need them"
fi
for i in 0 1 2; do
  ns=${NS[$i]}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add "us${TAG}m$i" type veth peer name m0 netns "$ns"
  sysctl -qw "net.ipv6.conf.us${TAG}m$i.disable_ipv6=1" || true
  ip addr add "${MGMT[$i]}.1/24" dev "us${TAG}m$i"
  ip link set "us${TAG}m$i" up
  ip -n "$ns" addr add "${MGMT[$i]}.2/24" dev m0
  ip -n "$ns" link set m0 up
done
SND=${NS[0]} PRX=${NS[1]} RCV=${NS[2]}
ip -n "$SND" link add s0 type veth peer name p0 netns "$PRX"
ip -n "$PRX" link add p1 type veth peer name r0 netns "$RCV"
ip -n "$SND" addr add 10.201.1.1/24 dev s0
ip -n "$PRX" addr add 10.201.1.2/24 dev p0
ip -n "$PRX" addr add 10.201.2.1/24 dev p1
ip -n "$RCV" addr add 10.201.2.2/24 dev r0
for x in "$SND s0" "$PRX p0" "$PRX p1" "$RCV r0"; do
  set -- $x
  ip -n "$1" link set "$2" up
  # Complete UDP checksums on the wire, as bench/topology.h has them (veth otherwise leaves partial
  # ones, which the Stack's methods count as bad): not needed by this test's kernel-socket relay.
  if command -v ethtool >/dev/null; then ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true; fi
done
ip -n "$SND" route add 10.201.2.0/24 via 10.201.1.2
ip -n "$RCV" route add 10.201.1.0/24 via 10.201.2.1
# The sender reaches the receiver's management address (the clock comparison) through the root
# namespace: forwarding on those two management veths only (removed with them), routes both ways.
for i in 0 2; do sysctl -qw "net.ipv4.conf.us${TAG}m$i.forwarding=1"; done
ip -n "$SND" route add "${MGMT[2]}.0/24" via "${MGMT[0]}.1"
ip -n "$RCV" route add "${MGMT[0]}.0/24" via "${MGMT[2]}.1"

# ---- an sshd in each -------------------------------------------------------------------------
[ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd && MADE_RUN_SSHD=1; }
ssh-keygen -q -t ed25519 -N '' -C ulsnet-ssh-test-client -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
: > "$WORK/known_hosts"
for i in 0 1 2; do
  ssh-keygen -q -t ed25519 -N '' -C "ulsnet-ssh-test-host$i" -f "$WORK/host$i"
  echo "${MGMT[$i]}.2 $(cut -d' ' -f1,2 "$WORK/host$i.pub")" >> "$WORK/known_hosts"
  cat > "$WORK/sshd_config$i" <<EOF
ListenAddress ${MGMT[$i]}.2:22
HostKey $WORK/host$i
PidFile $WORK/sshd$i.pid
AuthorizedKeysFile $WORK/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxSessions 20
MaxStartups 30
LogLevel ERROR
EOF
  "$SSHD" -t -f "$WORK/sshd_config$i" || fail "sshd refuses the test's configuration"
  ip netns exec "${NS[$i]}" "$SSHD" -D -e -f "$WORK/sshd_config$i" 2>>"$WORK/sshd$i.log" &
  SSHD_PIDS+=($!)
done
SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=2 -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes
          -o "UserKnownHostsFile=$WORK/known_hosts" -i "$WORK/client_key")
for i in 0 1 2; do
  up=0
  for _ in $(seq 50); do
    if ssh "${SSH_OPTS[@]}" "root@${MGMT[$i]}.2" true 2>/dev/null; then up=1; break; fi
    sleep 0.2
  done
  [ "$up" = 1 ] || { cat "$WORK/sshd$i.log" >&2; fail "the sshd in ${NS[$i]} does not answer"; }
done
echo "hosts up in $(python3 -c "print(round($(date +%s.%N) - $SSHD_HOSTS_T0, 1))") s: sshd in ${NS[*]}"

mkdir "$WORK/remote"
COMMON=(--sender "${MGMT[0]}.2" --proxy "${MGMT[1]}.2" --receiver "${MGMT[2]}.2"
        --ssh-user root --ssh-identity "$WORK/client_key" --ssh-connect-timeout 5
        --ssh-option "UserKnownHostsFile=$WORK/known_hosts" --ssh-option StrictHostKeyChecking=yes
        --ssh-option IdentitiesOnly=yes --remote-tmp "$WORK/remote")

# Agents of this test still running anywhere (their binaries live under $WORK/remote).
agents_left() {
  local n=0 p e
  for p in /proc/[0-9]*; do
    e=$(readlink "$p/exe" 2>/dev/null || true)
    case "$e" in "$WORK/remote/"*) n=$((n + 1)); echo "left: ${p#/proc/} $e" >&2;; esac
  done
  echo "$n"
}
