#include "bench/accounting.h"

#include <algorithm>
#include <stdexcept>

namespace ulsnet {
namespace {

uint64_t get_u(const nlohmann::json& j, const std::string& k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0;
}

// A count: a non-negative integer (JSON makes small literals signed).
bool is_count(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

uint64_t need_u(const nlohmann::json& j, const char* what, const std::string& k) {
  if (!j.is_object() || !j.contains(k) || !is_count(j[k]))
    throw std::invalid_argument(std::string(what) + " report has no count '" + k + "'");
  return j[k].get<uint64_t>();
}

void add_reasons(DropLedger& d, DropStage s, const nlohmann::json& reasons, const char* what) {
  if (reasons.is_null()) return;
  if (!reasons.is_object()) throw std::invalid_argument(std::string(what) + ": drops are not {reason: n}");
  for (auto it = reasons.begin(); it != reasons.end(); ++it) {
    if (!is_count(*it)) throw std::invalid_argument(std::string(what) + ": " + it.key() + " is not a count");
    d.add(s, it.key(), it->get<uint64_t>());
  }
}

}  // namespace

uint64_t link_drops(const nlohmann::json& tx_netdev, const std::string& tx_if,
                    const nlohmann::json& rx_netdev, const std::string& rx_if, uint64_t tx_refused,
                    uint64_t rx_redirect_failed) {
  const uint64_t tx = get_u(tx_netdev, tx_if + ".tx_drop"), rx = get_u(rx_netdev, rx_if + ".rx_drop");
  const uint64_t tx_only = tx - std::min(tx, tx_refused);
  const uint64_t rx_only = rx - std::min(rx, tx_refused + rx_redirect_failed);
  return std::max(tx_only, rx_only);
}

nlohmann::json account_trial(const nlohmann::json& g, const nlohmann::json& p, const nlohmann::json& s,
                             const TrialLinks& links, uint32_t payload) {
  if (!g.is_object() || !g.contains("generator")) throw std::invalid_argument("generator report does not say what it is");
  if (!s.is_object() || !s.contains("sink")) throw std::invalid_argument("sink report does not say what it is");
  const bool proxied = !p.is_null();
  DropLedger drops;
  add_reasons(drops, DropStage::kSender, g.value("send_errors", nlohmann::json()), "generator");
  auto add_link = [&](DropStage st, const LinkEnds& l, const nlohmann::json& tx_nd, const nlohmann::json& rx_nd,
                      uint64_t refused, uint64_t redirect_failed) {
    const uint64_t n = link_drops(tx_nd, l.tx_if, rx_nd, l.rx_if, refused, redirect_failed);
    if (n > 0) drops.add(st, l.tx_if + ".tx_drop|" + l.rx_if + ".rx_drop", n);
  };
  if (proxied) {
    add_link(DropStage::kLinkSenderProxy, links.into_proxy, g.value("netdev", nlohmann::json()),
             p.value("netdev", nlohmann::json()), 0, get_u(p, "rx_redirect_failed_in"));
    const DropLedger method = DropLedger::from_json(p.value("drops", nlohmann::json()));
    for (DropStage st : kDropStages)
      if (!method.stage(st).empty() && !is_proxy_stage(st))
        throw std::invalid_argument("the method reported drops in '" + std::string(drop_stage_name(st)) +
                                    "', which is not a proxy stage");
    drops.merge(method);
    add_link(DropStage::kLinkProxyReceiver, links.out_of_proxy, p.value("netdev", nlohmann::json()),
             s.value("netdev", nlohmann::json()), get_u(p, "tx_refused_by_link"), get_u(s, "rx_redirect_failed"));
  } else {
    add_link(DropStage::kLinkSenderReceiver, links.direct, g.value("netdev", nlohmann::json()),
             s.value("netdev", nlohmann::json()), 0, get_u(s, "rx_redirect_failed"));
  }
  add_reasons(drops, DropStage::kReceiverKernel, s.value("receiver_kernel", nlohmann::json()), "sink");
  drops.add(DropStage::kReceiverApp, "corrupted", get_u(s, "corrupted"));

  // Every numbered datagram the generator tried: either on the wire or a counted send error.
  const uint64_t sent = g.contains("attempted") ? need_u(g, "generator", "attempted") : need_u(g, "generator", "sent");
  const uint64_t received = need_u(s, "sink", "received");
  const uint64_t dropped = drops.total();
  const double dur = g.value("duration_s", 0.0);
  nlohmann::json rec;
  rec["generator"] = g["generator"];
  rec["sink"] = s["sink"];
  rec["sent"] = sent;
  rec["received"] = received;
  rec["lost"] = sent - std::min(sent, received);
  rec["loss"] = sent ? double(sent - std::min(sent, received)) / double(sent) : 0.0;
  rec["drops"] = drops.to_json();
  rec["dropped"] = dropped;
  rec["unaccounted"] = int64_t(sent) - int64_t(received) - int64_t(dropped);
  rec["duration_s"] = dur;
  rec["offered_pps"] = g.value("achieved_pps", 0.0);
  rec["delivered_pps"] = dur > 0 ? double(received) / dur : 0;
  rec["gbps"] = dur > 0 ? double(received) * payload * 8 / dur / 1e9 : 0;
  if (proxied) rec["forwarded"] = get_u(p, "forwarded");
  // The sink's statistics move up to the record (the sink's report keeps the rest).
  nlohmann::json sink_rest = s;
  for (const char* k : {"latency_ns", "ipdv_ns", "pdv_ns", "rfc3550_jitter_ns", "reordered", "duplicates"}) {
    rec[k] = s.value(k, nlohmann::json());
    sink_rest.erase(k);
  }
  rec["reports"] = {{"generator", g}, {"proxy", p}, {"sink", sink_rest}};
  return rec;
}

void add_proxy_host_cpu(nlohmann::json& cpu, uint64_t busy_ns, uint64_t forwarded, uint64_t received) {
  cpu["proxy_host_busy_ns"] = busy_ns;
  if (busy_ns == 0 && forwarded > 0) {
    cpu["proxy_host_note"] = "no scheduler tick found the proxy's CPU busy in the window (tick-sampled "
                             "accounting, below its resolution): not measured";
    return;
  }
  if (forwarded) cpu["proxy_host_ns_per_forwarded"] = double(busy_ns) / double(forwarded);
  if (received) cpu["proxy_host_ns_per_received"] = double(busy_ns) / double(received);
}

double tester_loss(const nlohmann::json& drops, uint64_t sent) {
  if (sent == 0 || !drops.is_object()) return 0;
  uint64_t n = 0;
  for (DropStage st : {DropStage::kSender, DropStage::kLinkProxyReceiver, DropStage::kReceiverKernel,
                       DropStage::kReceiverApp}) {
    const std::string name(drop_stage_name(st));
    if (!drops.contains(name) || !drops[name].is_object()) continue;
    for (const auto& v : drops[name])
      if (v.is_number_unsigned() || v.is_number_integer()) n += v.get<uint64_t>();
  }
  return double(n) / double(sent);
}

}  // namespace ulsnet
