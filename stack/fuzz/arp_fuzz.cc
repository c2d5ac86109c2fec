// libFuzzer target: parse_arp on any ARP body. Accepted only for Ethernet/IPv4 (htype 1, ptype
// 0x0800, hlen 6, plen 4) requests and replies of at least 28 bytes; write_arp of what it read
// gives the 28 bytes back.
#include <cstring>
#include <span>

#include "stack/fuzz/fuzz_check.h"
#include "stack/protocols.h"

using namespace ulsnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ArpView a;
  const auto r = parse_arp({data, size}, a);
  const bool shape = size >= kArpLen && load_be16(data) == 1 && load_be16(data + 2) == 0x0800 &&
                     data[4] == 6 && data[5] == 4;
  if (!shape) {
    FUZZ_CHECK(r == DropReason::kArpMalformed);
    return 0;
  }
  const uint16_t op = load_be16(data + 6);
  if (op != kArpRequest && op != kArpReply) {
    FUZZ_CHECK(r == DropReason::kArpUnsupportedOp);
    return 0;
  }
  FUZZ_CHECK(!r.has_value());
  FUZZ_CHECK(a.op == op);
  uint8_t back[kArpLen];
  write_arp(back, a.op, a.sha, a.spa, a.tha, a.tpa);
  FUZZ_CHECK(std::memcmp(back, data, kArpLen) == 0);
  return 0;
}
