#include "stack/drop_stage.h"

#include <stdexcept>

namespace ulsnet {

std::string_view drop_stage_name(DropStage s) noexcept {
  switch (s) {
    case DropStage::kSender: return "sender";
    case DropStage::kLinkSenderProxy: return "link_sender_proxy";
    case DropStage::kProxyKernel: return "proxy_kernel";
    case DropStage::kProxyStack: return "proxy_stack";
    case DropStage::kProxyQueue: return "proxy_queue";
    case DropStage::kProxyExtension: return "proxy_extension";
    case DropStage::kProxyTx: return "proxy_tx";
    case DropStage::kLinkProxyReceiver: return "link_proxy_receiver";
    case DropStage::kReceiverKernel: return "receiver_kernel";
    case DropStage::kReceiverApp: return "receiver_app";
    case DropStage::kLinkSenderReceiver: return "link_sender_receiver";
  }
  return "?";
}

std::optional<DropStage> parse_drop_stage(std::string_view name) noexcept {
  for (DropStage s : kDropStages)
    if (drop_stage_name(s) == name) return s;
  return std::nullopt;
}

bool is_proxy_stage(DropStage s) noexcept {
  switch (s) {
    case DropStage::kProxyKernel:
    case DropStage::kProxyStack:
    case DropStage::kProxyQueue:
    case DropStage::kProxyExtension:
    case DropStage::kProxyTx:
      return true;
    default:
      return false;
  }
}

void DropLedger::add(DropStage s, std::string_view reason, uint64_t n) {
  auto& m = by_stage_[size_t(s)];
  auto it = m.find(reason);
  if (it == m.end()) m.emplace(std::string(reason), n);
  else it->second += n;
}

void DropLedger::merge(const DropLedger& o) {
  for (DropStage s : kDropStages)
    for (const auto& [r, n] : o.stage(s)) add(s, r, n);
}

uint64_t DropLedger::stage_total(DropStage s) const noexcept {
  uint64_t t = 0;
  for (const auto& [r, n] : by_stage_[size_t(s)]) t += n;
  return t;
}

uint64_t DropLedger::total() const noexcept {
  uint64_t t = 0;
  for (DropStage s : kDropStages) t += stage_total(s);
  return t;
}

nlohmann::json DropLedger::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (DropStage s : kDropStages) {
    nlohmann::json st = nlohmann::json::object();
    for (const auto& [r, n] : stage(s)) st[r] = n;
    j[std::string(drop_stage_name(s))] = st;
  }
  return j;
}

DropLedger DropLedger::from_json(const nlohmann::json& j) {
  DropLedger d;
  if (j.is_null()) return d;
  if (!j.is_object()) throw std::invalid_argument("drops: not an object of stages");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::optional<DropStage> s = parse_drop_stage(it.key());
    if (!s) throw std::invalid_argument("drops: unknown stage '" + it.key() + "'");
    if (!it->is_object()) throw std::invalid_argument("drops: stage '" + it.key() + "' is not an object of reasons");
    for (auto r = it->begin(); r != it->end(); ++r) {
      if (!r->is_number_unsigned() && !(r->is_number_integer() && r->get<int64_t>() >= 0))
        throw std::invalid_argument("drops: " + it.key() + "." + r.key() + " is not a count");
      d.add(*s, r.key(), r->get<uint64_t>());
    }
  }
  return d;
}

}  // namespace ulsnet
