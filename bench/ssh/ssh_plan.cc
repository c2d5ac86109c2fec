// What an ssh_throughput run will do: see bench/ssh/ssh_plan.h.
#include "bench/ssh/ssh_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include <fmt/core.h>

#include "bench/environment.h"
#include "bench/ssh/load_plan.h"
#include "bench/ssh/resume.h"
#include "bench/traffic.h"
#include "stack/net_types.h"

namespace ulsnet::ssh {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError{message};
}

// An offered rate: "max" (0) or a finite number of packets per second in (0, 1e9].
std::optional<double> parse_rate(const std::string& r) {
  if (r == "max") return 0.0;
  char* end = nullptr;
  const double v = std::strtod(r.c_str(), &end);
  if (end == r.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 1e9) return std::nullopt;
  return v;
}

// A file of this binary's runfiles, by its workspace path.
std::string runfile(const std::string& path) {
  std::vector<std::string> roots;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"})
    if (const char* r = std::getenv(var)) roots.emplace_back(r);
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) > 0) roots.push_back(std::string(self) + ".runfiles");
  for (const auto& root : roots)
    for (const char* ws : {"ulsnet", "__main__"})
      if (std::string p = root + "/" + ws + "/" + path; std::filesystem::exists(p)) return p;
  // Beside this binary (bazel-bin/bench/ssh/).
  if (self[0]) {
    std::string p = std::filesystem::path(self).parent_path() / std::filesystem::path(path).filename();
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// SSH, the hosts, the test links' addresses and names, the clock comparison's address.
void check_hosts_and_links(const SshThroughputOptions& o) {
  try {
    validate(ssh_options_of(o));
    for (const std::string* t : {&o.sender, &o.proxy, &o.receiver}) validate_target(*t);
  } catch (const std::invalid_argument& e) {
    throw UsageError{e.what()};
  }
  for (auto [v, name] : {std::pair{&o.sender_ip, "--sender-ip"}, {&o.proxy_in_ip, "--proxy-in-ip"},
                         {&o.proxy_out_ip, "--proxy-out-ip"}, {&o.receiver_ip, "--receiver-ip"}})
    require(bool(Ipv4Addr::parse(*v)), std::string(name) + ": '" + *v + "' is not an IPv4 address");
  for (auto [v, name] : {std::pair{&o.sender_mac, "--sender-mac"}, {&o.proxy_in_mac, "--proxy-in-mac"},
                         {&o.proxy_out_mac, "--proxy-out-mac"}, {&o.receiver_mac, "--receiver-mac"}})
    require(v->empty() || MacAddr::parse(*v), std::string(name) + ": '" + *v + "' is not a MAC address");
  for (const std::string* n : {&o.sender_if, &o.proxy_in_if, &o.proxy_out_if, &o.receiver_if})
    require(n->find_first_of(" \t\n'\"/") == std::string::npos, "bad interface name '" + *n + "'");
  require(!o.remote_tmp.empty() && o.remote_tmp[0] == '/', "--remote-tmp must be an absolute path");
  require(o.clock_sync_addr.empty() || Ipv4Addr::parse(o.clock_sync_addr),
          "--clock-sync-addr: '" + o.clock_sync_addr + "' is not an IPv4 address");
  require(o.clock_sync_port != o.port, "--clock-sync-port must differ from --port");
  require(o.final_trials % 2 != 0, "--final-trials must be odd");
}

// --payload, --rates, --mode.
void parse_points(const SshThroughputOptions& o, SshPlan& plan) {
  for (const std::string& p : split(o.payloads)) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p.c_str(), &end, 10);
    require(!(end == p.c_str() || *end != '\0' || v < kMinPayload || v > kMaxPayload),
            fmt::format("--payload '{}' outside [{}, {}]", p, kMinPayload, kMaxPayload));
    plan.payloads.push_back(uint32_t(v));
  }
  for (const std::string& r : split(o.rates)) {
    auto v = parse_rate(r);
    require(v.has_value(), "--rates: '" + r + "' is neither max nor a number of packets/s in (0, 1e9]");
    plan.rates.push_back(*v);
  }
  for (const std::string& m : split(o.modes)) {
    require(m == "relay" || m == "router", "--mode: '" + m + "' is neither relay nor router");
    plan.modes.push_back(m == "relay" ? ForwardMode::kRelay : ForwardMode::kRouter);
  }
  require(!(plan.payloads.empty() || plan.rates.empty() || plan.modes.empty()),
          "--payload, --rates and --mode need a value");
}

// --loads (which turns the search on), --competitors, --proxy-cpu.
void parse_loads_and_cpu(SshThroughputOptions& o, SshPlan& plan) {
  for (const std::string& f : split(o.loads)) {
    char* end = nullptr;
    const double v = std::strtod(f.c_str(), &end);
    require(!(end == f.c_str() || *end != '\0' || !std::isfinite(v) || v < 0.01 || v > 10),
            "--loads: '" + f + "' is not a fraction of the PDR in [0.01, 10]");
    plan.loads.push_back(v);
  }
  require(o.loads.empty() || !plan.loads.empty(), "--loads needs at least one fraction");
  if (!plan.loads.empty() && !o.search) {
    // The sweep is relative to each job's PDR, which only the search measures.
    o.search = true;
    std::fprintf(stderr, "ssh_throughput: --loads: the NDR/PDR search runs too (the sweep is relative to its PDR)\n");
  }
  try {
    plan.competitor_counts = parse_competitors(o.competitors);
  } catch (const std::invalid_argument& e) {
    throw UsageError{e.what()};
  }
  require(!(o.proxy_cpu != "auto" && o.proxy_cpu != "none" &&
            (o.proxy_cpu.empty() || o.proxy_cpu.find_first_not_of("0123456789") != std::string::npos ||
             o.proxy_cpu.size() > 6)),
          "--proxy-cpu: '" + o.proxy_cpu + "' is neither auto, none nor a CPU number");
}

// Every method and variant --method names in every mode it has; the others skipped, said so.
void expand_jobs(const SshThroughputOptions& o, SshPlan& plan) {
  try {
    for (auto& [info, variant] : expand_method_specs(split(o.methods), [](auto&&...) { return true; }))
      for (ForwardMode m : plan.modes) {
        if ((m == ForwardMode::kRelay && !info->relay) || (m == ForwardMode::kRouter && !info->router)) {
          plan.skipped.push_back(fmt::format("{}:{} has no {} mode", info->name, variant, forward_mode_name(m)));
          continue;
        }
        plan.jobs.push_back({info, variant, m});
      }
  } catch (const std::exception& e) {
    throw UsageError{e.what()};
  }
  // The common load comes from the batched kernel-socket relay's PDR: that job goes first (as
  // //bench:throughput orders it).
  std::stable_partition(plan.jobs.begin(), plan.jobs.end(), [](const SshJob& j) {
    return is_common_load_basis_job(std::string(j.info->name), j.variant, forward_mode_name(j.mode));
  });
  if (plan.jobs.empty()) {
    std::string why;
    for (const auto& x : plan.skipped) why += (why.empty() ? "" : "; ") + x.get<std::string>();
    throw UsageError{"nothing to run: " + why};
  }
}

}  // namespace

std::string SshJob::name() const { return fmt::format("{}:{} {}", info->name, variant, forward_mode_name(mode)); }

std::string SshJob::key(const std::string& asked, uint32_t payload) const {
  return job_key(std::string(info->name), variant, forward_mode_name(mode), protection(asked), payload);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  size_t i = 0;
  while (i <= s.size()) {
    size_t c = s.find(',', i);
    if (c == std::string::npos) c = s.size();
    if (c > i) v.push_back(s.substr(i, c - i));
    i = c + 1;
  }
  return v;
}

SshPlan plan_run(SshThroughputOptions& o) {
  SshPlan plan;
  check_hosts_and_links(o);
  parse_points(o, plan);
  parse_loads_and_cpu(o, plan);
  expand_jobs(o, plan);
  plan.agent_path = o.agent.empty() ? runfile("bench/ssh/ulsnet_agent") : o.agent;
  require(!(plan.agent_path.empty() || access(plan.agent_path.c_str(), R_OK) != 0),
          "the agent binary " +
              (plan.agent_path.empty() ? std::string("(//bench/ssh:ulsnet_agent)") : plan.agent_path) +
              " is not there: run through `bazel run`, or give --agent");
  plan.out_path = result_path(o.out, "throughput-ssh");
  return plan;
}

}  // namespace ulsnet::ssh
