#!/usr/bin/env bash
# Launches one or three QEMU virtual hosts from one kernel and one initramfs, waits for them,
# saves their serial consoles, and tears everything down on exit (also on SIGINT/SIGTERM or a
# timeout).
#
#   kernel/vm.sh --kernel BZIMAGE --initrd INITRD --log-dir DIR
#                [--hosts 1|3] [--test NAME | --run /bin/PROG] [--accel auto|kvm|tcg]
#                [--timeout SECONDS] [--nic e1000|virtio-net-pci] [--mem MB]
#                [--append "KERNEL ARGS"]   (e.g. uls.protect=0; given twice, both are kept)
#                [--smp N]   (virtual CPUs per host, 1..4, default 1; TCG runs them in threads)
#                [--nics N]   (--hosts 1: N NICs, 0..4, all on one QEMU hub: what one sends, the
#                              others receive)
#                [--link tcp|udp] [--mgmt] [--end sender|all]   (--hosts 3, below)
#                [--icount] [--icount-sleep on|off]   (TCG instruction counting, below)
#                [--tsc-khz N]   (the guests' TSC frequency, below)
#                [--count-insns PLUGIN.so]   (instruction counts, below)
#                [--cpu MODEL]   (QEMU's -cpu; default QEMU's own. `max` under TCG has memory
#                                 protection keys, which TCG emulates; qemu64,+xsave,+pku hangs
#                                 at boot here)
#                [--probe-accel]   (only say which accelerator a launch would use, below)
#                [--console-in]   (each guest's console takes input from the FIFO DIR/ROLE.in)
#
# --hosts 3: sender -- proxy -- receiver, proxy with two NICs, each link a pair of QEMU socket
# netdevs on 127.0.0.1 inside a private network namespace (so the ports never meet anything else
# on the machine). --hosts 1: one host, role "single". The guest reads its role and test from the
# kernel command line (kernel/guest-init.sh).
#
# Links (--link): `tcp` (default): one TCP connection per link. It never drops, but QEMU's socket
# backend stops reading it while the receiving NIC has no free receive descriptor, and the
# sending QEMU then queues the sending NIC's frames and drops them, uncounted, past 10000 queued
# (net/queue.c: a NIC's transmissions carry no completion callback). `udp`: one datagram per
# frame between two bound UDP sockets. A frame the receiving side cannot take waits in that
# socket's buffer and is dropped there when it is full, and the host kernel counts each drop per
# socket (/proc/net/udp). At the end of a three-host run the network namespace's counters are
# saved (DIR/links-udp.txt, links-snmp.txt, links-dev.txt) and DIR/links.txt names the socket
# that receives each link direction: "link=NAME from=ROLE to=ROLE rx_port=PORT".
# --mgmt: a direct sender -- receiver link (a second e1000, eth1, on both; 10.201.9.0/24), not
# through the proxy: for control and clock comparison only.
#
# End of the run (--end): `sender` (default) when the sender (or the single host) prints
# ULSNET-GUEST-DONE; `all` when every host has printed it (the guests then wait, ulsnet.linger,
# so that their link counters can be read before their QEMUs exit); or at the timeout; or as soon
# as a host's QEMU has ended before its guest printed ULSNET-GUEST-DONE (killed, crashed, a guest
# panic): then "ULSNET-VM-DIED role=ROLE qemu_pid=PID after_s=S" follows the status line
# (status=died) and the launcher exits 1. The other hosts are then stopped.
#
# --icount: every QEMU runs with `-icount shift=0,sleep=on` (TCG only): guest time advances by
# 1 ns per executed instruction while the vCPU runs, so busy time measured in a guest counts
# instructions and does not move with host load; idle time still follows real time.
# --icount-sleep off: `sleep=off` instead: an idle guest's clock jumps to its next timer at once,
# so all of its time, idle included, is its own and nothing outside can move it (one host only:
# guests that talk to each other need idle time to pass in real time).
#
# --tsc-khz N: the guests take their TSC to run at N kHz (tsc_early_khz=N tsc=reliable) instead of
# calibrating it against the PIT, which under TCG on a loaded host fails ("tsc: Unable to
# calibrate against PIT"): the guest then keeps time by jiffies, 4 ms steps. Under TCG a guest's
# TSC is the host's (kernel/vm_harness measures its rate); under --icount it counts guest
# nanoseconds, 1 GHz, and that is what --icount gives the guests whatever N says.
#
# --count-insns PLUGIN.so: every QEMU loads the instruction-counting plugin
# (kernel/qemu/insn_count.c; its lines go to DIR/ROLE.insn.log): a guest that executes the
# marker GUEST_INSN_MARK(tag) (kernel/guest/guest_util.h) gets its user and kernel instruction
# counts so far written there, "ULSNET-INSN tag=T user=U kernel=K".
#
# --console-in: each QEMU's serial input is the FIFO DIR/ROLE.in (made here; QEMU holds it open
# for reading and writing, so it never blocks or ends): a line written there reaches the guest's
# console as if typed (//bench:proxy --hosts=vm sends its commands that way:
# kernel/guest-init.sh's "stand"). Without it a guest's console has no input.
#
# What ran: DIR/accel (and "ULSNET-ACCEL name=... reason=..."), and DIR/ROLE.cmdline, each QEMU's
# command line as the kernel reports it (/proc/PID/cmdline) while it runs.
#
# Accelerator: `auto` uses KVM only if a probe guest actually boots with it (on this machine
# kind /dev/kvm exists but cannot run stock guests), else TCG. TCG is slow (tens of kpps):
# results from VMs must say which accelerator ran them. --probe-accel: resolve it as a launch
# would (the probe guest at most, no hosts), print ULSNET-ACCEL and exit 0: what an experiment
# plans by (fewer repetitions under TCG).
set -euo pipefail

kernel=""; initrd=""; logdir=""; hosts=1; test=""; run=""; accel=auto; timeout_s=120
nic=e1000; mem=256; smp=1; append=""; nics=0; link=tcp; mgmt=0; end=sender; icount=0; icount_sleep=on; tsc_khz=""; plugin=""; probe_only=0; cpu=""; console_in=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --log-dir) logdir="$2"; shift 2 ;;
    --hosts) hosts="$2"; shift 2 ;;
    --test) test="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --accel) accel="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --nic) nic="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --smp) smp="$2"; shift 2 ;;
    --append) append="${append:+$append }$2"; shift 2 ;;
    --nics) nics="$2"; shift 2 ;;
    --link) link="$2"; shift 2 ;;
    --mgmt) mgmt=1; shift ;;
    --end) end="$2"; shift 2 ;;
    --icount) icount=1; shift ;;
    --icount-sleep) icount_sleep="$2"; shift 2 ;;
    --tsc-khz) tsc_khz="$2"; shift 2 ;;
    --count-insns) plugin="$2"; shift 2 ;;
    --cpu) cpu="$2"; shift 2 ;;
    --probe-accel) probe_only=1; shift ;;
    --console-in) console_in=1; shift ;;
    -h|--help) sed -n '2,77p' "$0"; exit 0 ;;
    *) echo "kernel/vm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "kernel/vm.sh: $*" >&2; exit 1; }
[ -f "$kernel" ] || die "--kernel: no such file '$kernel'"
[ -f "$initrd" ] || die "--initrd: no such file '$initrd'"
[ -n "$logdir" ] || die "--log-dir is required"
case "$hosts" in 1|3) ;; *) die "--hosts must be 1 or 3" ;; esac
case "$nics" in 0|1|2|3|4) ;; *) die "--nics must be 0..4" ;; esac
case "$smp" in 1|2|3|4) ;; *) die "--smp must be 1..4" ;; esac
[ "$nics" -eq 0 ] || [ "$hosts" -eq 1 ] || die "--nics is for --hosts 1"
case "$accel" in auto|kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg" ;; esac
case "$link" in tcp|udp) ;; *) die "--link must be tcp or udp" ;; esac
case "$end" in sender|all) ;; *) die "--end must be sender or all" ;; esac
[ "$mgmt" -eq 0 ] || [ "$hosts" -eq 3 ] || die "--mgmt is for --hosts 3"
[ "$icount" -eq 0 ] || [ "$accel" != kvm ] || die "--icount needs TCG (QEMU counts instructions only there)"
case "$icount_sleep" in on|off) ;; *) die "--icount-sleep must be on or off" ;; esac
[ "$icount_sleep" = on ] || [ "$icount" -eq 1 ] || die "--icount-sleep is for --icount"
[ "$icount_sleep" = on ] || [ "$hosts" -eq 1 ] || die "--icount-sleep off is for --hosts 1"
[ -z "$plugin" ] || [ -f "$plugin" ] || die "--count-insns: no such file '$plugin'"
case "$tsc_khz" in ''|*[!0-9]*) [ -z "$tsc_khz" ] || die "--tsc-khz must be a whole number of kHz" ;; esac
case "$cpu" in *[!A-Za-z0-9_.,+=-]*) die "--cpu: '$cpu' is not a QEMU CPU model (letters, digits and _.,+=- only)" ;; esac
case "$timeout_s" in ''|*[!0-9]*) die "--timeout must be whole seconds" ;; esac
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: run tools/setup.sh"
[ "$(id -u)" -eq 0 ] || die "needs root (a private network namespace for the links)"
mkdir -p "$logdir"

# loglevel=5: kernel warnings (KERN_WARNING) reach the console, so tests can look for them.
guest_args="console=ttyS0 loglevel=5 panic=-1"
[ -n "$test" ] && guest_args="$guest_args ulsnet.test=$test"
[ -n "$run" ] && guest_args="$guest_args ulsnet.run=$run"
case "$append" in *"'"*) die "--append must not contain single quotes" ;; esac
[ -n "$append" ] && guest_args="$guest_args $append"
# With --end all every guest waits after its ULSNET-GUEST-DONE until it is stopped (bounded).
[ "$end" = all ] && guest_args="$guest_args ulsnet.linger=120"
icount_args=""
if [ "$icount" -eq 1 ]; then
  icount_args="-icount shift=0,sleep=$icount_sleep"
  tsc_khz=1000000  # shift=0: one instruction is one guest nanosecond, and the TSC counts those
fi
[ -n "$tsc_khz" ] && guest_args="$guest_args tsc_early_khz=$tsc_khz tsc=reliable"

# A guest's console input: its FIFO with --console-in (opened read-write: never blocks, never
# ends), else nothing.
stdin_of() {  # role
  if [ "$console_in" -eq 1 ]; then echo "<> '$logdir/$1.in'"; else echo "< /dev/null"; fi
}

qemu_base() {  # accel [role]
  local counting=""
  [ -n "$plugin" ] && [ -n "${2:-}" ] && counting=" -plugin $plugin -d plugin -D $logdir/$2.insn.log"
  echo "qemu-system-x86_64 -accel $1 $icount_args${cpu:+ -cpu $cpu} -m $mem -smp $smp -nographic -no-reboot -nodefaults" \
       "-serial stdio -kernel $kernel -initrd $initrd$counting"
}

# --- accelerator -----------------------------------------------------------------------------
reason=""
if [ "$accel" = auto ] && [ "$icount" -eq 1 ]; then
  accel=tcg; reason="--icount (TCG only)"
elif [ "$accel" = auto ] && [ -n "${ULSNET_ACCEL:-}" ]; then
  accel="$ULSNET_ACCEL"; reason="ULSNET_ACCEL"
elif [ "$accel" = auto ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    # A guest that reaches init under KVM within 15 s: then KVM really works here. The answer is
    # kept per kernel image for an hour (next to the kernel build) so that runs do not repeat it.
    cache="${ULSNET_KERNEL_DIR:-/var/tmp/ulsnet-kernel}/accel-probe-$(sha256sum "$kernel" | cut -c1-16)"
    if [ -f "$cache" ] && [ -n "$(find "$cache" -mmin -60 2>/dev/null)" ]; then
      read -r accel reason < "$cache"; reason="$reason (cached probe)"
    else
      probe="$logdir/kvm-probe.log"
      timeout 15 $(qemu_base kvm) -append "$guest_args ulsnet.role=single" >"$probe" 2>&1 || true
      if grep -q "ULSNET-GUEST-UP" "$probe"; then
        accel=kvm; reason="a probe guest booted under KVM"
      else
        accel=tcg; reason="/dev/kvm is present but a probe guest did not boot under KVM"
      fi
      mkdir -p "$(dirname "$cache")" && echo "$accel $reason" > "$cache" || true
    fi
  else
    accel=tcg; reason="no usable /dev/kvm"
  fi
else
  reason="asked for"
fi
echo "$accel" > "$logdir/accel"
echo "ULSNET-ACCEL name=$accel reason=$reason"
[ "$probe_only" -eq 0 ] || exit 0

# --- the hosts -------------------------------------------------------------------------------
# All QEMUs run in one private network namespace (unshare -n) and one process group, so a single
# kill of the group, from the trap, removes them all.
script="$logdir/launch.sh"
{
  echo "set -u"
  echo "ip link set lo up"
  if [ "$hosts" -eq 1 ]; then
    hub=""
    for i in $(seq 1 "$nics"); do
      hub="$hub -netdev hubport,id=h$i,hubid=0 -device $nic,netdev=h$i,mac=$(printf '52:54:00:c9:00:%02x' "$i")"
    done
    echo "$(qemu_base "$accel" single)$hub -append '$guest_args ulsnet.role=single' $(stdin_of single) > '$logdir/single.log' 2>&1 &"
    echo "echo \$! > '$logdir/single.pid'"
  else
    mac() { printf '52:54:00:c9:%02x:%02x' "$1" "$2"; }
    # One end of a link: netdev ID for a NIC at MAC. tcp: PORT is the link's, the first end
    # listens (the proxy; QEMU's client retries only at start, so the proxy starts first and
    # gets a moment to listen), the second connects. udp: this end receives on LOCAL and sends
    # to REMOTE.
    end_of() {  # id mac listen|connect|udp port [remote_port]
      case "$3" in
        listen)  echo "-netdev socket,id=$1,listen=127.0.0.1:$4 -device $nic,netdev=$1,mac=$2" ;;
        connect) echo "-netdev socket,id=$1,connect=127.0.0.1:$4 -device $nic,netdev=$1,mac=$2" ;;
        udp)     echo "-netdev socket,id=$1,udp=127.0.0.1:$5,localaddr=127.0.0.1:$4 -device $nic,netdev=$1,mac=$2" ;;
      esac
    }
    # Ports: sender->proxy frames arrive at 40101 (tcp: the link's port), proxy->receiver at
    # 40112 (tcp: 40102), the reverse directions at 40111 and 40102, the management link's at
    # 40121 (at the sender) and 40122 (at the receiver).
    if [ "$link" = tcp ]; then
      p_in="$(end_of n0 "$(mac 1 2)" listen 40101)"; p_out="$(end_of n1 "$(mac 2 1)" listen 40102)"
      r_in="$(end_of n0 "$(mac 2 2)" connect 40102)"; s_out="$(end_of n0 "$(mac 1 1)" connect 40101)"
    else
      p_in="$(end_of n0 "$(mac 1 2)" udp 40101 40111)"; p_out="$(end_of n1 "$(mac 2 1)" udp 40102 40112)"
      r_in="$(end_of n0 "$(mac 2 2)" udp 40112 40102)"; s_out="$(end_of n0 "$(mac 1 1)" udp 40111 40101)"
    fi
    s_mgmt=""; r_mgmt=""
    if [ "$mgmt" -eq 1 ]; then
      s_mgmt=" $(end_of m0 "$(mac 9 1)" udp 40121 40122)"; r_mgmt=" $(end_of m0 "$(mac 9 2)" udp 40122 40121)"
    fi
    echo "$(qemu_base "$accel" proxy) $p_in $p_out -append '$guest_args ulsnet.role=proxy' $(stdin_of proxy) > '$logdir/proxy.log' 2>&1 &"
    echo "echo \$! > '$logdir/proxy.pid'"
    echo "sleep 1"
    # The receiver before the sender: a stream relayed to it must find it up (in relay mode the
    # sender's readiness ping reaches only the proxy). A second between them also keeps the
    # receiver's clock ahead of the sender's (each guest's CLOCK_MONOTONIC starts at its boot).
    echo "$(qemu_base "$accel" receiver) $r_in$r_mgmt -append '$guest_args ulsnet.role=receiver' $(stdin_of receiver) > '$logdir/receiver.log' 2>&1 &"
    echo "echo \$! > '$logdir/receiver.pid'"
    [ "$mgmt" -eq 1 ] && echo "sleep 1"
    echo "$(qemu_base "$accel" sender) $s_out$s_mgmt -append '$guest_args ulsnet.role=sender' $(stdin_of sender) > '$logdir/sender.log' 2>&1 &"
    echo "echo \$! > '$logdir/sender.pid'"
  fi
  echo "wait"
} > "$script"

main_log="$logdir/single.log"
roles="single"
if [ "$hosts" -eq 3 ]; then
  main_log="$logdir/sender.log"; roles="proxy receiver sender"
  if [ "$link" = tcp ]; then
    printf 'link=sender_proxy from=sender to=proxy rx_port=40101 transport=tcp\n'
    printf 'link=proxy_receiver from=proxy to=receiver rx_port=40102 transport=tcp\n'
  else
    printf 'link=sender_proxy from=sender to=proxy rx_port=40101 transport=udp\n'
    printf 'link=proxy_sender from=proxy to=sender rx_port=40111 transport=udp\n'
    printf 'link=proxy_receiver from=proxy to=receiver rx_port=40112 transport=udp\n'
    printf 'link=receiver_proxy from=receiver to=proxy rx_port=40102 transport=udp\n'
  fi > "$logdir/links.txt"
  [ "$mgmt" -eq 1 ] && printf 'link=mgmt_sender_receiver from=sender to=receiver rx_port=40122 transport=udp\nlink=mgmt_receiver_sender from=receiver to=sender rx_port=40121 transport=udp\n' >> "$logdir/links.txt"
fi
for r in $roles; do rm -f "$logdir/$r.log" "$logdir/$r.cmdline" "$logdir/$r.pid" "$logdir/$r.insn.log" "$logdir/$r.in"; done
if [ "$console_in" -eq 1 ]; then
  for r in $roles; do mkfifo "$logdir/$r.in"; done
fi
rm -f "$logdir"/links-*.txt

# Each QEMU's command line, from the kernel, once it runs.
record_cmdlines() {
  for r in $roles; do
    [ -s "$logdir/$r.cmdline" ] && continue
    pid="$(cat "$logdir/$r.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" > "$logdir/$r.cmdline" 2>/dev/null || true
  done
}
# The links' counters, from the hosts' network namespace (through any QEMU still in it).
save_link_counters() {
  for r in $roles; do
    pid="$(cat "$logdir/$r.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && [ -r "/proc/$pid/net/udp" ] || continue
    cat "/proc/$pid/net/udp" > "$logdir/links-udp.txt" 2>/dev/null &&
      cat "/proc/$pid/net/snmp" > "$logdir/links-snmp.txt" 2>/dev/null &&
      cat "/proc/$pid/net/dev" > "$logdir/links-dev.txt" 2>/dev/null && return 0
  done
  return 0
}
# A host whose QEMU ended before its guest printed ULSNET-GUEST-DONE died (killed, crashed, or its
# kernel panicked): prints "ROLE PID" of the first such host. The run then ends at once, naming
# it (ULSNET-VM-DIED), instead of waiting for the timeout.
dead_host() {
  for r in $roles; do
    pid="$(cat "$logdir/$r.pid" 2>/dev/null || true)"
    [ -n "$pid" ] || continue
    kill -0 "$pid" 2>/dev/null && continue
    grep -q "ULSNET-GUEST-DONE" "$logdir/$r.log" 2>/dev/null && continue
    echo "$r $pid"
    return 0
  done
  return 1
}
# Whether the run is through (--end).
finished() {
  if [ "$end" = all ]; then
    for r in $roles; do grep -q "ULSNET-GUEST-DONE" "$logdir/$r.log" 2>/dev/null || return 1; done
    return 0
  fi
  [ -f "$main_log" ] && grep -q "ULSNET-GUEST-DONE" "$main_log"
}

setsid unshare -n bash "$script" &
leader=$!
# Whether a process of the hosts' group still runs. Not `kill -0 -- -GROUP`: that succeeds while
# the group holds only zombies (the leader, until this shell reaps it), which made every teardown
# wait out both of the waits below (10 s).
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$leader" '$1 == g && $2 !~ /^Z/ { alive = 1 } END { exit !alive }'
}
cleanup() {
  # The whole group: the unshare'd shell and every QEMU in it; return only once none is left.
  kill -TERM -- "-$leader" 2>/dev/null || true
  for _ in $(seq 50); do
    group_alive || break
    sleep 0.1
  done
  kill -KILL -- "-$leader" 2>/dev/null || true
  for _ in $(seq 50); do
    group_alive || break
    sleep 0.1
  done
  wait "$leader" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
deadline=$((SECONDS + timeout_s))
status=timeout
died=""
while [ $SECONDS -lt $deadline ]; do
  record_cmdlines
  if finished; then status=done; break; fi
  if died="$(dead_host)"; then status=died; break; fi
  kill -0 "$leader" 2>/dev/null || { status=exited; break; }
  sleep 0.5
done
[ "$hosts" -eq 3 ] && save_link_counters
echo "ULSNET-VMS status=$status hosts=$hosts accel=$accel link=$link icount=$icount logs=$logdir"
[ -n "$died" ] && echo "ULSNET-VM-DIED role=${died% *} qemu_pid=${died#* } after_s=$((SECONDS - start))"
grep -h "ULSNET-RESULT" "$logdir"/*.log 2>/dev/null || true
[ "$status" = done ] || [ "$status" = exited ]
