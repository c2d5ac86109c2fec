// Writes the fuzz targets' seed corpora (stack/fuzz/corpus/<target>/): well-formed frames of every
// kind the Stack handles, and operation sequences that walk the ULS ring device through a
// receive, a forward and a completion. Run once when a target's input format changes:
//   bazel run //stack/fuzz:make_seeds -- $PWD/stack/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "stack/test_frames.h"

using namespace ulsnet;
using testing::ip;
using testing::mac;
using Bytes = std::vector<uint8_t>;

namespace {

std::filesystem::path root;

void write(const std::string& target, const std::string& name, const Bytes& b) {
  const auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

Bytes bytes(const Frame& f) { return Bytes(f.data, f.data + f.len); }
Bytes tail(const Frame& f, size_t from) { return Bytes(f.data + from, f.data + f.len); }

// An input of udp_fuzz: the IPv4 source and destination of a UDP frame (its pseudo-header's
// addresses, in header order), then its UDP segment.
Bytes udp_seed(const Frame& f) {
  const uint8_t* ipp = f.data + kEthHeaderLen;
  Bytes b(ipp + kIpOffSrc, ipp + kIpOffDst + 4);
  const Bytes seg = tail(f, kEthHeaderLen + kIpv4MinHeaderLen);
  b.insert(b.end(), seg.begin(), seg.end());
  return b;
}

// A record of the stack target: interface, clock advance (ms), length, frame.
void record(Bytes& out, int iface, uint8_t advance_ms, const Bytes& frame) {
  out.push_back(uint8_t(iface));
  out.push_back(advance_ms);
  out.push_back(uint8_t(frame.size() >> 8));
  out.push_back(uint8_t(frame.size()));
  out.insert(out.end(), frame.begin(), frame.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUTDIR\n");
    return 2;
  }
  root = argv[1];
  PacketPool pool(64);
  // The stack target's addresses (stack_fuzz.cc): us 10.0.1.1 / 10.0.2.1 (MACs ..:01, ..:02),
  // neighbours 10.0.1.2 and 10.0.2.2 in the ARP cache, relay ports 9000 and 9002.
  const Frame udp_in = testing::udp_frame(pool, mac(1), mac(0x12), ip("10.0.1.2"), ip("10.0.2.2"), 5000, 6000, 18);
  const Frame udp_ttl1 = testing::udp_frame(pool, mac(1), mac(0x12), ip("10.0.1.2"), ip("10.0.2.2"), 5000, 6000, 18, 1);
  const Frame udp_unknown = testing::udp_frame(pool, mac(1), mac(0x12), ip("10.0.1.2"), ip("10.0.2.9"), 5000, 6000, 18);
  const Frame relay0 = testing::udp_frame(pool, mac(1), mac(0x12), ip("10.0.1.2"), ip("10.0.1.1"), 5000, 9000, 18);
  const Frame relay1 = testing::udp_frame(pool, mac(2), mac(0x22), ip("10.0.2.2"), ip("10.0.2.1"), 5001, 9002, 100, 64, false);
  const Frame echo = testing::icmp_echo_frame(pool, mac(1), mac(0x12), ip("10.0.1.2"), ip("10.0.1.1"));
  const Frame arp_req = testing::arp_frame(pool, kArpRequest, MacAddr::broadcast(), mac(0x12), ip("10.0.1.2"), MacAddr{}, ip("10.0.1.1"));
  const Frame arp_rep = testing::arp_frame(pool, kArpReply, mac(2), mac(0x29), ip("10.0.2.9"), mac(2), ip("10.0.2.1"));

  write("eth_fuzz", "udp", bytes(udp_in));
  write("eth_fuzz", "arp", bytes(arp_req));
  write("arp_fuzz", "request", tail(arp_req, kEthHeaderLen));
  write("arp_fuzz", "reply", tail(arp_rep, kEthHeaderLen));
  write("ipv4_fuzz", "udp", tail(udp_in, kEthHeaderLen));
  write("ipv4_fuzz", "icmp", tail(echo, kEthHeaderLen));
  {  // a header with one option word (IHL 6) and a fragment offset
    Bytes b = tail(udp_in, kEthHeaderLen);
    b.insert(b.begin() + kIpv4MinHeaderLen, {1, 1, 1, 0});
    b[0] = 0x46;
    store_be16(b.data() + 2, uint16_t(b.size()));
    store_be16(b.data() + 6, 0x2001);
    store_be16(b.data() + kIpOffChecksum, 0);
    store_be16(b.data() + kIpOffChecksum, internet_checksum(b.data(), 24));
    write("ipv4_fuzz", "options-fragment", b);
  }
  write("icmp_fuzz", "echo", tail(echo, kEthHeaderLen + kIpv4MinHeaderLen));
  write("udp_fuzz", "checksummed", udp_seed(relay0));
  write("udp_fuzz", "no-checksum", udp_seed(relay1));
  {
    Bytes r{0x00 | 4 << 1};  // router, TX lists of 5
    record(r, 0, 0, bytes(arp_req));
    record(r, 0, 1, bytes(udp_in));
    record(r, 0, 1, bytes(udp_ttl1));
    record(r, 0, 1, bytes(echo));
    record(r, 0, 1, bytes(udp_unknown));
    record(r, 1, 1, bytes(arp_rep));
    record(r, 0, 200, bytes(udp_unknown));
    write("stack_fuzz", "router", r);
    Bytes l{0x01 | 4 << 1};  // relay
    record(l, 0, 0, bytes(relay0));
    record(l, 1, 1, bytes(relay1));
    record(l, 0, 1, bytes(echo));
    record(l, 0, 1, bytes(udp_in));
    record(l, 0, 255, bytes(relay0));
    write("stack_fuzz", "relay", l);
  }
  {
    // uls_ring_fuzz: honest kernel, fill targets 8/8, reserves 2/2; then: both devices refill,
    // the kernel receives on a (60 bytes), a takes it, sends it on b, the kernel sends it,
    // b reclaims; a generated frame sent on a; unbind of both.
    auto op = [](int code, int iface) { return uint8_t(code << 1 | iface); };
    Bytes u{0, 7, 2, 7, 2};
    u.insert(u.end(), {op(7, 0), op(7, 1), op(0, 0), 0x00, 0x3c, op(4, 0), 4, op(5, 1), 1, 0,
                       op(1, 1), 0, op(6, 1), op(8, 0), 1, op(5, 0), 1, 0, op(1, 0), 1, op(6, 0),
                       op(2, 0), op(2, 1), op(6, 0), op(6, 1)});
    write("uls_ring_fuzz", "forward", u);
    Bytes h = u;
    h[0] = 1;  // the same with a hostile kernel, which then corrupts the rx ring's producer
    h.insert(h.end(), {op(3, 0), 1, 0, 0xff, 0xff, 0xff, 0x00, op(4, 0), 8, op(6, 0), op(7, 0)});
    write("uls_ring_fuzz", "hostile", h);
  }
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
