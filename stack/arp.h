// ArpCache: IPv4 -> MAC with expiry. Fixed capacity, linear probing over a small array (a proxy
// has a handful of neighbours; a lookup is a few compares). Static entries never expire. Time is
// passed in (now_ns), so the cache is pure and testable.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "stack/net_types.h"

namespace ulsnet {

class ArpCache {
 public:
  explicit ArpCache(uint64_t ttl_ns = 60'000'000'000ull, size_t capacity = 256);

  std::optional<MacAddr> lookup(Ipv4Addr ip, uint64_t now_ns) const noexcept;
  // Adds or refreshes. A full cache evicts the entry closest to expiry (never a static one);
  // returns false only if every slot is static.
  bool insert(Ipv4Addr ip, const MacAddr& mac, uint64_t now_ns, bool is_static = false) noexcept;
  // Removes expired entries; returns how many.
  size_t expire(uint64_t now_ns) noexcept;
  size_t size() const noexcept { return entries_.size(); }
  // Request rate limiting: true (and records now) if no request for `ip` went out in the last
  // `interval_ns`.
  bool should_request(Ipv4Addr ip, uint64_t now_ns, uint64_t interval_ns = 1'000'000'000ull);

 private:
  struct Entry {
    Ipv4Addr ip;
    MacAddr mac;
    uint64_t expires_ns;  // UINT64_MAX for static entries
  };
  struct Pending {
    Ipv4Addr ip;
    uint64_t sent_ns;
  };
  uint64_t ttl_ns_;
  size_t capacity_;
  std::vector<Entry> entries_;
  std::vector<Pending> pending_;
};

}  // namespace ulsnet
