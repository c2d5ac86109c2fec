// One trial on real hosts, and the search: see bench/ssh/ssh_trial.h.
#include "bench/ssh/ssh_trial.h"

#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/core.h>

#include "bench/search.h"
#include "bench/ssh/agent_protocol.h"
#include "bench/ssh/ssh_accounting.h"
#include "bench/throughput_common.h"

namespace ulsnet::ssh {
namespace {

// A role started on a host, its agent's stdout read line by line.
std::unique_ptr<Child> start_role(const Host& h, const std::vector<std::string>& words) {
  std::vector<std::string> w = {h.agent()};
  w.insert(w.end(), words.begin(), words.end());
  return std::make_unique<Child>(ssh_argv(h.ssh, h.target, "exec " + shell_join(w)), true);
}

// An agent line's event (ready, report or error), "malformed", or "" for a foreign line.
std::string agent_event(const std::string& line) {
  try {
    auto a = parse_agent_line(line);
    return a ? a->event : "";
  } catch (const AgentProtocolError&) {
    return "malformed";  // it ends a wait too; the parse after it says what it was
  }
}

bool is_final(const std::string& line) {
  const std::string e = agent_event(line);
  return !e.empty() && e != "ready" && e != "status";
}

bool is_final_or_ready(const std::string& line) {
  const std::string e = agent_event(line);
  return !e.empty() && e != "status";
}

// Whether the role said "ready" within the setup timeout.
bool got_ready(Child& c, const std::string& role, double setup_timeout) {
  return c.wait_line(is_final_or_ready, after(setup_timeout)) && parse_agent_output(c.out(), role).ready;
}

// The role's report, or its error with the ssh client's stderr when the agent said nothing.
struct Collected {
  std::optional<nlohmann::json> report;
  std::string error;
};

Collected collect(Child& c, const std::string& role, const std::string& host_role, double timeout_s) {
  const int status = c.finish(after(timeout_s));
  AgentOutput a = parse_agent_output(c.out(), role);
  Collected r;
  if (a.report) {
    r.report = *a.report;
    return r;
  }
  r.error = host_role + " host: " + a.error;
  if (c.timed_out()) r.error += " (no end within " + fmt::format("{:.0f}", timeout_s) + " s; ended)";
  else if (status != 0) r.error += " (exit " + std::to_string(status) + ")";
  if (!c.err_tail().empty()) r.error += "; stderr: " + c.err_tail(400);
  return r;
}

nlohmann::json trial_error(const std::string& why, uint32_t run_id,
                           const nlohmann::json& reports = nlohmann::json::object()) {
  return nlohmann::json{{"error", why}, {"run_id", run_id}, {"reports", reports}};
}

// The sink's command line (`bound`: the remote roles' own time bound).
std::vector<std::string> recv_words(const SshThroughputOptions& o, const Addressing& ad, const Host& rcv,
                                    const std::string& run_id, double bound) {
  std::vector<std::string> rw = {
      "recv", "--port", std::to_string(o.port), "--run-id", run_id, "--max-packets", std::to_string(o.max_packets),
      "--warmup", fmt::format("{}", o.warmup), "--if", ad.receiver.ifname, "--max-seconds",
      fmt::format("{:.0f}", bound), "--pidfile", rcv.dir + "/recv-" + run_id + ".pid", "--clock-port",
      ad.clock_addr.empty() ? "0" : std::to_string(ad.clock_port)};
  if (!ad.receiver_cpus.empty()) rw.insert(rw.end(), {"--cpus", cpu_list(ad.receiver_cpus)});
  return rw;
}

// The proxy method's command line.
std::vector<std::string> proxy_words(const SshThroughputOptions& o, const Addressing& ad, const Host& prx,
                                     const TrialParams& t, const std::string& run_id, double bound) {
  std::vector<std::string> pw = {
      "proxy", "--method", std::string(t.job.info->name) + ":" + t.job.variant, "--mode", forward_mode_name(t.job.mode),
      "--in-if", ad.proxy_in.ifname, "--in-ip", ad.proxy_in.ip, "--in-peer-ip", ad.sender.ip,
      "--out-if", ad.proxy_out.ifname, "--out-ip", ad.proxy_out.ip, "--out-peer-ip", ad.receiver.ip,
      "--prefix", std::to_string(o.prefix), "--port", std::to_string(o.port), "--batch", std::to_string(o.batch),
      "--protection", o.protection, "--addresses", o.proxy_addresses, "--max-seconds", fmt::format("{:.0f}", bound),
      "--pidfile", prx.dir + "/proxy-" + run_id + ".pid", "--cpu", std::to_string(ad.proxy_cpu),
      "--competitors", std::to_string(t.competitors)};
  if (!ad.sender.mac.empty()) pw.insert(pw.end(), {"--in-peer-mac", ad.sender.mac});
  if (!ad.receiver.mac.empty()) pw.insert(pw.end(), {"--out-peer-mac", ad.receiver.mac});
  return pw;
}

// The generator's command line.
std::vector<std::string> send_words(const SshThroughputOptions& o, const Addressing& ad, const Host& snd,
                                    const TrialParams& t, const std::string& run_id) {
  const std::string dst = t.job.mode == ForwardMode::kRelay ? ad.proxy_in.ip : ad.receiver.ip;
  std::vector<std::string> sw = {
      "send", "--dst", dst, "--port", std::to_string(o.port), "--payload", std::to_string(t.payload), "--rate",
      t.rate_pps > 0 ? fmt::format("{}", t.rate_pps) : "max", "--duration", fmt::format("{}", t.duration_s),
      "--count", std::to_string(o.max_packets), "--batch", std::to_string(o.batch), "--run-id", run_id, "--if",
      ad.sender.ifname, "--max-seconds", fmt::format("{:.0f}", t.duration_s + 15), "--pidfile",
      snd.dir + "/send-" + run_id + ".pid"};
  if (!ad.clock_addr.empty()) sw.insert(sw.end(), {"--clock-peer", ad.clock_addr, "--clock-port", std::to_string(ad.clock_port)});
  if (!ad.clock_addr.empty() && ad.clock_shift) sw.push_back("--clock-shift");
  if (!ad.sender_cpus.empty()) sw.insert(sw.end(), {"--cpus", cpu_list(ad.sender_cpus)});
  return sw;
}

// The generator's run, bounded, with the proxy's CPU window marked at its start of stream.
void mark_and_wait_for_stream(const SshThroughputOptions& o, Child& send, Child& proxy, const TrialParams& t) {
  // The sender says "ready" as its stream starts: the proxy's CPU window starts there ("mark"),
  // not at its own ready, which comes before the sender's session, its clock comparison and the
  // time namespace. Then the generator's end (its report or error), bounded; its session stays
  // open until then.
  const auto send_end = after(t.duration_s + o.setup_timeout + 15);
  send.wait_line(is_final_or_ready, send_end);
  if (parse_agent_output(send.out(), "send").ready) {
    proxy.write_stdin("mark\n");
    send.wait_line(is_final, send_end);
  }
}

// An accounted trial's delays' validity, the proxy's CPU and placement, the trial's settings.
void add_trial_fields(nlohmann::json& rec, const SshThroughputOptions& o, const Addressing& ad, const TrialParams& t,
                      const nlohmann::json& g, const nlohmann::json& p, Clock::time_point t0) {
  rec["latency"] = one_way_latency(ad.clock_shared, g.value("clock", nlohmann::json()));
  // CPU per forwarded packet from the proxy agent's own measurements (its window: from the
  // sender's start of stream, or from its ready, to stop: cpu.window).
  rec["cpu"] = trial_cpu(p, rec.value("received", uint64_t(0)));
  rec["proxy_placement"] = p.value("placement", nlohmann::json());
  rec["run_id"] = t.run_id;
  rec["rate_pps"] = t.rate_pps;
  rec["duration_asked_s"] = t.duration_s;
  rec["drain_s"] = o.drain;
  rec["trial_wall_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

std::string cpu_list(const std::vector<int>& v) {
  std::string s;
  for (int c : v) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

nlohmann::json run_trial(const SshThroughputOptions& o, std::vector<Host>& hosts, const Addressing& ad,
                         const TrialParams& t) {
  Host &snd = hosts[0], &prx = hosts[1], &rcv = hosts[2];
  const auto t0 = Clock::now();
  const double bound = t.duration_s + o.setup_timeout + 30;  // the remote roles' own time bound
  const std::string run_id = std::to_string(t.run_id);
  std::unique_ptr<Child> recv = start_role(rcv, recv_words(o, ad, rcv, run_id, bound));
  if (!got_ready(*recv, "recv", o.setup_timeout)) {
    if (g_interrupted) return trial_error("interrupted", t.run_id);
    return trial_error("the sink did not get ready: " + collect(*recv, "recv", "receiver", 3).error, t.run_id);
  }
  std::unique_ptr<Child> proxy = start_role(prx, proxy_words(o, ad, prx, t, run_id, bound));
  if (!got_ready(*proxy, "proxy", o.setup_timeout)) {
    if (g_interrupted) return trial_error("interrupted", t.run_id);
    return trial_error("the proxy did not get ready: " + collect(*proxy, "proxy", "proxy", 3).error, t.run_id);
  }
  std::unique_ptr<Child> send = start_role(snd, send_words(o, ad, snd, t, run_id));
  mark_and_wait_for_stream(o, *send, *proxy, t);
  if (g_interrupted) return trial_error("interrupted", t.run_id);
  Collected g = collect(*send, "send", "sender", 5);
  // Frames in flight land (or are dropped) before the proxy and the sink stop counting.
  const auto drain_end = after(o.drain);
  while (Clock::now() < drain_end && !g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  proxy->write_stdin("stop\n");
  Collected p = collect(*proxy, "proxy", "proxy", 10);
  recv->write_stdin("stop\n");
  Collected s = collect(*recv, "recv", "receiver", 10);
  nlohmann::json reports = {{"generator", g.report ? *g.report : nlohmann::json(nullptr)},
                            {"proxy", p.report ? *p.report : nlohmann::json(nullptr)},
                            {"sink", s.report ? *s.report : nlohmann::json(nullptr)}};
  for (const Collected* c : {&g, &p, &s})
    if (!c->report) return trial_error(c->error, t.run_id, reports);
  nlohmann::json rec;
  try {
    rec = account_ssh_trial(*g.report, *p.report, *s.report,
                            {ad.sender.ifname, ad.proxy_in.ifname, ad.proxy_out.ifname, ad.receiver.ifname}, t.payload);
  } catch (const std::exception& e) {
    return trial_error(std::string("accounting: ") + e.what(), t.run_id, reports);
  }
  add_trial_fields(rec, o, ad, t, *g.report, *p.report, t0);
  return rec;
}

nlohmann::json search_capacity(const SshThroughputOptions& o, std::vector<Host>& hosts, const Addressing& ad,
                               const SshJob& job, uint32_t payload, uint32_t& run_id) {
  const SearchOptions so = ndr_pdr_search_options(o.pdr_loss, {o.search_duration, o.duration}, o.search_precision,
                                                  o.search_trials, o.search_max, o.final_trials);
  SearchResult r = throughput_search(so, [&](double rate, double d) {
    TrialOutcome out;
    out.sample = run_trial(o, hosts, ad, {job, payload, rate, d, run_id++});
    if (g_interrupted) out.error = "interrupted";
    else if (out.sample.contains("error")) out.error = out.sample["error"];
    else {
      out.offered_pps = out.sample["offered_pps"];
      out.loss = out.sample["loss"];
    }
    return out;
  });
  nlohmann::json cap = search_result_json(r, so);
  cap.update({{"method", job.info->name},
              {"variant", job.variant},
              {"protection", job.protection(o.protection)},
              {"mode", forward_mode_name(job.mode)},
              {"payload_bytes", payload}});
  for (const CriterionResult& c : r.criteria) {
    const nlohmann::json& k = cap[c.criterion.name];
    auto rate = [](const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.0f}", v.get<double>()) : "-"; };
    std::fprintf(stderr, "%-32s %4u B %s: %s, passed %s, failed %s pps\n", job.name().c_str(), payload,
                 c.criterion.name.c_str(), k.value("status", "").c_str(), rate(k["lower_pps"]).c_str(),
                 rate(k["upper_pps"]).c_str());
  }
  return cap;
}

}  // namespace ulsnet::ssh
