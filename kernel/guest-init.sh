#!/bin/busybox sh
# /init of every virtual host. The kernel command line says what to be and what to run:
#   ulsnet.role=sender|proxy|receiver|single   which host this is (addresses below)
#   ulsnet.test=NAME                           a test from the list at the end, or
#   ulsnet.run=/bin/PROG                       a program to run (its exit status is reported);
#                                              /bin/A:/bin/B runs each in turn
#   ulsnet.args=A,B,C                          their arguments (commas become spaces)
#   ulsnet.linger=S                            after ULSNET-GUEST-DONE, wait S seconds before
#                                              powering off (the launcher stops the host
#                                              first: kernel/vm.sh --end all)
# Output goes to the serial console, which the launcher saves; markers the tests look for:
#   "ULSNET-GUEST-UP role=R kernel=K", "ULSNET-CLOCK source=S", "ULSNET-CPUS online=N",
#   "ULSNET-RESULT name=N status=pass|fail [detail]",
#   "ULSNET-GUEST-DONE". The guest always powers off at the end (reboot -f with -no-reboot).
#
# Addressing (the same plan as the network-namespace hosts, bench/topology.h):
#   sender   eth0 10.201.1.1/24                  route 10.201.2.0/24 via 10.201.1.2
#   proxy    eth0 10.201.1.2/24  eth1 10.201.2.1/24   ip_forward per test
#   receiver eth0 10.201.2.2/24                  route 10.201.1.0/24 via 10.201.2.1
# and, with kernel/vm.sh --mgmt, a direct management link between sender and receiver (the NIC
# whose MAC is 52:54:00:c9:09:xx, found by its address): sender 10.201.9.1/24, receiver
# 10.201.9.2/24. It carries control and clock comparison only, never the stream.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp

role=""; test=""; run=""; args=""; linger=0
for w in $(cat /proc/cmdline); do
  case "$w" in
    ulsnet.role=*) role="${w#*=}" ;;
    ulsnet.test=*) test="${w#*=}" ;;
    ulsnet.run=*) run="${w#*=}" ;;
    ulsnet.args=*) args="$(echo "${w#*=}" | tr ',' ' ')" ;;
    ulsnet.linger=*) linger="${w#*=}" ;;
  esac
done
echo "ULSNET-GUEST-UP role=${role:-none} kernel=$(uname -r)"
# What CLOCK_MONOTONIC runs on ("jiffies": 4 ms steps; kernel/vm.sh --tsc-khz).
echo "ULSNET-CLOCK source=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
# How many CPUs the kernel brought up (kernel/vm.sh --smp asks QEMU for them; the guest finds
# them through ACPI).
echo "ULSNET-CPUS online=$(grep -c '^processor' /proc/cpuinfo)"

result() { echo "ULSNET-RESULT name=$1 status=$2 ${3:-}"; }

# Which driver runs each NIC (the experiments need e1000 where the launcher asked for it).
nics=""
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  nics="$nics $(basename "$n")=$(basename "$(readlink "$n/device/driver")")"
done
echo "ULSNET-NIC${nics:- none}"

ip link set lo up
# No IPv6 on the links ("all" covers the NICs that exist): the kernel would send router
# solicitations (4 s, 8 s, 16 s... after a link comes up) and multicast listener reports, frames
# of no experiment that would share the links' counters with the stream.
for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
  [ -w "$f" ] && echo 1 > "$f"
done
# The management NIC, by its MAC.
mgmt_if=""
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  case "$(cat "$n/address")" in 52:54:00:c9:09:*) mgmt_if="$(basename "$n")" ;; esac
done
if [ -n "$mgmt_if" ]; then
  case "$role" in
    sender)   ip addr add 10.201.9.1/24 dev "$mgmt_if"; ip link set "$mgmt_if" up ;;
    receiver) ip addr add 10.201.9.2/24 dev "$mgmt_if"; ip link set "$mgmt_if" up ;;
  esac
  echo "ULSNET-MGMT if=$mgmt_if"
fi
case "$role" in
  sender)   ip addr add 10.201.1.1/24 dev eth0; ip link set eth0 up
            ip route add 10.201.2.0/24 via 10.201.1.2 ;;
  proxy)    ip addr add 10.201.1.2/24 dev eth0; ip link set eth0 up
            ip addr add 10.201.2.1/24 dev eth1; ip link set eth1 up ;;
  receiver) ip addr add 10.201.2.2/24 dev eth0; ip link set eth0 up
            ip route add 10.201.1.0/24 via 10.201.2.1 ;;
esac

# Waits (bounded) until `ping` of $1 answers; the peers boot at slightly different times.
wait_ping() {
  i=0
  while [ $i -lt 60 ]; do
    ping -c 1 -W 1 "$1" >/dev/null 2>&1 && return 0
    i=$((i + 1))
  done
  return 1
}

case "$test" in
  boot)
    # The kernel booted, ran init, and has what the experiments need.
    ok=pass; detail=""
    for f in /proc/net/packet /sys/class/net/lo; do [ -e "$f" ] || { ok=fail; detail="$detail missing:$f"; }; done
    [ "$role" = single ] || ls /sys/class/net | grep -q eth0 || { ok=fail; detail="$detail no-eth0"; }
    result boot "$ok" "$detail"
    ;;
  forward-ping)
    # The proxy forwards in its kernel; the sender pings the receiver through it.
    case "$role" in
      proxy)    echo 1 > /proc/sys/net/ipv4/ip_forward
                # Forward until the launcher stops this host (the sender is done), bounded.
                sleep 120 ;;
      sender)   if wait_ping 10.201.2.2; then
                  out="$(ping -c 5 -i 0.2 10.201.2.2 2>&1 | tail -2 | tr '\n' ' ')"
                  result forward-ping pass "$out"
                else
                  result forward-ping fail "10.201.2.2 unreachable through the proxy"
                fi ;;
      receiver) sleep 120 ;;
    esac
    ;;
  uls-forward)
    # The zero-copy path (patch 0005): the proxy's e1000s are bound to a forwarding extension in
    # the sandbox; its kernel does no forwarding (ip_forward stays 0). The MACs are kernel/vm.sh's
    # plan. ulsnet.path says what forwards on the proxy:
    #   uls     kernel/tests/uls_fwd_ext.c, a minimal test forwarder (answers no ARP: the end
    #           hosts know the proxy's MACs statically)
    #   stack   the project's Stack as the sandbox image (sandbox/uls), router or relay
    #           (ulsnet.mode); it answers ARP and ping itself
    #   kernel  the proxy's own kernel (ip_forward=1), for comparison
    #   method  any proxy method of baselines/ (ulsnet.method, ulsnet.variant, ulsnet.mode),
    #           run by bench/guest/ulsnet_proxy.cc: //bench:throughput --hosts=vm
    # In relay mode the sender sends to the proxy's address (10.201.1.2:9000), which relays to
    # the receiver.
    count=5000; pps=1000; path=uls; mode=router; method=""; variant=""
    for w in $(cat /proc/cmdline); do
      case "$w" in
        ulsnet.count=*) count="${w#*=}" ;;
        ulsnet.pps=*) pps="${w#*=}" ;;
        ulsnet.path=*) path="${w#*=}" ;;
        ulsnet.mode=*) mode="${w#*=}" ;;
        ulsnet.method=*) method="${w#*=}" ;;
        ulsnet.variant=*) variant="${w#*=}" ;;
      esac
    done
    target=10.201.2.2
    [ "$path" != uls ] && [ "$mode" = relay ] && target=10.201.1.2
    case "$role/$path" in
      proxy/kernel)
                echo 1 > /proc/sys/net/ipv4/ip_forward
                echo "ULSNET-PROXY-KERNEL-FORWARDING"
                sleep 150 ;;
      proxy/method)
                ulsnet_proxy "$method" "$variant" "$mode" 150 "$count" ;;
      proxy/*)  # Until the stream is through (or 150 s); then the interfaces go back to the kernel,
                # which must work as before: it pings the sender itself.
                if [ "$path" = stack ]; then
                  uls_stack_proxy 150 "$count" "$mode"
                else
                  uls_proxy 150 52:54:00:c9:01:01 52:54:00:c9:02:02 "$count"
                fi
                if [ $? -eq 0 ]; then
                  if ping -c 1 -W 3 10.201.1.1 >/dev/null 2>&1; then
                    echo "ULSNET-PROXY-KERNEL-PATH ping=ok"
                  else
                    echo "ULSNET-PROXY-KERNEL-PATH ping=fail"
                  fi
                fi ;;
      sender/*) [ "$path" = uls ] && arp -i eth0 -s 10.201.1.2 52:54:00:c9:01:02
                if wait_ping "$target"; then
                  # Relayed, the ping reached only the proxy: give the receiver (started first)
                  # time to bind its socket.
                  if [ "$target" = 10.201.1.2 ]; then sleep 3; else sleep 1; fi
                  uls_udp send "$target" 9000 "$count" "$pps"
                  # The receiver's idle timeout; the proxy's end (2 s idle), unbinding and its ping.
                  sleep 10
                  result uls-forward pass "sent"
                else
                  result uls-forward fail "$target unreachable through the proxy's extension"
                fi ;;
      receiver/*)
                [ "$path" = uls ] && arp -i eth0 -s 10.201.2.1 52:54:00:c9:02:01
                # A relay's Stack learns the receiver's address from its ARP (the datagrams it
                # relays are not queued while it asks): the receiver pings it as it starts.
                [ "$target" = 10.201.1.2 ] && wait_ping 10.201.2.1 &
                uls_udp recv 9000 "$count" 3000 150000 ;;
    esac
    ;;
  traffic)
    # //bench:throughput --hosts=vm: the project's own generator and sink (bench/traffic.h, in
    # bench/guest/ulsnet_traffic.cc) at the ends, any proxy method of baselines/ in the proxy
    # (bench/guest/ulsnet_proxy.cc). Needs kernel/vm.sh --mgmt: the sender and the receiver
    # compare clocks and say when the stream is through over the management link. Relayed, the
    # sender sends to the proxy's address (10.201.1.2:9000), which relays to the receiver.
    count=5000; pps=0; mode=relay; method=""; variant=""; payload=24; seconds=60; warmup_ms=0
    for w in $(cat /proc/cmdline); do
      case "$w" in
        ulsnet.count=*) count="${w#*=}" ;;
        ulsnet.pps=*) pps="${w#*=}" ;;
        ulsnet.mode=*) mode="${w#*=}" ;;
        ulsnet.method=*) method="${w#*=}" ;;
        ulsnet.variant=*) variant="${w#*=}" ;;
        ulsnet.payload=*) payload="${w#*=}" ;;
        ulsnet.seconds=*) seconds="${w#*=}" ;;
        ulsnet.warmup_ms=*) warmup_ms="${w#*=}" ;;
      esac
    done
    target=10.201.2.2
    [ "$mode" = relay ] && target=10.201.1.2
    case "$role" in
      proxy)    ulsnet_proxy "$method" "$variant" "$mode" 150 "$count" ;;
      sender)   # Static neighbours on the stream's links (as on the proxy): no ARP during the stream,
                # whose frames alone the links' counters should hold.
                arp -i eth0 -s 10.201.1.2 52:54:00:c9:01:02
                if wait_ping "$target"; then
                  # Relayed, the ping reached only the proxy. The relay knows the receiver once
                  # the receiver's ping of it came back, which the receiver waits for before it
                  # answers on the management link; the generator's clock comparison waits for
                  # that answer, so the stream starts only then (no fixed wait).
                  ulsnet_traffic send "$target" 9000 "$count" "$pps" "$payload" "$seconds" 10.201.9.2
                else
                  echo "ULSNET-TRAFFIC-ERROR $target unreachable through the proxy"
                fi ;;
      receiver) arp -i eth0 -s 10.201.2.1 52:54:00:c9:02:01
                # A relay's Stack learns the receiver's address from its ARP (the datagrams it
                # relays are not queued while it asks): the receiver pings it before its sink
                # starts, so the sender (which waits for the sink on the management link) never
                # sends before the relay can reach the receiver.
                if [ "$mode" = relay ] && ! wait_ping 10.201.2.1; then
                  echo "ULSNET-TRAFFIC-NOTE the relay (10.201.2.1) did not answer the receiver's ping"
                fi
                ulsnet_traffic recv 9000 "$count" 3000 150000 "$warmup_ms" ;;
    esac
    ;;
  stand)
    # //bench:proxy --hosts=vm: any proxy method standing in the proxy (bench/guest/ulsnet_proxy.cc
    # with "stand": a status line every ulsnet.interval_ms, until stopped or ulsnet.seconds), and
    # commands from the host, one per line on this console (kernel/vm.sh --console-in):
    #   exec ID BASE64   (sender, receiver) run the decoded shell command in the background, stdin
    #                    /dev/null; when it ends: "ULSNET-EXEC-END id=ID status=S"
    #   stop             the proxy stops the method (it prints its report); the others end what
    #                    they still run; then every host is done
    method=""; variant=""; mode=router; seconds=600; interval_ms=1000; pid=""
    for w in $(cat /proc/cmdline); do
      case "$w" in
        ulsnet.method=*) method="${w#*=}" ;;
        ulsnet.variant=*) variant="${w#*=}" ;;
        ulsnet.mode=*) mode="${w#*=}" ;;
        ulsnet.seconds=*) seconds="${w#*=}" ;;
        ulsnet.interval_ms=*) interval_ms="${w#*=}" ;;
      esac
    done
    stty -echo 2>/dev/null
    case "$role" in
      proxy)    ulsnet_proxy "$method" "$variant" "$mode" "$seconds" stand "$interval_ms" < /dev/null &
                pid=$! ;;
      sender)   arp -i eth0 -s 10.201.1.2 52:54:00:c9:01:02 ;;
      receiver) arp -i eth0 -s 10.201.2.1 52:54:00:c9:02:01 ;;
    esac
    echo "ULSNET-STAND-READY role=$role"
    jobs_=""
    while read -r cmd id b64; do
      case "$cmd" in
        exec) ( sh -c "$(echo "$b64" | base64 -d)" < /dev/null; echo "ULSNET-EXEC-END id=$id status=$?" ) &
              jobs_="$jobs_ $!" ;;
        stop) break ;;
      esac
    done
    if [ -n "$pid" ]; then
      kill -USR1 "$pid" 2>/dev/null
      wait "$pid"
    fi
    for j in $jobs_; do kill "$j" 2>/dev/null; done
    ;;
  "")
    for prog in $(echo "$run" | tr ':' ' '); do
      # shellcheck disable=SC2086 -- the arguments are meant to split
      "$prog" $args; rc=$?
      [ $rc -eq 0 ] && result "$(basename "$prog")" pass || result "$(basename "$prog")" fail "exit=$rc"
    done
    ;;
  *) result "$test" fail "unknown test" ;;
esac
echo "ULSNET-GUEST-DONE"
[ "$linger" -gt 0 ] 2>/dev/null && sleep "$linger"
sync
reboot -f
