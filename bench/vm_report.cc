#include "bench/vm_report.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "stack/drop_stage.h"
#include "bench/stats.h"

namespace ulsnet::vmrun {

namespace {

// A non-negative count at `key` of `j`; throws ReportError naming `what`.
uint64_t count_at(const nlohmann::json& j, const std::string& key, const std::string& what) {
  if (!j.is_object() || !j.contains(key)) throw ReportError(what + ": no '" + key + "'");
  const nlohmann::json& v = j[key];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  if (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() == double(uint64_t(v.get<double>())))
    return uint64_t(v.get<double>());
  throw ReportError(what + ": '" + key + "' is not a count: " + v.dump());
}

// Adds every {reason: n} of `reasons` to `stage` (n a count; anything else is an error).
void add_reasons(DropLedger& d, DropStage stage, const nlohmann::json& reasons, const std::string& what) {
  if (reasons.is_null()) return;
  if (!reasons.is_object()) throw ReportError(what + " is not {reason: count}: " + reasons.dump());
  for (auto it = reasons.begin(); it != reasons.end(); ++it) d.add(stage, it.key(), count_at(reasons, it.key(), what));
}

// A NIC register delta that may be null (could not be read): then an error, since the count is
// part of the accounting.
uint64_t register_delta(const nlohmann::json& nic, const std::string& key, const std::string& what) {
  if (!nic.is_object() || !nic.contains(key) || nic[key].is_null())
    throw ReportError(what + ": the e1000 register '" + key + "' could not be read");
  return count_at(nic, key, what);
}

}  // namespace

nlohmann::json report_json(const std::string& log, const std::string& marker) {
  std::istringstream in(log);
  std::string line, found;
  bool any = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(marker, 0) == 0) {
      found = line.substr(marker.size());
      any = true;
    }
  }
  if (!any) throw ReportError("no '" + marker + "' line");
  nlohmann::json j = nlohmann::json::parse(found, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw ReportError("'" + marker + "' is not a JSON object: " + found.substr(0, 200));
  return j;
}

std::vector<LinkDirection> parse_links(const std::string& links_txt) {
  std::vector<LinkDirection> out;
  std::istringstream in(links_txt);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    LinkDirection d;
    std::istringstream w(line);
    std::string kv;
    while (w >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "link") d.name = v;
      else if (k == "from") d.from = v;
      else if (k == "to") d.to = v;
      else if (k == "transport") d.transport = v;
      else if (k == "rx_port") d.rx_port = uint16_t(std::stoul(v));
    }
    if (d.name.empty() || d.rx_port == 0) throw ReportError("links.txt: bad line '" + line + "'");
    out.push_back(d);
  }
  return out;
}

std::map<uint16_t, UdpSocket> parse_proc_net_udp(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line.find("local_address") == std::string::npos)
    throw ReportError("not /proc/net/udp (no header)");
  std::map<uint16_t, UdpSocket> out;
  while (std::getline(in, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    // ref pointer drops
    std::istringstream w(line);
    std::vector<std::string> f;
    std::string x;
    while (w >> x) f.push_back(x);
    if (f.empty()) continue;
    if (f.size() < 13) throw ReportError("/proc/net/udp: short line '" + line + "'");
    const auto colon = f[1].find(':'), qcolon = f[4].find(':');
    if (colon == std::string::npos || qcolon == std::string::npos) throw ReportError("/proc/net/udp: bad line '" + line + "'");
    const uint16_t port = uint16_t(std::stoul(f[1].substr(colon + 1), nullptr, 16));
    UdpSocket& s = out[port];
    s.rx_queue_bytes += std::stoull(f[4].substr(qcolon + 1), nullptr, 16);
    s.drops += std::stoull(f.back());
  }
  return out;
}

std::optional<uint64_t> proc_net_snmp_field(const std::string& text, const std::string& section,
                                            const std::string& field) {
  std::istringstream in(text);
  std::string header, line;
  while (std::getline(in, line)) {
    if (line.rfind(section + ":", 0) != 0) continue;
    if (header.empty()) {
      header = line;
      continue;
    }
    std::istringstream h(header), v(line);
    std::string name, value;
    h >> name;
    v >> value;
    while (h >> name && v >> value)
      if (name == field) return std::stoull(value);
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<uint64_t> proc_net_dev_field(const std::string& text, const std::string& ifname,
                                           const std::string& field) {
  // "  lo: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed multicast tx_bytes tx_packets
  //  tx_errs tx_drop ..."
  static const std::map<std::string, int> kIndex = {{"rx_packets", 1}, {"rx_drop", 3}, {"tx_packets", 9}, {"tx_drop", 11}};
  const auto idx = kIndex.find(field);
  if (idx == kIndex.end()) return std::nullopt;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != ifname) continue;
    std::istringstream w(line.substr(colon + 1));
    std::vector<uint64_t> v;
    uint64_t x;
    while (w >> x) v.push_back(x);
    if (int(v.size()) <= idx->second) return std::nullopt;
    return v[size_t(idx->second)];
  }
  return std::nullopt;
}

nlohmann::json link_counters(const std::string& links_txt, const std::string& udp, const std::string& snmp,
                             const std::string& dev) {
  nlohmann::json j = nlohmann::json::object();
  const std::vector<LinkDirection> links = parse_links(links_txt);
  std::string transport = links.empty() ? "unknown" : links.front().transport;
  j["transport"] = transport;
  std::map<uint16_t, UdpSocket> sockets;
  std::string error;
  try {
    if (udp.empty()) throw ReportError("kernel/vm.sh saved no link counters (links-udp.txt)");
    sockets = parse_proc_net_udp(udp);
  } catch (const ReportError& e) {
    error = e.what();
  }
  for (const LinkDirection& d : links) {
    nlohmann::json l = {{"from", d.from}, {"to", d.to}, {"rx_port", d.rx_port}, {"transport", d.transport}};
    if (d.transport != "udp") {
      l["error"] = "a " + d.transport + " link: its sending QEMU drops frames it cannot queue without counting them";
    } else if (!error.empty()) {
      l["error"] = error;
    } else if (!sockets.count(d.rx_port)) {
      l["error"] = "no UDP socket on port " + std::to_string(d.rx_port) + " (its QEMU had exited)";
    } else {
      l["socket_drops"] = sockets[d.rx_port].drops;
      l["rx_queue_bytes"] = sockets[d.rx_port].rx_queue_bytes;
    }
    j[d.name] = l;
  }
  nlohmann::json host = nlohmann::json::object();
  auto put = [&](const char* key, std::optional<uint64_t> v) {
    if (v) host[key] = *v;
  };
  put("lo_rx_drop", proc_net_dev_field(dev, "lo", "rx_drop"));
  put("lo_tx_drop", proc_net_dev_field(dev, "lo", "tx_drop"));
  put("udp_sndbuf_errors", proc_net_snmp_field(snmp, "Udp", "SndbufErrors"));
  put("udp_rcvbuf_errors", proc_net_snmp_field(snmp, "Udp", "RcvbufErrors"));
  put("udp_in_errors", proc_net_snmp_field(snmp, "Udp", "InErrors"));
  j["host"] = host;
  return j;
}

QemuRun parse_qemu_cmdline(const std::string& cmdline) {
  std::istringstream w(cmdline);
  std::vector<std::string> a;
  std::string x;
  while (w >> x) a.push_back(x);
  if (a.empty() || a[0].find("qemu-system") == std::string::npos)
    throw ReportError("not a QEMU command line: '" + cmdline.substr(0, 80) + "'");
  QemuRun r;
  for (size_t i = 1; i + 1 < a.size(); ++i) {
    if (a[i] == "-accel" || a[i] == "--accel") {
      r.accel = a[i + 1].substr(0, a[i + 1].find(','));
    } else if (a[i] == "-machine" && a[i + 1].find("accel=") != std::string::npos) {
      const std::string m = a[i + 1].substr(a[i + 1].find("accel=") + 6);
      r.accel = m.substr(0, m.find_first_of(",:"));
    } else if (a[i] == "-icount" || a[i] == "--icount") {
      r.icount = true;
      r.icount_spec = a[i + 1];
      std::istringstream parts(a[i + 1]);
      std::string p;
      while (std::getline(parts, p, ',')) {
        std::string v = p.rfind("shift=", 0) == 0 ? p.substr(6) : (p.find('=') == std::string::npos ? p : "");
        if (!v.empty() && std::all_of(v.begin(), v.end(), ::isdigit)) r.icount_shift = std::stoi(v);
      }
    } else if (a[i] == "-enable-kvm") {
      r.accel = "kvm";
    }
  }
  if (r.accel.empty()) r.accel = "tcg";  // QEMU's default for x86 without -accel
  return r;
}

nlohmann::json account_vm_run(const nlohmann::json& sender, const nlohmann::json& proxy,
                              const nlohmann::json& receiver, const nlohmann::json& links) {
  DropLedger d;

  // The sender: every numbered datagram the generator tried is on the wire or a counted error.
  if (!sender.is_object() || !sender.contains("generator")) throw ReportError("sender: no generator report");
  const nlohmann::json& g = sender["generator"];
  const uint64_t sent = g.contains("attempted") ? count_at(g, "attempted", "generator") : count_at(g, "sent", "generator");
  add_reasons(d, DropStage::kSender, g.value("send_errors", nlohmann::json::object()), "generator send_errors");
  if (!sender.contains("kernel")) throw ReportError("sender: no kernel counters");
  d.add(DropStage::kSender, "ip_out_discards", count_at(sender["kernel"], "ip_out_discards", "sender kernel"));
  const nlohmann::json& snic = sender.value("nic", nlohmann::json::object()).value("eth0", nlohmann::json());
  d.add(DropStage::kSender, "nic_tx_dropped", count_at(snic, "tx_dropped", "sender eth0"));

  // The links.
  auto link_drops = [&](const std::string& name, DropStage stage) {
    if (!links.is_object() || !links.contains(name)) throw ReportError("links: no '" + name + "'");
    const nlohmann::json& l = links[name];
    if (l.contains("error")) throw ReportError("link " + name + ": " + l["error"].get<std::string>());
    d.add(stage, "host_socket_full", count_at(l, "socket_drops", "link " + name));
  };
  link_drops("sender_proxy", DropStage::kLinkSenderProxy);
  link_drops("proxy_receiver", DropStage::kLinkProxyReceiver);
  if (links.contains("host"))
    for (const char* k : {"lo_rx_drop", "lo_tx_drop", "udp_sndbuf_errors"})
      if (links["host"].contains(k) && links["host"][k].get<uint64_t>() > 0)
        d.add(DropStage::kLinkSenderProxy, std::string("host_either_link:") + k, links["host"][k].get<uint64_t>());

  // The proxy: the method's own stages, and its NIC's misses.
  if (!proxy.is_object() || !proxy.contains("drops") || !proxy.contains("forwarded"))
    throw ReportError("proxy: no method report (forwarded, drops)");
  DropLedger method;
  try {
    method = DropLedger::from_json(proxy["drops"]);
  } catch (const std::invalid_argument& e) {
    throw ReportError(std::string("proxy drops: ") + e.what());
  }
  for (DropStage s : kDropStages)
    if (!is_proxy_stage(s) && method.stage_total(s) > 0)
      throw ReportError("proxy: the method counts drops in '" + std::string(drop_stage_name(s)) +
                        "', which is not a proxy stage");
  d.merge(method);
  const nlohmann::json& pnic = proxy.value("nic", nlohmann::json::object());
  d.add(DropStage::kProxyKernel, "e1000_missed:eth0",
        register_delta(pnic.value("eth0", nlohmann::json()), "e1000_mpc", "proxy eth0"));

  // The receiver.
  if (!receiver.is_object() || !receiver.contains("sink")) throw ReportError("receiver: no sink report");
  const nlohmann::json& s = receiver["sink"];
  const uint64_t received = count_at(s, "received", "sink");
  add_reasons(d, DropStage::kReceiverKernel, s.value("receiver_kernel", nlohmann::json::object()), "sink receiver_kernel");
  const nlohmann::json& rnic = receiver.value("nic", nlohmann::json::object()).value("eth0", nlohmann::json());
  d.add(DropStage::kReceiverKernel, "e1000_missed", register_delta(rnic, "e1000_mpc", "receiver eth0"));
  d.add(DropStage::kReceiverKernel, "netdev_rx_dropped", count_at(rnic, "rx_dropped", "receiver eth0"));
  d.add(DropStage::kReceiverApp, "corrupted", count_at(s, "corrupted", "sink"));

  nlohmann::json by_stage = nlohmann::json::object();
  for (DropStage st : kDropStages) by_stage[std::string(drop_stage_name(st))] = d.stage_total(st);
  nlohmann::json a;
  a["sent"] = sent;
  a["received"] = received;
  a["drops"] = d.to_json();
  a["dropped_by_stage"] = by_stage;
  a["dropped"] = d.total();
  a["unaccounted"] = int64_t(sent) - int64_t(received) - int64_t(d.total());
  a["unaccounted_ratio"] = sent ? double(a["unaccounted"].get<int64_t>()) / double(sent) : 0.0;
  // The ULS path names the kind of every frame an upcall the kernel ended had taken (the image
  // counts them when the next upcall runs: its UDP datagrams are stream drops, the rest are not)
  // but for frames a device was still taking when the upcall ended: those count as drops of
  // unknown kind, and a readiness ping or ARP among them makes the drops exceed what was sent.
  // A negative `unaccounted` no larger than their count is said so.
  {
    const auto& ext = method.stage(DropStage::kProxyExtension);
    const auto it = ext.find("taken_by_an_upcall_the_kernel_ended_unclassified");
    const uint64_t unknown = it == ext.end() ? 0 : it->second;
    const int64_t u = a["unaccounted"].get<int64_t>();
    if (u < 0 && unknown > 0 && uint64_t(-u) <= unknown)
      a["unaccounted_note"] = "the drops exceed what was sent by " + std::to_string(-u) + ": that many of the " +
                              std::to_string(unknown) +
                              " frames of unknown kind an ended upcall took cannot have been the stream's (a "
                              "readiness ping or ARP in the proxy's window), yet count as drops";
  }
  // What each NIC on the way counted over the stream (frames, including the few that are not the
  // stream's: ARP, the readiness pings): where the frames went, to read next to the drops.
  const nlohmann::json& pin = pnic.value("eth0", nlohmann::json::object());
  const nlohmann::json& pout = pnic.value("eth1", nlohmann::json::object());
  a["path"] = {{"sender_nic_tx", snic.value("tx_packets", uint64_t(0))},
               {"proxy_nic_rx", pin.value("rx_packets", uint64_t(0))},
               {"proxy_forwarded", proxy["forwarded"]},
               {"proxy_nic_tx", pout.value("tx_packets", uint64_t(0))},
               {"receiver_nic_rx", rnic.value("rx_packets", uint64_t(0))},
               {"received", received}};
  return a;
}

std::map<int, InsnCount> parse_insn_log(const std::string& text) {
  std::map<int, InsnCount> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto at = line.find("ULSNET-INSN ");
    if (at == std::string::npos) continue;
    std::istringstream w(line.substr(at + 12));
    std::string kv;
    int tag = -1;
    InsnCount c;
    int fields = 0;
    while (w >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      try {
        if (k == "tag") tag = std::stoi(v), ++fields;
        else if (k == "user") c.user = std::stoull(v), ++fields;
        else if (k == "kernel") c.kernel = std::stoull(v), ++fields;
      } catch (const std::exception&) {
        throw ReportError("instruction log: bad line '" + line + "'");
      }
    }
    if (fields != 3 || tag < 0) throw ReportError("instruction log: bad line '" + line + "'");
    out[tag] = c;
  }
  return out;
}

nlohmann::json insns_per_packet(const nlohmann::json& proxy, const std::string& insn_log) {
  if (!proxy.contains("insn_marks")) throw ReportError("proxy: no insn_marks in its report");
  const int start = proxy["insn_marks"].value("start", -1), end = proxy["insn_marks"].value("end", -1);
  const std::map<int, InsnCount> marks = parse_insn_log(insn_log);
  if (!marks.count(start) || !marks.count(end))
    throw ReportError("instruction log: mark " + std::to_string(marks.count(start) ? end : start) +
                      " missing (was the counting plugin loaded?)");
  const InsnCount a = marks.at(start), b = marks.at(end);
  if (b.user < a.user || b.kernel < a.kernel) throw ReportError("instruction log: counts went backwards");
  const double fwd = proxy.value("forwarded", 0.0);
  nlohmann::json j = {{"window", {{"user", b.user - a.user}, {"kernel", b.kernel - a.kernel}}}};
  if (fwd > 0) {
    j["user"] = double(b.user - a.user) / fwd;
    j["kernel"] = double(b.kernel - a.kernel) / fwd;
    j["total"] = double(b.user - a.user + b.kernel - a.kernel) / fwd;
  }
  return j;
}

nlohmann::json proxy_cpu_per_packet(const nlohmann::json& proxy) {
  const double fwd = proxy.value("forwarded", 0.0);
  if (!(fwd > 0) || !proxy.contains("proxy_vm")) return nlohmann::json::object();
  const nlohmann::json& v = proxy["proxy_vm"];
  const double user = v.value("cpu_user_s", 0.0);
  const double kernel = v.value("cpu_system_s", 0.0) + v.value("cpu_irq_s", 0.0) + v.value("cpu_softirq_s", 0.0);
  return {{"total", v.value("cpu_busy_s", 0.0) * 1e9 / fwd}, {"user", user * 1e9 / fwd}, {"kernel", kernel * 1e9 / fwd}};
}

std::string vm_point_key(const nlohmann::json& row) {
  std::string load;
  if (row.contains("load_fraction")) {
    std::ostringstream f;
    f << row["load_fraction"].get<double>();
    load = "fraction:" + f.str();
  } else if (row.value("offered", nlohmann::json("max")).is_string()) {
    load = "max";
  } else {
    std::ostringstream r;
    r << std::llround(row["offered"].get<double>());
    load = "rate:" + r.str();
  }
  return row.value("method", "") + "|" + row.value("variant", "") + "|" + row.value("mode", "") + "|" +
         std::to_string(row.value("payload", row.value("payload_bytes", 0u))) + "|" + row.value("purpose", "") + "|" +
         load;
}

nlohmann::json summarize_vm_points(const nlohmann::json& results) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const nlohmann::json*>> by_key;
  for (const auto& r : results) {
    if (r.value("purpose", "") == "search") continue;
    const std::string k = vm_point_key(r);
    if (!by_key.count(k)) order.push_back(k);
    by_key[k].push_back(&r);
  }
  auto median_json = [](std::vector<double> v) -> nlohmann::json {
    const std::optional<double> m = median(std::move(v));
    return m ? nlohmann::json(*m) : nlohmann::json(nullptr);
  };
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& k : order) {
    const auto& rows = by_key[k];
    const nlohmann::json& first = *rows.front();
    nlohmann::json s{{"point", k}};
    for (const char* f : {"method", "variant", "mode", "purpose", "offered", "payload_bytes", "load_fraction", "load_basis"})
      if (first.contains(f)) s[f] = first[f];
    std::vector<double> offered, forwarded, delivered, lat99, ipdv99, insns;
    int errors = 0;
    for (const nlohmann::json* r : rows) {
      if (r->contains("error")) {
        ++errors;
        continue;
      }
      offered.push_back((*r)["offered_pps"]);
      forwarded.push_back((*r)["forwarded_pps"]);
      delivered.push_back((*r)["delivered_pps"]);
      const nlohmann::json& l = r->value("latency", nlohmann::json::object());
      if (l.value("one_way_valid", false) && l.contains("latency_ns") && l["latency_ns"].contains("p99")) {
        lat99.push_back(l["latency_ns"]["p99"]);
        if (l.contains("ipdv_ns") && l["ipdv_ns"].contains("p99")) ipdv99.push_back(l["ipdv_ns"]["p99"]);
      }
      const nlohmann::json& i = r->value("proxy_vm_insns_per_forwarded", nlohmann::json::object());
      if (i.contains("total")) insns.push_back(i["total"]);
    }
    s["repetitions"] = delivered.size();
    s["errors"] = errors;
    s["offered_pps"] = median_json(offered);
    s["forwarded_pps"] = median_json(forwarded);
    s["delivered_pps"] = median_json(delivered);
    s["n_latency"] = lat99.size();
    if (!lat99.empty()) s["latency_p99_ns"] = median_json(lat99);
    if (!ipdv99.empty()) s["ipdv_p99_ns"] = median_json(ipdv99);
    if (!insns.empty()) s["insns_per_forwarded"] = median_json(insns);
    for (const auto& [name, v] : {std::pair{"delivered_pps_ci95", &delivered}, std::pair{"forwarded_pps_ci95", &forwarded},
                                  std::pair{"latency_p99_ns_ci95", &lat99}, std::pair{"ipdv_p99_ns_ci95", &ipdv99},
                                  std::pair{"insns_per_forwarded_ci95", &insns}})
      if (auto ci = mean_ci95(*v)) s[name] = to_json(*ci);
    out.push_back(s);
  }
  return out;
}

}  // namespace ulsnet::vmrun
