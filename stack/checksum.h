// Internet checksums: RFC 1071 full sums and RFC 1624 incremental updates. Pure, no copies.
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/net_types.h"

namespace ulsnet {

// One's-complement sum of `len` bytes (big-endian 16-bit words, odd byte padded with zero),
// added to `initial`, not folded and not complemented.
uint64_t checksum_partial(const uint8_t* p, size_t len, uint64_t initial = 0) noexcept;
// Folds a partial sum to 16 bits and complements it: the value to store in a checksum field.
uint16_t checksum_finish(uint64_t sum) noexcept;
inline uint16_t internet_checksum(const uint8_t* p, size_t len) noexcept {
  return checksum_finish(checksum_partial(p, len));
}
// Partial sum of the IPv4 pseudo-header (RFC 768) for a transport checksum.
uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t proto, uint16_t length) noexcept;
// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from old_v to new_v.
uint16_t checksum_update16(uint16_t hc, uint16_t old_v, uint16_t new_v) noexcept;
inline uint16_t checksum_update32(uint16_t hc, uint32_t old_v, uint32_t new_v) noexcept {
  hc = checksum_update16(hc, uint16_t(old_v >> 16), uint16_t(new_v >> 16));
  return checksum_update16(hc, uint16_t(old_v), uint16_t(new_v));
}

}  // namespace ulsnet
