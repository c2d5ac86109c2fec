#!/usr/bin/env bash
# Launches one or three QEMU virtual hosts from one kernel and one initramfs, waits for them,
# saves their serial consoles, and tears everything down on exit (also on SIGINT/SIGTERM or a
# timeout).
#
#   kernel/vm.sh --kernel BZIMAGE --initrd INITRD --log-dir DIR
#                [--hosts 1|3] [--test NAME | --run /bin/PROG] [--accel auto|kvm|tcg]
#                [--timeout SECONDS] [--nic e1000|virtio-net-pci] [--mem MB]
#                [--append "KERNEL ARGS"]   (e.g. uls.protect=0)
#                [--nics N]   (--hosts 1: N NICs, 0..4, all on one QEMU hub: what one sends, the
#                              others receive)
#
# --hosts 3: sender -- proxy -- receiver, each link a pair of QEMU socket netdevs on 127.0.0.1
# inside a private network namespace (so the ports never meet anything else on the machine),
# proxy with two NICs. --hosts 1: one host, role "single". The guest reads its role and test from
# the kernel command line (kernel/guest-init.sh). The run ends when the sender (or the single
# host) prints ULSNET-GUEST-DONE, or at the timeout; the other hosts are then stopped.
#
# Accelerator: `auto` uses KVM only if a probe guest actually boots with it (on this machine
# kind /dev/kvm exists but cannot run stock guests), else TCG; the choice and why is printed as
# "ULSNET-ACCEL name=... reason=..." and written to DIR/accel. TCG is slow (tens of kpps): results
# from VMs must say which accelerator ran them.
set -euo pipefail

kernel=""; initrd=""; logdir=""; hosts=1; test=""; run=""; accel=auto; timeout_s=120
nic=e1000; mem=256; append=""; nics=0
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
    --append) append="$2"; shift 2 ;;
    --nics) nics="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "kernel/vm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "kernel/vm.sh: $*" >&2; exit 1; }
[ -f "$kernel" ] || die "--kernel: no such file '$kernel'"
[ -f "$initrd" ] || die "--initrd: no such file '$initrd'"
[ -n "$logdir" ] || die "--log-dir is required"
case "$hosts" in 1|3) ;; *) die "--hosts must be 1 or 3" ;; esac
case "$nics" in 0|1|2|3|4) ;; *) die "--nics must be 0..4" ;; esac
[ "$nics" -eq 0 ] || [ "$hosts" -eq 1 ] || die "--nics is for --hosts 1"
case "$accel" in auto|kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg" ;; esac
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

qemu_base() {  # accel
  echo "qemu-system-x86_64 -accel $1 -m $mem -smp 1 -nographic -no-reboot -nodefaults" \
       "-serial stdio -kernel $kernel -initrd $initrd"
}

# --- accelerator -----------------------------------------------------------------------------
reason=""
if [ "$accel" = auto ] && [ -n "${ULSNET_ACCEL:-}" ]; then
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
    echo "$(qemu_base "$accel")$hub -append '$guest_args ulsnet.role=single' > '$logdir/single.log' 2>&1 &"
    echo "echo \$! > '$logdir/single.pid'"
  else
    # proxy listens on both links; the end hosts connect (retried by QEMU's socket backend
    # only at start, so the proxy starts first and gets a moment to listen).
    mac() { printf '52:54:00:c9:%02x:%02x' "$1" "$2"; }
    echo "$(qemu_base "$accel") -netdev socket,id=n0,listen=127.0.0.1:40101 -device $nic,netdev=n0,mac=$(mac 1 2)" \
         "-netdev socket,id=n1,listen=127.0.0.1:40102 -device $nic,netdev=n1,mac=$(mac 2 1)" \
         "-append '$guest_args ulsnet.role=proxy' > '$logdir/proxy.log' 2>&1 &"
    echo "echo \$! > '$logdir/proxy.pid'"
    echo "sleep 1"
    # The receiver before the sender: a stream relayed to it must find it up (in relay mode the
    # sender's readiness ping reaches only the proxy).
    echo "$(qemu_base "$accel") -netdev socket,id=n0,connect=127.0.0.1:40102 -device $nic,netdev=n0,mac=$(mac 2 2)" \
         "-append '$guest_args ulsnet.role=receiver' > '$logdir/receiver.log' 2>&1 &"
    echo "echo \$! > '$logdir/receiver.pid'"
    echo "$(qemu_base "$accel") -netdev socket,id=n0,connect=127.0.0.1:40101 -device $nic,netdev=n0,mac=$(mac 1 1)" \
         "-append '$guest_args ulsnet.role=sender' > '$logdir/sender.log' 2>&1 &"
    echo "echo \$! > '$logdir/sender.pid'"
  fi
  echo "wait"
} > "$script"

main_log="$logdir/single.log"
[ "$hosts" -eq 3 ] && main_log="$logdir/sender.log"
rm -f "$main_log"

setsid unshare -n bash "$script" &
leader=$!
cleanup() {
  # The whole group: the unshare'd shell and every QEMU in it; return only once none is left.
  kill -TERM -- "-$leader" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 -- "-$leader" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$leader" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 -- "-$leader" 2>/dev/null || break
    sleep 0.1
  done
  wait "$leader" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deadline=$((SECONDS + timeout_s))
status=timeout
while [ $SECONDS -lt $deadline ]; do
  if [ -f "$main_log" ] && grep -q "ULSNET-GUEST-DONE" "$main_log"; then status=done; break; fi
  kill -0 "$leader" 2>/dev/null || { status=exited; break; }
  sleep 0.5
done
echo "ULSNET-VMS status=$status hosts=$hosts accel=$accel logs=$logdir"
grep -h "ULSNET-RESULT" "$logdir"/*.log 2>/dev/null || true
[ "$status" = done ] || [ "$status" = exited ]
