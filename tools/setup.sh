#!/usr/bin/env bash
# Installs every Debian package ulsnet needs. Idempotent: packages already present are skipped,
# and apt is only consulted when something is missing. Needs root (apt-get). No other downloads:
# Bazel runs fully offline from the stubs in third_party/.
set -euo pipefail

# What each is for: bazel-bootstrap (Bazel 4.2.3 on the system JDK); build-essential (gcc 12);
# fmt, gtest/gmock, benchmark, CLI11, nlohmann-json (C++ libraries); libxdp/libbpf/libelf/zlib,
# clang, llvm (AF_XDP and BPF objects); liburing-dev (the kernel-socket relay's io_uring variant,
# baselines/uring_relay.cc); iproute2 (namespaces and veth: every experiment's hosts);
# ethtool (veth checksum offload off, see bench/README.md); iputils-ping and traceroute (router
# transparency tests, bench:router_test); procps; python3-matplotlib (plots/); git (the commit recorded in results);
# linux-source-6.1, bc, bison, flex, libssl-dev, cpio, ccache, xz-utils (the kernel patch's
# build, kernel/); busybox-static and qemu-system-x86 (the virtual hosts, kernel/);
# pandoc, groff and poppler-utils (paper/report.pdf: Markdown to groff -ms to PDF, figures
# embedded), libgs10-common (the URW fonts at the path groff's PDF device looks for them: without
# it gropdf fails, "Failed to open .../ghostscript/10.00.0/Resource/Font/P052-Bold"); openssh-client and openssh-server (//bench/ssh: ssh/scp to real hosts, and the sshd
# that its test runs in each namespace host).
packages=(
  bazel-bootstrap build-essential
  libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
  libxdp-dev libbpf-dev libelf-dev zlib1g-dev clang llvm liburing-dev
  iproute2 ethtool iputils-ping traceroute procps
  python3-matplotlib git ca-certificates
  linux-source-6.1 bc bison flex libssl-dev cpio ccache xz-utils
  busybox-static qemu-system-x86
  pandoc groff poppler-utils libgs10-common
  openssh-server openssh-client
)

if [ "$(id -u)" -ne 0 ]; then
  echo "tools/setup.sh: needs root to install Debian packages (run with sudo)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "tools/setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

echo "tools/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
