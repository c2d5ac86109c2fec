// //bench:vm_micro's reading of its guest's serial log and of the instruction-count plugin's log,
// and one run's JSON, on synthetic text: kernel noise, '\r', malformed lines, a missing
// operation, missing or inconsistent instruction marks.
#include "bench/vm_micro_parse.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace ulsnet::vmmicro {
namespace {

// Three repetitions of 1000 per operation; per op k the guest's marks are tags 2k+1 and 2k+2.
// ns per op: function 10/12/11, syscall 1000/1100/900, ioctl 1200 x3, upcall 3000/3300/2700,
// signal 5000 x3, pipe 30000/32000/31000.
std::string full_log() {
  return "[    0.512345] Run /init as init process\r\n"
         "ULSNET-GUEST-UP role=single kernel=6.1.0\r\n"
         "ULSNET-MICRO-CONFIG iterations=1000 warmup=100 reps=3 protected=1\r\n"
         "ULSNET-MICRO op=function rep=0 iterations=1000 ns=10000 mark_start=1 mark_end=2 mark_index=1\r\n"
         "ULSNET-MICRO op=function rep=1 iterations=1000 ns=12000 mark_start=1 mark_end=2 mark_index=2\r\n"
         "ULSNET-MICRO op=function rep=2 iterations=1000 ns=11000 mark_start=1 mark_end=2 mark_index=3\r\n"
         "ULSNET-MICRO op=syscall rep=0 iterations=1000 ns=1000000 mark_start=3 mark_end=4 mark_index=1\n"
         "ULSNET-MICRO op=syscall rep=1 iterations=1000 ns=1100000 mark_start=3 mark_end=4 mark_index=2\n"
         "ULSNET-MICRO op=syscall rep=2 iterations=1000 ns=900000 mark_start=3 mark_end=4 mark_index=3\n"
         "ULSNET-MICRO op=ioctl rep=0 iterations=1000 ns=1200000 mark_start=5 mark_end=6 mark_index=1\n"
         "ULSNET-MICRO op=ioctl rep=1 iterations=1000 ns=1200000 mark_start=5 mark_end=6 mark_index=2\n"
         "ULSNET-MICRO op=ioctl rep=2 iterations=1000 ns=1200000 mark_start=5 mark_end=6 mark_index=3\n"
         "ULSNET-MICRO op=upcall rep=0 iterations=1000 ns=3000000 mark_start=7 mark_end=8 mark_index=1\n"
         "ULSNET-MICRO op=upcall rep=1 iterations=1000 ns=3300000 mark_start=7 mark_end=8 mark_index=2\n"
         "ULSNET-MICRO op=upcall rep=2 iterations=1000 ns=2700000 mark_start=7 mark_end=8 mark_index=3\n"
         "ULSNET-MICRO-UPCALLS raised=3100 events=3100 upcalls=3100 returned=3100 in_current=3100 in_host=0 "
         "coalesced=0 faults=0 overruns=0 denied_syscalls=0 run_ns=31000000 pages_mapped=6200\n"
         "ULSNET-MICRO op=signal rep=0 iterations=1000 ns=5000000 mark_start=9 mark_end=10 mark_index=1\n"
         "ULSNET-MICRO op=signal rep=1 iterations=1000 ns=5000000 mark_start=9 mark_end=10 mark_index=2\n"
         "ULSNET-MICRO op=signal rep=2 iterations=1000 ns=5000000 mark_start=9 mark_end=10 mark_index=3\n"
         "ULSNET-MICRO op=pipe rep=0 iterations=1000 ns=30000000 mark_start=11 mark_end=12 mark_index=1\n"
         "ULSNET-MICRO op=pipe rep=1 iterations=1000 ns=32000000 mark_start=11 mark_end=12 mark_index=2\n"
         "ULSNET-MICRO op=pipe rep=2 iterations=1000 ns=31000000 mark_start=11 mark_end=12 mark_index=3\n"
         "ULSNET-MICRO-DONE rc=0\n"
         "ULSNET-RESULT name=uls_micro_guest status=pass\n"
         "ULSNET-GUEST-DONE\n";
}

// Marks for every op: a warm-up pass (100 operations that cost 30 times more: translation),
// then per repetition user u and kernel k instructions per op (rep r adds r to the kernel's
// count per op), counts starting from a running total.
std::string insn_log(int ops = 6, int reps = 3) {
  std::string s = "some QEMU message\n";
  uint64_t user = 1000000, kernel = 5000000;
  const uint64_t per_user[6] = {5, 3, 4, 60, 40, 100};
  const uint64_t per_kernel[6] = {0, 200, 300, 900, 1500, 9000};
  for (int op = 0; op < ops; ++op)
    for (int r = -1; r < reps; ++r) {
      const uint64_t n = r < 0 ? 100 : 1000, f = r < 0 ? 30 : 1;
      user += 777;  // between repetitions: the clock read, the printf
      kernel += 333;
      s += "ULSNET-INSN tag=" + std::to_string(2 * op + 1) + " user=" + std::to_string(user) +
           " kernel=" + std::to_string(kernel) + "\n";
      user += per_user[op] * n * f;
      kernel += (per_kernel[op] + uint64_t(r < 0 ? 0 : r)) * n * f;
      s += "ULSNET-INSN tag=" + std::to_string(2 * op + 2) + " user=" + std::to_string(user) +
           " kernel=" + std::to_string(kernel) + "\n";
    }
  return s;
}

const nlohmann::json* op_entry(const nlohmann::json& run, const std::string& op) {
  for (const auto& e : run["ops"])
    if (e["op"] == op) return &e;
  return nullptr;
}

TEST(VmMicroParse, ReadsEveryLineOfACompleteRun) {
  const GuestLog g = parse_guest_log(full_log());
  EXPECT_TRUE(g.done);
  EXPECT_EQ(g.rc, 0);
  EXPECT_TRUE(g.malformed.empty());
  EXPECT_EQ(g.config.at("protected"), 1);
  EXPECT_EQ(g.config.at("iterations"), 1000);
  ASSERT_EQ(g.reps.size(), 6u);
  ASSERT_EQ(g.reps.at("upcall").size(), 3u);
  EXPECT_EQ(g.reps.at("upcall")[1].ns, 3300000u);
  EXPECT_EQ(g.reps.at("upcall")[1].mark_start, 7);
  EXPECT_EQ(g.upcall_counters.at("pages_mapped"), 6200);
}

TEST(VmMicroParse, CompleteRunGivesMediansRatiosAndInstructions) {
  const nlohmann::json run = summarize_run(parse_guest_log(full_log()), insn_log(), "", 1000, 3);
  EXPECT_TRUE(run["complete"].get<bool>()) << run.dump(2);
  EXPECT_TRUE(run["problems"].empty()) << run.dump(2);
  EXPECT_TRUE(run["missing_ops"].empty());
  EXPECT_EQ(run["guest_protected"], true);
  ASSERT_EQ(run["ops"].size(), 6u);
  EXPECT_EQ(run["ops"][0]["op"], "function");  // the guest's order

  const nlohmann::json* up = op_entry(run, "upcall");
  ASSERT_NE(up, nullptr);
  EXPECT_DOUBLE_EQ((*up)["ns_per_op"]["median"].get<double>(), 3000.0);
  EXPECT_DOUBLE_EQ((*up)["ns_per_op"]["min"].get<double>(), 2700.0);
  EXPECT_DOUBLE_EQ((*up)["ns_per_op"]["max"].get<double>(), 3300.0);
  EXPECT_EQ((*up)["ns_per_op"]["reps"], nlohmann::json({3000.0, 3300.0, 2700.0}));
  EXPECT_EQ((*up)["iterations"], 1000);
  ASSERT_TRUE(up->contains("insns_per_op")) << up->dump(2);
  EXPECT_FALSE(up->contains("insns_per_op_unavailable"));
  EXPECT_DOUBLE_EQ((*up)["insns_per_op"]["median"].get<double>(), 60 + 901);
  EXPECT_DOUBLE_EQ((*up)["insns_per_op"]["min"].get<double>(), 60 + 900);
  EXPECT_DOUBLE_EQ((*up)["insns_per_op"]["max"].get<double>(), 60 + 902);
  EXPECT_DOUBLE_EQ((*up)["insns_per_op"]["user"]["median"].get<double>(), 60);
  EXPECT_DOUBLE_EQ((*up)["insns_per_op"]["kernel"]["median"].get<double>(), 901);

  EXPECT_DOUBLE_EQ(run["ratios"]["upcall_over_syscall"].get<double>(), 3000.0 / 1000.0);
  EXPECT_DOUBLE_EQ(run["ratios"]["upcall_over_pipe_round_trip"].get<double>(), 3000.0 / 31000.0);
  EXPECT_DOUBLE_EQ(run["ratios"]["upcall_minus_ioctl_over_syscall"].get<double>(), (3000.0 - 1200.0) / 1000.0);
  EXPECT_DOUBLE_EQ(run["ratios_insns"]["upcall_over_syscall"].get<double>(), 961.0 / 204.0);
  EXPECT_DOUBLE_EQ(run["ratios_insns"]["upcall_over_pipe_round_trip"].get<double>(), 961.0 / 9101.0);

  const auto& kc = run["kernel_counters"];
  EXPECT_EQ(kc["every_raise_ran_in_the_raiser_and_returned"], true);
  EXPECT_DOUBLE_EQ(kc["pages_mapped_per_upcall"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(kc["run_ns_per_upcall"].get<double>(), 10000.0);
}

TEST(VmMicroParse, EvenNumberOfRepetitionsTakesTheMeanOfTheMiddleTwo) {
  const nlohmann::json s = spread({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s["median"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(s["min"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(s["max"].get<double>(), 4);
  EXPECT_TRUE(spread({})["median"].is_null());
}

TEST(VmMicroParse, MalformedLinesAreRefusedAndReported) {
  std::string log = full_log();
  const std::string bad[] = {
      "ULSNET-MICRO op=upcall rep=3 iterations=1000 ns=12x mark_start=7 mark_end=8",   // not a number
      "ULSNET-MICRO op=upcall rep=4 iterations=1000 mark_start=7 mark_end=8",          // no ns
      "ULSNET-MICRO op=teleport rep=0 iterations=1000 ns=5 mark_start=1 mark_end=2 mark_index=1",   // unknown op
      "ULSNET-MICRO op=upcall rep=0 iterations=1000 ns=1 mark_start=7 mark_end=8 mark_index=1",     // duplicate rep
      "ULSNET-MICRO op=signal rep=1 iter[   1.5] random: crng init done",               // interleaved
      "ULSNET-MICRO-WHATEVER x=1",
      "ULSNET-MICRO-UPCALLS upcalls=abc",
      "ULSNET-MICRO op=pipe rep=5 iterations=1000 ns=5 mark_start=11 mark_end=12",    // no mark_index
  };
  for (const auto& b : bad) log += b + "\n";
  const GuestLog g = parse_guest_log(log);
  EXPECT_EQ(g.malformed.size(), std::size(bad));
  EXPECT_EQ(g.reps.at("upcall").size(), 3u);
  EXPECT_EQ(g.reps.at("upcall")[0].ns, 3000000u);  // the first of a repeated rep stays
  EXPECT_EQ(g.upcall_counters.at("upcalls"), 3100);  // the bad line replaced nothing
  const nlohmann::json run = summarize_run(g, insn_log(), "", 1000, 3);
  EXPECT_TRUE(run["complete"].get<bool>());  // every op has its repetitions
  int malformed = 0;
  for (const auto& p : run["problems"]) malformed += p.get<std::string>().rfind("malformed guest line", 0) == 0;
  EXPECT_EQ(malformed, int(std::size(bad)));
}

TEST(VmMicroParse, AMissingOperationIsListedAndItsRatiosAreNull) {
  std::string log, l;
  std::istringstream in(full_log());
  while (std::getline(in, l))
    if (l.find("op=pipe") == std::string::npos) log += l + "\n";
  // The guest died in the pipe operation (no DONE line either).
  log = log.substr(0, log.find("ULSNET-MICRO-DONE"));
  const nlohmann::json run = summarize_run(parse_guest_log(log), insn_log(5), "", 1000, 3);
  EXPECT_FALSE(run["complete"].get<bool>());
  EXPECT_EQ(run["missing_ops"], nlohmann::json({"pipe"}));
  EXPECT_EQ(op_entry(run, "pipe"), nullptr);
  ASSERT_NE(op_entry(run, "upcall"), nullptr);
  EXPECT_TRUE(run["ratios"]["upcall_over_pipe_round_trip"].is_null());
  EXPECT_TRUE(run["ratios_insns"]["upcall_over_pipe_round_trip"].is_null());
  EXPECT_DOUBLE_EQ(run["ratios"]["upcall_over_syscall"].get<double>(), 3.0);
  bool said_missing = false, said_unfinished = false;
  for (const auto& p : run["problems"]) {
    said_missing |= p.get<std::string>() == "pipe: no result in the guest's log";
    said_unfinished |= p.get<std::string>().find("did not finish") != std::string::npos;
  }
  EXPECT_TRUE(said_missing) << run["problems"].dump(2);
  EXPECT_TRUE(said_unfinished) << run["problems"].dump(2);
}

TEST(VmMicroParse, MissingRepetitionsAndWrongIterationCountsMakeARunIncomplete) {
  std::string log = full_log();
  const auto at = log.find("ULSNET-MICRO op=signal rep=2");
  log.erase(at, log.find('\n', at) + 1 - at);
  const auto f = log.find("op=function rep=2 iterations=1000");
  log.replace(f, std::string("op=function rep=2 iterations=1000").size(), "op=function rep=2 iterations=999");
  const nlohmann::json run = summarize_run(parse_guest_log(log), insn_log(), "", 1000, 3);
  EXPECT_FALSE(run["complete"].get<bool>());
  EXPECT_EQ((*op_entry(run, "signal"))["ns_per_op"]["reps"].size(), 2u);
  EXPECT_EQ((*op_entry(run, "function"))["ns_per_op"]["reps"].size(), 2u);
  EXPECT_GE(run["problems"].size(), 3u) << run["problems"].dump(2);  // 2 of 3 twice, 999 left out
}

TEST(VmMicroParse, WithoutCountingInstructionsAreAbsentWithTheReason) {
  const nlohmann::json run =
      summarize_run(parse_guest_log(full_log()), std::nullopt, "not counted: the accelerator was kvm", 1000, 3);
  EXPECT_TRUE(run["complete"].get<bool>());
  for (const auto& e : run["ops"]) {
    EXPECT_FALSE(e.contains("insns_per_op"));
    EXPECT_EQ(e["insns_per_op_unavailable"], "not counted: the accelerator was kvm");
  }
  EXPECT_TRUE(run["ratios_insns"]["upcall_over_syscall"].is_null());
  EXPECT_TRUE(run["ratios"]["upcall_over_syscall"].is_number());
}

TEST(VmMicroParse, AnInstructionLogWithoutMarksOrGoingBackwardsGivesNoCounts) {
  nlohmann::json run = summarize_run(parse_guest_log(full_log()), std::string("no marks here\n"), "", 1000, 3);
  const std::string why = (*op_entry(run, "upcall"))["insns_per_op_unavailable"];
  EXPECT_NE(why.find("plugin"), std::string::npos) << why;

  // The end mark of the syscall's first repetition (after the warm-up's) below its start.
  std::string log = insn_log();
  const auto at = log.find("ULSNET-INSN tag=4 ", log.find("ULSNET-INSN tag=4 ") + 1);
  log.replace(at, log.find('\n', at) - at, "ULSNET-INSN tag=4 user=1 kernel=1");
  run = summarize_run(parse_guest_log(full_log()), log, "", 1000, 3);
  EXPECT_NE((*op_entry(run, "syscall"))["insns_per_op_unavailable"].get<std::string>().find("backwards"),
            std::string::npos);
  EXPECT_TRUE(op_entry(run, "upcall")->contains("insns_per_op"));

  // A malformed plugin line is reported, the rest used.
  run = summarize_run(parse_guest_log(full_log()), insn_log() + "ULSNET-INSN tag=x user=1\n", "", 1000, 3);
  EXPECT_TRUE(op_entry(run, "pipe")->contains("insns_per_op"));
  EXPECT_EQ(run["problems"].size(), 1u) << run["problems"].dump(2);
}

TEST(VmMicroParse, KernelCountersThatDoNotAddUpAreAProblem) {
  std::string log = full_log();
  const auto at = log.find("in_current=3100");
  log.replace(at, std::string("in_current=3100").size(), "in_current=3000");
  const nlohmann::json run = summarize_run(parse_guest_log(log), insn_log(), "", 1000, 3);
  EXPECT_EQ(run["kernel_counters"]["every_raise_ran_in_the_raiser_and_returned"], false);
  EXPECT_EQ(run["problems"].size(), 1u) << run["problems"].dump(2);
}

}  // namespace
}  // namespace ulsnet::vmmicro
