#include "stack/arp.h"

#include <algorithm>
#include <limits>

namespace ulsnet {

namespace {
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
}

ArpCache::ArpCache(uint64_t ttl_ns, size_t capacity) : ttl_ns_(ttl_ns), capacity_(capacity) {
  entries_.reserve(capacity);
}

std::optional<MacAddr> ArpCache::lookup(Ipv4Addr ip, uint64_t now_ns) const noexcept {
  for (const Entry& e : entries_)
    if (e.ip == ip) return now_ns < e.expires_ns ? std::optional<MacAddr>(e.mac) : std::nullopt;
  return std::nullopt;
}

bool ArpCache::insert(Ipv4Addr ip, const MacAddr& mac, uint64_t now_ns, bool is_static) noexcept {
  uint64_t expires = is_static ? kNever : now_ns + ttl_ns_;
  for (Entry& e : entries_) {
    if (e.ip == ip) {
      if (e.expires_ns == kNever && !is_static) return true;  // learning never overrides static
      e.mac = mac;
      e.expires_ns = expires;
      return true;
    }
  }
  std::erase_if(pending_, [&](const Pending& p) { return p.ip == ip; });
  if (entries_.size() < capacity_) {
    entries_.push_back({ip, mac, expires});
    return true;
  }
  auto victim = std::min_element(entries_.begin(), entries_.end(),
                                 [](const Entry& a, const Entry& b) {
                                   return a.expires_ns < b.expires_ns;
                                 });
  if (victim->expires_ns == kNever) return false;
  *victim = {ip, mac, expires};
  return true;
}

size_t ArpCache::expire(uint64_t now_ns) noexcept {
  return std::erase_if(entries_, [&](const Entry& e) { return e.expires_ns <= now_ns; });
}

bool ArpCache::should_request(Ipv4Addr ip, uint64_t now_ns, uint64_t interval_ns) {
  for (Pending& p : pending_) {
    if (p.ip == ip) {
      if (now_ns - p.sent_ns < interval_ns) return false;
      p.sent_ns = now_ns;
      return true;
    }
  }
  if (pending_.size() >= capacity_) pending_.erase(pending_.begin());
  pending_.push_back({ip, now_ns});
  return true;
}

}  // namespace ulsnet
