// What an ssh_throughput result file records about its run: see bench/ssh/ssh_record.h.
#include "bench/ssh/ssh_record.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "bench/ssh/load_plan.h"
#include "bench/ssh/ssh_trial.h"
#include "stack/net_types.h"

namespace ulsnet::ssh {
namespace {

// A host's CPUs from its agent's env report: online, and those the agent may use.
void host_cpus(const Host& h, std::vector<int>& online, std::vector<int>& allowed) {
  const nlohmann::json cpus = h.env.value("cpus", nlohmann::json::object());
  if (cpus.contains("online") && cpus["online"].is_array()) online = cpus["online"].get<std::vector<int>>();
  if (cpus.contains("allowed") && cpus["allowed"].is_array()) allowed = cpus["allowed"].get<std::vector<int>>();
}

// The receiver's management address for the clock comparison: given, or the one its sshd was
// reached on; "" and why not (the note) when there is none usable.
std::string clock_responder_address(const SshThroughputOptions& o, const Host& receiver, std::string& note) {
  std::string addr = o.clock_sync_addr;
  if (addr.empty() && receiver.env.contains("ssh_connection"))
    addr = receiver.env["ssh_connection"].value("server_ip", "");
  if (!addr.empty() && !Ipv4Addr::parse(addr)) {
    note = "the receiver's sshd was reached on " + addr + ", not an IPv4 address: give --clock-sync-addr";
    addr.clear();
  } else if (addr.empty()) {
    note = "no address for the receiver's clock responder (no SSH_CONNECTION there): give --clock-sync-addr";
  }
  return addr;
}

// The result file's `clock` for the decision in `ad`.
nlohmann::json clock_json(const SshThroughputOptions& o, const Addressing& ad) {
  const bool clock_shared = ad.clock_shared;
  return {
      {"shared", clock_shared},
      {"sync", o.clock_sync},
      {"compared_with", ad.clock_addr.empty() ? nlohmann::json() : nlohmann::json(ad.clock_addr + ":" + std::to_string(ad.clock_port))},
      {"sender_shifted_onto_receiver", !ad.clock_addr.empty() && ad.clock_shift},
      {"basis",
       !ad.clock_addr.empty() && ad.clock_shift
           ? "the sender's agent compares the receiver's CLOCK_MONOTONIC with its own over UDP (the smallest round "
             "trip of 32 exchanges, error <= half of it) and runs the generator in a time namespace shifted by the "
             "offset, so send and receive times are on the receiver's clock; each trial's latency says to within "
             "what (clock_error_bound_ns: the residual difference measured right before and after the stream)"
       : clock_shared
           ? "the sender and the receiver have one boot_id: one CLOCK_MONOTONIC, one-way delays exact (the clocks are "
             "still compared, as a check: latency.shared_clock_check)"
           : "the sender and the receiver are different machines and their clocks are not compared: latency_ns is "
             "receive time minus send time on two unrelated clocks, not a delay (ipdv_ns and pdv_ns hold)"}};
}

// The roles that share the proxy's machine (one boot_id) run off the proxy's CPU, into `ad` and
// `config.placement`; the note for `proxy_placement`, "" when no role shares it.
std::string keep_roles_off_proxy_cpu(const std::vector<Host>& hosts, Addressing& ad, nlohmann::json& doc) {
  // One machine playing the proxy and another role: that role runs off the proxy's CPU (its
  // agent pinned to the machine's other usable CPUs), so that CPU's /proc/stat time is the
  // proxy's; with no other CPU (or the proxy not pinned) the time is shared, and said so.
  const std::string bp = hosts[1].env.value("boot_id", "");
  std::string shared, moved;
  for (int i : {0, 2}) {
    if (bp.empty() || hosts[i].env.value("boot_id", "") != bp) continue;
    std::vector<int> online, allowed;
    host_cpus(hosts[i], online, allowed);
    std::vector<int>& mine = i == 0 ? ad.sender_cpus : ad.receiver_cpus;
    mine = cpus_off_proxy(ad.proxy_cpu, online, allowed);
    doc["config"]["placement"][i == 0 ? "sender_cpus" : "receiver_cpus"] = mine;
    if (mine.empty()) shared += (shared.empty() ? "" : " and ") + hosts[i].role;
    else moved += (moved.empty() ? "" : "; ") + hosts[i].role + " on CPU(s) " + cpu_list(mine);
  }
  std::string note;
  if (!moved.empty())
    note = "the proxy host is also the other roles' host (one boot_id); they run off the proxy's CPU: " + moved;
  if (!shared.empty())
    note += std::string(note.empty() ? "" : ". ") + "the proxy host is also the " + shared +
            " host (one boot_id) and that role could not be kept off the proxy's CPU: its /proc/stat time "
            "includes that role's work";
  return note;
}

}  // namespace

nlohmann::json config_json(const SshThroughputOptions& o, const SshPlan& plan, int argc, char** argv) {
  nlohmann::json args = nlohmann::json::array();
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  nlohmann::json config = {
      {"argv", args},
      {"hosts", {{"sender", o.sender}, {"proxy", o.proxy}, {"receiver", o.receiver}}},
      {"methods", o.methods},
      {"jobs", nlohmann::json::array()},
      {"skipped", plan.skipped},
      {"payload_bytes", plan.payloads},
      {"rates", split(o.rates)},
      {"duration_s", o.duration},
      {"reps", o.reps},
      {"generator", "socket"},
      {"sink", "socket"},
      {"batch", o.batch},
      {"max_packets", o.max_packets},
      {"protection", o.protection},
      {"drain_s", o.drain},
      {"warmup_s", o.warmup},
      {"port", o.port},
      {"prefix", o.prefix},
      {"proxy_addresses", o.proxy_addresses},
      {"search", o.search},
      {"pdr_loss", o.pdr_loss},
      {"search_duration_s", o.search_duration},
      {"search_precision", o.search_precision},
      {"search_trials", o.search_trials},
      {"final_trials", o.final_trials},
      {"search_max_pps", o.search_max},
      {"load_sweep", plan.loads},
      {"load_sweep_basis", "fractions of each job's own PDR lower bound at the first payload size"},
      {"clock_sync", {{"mode", o.clock_sync}, {"addr", o.clock_sync_addr}, {"port", o.clock_sync_port}}},
      {"proxy_cpu", o.proxy_cpu},
      {"common_load_pps", o.common_load},
      {"common_load_rule", "--common-load, or 0: half of kernel-socket:batched relay's PDR lower bound when its "
                           "search runs in this run (that job first)"},
      {"competitors", plan.competitor_counts},
      {"ssh",
       {{"user", o.ssh_user},
        {"port", o.ssh_port},
        {"identity", o.ssh_identity},
        {"options", o.ssh_options},
        {"connect_timeout_s", o.ssh_connect_timeout},
        {"multiplexed", !o.no_multiplex}}},
      {"remote_tmp", o.remote_tmp},
      {"agent", {{"path", plan.agent_path}, {"bytes", std::filesystem::file_size(plan.agent_path)}}}};
  for (const SshJob& j : plan.jobs) config["jobs"].push_back(j.name());
  return config;
}

EarlierRun read_earlier_ssh_run(const SshThroughputOptions& o, const SshPlan& plan, const nlohmann::json& config) {
  EarlierRun earlier;
  if (o.out.empty() || !std::filesystem::exists(plan.out_path) || o.fresh) return earlier;
  try {
    nlohmann::json old;
    try {
      std::ifstream in(plan.out_path);
      old = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw ResumeRefused(std::string("it is not a result file (") + e.what() + ")");
    }
    earlier.finished = finished_points(old, config);
    earlier.addressing = old["config"].value("addressing", nlohmann::json());
    earlier.placement = old["config"].value("placement", nlohmann::json());
  } catch (const ResumeRefused& e) {
    throw UsageError{plan.out_path + " exists but cannot be resumed: " + e.what() +
                     ": give another --out, or --fresh to start over"};
  }
  std::fprintf(stderr, "ssh_throughput: resuming %s: %zu points, %zu searches finished there\n",
               plan.out_path.c_str(), earlier.finished.points.size(), earlier.finished.capacity.size());
  return earlier;
}

nlohmann::json addressing_json(const Addressing& ad) {
  auto port_json = [](const Port& p) { return nlohmann::json{{"if", p.ifname}, {"ip", p.ip}, {"mac", p.mac}}; };
  return {{"sender", port_json(ad.sender)},
          {"proxy_in", port_json(ad.proxy_in)},
          {"proxy_out", port_json(ad.proxy_out)},
          {"receiver", port_json(ad.receiver)}};
}

nlohmann::json settle_clocks(const SshThroughputOptions& o, const std::vector<Host>& hosts, Addressing& ad) {
  // One-way delay = the sink's receive time - the send time in the payload, two clocks unless
  // the sender and the receiver are one machine (namespaces: one boot_id, one CLOCK_MONOTONIC).
  const std::string b1 = hosts[0].env.value("boot_id", ""), b2 = hosts[2].env.value("boot_id", "");
  ad.clock_shared = !b1.empty() && b1 == b2;
  ad.clock_port = o.clock_sync_port;
  std::string clock_note;
  if (o.clock_sync != "off") {
    ad.clock_addr = clock_responder_address(o, hosts[2], clock_note);
    ad.clock_shift = o.clock_sync == "always" || !ad.clock_shared;
    if (!clock_note.empty()) std::fprintf(stderr, "ssh_throughput: clocks not compared: %s\n", clock_note.c_str());
  }
  nlohmann::json clock = clock_json(o, ad);
  if (!clock_note.empty()) clock["note"] = clock_note;
  return clock;
}

ProxyCpu resolve_proxy_cpu_on(const SshThroughputOptions& o, const Host& proxy) {
  std::vector<int> online, allowed;
  host_cpus(proxy, online, allowed);
  return resolve_proxy_cpu(o.proxy_cpu, online, allowed);
}

void settle_placement(const SshThroughputOptions& o, const std::vector<Host>& hosts, const ProxyCpu& pcpu,
                      Addressing& ad, nlohmann::json& doc) {
  ad.proxy_cpu = pcpu.cpu;
  doc["config"]["placement"] = {{"proxy_cpu", pcpu.cpu >= 0 ? nlohmann::json(pcpu.cpu) : nlohmann::json(nullptr)}};
  doc["proxy_placement"] = {{"asked", o.proxy_cpu},
                            {"cpu", pcpu.cpu >= 0 ? nlohmann::json(pcpu.cpu) : nlohmann::json(nullptr)},
                            {"basis", pcpu.basis},
                            {"applied", "per trial by the proxy's agent: each point's proxy_placement {cpu, pinned}"}};
  const std::string note = keep_roles_off_proxy_cpu(hosts, ad, doc);
  if (!note.empty()) doc["proxy_placement"]["note"] = note;
  std::fprintf(stderr, "ssh_throughput: proxy CPU: %s (%s)\n", pcpu.cpu >= 0 ? std::to_string(pcpu.cpu).c_str() : "none",
               pcpu.basis.c_str());
}

bool earlier_run_fits_hosts(const EarlierRun& earlier, const nlohmann::json& doc, const std::string& path) {
  if (!earlier.placement.is_null() && earlier.placement != doc["config"]["placement"]) {
    std::fprintf(stderr, "ssh_throughput: %s exists but cannot be resumed: its proxy CPU was %s, here %s: give another "
                 "--out, or --fresh to start over\n", path.c_str(), earlier.placement.dump().c_str(),
                 doc["config"]["placement"].dump().c_str());
    return false;
  }
  if (!earlier.addressing.is_null() && earlier.addressing != doc["config"]["addressing"]) {
    std::fprintf(stderr, "ssh_throughput: %s exists but cannot be resumed: it holds a run on other test interfaces (%s "
                 "there, %s here): give another --out, or --fresh to start over\n", path.c_str(),
                 earlier.addressing.dump().c_str(), doc["config"]["addressing"].dump().c_str());
    return false;
  }
  return true;
}

}  // namespace ulsnet::ssh
