#include "stack/net_types.h"

#include <charconv>

namespace ulsnet {

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  MacAddr m;
  if (s.size() != 17) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return std::nullopt;
    unsigned v = 0;
    auto first = s.data() + i * 3;
    auto [p, ec] = std::from_chars(first, first + 2, v, 16);
    if (ec != std::errc() || p != first + 2) return std::nullopt;
    m.b[i] = uint8_t(v);
  }
  return m;
}

// Formatted by hand rather than with snprintf: this file is also part of the freestanding sandbox
// image (sandbox/uls/), which has no C library.
std::string MacAddr::str() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(17, ':');
  for (int i = 0; i < 6; ++i) {
    s[size_t(i * 3)] = kHex[b[size_t(i)] >> 4];
    s[size_t(i * 3 + 1)] = kHex[b[size_t(i)] & 15];
  }
  return s;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  uint32_t v = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    unsigned octet = 0;
    auto [q, ec] = std::from_chars(p, end, octet, 10);
    if (ec != std::errc() || q == p || q - p > 3 || octet > 255) return std::nullopt;
    v = v << 8 | octet;
    p = q;
  }
  if (p != end) return std::nullopt;
  return Ipv4Addr{v};
}

std::string Ipv4Addr::str() const {
  char buf[16];
  char* p = buf;
  for (int i = 3; i >= 0; --i) {
    p = std::to_chars(p, buf + sizeof buf, (v >> (8 * i)) & 255).ptr;
    if (i > 0) *p++ = '.';
  }
  return std::string(buf, p);
}

}  // namespace ulsnet
