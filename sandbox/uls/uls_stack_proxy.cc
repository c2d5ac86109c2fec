// The proxy of the three-VM experiments on the real ULS path: the project's Stack, as the sandbox
// image, forwards between the proxy VM's two e1000s (eth0 faces the sender, 10.201.1.0/24; eth1
// the receiver, 10.201.2.0/24; kernel/guest-init.sh's plan), invoked only by kernel upcalls. This
// process loads it, then just hosts (ULS_IOC_HOST: it takes the upcalls that come while the CPU
// is otherwise idle) and prints one line of counters a second: the image's (Stack, devices,
// buffers), the kernel's for the extension and both interfaces, and the kernel's own IP and
// softnet counters, which must not move (no protocol processing, no skb on this path). At the
// end it unloads the image, which gives the interfaces back to the kernel.
//
//   uls_stack_proxy MAX_SECONDS [EXPECT [router|relay]]
// Stops at MAX_SECONDS, or once half of EXPECT frames came in on eth0 and then none for 2 s.
// Relay mode: UDP to 10.201.1.2:9000 goes on to 10.201.2.2:9000.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel/guest/guest_util.h"
#include "sandbox/uls/stack_image_blob.h"
#include "sandbox/uls/uls_host.h"

namespace {

using namespace ulsnet;
using namespace ulsnet::uls;

struct Baseline {
  uint64_t ip_in, softnet, missed0, errors0, missed1;
};

Baseline baseline() {
  return {guest_snmp("Ip", 2), guest_softnet_processed(), guest_if_stat("eth0", "rx_missed_errors"),
          guest_if_stat("eth0", "rx_errors") + guest_if_stat("eth0", "rx_fifo_errors"),
          guest_if_stat("eth1", "rx_missed_errors")};
}

void put(std::string& s, const char* k, uint64_t v) {
  s += ' ';
  s += k;
  s += '=';
  s += std::to_string(v);
}

void report(const UlsStackHost& h, const Baseline& b, bool final) {
  std::string s = final ? "ULSNET-STACK-PROXY final=1" : "ULSNET-STACK-PROXY final=0";
  try {
    const ImageControl c = h.control();
    const uls_stats e = h.extension_stats();
    put(s, "upcalls", e.upcalls);
    put(s, "in_current", e.in_current);
    put(s, "in_host", e.in_host);
    put(s, "host_wakeups", e.host_wakeups);
    put(s, "events", e.events);
    put(s, "coalesced", e.coalesced);
    put(s, "returned", e.returned);
    put(s, "faults", e.faults);
    put(s, "overruns", e.overruns);
    put(s, "denied", e.denied_syscalls);
    put(s, "run_ns", e.run_ns);
    put(s, "pages_mapped", e.pages_mapped);
    s += std::string(" phase=") + (c.phase == Phase::kRunning ? "running" : c.phase == Phase::kFailed ? "failed" : "loaded");
    put(s, "image_upcalls", c.upcalls);
    put(s, "image_passes", c.passes);
    put(s, "heap_used", c.heap_used);
    put(s, "stack_rx", c.stack.rx_frames);
    put(s, "stack_forwarded", c.stack.forwarded);
    put(s, "stack_generated", c.stack.generated);
    put(s, "stack_consumed", c.stack.consumed);
    put(s, "stack_generate_failed", c.stack.generate_failed);
    put(s, "stack_drops", c.stack.drops.total());
    for (size_t r = 0; r < kDropReasonCount; ++r)
      put(s, ("drop_" + std::string(drop_reason_name(DropReason(r)))).c_str(), c.stack.drops.by_reason[r]);
    for (int i = 0; i < 2; ++i) {
      const std::string d = "dev" + std::to_string(i) + "_";
      put(s, (d + "rx").c_str(), c.dev[i].rx_frames);
      put(s, (d + "tx").c_str(), c.dev[i].tx_frames);
      put(s, (d + "tx_dropped").c_str(), c.dev[i].tx_dropped);
      put(s, (d + "tx_ring_full").c_str(), c.ring[i].tx_ring_full);
      put(s, (d + "tx_not_buffer").c_str(), c.ring[i].tx_not_buffer);
      put(s, (d + "rx_invalid").c_str(), c.ring[i].rx_invalid);
      put(s, (d + "comp_sent").c_str(), c.ring[i].comp_sent);
      put(s, (d + "comp_refused").c_str(), c.ring[i].comp_refused);
      put(s, (d + "comp_unused").c_str(), c.ring[i].comp_unused);
      put(s, (d + "comp_invalid").c_str(), c.ring[i].comp_invalid);
      put(s, (d + "ring_corrupt").c_str(), c.ring[i].ring_corrupt);
      put(s, (d + "copies").c_str(), c.dev[i].copies);
    }
    // What upcalls the kernel ended inside a burst left (image.h): bursts cut short, the frames
    // of them the Stack never finished, by kind, and of those the ones cut mid-work.
    put(s, "ended_bursts", c.ended_bursts);
    put(s, "ended_udp", c.ended_udp);
    put(s, "ended_other", c.ended_other);
    put(s, "ended_partial", c.ended_partial);
    put(s, "ended_posts_committed", c.ended_posts_committed);
    put(s, "ended_posts_redone", c.ended_posts_redone);
    put(s, "pool_free", c.pool_free);
    put(s, "pool_overflow", c.pool.overflow);
    put(s, "pool_bad_release", c.pool.bad_release);
    for (int i = 0; i < 2; ++i) {
      const uls_net_stats n = h.interface_stats(i);
      const std::string p = h.ifname(i) + "_";
      put(s, (p + "rx").c_str(), n.rx_frames);
      put(s, (p + "tx").c_str(), n.tx_frames);
      put(s, (p + "comp").c_str(), n.completions);
      put(s, (p + "rx_ring_full").c_str(), n.rx_ring_full);
      put(s, (p + "rx_errors").c_str(), n.rx_errors);
      put(s, (p + "fill_empty").c_str(), n.fill_empty);
      put(s, (p + "fill_invalid").c_str(), n.fill_invalid);
      put(s, (p + "tx_invalid").c_str(), n.tx_invalid);
      put(s, (p + "tx_nic_full").c_str(), n.tx_nic_full);
      put(s, (p + "comp_full").c_str(), n.comp_full);
      put(s, (p + "ring_corrupt").c_str(), n.ring_corrupt);
      put(s, (p + "nic_buffers").c_str(), n.nic_buffers);
    }
    put(s, "eth0_nic_missed", guest_if_stat("eth0", "rx_missed_errors") - b.missed0);
    put(s, "eth0_nic_errors",
        guest_if_stat("eth0", "rx_errors") + guest_if_stat("eth0", "rx_fifo_errors") - b.errors0);
    put(s, "eth1_nic_missed", guest_if_stat("eth1", "rx_missed_errors") - b.missed1);
    put(s, "kernel_ip_in_receives", guest_snmp("Ip", 2) - b.ip_in);
    put(s, "kernel_softnet_processed", guest_softnet_processed() - b.softnet);
    if (c.phase == Phase::kFailed) s += " error=\"" + std::string(c.error, strnlen(c.error, sizeof c.error)) + "\"";
  } catch (const std::exception& ex) {
    s += std::string(" read_error=\"") + ex.what() + "\"";
  }
  std::printf("%s\n", s.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2 || argc > 4 || (argc == 4 && std::strcmp(argv[3], "router") != 0 && std::strcmp(argv[3], "relay") != 0)) {
    std::fprintf(stderr, "usage: uls_stack_proxy MAX_SECONDS [EXPECT [router|relay]]\n");
    return 2;
  }
  const int seconds = std::atoi(argv[1]);
  const uint64_t expect = argc >= 3 ? std::strtoull(argv[2], nullptr, 10) : UINT64_MAX;
  const bool relay = argc == 4 && std::strcmp(argv[3], "relay") == 0;

  HostOptions o;
  o.stack.mode = relay ? ForwardMode::kRelay : ForwardMode::kRouter;
  o.stack.ifaces.resize(2);
  const char* names[2] = {"eth0", "eth1"};
  const char* ips[2] = {"10.201.1.2", "10.201.2.1"};
  for (int i = 0; i < 2; ++i) {
    InterfaceConfig& ic = o.stack.ifaces[size_t(i)];
    ic.name = names[i];
    ic.ip = *Ipv4Addr::parse(ips[i]);
    ic.prefix_len = 24;
    ic.mtu = guest_if_mtu(names[i]);
    if (guest_if_mac(names[i], ic.mac.b.data()) != 0 || ic.mtu == 0) {
      std::printf("uls_stack_proxy: no %s\n", names[i]);
      return 1;
    }
  }
  if (relay) o.stack.relays.push_back({9000, *Ipv4Addr::parse("10.201.2.2"), 9000});

  const Baseline b = baseline();
  std::unique_ptr<UlsStackHost> h;
  try {
    h = UlsStackHost::start(o, {kStackImage, sizeof kStackImage});
  } catch (const std::exception& e) {
    std::printf("uls_stack_proxy: %s\n", e.what());
    return 1;
  }
  for (const char* n : names) guest_wait_carrier(n);
  std::printf("ULSNET-STACK-PROXY-READY id=%u mode=%s protected=%d image_bytes=%zu\n", h->id(),
              relay ? "relay" : "router", h->protected_region() ? 1 : 0, sizeof kStackImage);

  const uint64_t end = guest_now_ns() + uint64_t(seconds) * 1000000000ull;
  uint64_t next_report = guest_now_ns() + 1000000000ull, last_rx = 0, last_change = guest_now_ns();
  while (guest_now_ns() < end) {
    h->host(100);
    const uint64_t rx = h->interface_stats(0).rx_frames;
    if (rx != last_rx) {
      last_rx = rx;
      last_change = guest_now_ns();
    }
    if (last_rx >= expect / 2 && guest_now_ns() - last_change > 2000000000ull) break;
    if (guest_now_ns() >= next_report) {
      report(*h, b, false);
      next_report += 1000000000ull;
    }
  }
  // An ended upcall publishes nothing, and one ended inside a burst leaves it to the next to
  // name what it took: one more upcall makes the final counters current and complete.
  std::printf("ULSNET-STACK-PROXY-FINAL-UPCALL %s\n", h->run_once(500) ? "ran" : "none");
  report(*h, b, true);
  const bool unbound = h->unload();
  std::printf("ULSNET-PROXY-UNBOUND %s\n", unbound ? "yes" : "no");
  return unbound ? 0 : 1;
}
