// libFuzzer target: parse_udp on any segment, with and without checksum verification. The
// first 8 input bytes are the pseudo-header's source and destination. Accepted: a length field
// in [8, segment size]; verified, a nonzero checksum must sum (with the pseudo-header) to zero,
// and udp_checksum of the accepted datagram with its field zeroed gives the same field.
#include <span>
#include <vector>

#include "stack/checksum.h"
#include "stack/fuzz/fuzz_check.h"
#include "stack/protocols.h"

using namespace ulsnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  const Ipv4Addr src{load_be32(data)}, dst{load_be32(data + 4)};
  const std::span<const uint8_t> seg(data + 8, size - 8);
  UdpView u;
  const auto plain = parse_udp(seg, src, dst, false, u);
  const bool shape = seg.size() >= kUdpHeaderLen && load_be16(seg.data() + 4) >= kUdpHeaderLen &&
                     load_be16(seg.data() + 4) <= seg.size();
  FUZZ_CHECK(shape ? !plain.has_value() : plain == DropReason::kUdpMalformed);
  if (!shape) return 0;
  FUZZ_CHECK(u.src_port == load_be16(seg.data()) && u.dst_port == load_be16(seg.data() + 2));
  FUZZ_CHECK(u.length == load_be16(seg.data() + 4) && u.checksum == load_be16(seg.data() + 6));
  UdpView w;
  const auto verified = parse_udp(seg, src, dst, true, w);
  if (u.checksum == 0) {
    FUZZ_CHECK(!verified.has_value());  // zero: no checksum (RFC 768)
    return 0;
  }
  std::vector<uint8_t> c(seg.begin(), seg.begin() + u.length);
  c[6] = c[7] = 0;
  uint16_t sum = udp_checksum(c.data(), u.length, src, dst);
  if (sum == 0) sum = 0xffff;  // sent as all ones (RFC 768)
  // The one nonzero field that verifies is the one a sender computes (0x0000 and 0xffff sum
  // alike, and 0x0000 means "none").
  FUZZ_CHECK(verified.has_value() == (u.checksum != sum));
  if (verified) FUZZ_CHECK(*verified == DropReason::kUdpBadChecksum);
  return 0;
}
