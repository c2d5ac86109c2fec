// libFuzzer target: parse_ipv4 on any packet, and the router's in-place TTL decrement on what it
// accepts. Accepted: version 4, 20 <= IHL*4 <= total length <= the bytes given, a header whose
// ones'-complement sum checks, a source that is not zero-net, loopback, multicast or reserved.
// A decremented copy (TTL > 1, as the router forwards) still parses, with TTL one less and every
// other byte unchanged but the checksum.
#include <cstring>
#include <span>
#include <vector>

#include "stack/checksum.h"
#include "stack/fuzz/fuzz_check.h"
#include "stack/protocols.h"

using namespace ulsnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Ipv4View v;
  const auto r = parse_ipv4({data, size}, v);
  if (r) {
    // Each reason names a rule the packet breaks.
    switch (*r) {
      case DropReason::kIpTooShort: FUZZ_CHECK(size < kIpv4MinHeaderLen); break;
      case DropReason::kIpBadVersion: FUZZ_CHECK(size >= 1 && (data[0] >> 4) != 4); break;
      case DropReason::kIpBadIhl: {
        const size_t hl = size_t(data[0] & 0xf) * 4;
        FUZZ_CHECK(hl < kIpv4MinHeaderLen || hl > size);
        break;
      }
      case DropReason::kIpBadTotalLength: {
        const size_t tl = load_be16(data + 2);
        FUZZ_CHECK(tl < size_t(data[0] & 0xf) * 4 || tl > size);
        break;
      }
      case DropReason::kIpBadChecksum:
        FUZZ_CHECK(internet_checksum(data, size_t(data[0] & 0xf) * 4) != 0);
        break;
      case DropReason::kIpBadSource: {
        const uint8_t s0 = data[kIpOffSrc];
        FUZZ_CHECK(s0 == 0 || s0 == 127 || s0 >= 224);
        break;
      }
      default: FUZZ_CHECK(!"parse_ipv4 returned a reason that is not an IPv4 rule");
    }
    return 0;
  }
  FUZZ_CHECK(size >= kIpv4MinHeaderLen && (data[0] >> 4) == 4);
  FUZZ_CHECK(v.header_len == size_t(data[0] & 0xf) * 4 && v.header_len >= kIpv4MinHeaderLen);
  FUZZ_CHECK(v.header_len <= v.total_len && v.total_len <= size);
  FUZZ_CHECK(internet_checksum(data, v.header_len) == 0);
  FUZZ_CHECK(v.ttl == data[kIpOffTtl] && v.protocol == data[kIpOffProtocol]);
  FUZZ_CHECK(v.src.v == load_be32(data + kIpOffSrc) && v.dst.v == load_be32(data + kIpOffDst));
  FUZZ_CHECK(v.fragment == ((load_be16(data + 6) & 0x3fff) != 0));
  if (v.ttl > 1) {
    std::vector<uint8_t> c(data, data + size);
    ipv4_decrement_ttl(c.data());
    Ipv4View w;
    FUZZ_CHECK(!parse_ipv4(c, w).has_value());
    FUZZ_CHECK(w.ttl == v.ttl - 1);
    for (size_t i = 0; i < size; ++i)
      if (i != kIpOffTtl && i != kIpOffChecksum && i != kIpOffChecksum + 1) FUZZ_CHECK(c[i] == data[i]);
  }
  return 0;
}
