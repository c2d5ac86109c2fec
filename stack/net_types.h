// Addresses and byte-order helpers shared by every component. Plain values, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ulsnet {

// An Ethernet MAC address, stored in wire order.
struct MacAddr {
  std::array<uint8_t, 6> b{};

  static MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  bool is_broadcast() const { return *this == broadcast(); }
  bool is_multicast() const { return (b[0] & 1) != 0; }
  bool is_zero() const { return *this == MacAddr{}; }
  friend bool operator==(const MacAddr&, const MacAddr&) = default;

  // "aa:bb:cc:dd:ee:ff"; nullopt if malformed.
  static std::optional<MacAddr> parse(std::string_view s);
  std::string str() const;
};

// An IPv4 address in host byte order (so arithmetic and prefix masks read naturally);
// converted to network order only where it is written into or read out of a header.
struct Ipv4Addr {
  uint32_t v = 0;

  friend bool operator==(const Ipv4Addr&, const Ipv4Addr&) = default;
  // Dotted quad; nullopt if malformed.
  static std::optional<Ipv4Addr> parse(std::string_view s);
  std::string str() const;
  bool in_subnet(Ipv4Addr net, int prefix_len) const {
    if (prefix_len <= 0) return true;
    uint32_t mask = prefix_len >= 32 ? 0xffffffffu : ~((1u << (32 - prefix_len)) - 1);
    return (v & mask) == (net.v & mask);
  }
};

// Unaligned big-endian loads and stores: frames carry no alignment guarantee.
inline uint16_t load_be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store_le64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace ulsnet
