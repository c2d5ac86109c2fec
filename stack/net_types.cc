#include "stack/net_types.h"

#include <charconv>
#include <cstdio>

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

std::string MacAddr::str() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return buf;
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
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255,
                v & 255);
  return buf;
}

}  // namespace ulsnet
