// What //bench:vm_micro reads back from its guest (bench/guest/uls_micro.c) and the QEMU
// instruction-count plugin (kernel/qemu/insn_count.c), and one run's JSON built from them. Pure
// (no VM, no files): unit-tested on synthetic logs (vm_micro_parse_test.cc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::vmmicro {

// The operations the guest measures, in its order, and what one of each is.
const std::vector<std::string>& op_names();
const std::map<std::string, std::string>& op_definitions();

// One timed repetition: "ULSNET-MICRO op=OP rep=I iterations=N ns=T mark_start=S mark_end=E
// mark_index=K": its instruction counts are the (K+1)-th executions of the marks tagged S and E.
struct Rep {
  int rep = -1;
  uint64_t iterations = 0, ns = 0;
  int mark_start = -1, mark_end = -1, mark_index = -1;
};

struct GuestLog {
  std::map<std::string, long long> config;            // ULSNET-MICRO-CONFIG
  std::map<std::string, std::vector<Rep>> reps;       // by op, in the order printed
  std::map<std::string, long long> upcall_counters;   // ULSNET-MICRO-UPCALLS (the kernel's)
  std::vector<std::string> errors;                    // ULSNET-MICRO-ERROR (the rest of the line)
  std::vector<std::string> malformed;                 // lines with a ULSNET-MICRO tag that did not parse
  bool done = false;                                  // ULSNET-MICRO-DONE seen
  int rc = -1;                                        // its rc
};

// The serial console's text (kernel messages, '\r', other programs' lines are skipped).
GuestLog parse_guest_log(const std::string& serial_log);

// One "ULSNET-INSN tag=T user=U kernel=K" line of the plugin's log, in the order executed.
struct InsnMark {
  int tag = -1;
  uint64_t user = 0, kernel = 0;
};
std::vector<InsnMark> parse_insn_log(const std::string& insn_log, std::vector<std::string>* malformed = nullptr);

// Median (mean of the middle two for an even count), min, max and every value: {"median", "min",
// "max", "reps"}. Empty input: nulls and an empty list.
nlohmann::json spread(const std::vector<double>& v);

// One run's JSON: {"complete", "guest_protected", "ops": [...], "ratios": {...}, "ratios_insns":
// {...}, "kernel_counters": {...}, "problems": [...]}. `insn_log` is the plugin's log, or
// nullopt when no counting ran; `insns_unavailable` then says why. `iterations` and `reps` are
// what was asked: repetitions with other iteration counts are refused, missing ones are problems.
nlohmann::json summarize_run(const GuestLog& g, const std::optional<std::string>& insn_log,
                             const std::string& insns_unavailable, uint64_t iterations, int reps);

}  // namespace ulsnet::vmmicro
