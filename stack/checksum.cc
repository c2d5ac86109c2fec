#include "stack/checksum.h"

namespace ulsnet {

uint64_t checksum_partial(const uint8_t* p, size_t len, uint64_t sum) noexcept {
  // 16-bit big-endian words into a 64-bit accumulator: no carry handling until the fold.
  while (len >= 8) {
    sum += load_be16(p) + load_be16(p + 2) + load_be16(p + 4) + load_be16(p + 6);
    p += 8;
    len -= 8;
  }
  while (len >= 2) {
    sum += load_be16(p);
    p += 2;
    len -= 2;
  }
  if (len) sum += uint16_t(p[0] << 8);
  return sum;
}

uint16_t checksum_finish(uint64_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t proto, uint16_t length) noexcept {
  return uint64_t(src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) + (dst.v & 0xffff) + proto +
         length;
}

uint16_t checksum_update16(uint16_t hc, uint16_t old_v, uint16_t new_v) noexcept {
  // Eqn. 3 of RFC 1624 avoids eqn. 2's -0 problem: the result is never 0x0000 unless every
  // covered word is zero, which no IPv4 header is.
  uint32_t sum = uint32_t(uint16_t(~hc)) + uint16_t(~old_v) + new_v;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

}  // namespace ulsnet
