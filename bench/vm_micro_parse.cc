#include "bench/vm_micro_parse.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace ulsnet::vmmicro {

const std::vector<std::string>& op_names() {
  static const std::vector<std::string> v = {"function", "syscall", "ioctl", "upcall", "signal", "pipe"};
  return v;
}

const std::map<std::string, std::string>& op_definitions() {
  static const std::map<std::string, std::string> m = {
      {"function", "a call through a volatile function pointer to a noinline function (lower bound)"},
      {"syscall", "syscall(SYS_getppid): one kernel entry and exit doing no work"},
      {"ioctl", "ioctl(/dev/uls, ULS_IOC_INFO): a null ioctl on the device, the raise's own system call "
                "without an upcall"},
      {"upcall", "ioctl(/dev/uls, ULS_IOC_RAISE): the kernel runs the registered extension (nothing but the "
                 "return call, syscall 451) in this process on the ioctl's way back to user mode, and the "
                 "return call restores the process: raise -> extension -> return"},
      {"signal", "tgkill(2) of SIGUSR1 to this thread, its handler, rt_sigreturn"},
      {"pipe", "one byte to a forked child and back through two pipes: a process round trip, two context "
               "switches on the guest's one CPU"},
  };
  return m;
}

namespace {

// Strict whole-token numbers.
template <typename T>
bool number(const std::string& s, T& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

// The words after `tag` as key=value pairs; false if a word is not one.
bool key_values(const std::string& rest, std::map<std::string, std::string>& kv) {
  std::istringstream w(rest);
  std::string word;
  while (w >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    kv[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return true;
}

// The line's text from `tag` followed by a space (or the end), if it has it.
std::optional<std::string> after_tag(const std::string& line, const std::string& tag) {
  for (size_t at = line.find(tag); at != std::string::npos; at = line.find(tag, at + 1)) {
    const size_t end = at + tag.size();
    if (end == line.size()) return std::string();
    if (line[end] == ' ') return line.substr(end + 1);
  }
  return std::nullopt;
}

bool numeric_fields(const std::map<std::string, std::string>& kv, std::map<std::string, long long>& out) {
  for (const auto& [k, v] : kv) {
    long long x;
    if (!number(v, x)) return false;
    out[k] = x;
  }
  return true;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

nlohmann::json ratio(const nlohmann::json& a, const nlohmann::json& b) {
  if (!a.is_number() || !b.is_number()) return nullptr;
  const double y = b.get<double>();
  return y > 0 ? nlohmann::json(a.get<double>() / y) : nlohmann::json(nullptr);
}

nlohmann::json ratios_of(const std::map<std::string, double>& med) {
  auto get = [&](const char* op) { return med.count(op) ? nlohmann::json(med.at(op)) : nlohmann::json(nullptr); };
  nlohmann::json beyond = nullptr;
  if (med.count("upcall") && med.count("ioctl")) beyond = med.at("upcall") - med.at("ioctl");
  return {{"upcall_over_syscall", ratio(get("upcall"), get("syscall"))},
          {"upcall_over_pipe_round_trip", ratio(get("upcall"), get("pipe"))},
          {"upcall_minus_ioctl_over_syscall", ratio(beyond, get("syscall"))}};
}

}  // namespace

GuestLog parse_guest_log(const std::string& serial_log) {
  GuestLog g;
  std::istringstream in(serial_log);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find("ULSNET-MICRO") == std::string::npos) continue;
    std::map<std::string, std::string> kv;
    if (auto rest = after_tag(line, "ULSNET-MICRO")) {
      Rep r;
      const bool ok = key_values(*rest, kv) && kv.count("op") && kv.count("rep") && kv.count("iterations") &&
                      kv.count("ns") && kv.count("mark_start") && kv.count("mark_end") && kv.count("mark_index") &&
                      number(kv["rep"], r.rep) && number(kv["iterations"], r.iterations) &&
                      number(kv["ns"], r.ns) && number(kv["mark_start"], r.mark_start) &&
                      number(kv["mark_end"], r.mark_end) && number(kv["mark_index"], r.mark_index) &&
                      r.rep >= 0 && r.mark_index >= 0 && r.iterations > 0 &&
                      std::find(op_names().begin(), op_names().end(), kv["op"]) != op_names().end();
      if (!ok) {
        g.malformed.push_back(line);
        continue;
      }
      auto& v = g.reps[kv["op"]];
      if (std::any_of(v.begin(), v.end(), [&](const Rep& x) { return x.rep == r.rep; })) {
        g.malformed.push_back(line + "  (duplicate repetition)");
        continue;
      }
      v.push_back(r);
    } else if (auto rest = after_tag(line, "ULSNET-MICRO-CONFIG")) {
      if (!key_values(*rest, kv) || !numeric_fields(kv, g.config)) g.malformed.push_back(line);
    } else if (auto rest = after_tag(line, "ULSNET-MICRO-UPCALLS")) {
      std::map<std::string, long long> c;
      if (!key_values(*rest, kv) || !numeric_fields(kv, c) || !c.count("upcalls"))
        g.malformed.push_back(line);
      else
        g.upcall_counters = c;
    } else if (auto rest = after_tag(line, "ULSNET-MICRO-ERROR")) {
      g.errors.push_back(*rest);
    } else if (auto rest = after_tag(line, "ULSNET-MICRO-DONE")) {
      int rc;
      if (key_values(*rest, kv) && kv.count("rc") && number(kv["rc"], rc)) {
        g.done = true;
        g.rc = rc;
      } else {
        g.malformed.push_back(line);
      }
    } else {
      g.malformed.push_back(line);
    }
  }
  return g;
}

std::vector<InsnMark> parse_insn_log(const std::string& insn_log, std::vector<std::string>* malformed) {
  std::vector<InsnMark> out;
  std::istringstream in(insn_log);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto rest = after_tag(line, "ULSNET-INSN");
    if (!rest) continue;
    std::map<std::string, std::string> kv;
    InsnMark m;
    if (key_values(*rest, kv) && kv.count("tag") && kv.count("user") && kv.count("kernel") && number(kv["tag"], m.tag) &&
        number(kv["user"], m.user) && number(kv["kernel"], m.kernel) && m.tag >= 0) {
      out.push_back(m);
    } else if (malformed) {
      malformed->push_back(line);
    }
  }
  return out;
}

nlohmann::json spread(const std::vector<double>& v) {
  if (v.empty()) return {{"median", nullptr}, {"min", nullptr}, {"max", nullptr}, {"reps", nlohmann::json::array()}};
  return {{"median", median_of(v)},
          {"min", *std::min_element(v.begin(), v.end())},
          {"max", *std::max_element(v.begin(), v.end())},
          {"reps", v}};
}

nlohmann::json summarize_run(const GuestLog& g, const std::optional<std::string>& insn_log,
                             const std::string& insns_unavailable, uint64_t iterations, int reps) {
  nlohmann::json run;
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& l : g.malformed) problems.push_back("malformed guest line: " + l);
  for (const auto& e : g.errors) problems.push_back("guest error: " + e);
  if (!g.done)
    problems.push_back("the guest did not finish (no ULSNET-MICRO-DONE line: timeout, its budget or a crash)");
  else if (g.rc != 0)
    problems.push_back("the guest finished with rc=" + std::to_string(g.rc));
  if (!g.config.count("protected")) problems.push_back("no ULSNET-MICRO-CONFIG line");
  run["guest_protected"] = g.config.count("protected") ? nlohmann::json(g.config.at("protected") != 0) : nullptr;

  // The plugin's marks by tag, in the order executed.
  std::map<int, std::vector<InsnMark>> marks;
  if (insn_log) {
    std::vector<std::string> bad;
    for (const InsnMark& m : parse_insn_log(*insn_log, &bad)) marks[m.tag].push_back(m);
    for (const auto& l : bad) problems.push_back("malformed instruction-log line: " + l);
  }

  bool all_reps = true;
  nlohmann::json ops = nlohmann::json::array(), missing = nlohmann::json::array();
  std::map<std::string, double> ns_med, insn_med;
  for (const std::string& op : op_names()) {
    std::vector<Rep> rs;
    if (auto it = g.reps.find(op); it != g.reps.end())
      for (const Rep& r : it->second) {
        if (r.iterations != iterations) {
          problems.push_back(op + " repetition " + std::to_string(r.rep) + ": " + std::to_string(r.iterations) +
                             " iterations, not the " + std::to_string(iterations) + " asked (left out)");
          continue;
        }
        rs.push_back(r);
      }
    if (rs.empty()) {
      missing.push_back(op);
      problems.push_back(op + ": no result in the guest's log");
      all_reps = false;
      continue;
    }
    if (int(rs.size()) != reps) {
      problems.push_back(op + ": " + std::to_string(rs.size()) + " of " + std::to_string(reps) + " repetitions");
      all_reps = false;
    }
    nlohmann::json e;
    e["op"] = op;
    e["what"] = op_definitions().at(op);
    e["iterations"] = iterations;
    std::vector<double> ns;
    for (const Rep& r : rs) ns.push_back(double(r.ns) / double(r.iterations));
    e["ns_per_op"] = spread(ns);
    ns_med[op] = e["ns_per_op"]["median"].get<double>();

    std::string why;
    std::vector<double> total, user, kernel;
    if (!insn_log) {
      why = insns_unavailable;
    } else {
      for (const Rep& r : rs) {
        const auto& s = marks[r.mark_start];
        const auto& f = marks[r.mark_end];
        const size_t k = size_t(r.mark_index);
        if (k >= s.size() || k >= f.size()) {
          why = "the instruction log has " + std::to_string(s.size()) + " start (tag " +
                std::to_string(r.mark_start) + ") and " + std::to_string(f.size()) + " end (tag " +
                std::to_string(r.mark_end) + ") marks, not the pass " + std::to_string(k) + " of repetition " +
                std::to_string(r.rep) + (s.empty() && f.empty() ? " (was the counting plugin loaded, under TCG?)" : "");
          break;
        }
        const InsnMark &a = s[k], &b = f[k];
        if (b.user < a.user || b.kernel < a.kernel) {
          why = "instruction counts went backwards between the marks of repetition " + std::to_string(r.rep);
          break;
        }
        const double n = double(r.iterations);
        user.push_back(double(b.user - a.user) / n);
        kernel.push_back(double(b.kernel - a.kernel) / n);
        total.push_back(double(b.user - a.user + b.kernel - a.kernel) / n);
      }
    }
    if (why.empty()) {
      nlohmann::json j = spread(total);
      j["user"] = spread(user);
      j["kernel"] = spread(kernel);
      e["insns_per_op"] = j;
      insn_med[op] = j["median"].get<double>();
    } else {
      e["insns_per_op_unavailable"] = why;
    }
    ops.push_back(e);
  }
  run["ops"] = ops;
  run["missing_ops"] = missing;
  run["ratios"] = ratios_of(ns_med);
  run["ratios_insns"] = ratios_of(insn_med);

  nlohmann::json kc = g.upcall_counters;
  if (g.upcall_counters.count("upcalls")) {
    const long long up = g.upcall_counters.at("upcalls");
    auto c = [&](const char* k) { return g.upcall_counters.count(k) ? g.upcall_counters.at(k) : -1; };
    if (up > 0) {
      kc["pages_mapped_per_upcall"] = double(c("pages_mapped")) / double(up);
      kc["run_ns_per_upcall"] = double(c("run_ns")) / double(up);
    }
    const bool consistent = c("raised") == up && c("returned") == up && c("in_current") == up && c("faults") == 0 &&
                            c("overruns") == 0 && c("coalesced") == 0;
    kc["every_raise_ran_in_the_raiser_and_returned"] = consistent;
    if (!consistent)
      problems.push_back("the kernel's counters do not show one returned upcall in the raiser per raise");
  } else if (!g.reps.count("upcall") || g.reps.at("upcall").empty()) {
    // nothing to check
  } else {
    problems.push_back("no ULSNET-MICRO-UPCALLS line (the kernel's counters)");
  }
  run["kernel_counters"] = kc;
  run["complete"] = g.done && g.rc == 0 && all_reps;
  run["problems"] = problems;
  return run;
}

}  // namespace ulsnet::vmmicro
