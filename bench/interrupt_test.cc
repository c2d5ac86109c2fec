// //bench:throughput as a user runs it (the binary, from its runfiles), stopped in the ways runs
// end early:
//   - SIGINT or SIGTERM at >= 20 random moments, spread over the experiment's phases (start-up
//     and calibration, the max-load points, the NDR/PDR search, the offered-load sweep, the
//     common load, the next job's hosts) and, on the VMs, during boot and during the run: the
//     run dies of the signal within seconds and leaves no namespace, network interface, BPF
//     program, process or VM work directory behind; its output file, if it wrote one, is a valid
//     partial result ("complete": false) that the same command then resumes to the end;
//   - a second run while one runs: it refuses at once, naming the first;
//   - a peer (the proxy, the sink) killed in the middle of a trial: the run ends within seconds
//     with an error naming the peer, how it died and when, also in the file.
// Leftover processes are found as this test's children: it makes itself the child subreaper,
// so whatever the run started and left is re-parented here. Set ULSNET_INTERRUPT_SEED to replay
// the moments of an earlier run (the seed is printed).
#include <dirent.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- what a run may leave behind --------------------------------------------------------------

std::string slurp_file(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}


std::set<uint32_t> bpf_prog_ids() {
  std::set<uint32_t> ids;
  bpf_attr a{};
  for (uint32_t id = 0;;) {
    std::memset(&a, 0, sizeof a);
    a.start_id = id;
    if (syscall(__NR_bpf, BPF_PROG_GET_NEXT_ID, &a, sizeof a) != 0) break;
    id = a.next_id;
    ids.insert(id);
  }
  return ids;
}

std::set<std::string> dir_names(const std::string& dir, const std::string& prefix = "") {
  std::set<std::string> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename();
    if (n.rfind(prefix, 0) == 0) v.insert(n);
  }
  return v;
}

// This process's live children (after reaping the dead ones): what a run left running, with
// their command lines.
std::vector<std::string> live_children() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  std::vector<std::string> v;
  const std::string self = std::to_string(getpid());
  for (const std::string& p : dir_names("/proc")) {
    if (p.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + p + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = s.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(s.substr(close + 2));
    std::string state, ppid;
    rest >> state >> ppid;
    if (ppid != self || state == "Z") continue;
    std::string cmd = slurp_file("/proc/" + p + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    v.push_back(p + " (" + s.substr(s.find('(') + 1, close - s.find('(') - 1) + ": " + cmd.substr(0, 200) + ")");
  }
  return v;
}

struct Snapshot {
  std::set<uint32_t> progs = bpf_prog_ids();
  std::set<std::string> links = dir_names("/sys/class/net");
  std::set<std::string> vm_dirs = dir_names(fs::temp_directory_path(), "ulsnet-vm-");
};

template <typename T>
std::vector<T> added(const std::set<T>& before, const std::set<T>& now) {
  std::vector<T> v;
  std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(v));
  return v;
}

// Everything `pid`'s run left, in words; empty if nothing. Namespaces must be gone at once; a
// command the run had started (an `ip` of the host set-up) may take a moment to finish by
// itself, and the kernel frees a deleted namespace's interfaces and their XDP programs
// asynchronously: those get a few seconds.
std::string leftovers(pid_t pid, const Snapshot& before) {
  std::string out;
  for (const std::string& n : dir_names("/run/netns", "ulsnet-" + std::to_string(pid) + "-")) out += " namespace " + n;
  std::vector<std::string> procs = live_children();
  for (auto t0 = Clock::now(); !procs.empty() && since(t0) < 3; procs = live_children())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const std::string& c : procs) {
    out += " process " + c;
    kill(std::stoi(c), SIGKILL);
  }
  for (const std::string& d : added(before.vm_dirs, dir_names(fs::temp_directory_path(), "ulsnet-vm-"))) {
    out += " directory " + (fs::temp_directory_path() / d).string();
    std::error_code ec;
    fs::remove_all(fs::temp_directory_path() / d, ec);
  }
  std::vector<uint32_t> progs;
  std::vector<std::string> links;
  for (auto t0 = Clock::now(); since(t0) < 10;) {
    progs = added(before.progs, bpf_prog_ids());
    links = added(before.links, dir_names("/sys/class/net"));
    if (progs.empty() && links.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (uint32_t p : progs) out += " bpf-program " + std::to_string(p);
  for (const std::string& l : links) out += " interface " + l;
  return out;
}

// ---- a run of the binary ----------------------------------------------------------------------

class BenchRun {
 public:
  explicit BenchRun(const std::vector<std::string>& args) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    static const std::string bin = vm::runfile("bench/throughput");
    t0_ = Clock::now();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(p[1], 1);
      dup2(p[1], 2);
      std::vector<char*> av;
      av.push_back(const_cast<char*>(bin.c_str()));
      for (const std::string& a : args) av.push_back(const_cast<char*>(a.c_str()));
      av.push_back(nullptr);
      execv(bin.c_str(), av.data());
      _exit(127);
    }
    close(p[1]);
    fd_ = p[0];
  }
  ~BenchRun() {
    if (!exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }
  pid_t pid() const { return pid_; }
  const std::string& output() const { return out_; }
  double seconds() const { return since(t0_); }

  // Reads the run's output for up to `ms`; true once it has exited.
  bool pump(int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    do {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, 20) > 0) {
        char b[8192];
        const ssize_t n = read(fd_, b, sizeof b);
        if (n > 0) out_.append(b, size_t(n));
      }
      if (!exited_ && waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
      if (exited_) {  // what it wrote last
        for (ssize_t n; (n = read(fd_, buf_, sizeof buf_)) > 0;) out_.append(buf_, size_t(n));
        return true;
      }
    } while (Clock::now() < end);
    return false;
  }
  // Waits up to `s` seconds for `text` in the output (after offset `from`); false if the run
  // ended or the time passed first.
  bool wait_for(const std::string& text, double s, size_t from = 0) {
    const auto t0 = Clock::now();
    while (out_.find(text, from) == std::string::npos) {
      if (pump(50) || since(t0) > s) return out_.find(text, from) != std::string::npos;
    }
    return true;
  }
  bool wait_exit(double s) {
    const auto t0 = Clock::now();
    while (!pump(100))
      if (since(t0) > s) return false;
    return true;
  }
  bool exited() const { return exited_; }
  int status() const { return status_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_;
  char buf_[8192];
  Clock::time_point t0_;
};

std::string tail(const std::string& s, size_t n = 3000) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; }

std::string describe(int st) {
  if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
  if (WIFEXITED(st)) return "exit " + std::to_string(WEXITSTATUS(st));
  return "status " + std::to_string(st);
}

// The namespace run every moment interrupts: two jobs, each with every phase, in ~20 s. Two
// repetitions per point, so that the first trial's line of a phase (the marker a moment waits
// for) comes while the phase's second trial is still to run.
std::vector<std::string> netns_args(const std::string& out) {
  return {"--methods", "kernel-socket:batched", "sandbox:af_xdp", "--modes", "relay", "--sizes", "64", "--rates",
          "max", "--duration", "0.3", "--reps", "2", "--search-duration", "0.1", "--search-trials", "12",
          "--final-trials", "1", "--search-precision", "0.3", "--loads", "0.5", "--out", out};
}

// A phase of the run: its marker (text whose first appearance means the phase runs; "" from the
// start) and the longest random wait after it.
struct Phase {
  const char* name;
  const char* marker;
  int max_delay_ms;
};
constexpr Phase kNetnsPhases[] = {
    {"start-up and calibration", "", 1500},
    {"calibration", "calibration (sender -> receiver", 400},
    {"max-load point", "relay max load", 300},
    {"search", "relay search", 600},
    {"offered-load sweep", "% of its PDR", 300},
    {"common load", "relay common load", 300},
    {"the next job's hosts", "[job 1/2 done", 300},
};

uint64_t seed() {
  if (const char* s = std::getenv("ULSNET_INTERRUPT_SEED")) return std::strtoull(s, nullptr, 10);
  return uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
}

// Checks a file the run left: valid JSON, a partial result of this schema, and (when the output
// says the first job finished before the signal) that job's results in it.
void expect_valid_partial(const std::string& path, const std::string& output_before_signal, const std::string& what) {
  std::ifstream in(path);
  if (!in) return;  // signalled before it saved anything: nothing gathered, nothing to keep
  nlohmann::json d;
  ASSERT_NO_THROW(d = nlohmann::json::parse(in)) << what << ": " << path << " is not valid JSON";
  EXPECT_EQ(d.value("schema", ""), "ulsnet.throughput.v2") << what;
  EXPECT_EQ(d.value("complete", true), false) << what << ": an interrupted run's file says complete";
  EXPECT_TRUE(d.contains("environment") && d.contains("config")) << what;
  for (const auto& r : d.value("results", nlohmann::json::array()))
    EXPECT_TRUE(r.contains("point") && r.contains("samples")) << what << ": a result row without its point: " << r.dump();
  if (output_before_signal.find("[job 1/2 done") != std::string::npos) {
    size_t first_job = 0;
    for (const auto& r : d.value("results", nlohmann::json::array())) first_job += r.value("method", "") == "kernel-socket";
    EXPECT_GT(first_job, 0u) << what << ": the first job finished before the signal but its results are not in the file";
  }
  for (const std::string& n : dir_names(fs::path(path).parent_path()))
    EXPECT_EQ(n, fs::path(path).filename().string()) << what << ": a stray file next to the result";
}

class Interrupt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    tmp_ = vm::test_tmpdir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
    // One lock for every run of the test, as on a machine (bench/run_lock.h).
    setenv("ULSNET_RUN_LOCK", (tmp_ + "/measure.lock").c_str(), 1);
  }
  std::string tmp_;
};

TEST_F(Interrupt, AtTwentyRandomMomentsTheRunLeavesNothingAndAValidPartialFile) {
  const uint64_t s = seed();
  std::printf("ULSNET_INTERRUPT_SEED=%llu\n", static_cast<unsigned long long>(s));
  RecordProperty("seed", std::to_string(s));
  std::mt19937_64 rng(s);
  constexpr int kMoments = 21;
  std::map<std::string, int> hit;
  int delivered = 0;
  std::string last_out;
  for (int k = 0; k < kMoments; ++k) {
    const Phase& ph = kNetnsPhases[size_t(k) % std::size(kNetnsPhases)];
    const int sig = std::uniform_int_distribution<int>(0, 1)(rng) ? SIGINT : SIGTERM;
    const int delay = std::uniform_int_distribution<int>(0, ph.max_delay_ms)(rng);
    const std::string dir = tmp_ + "/m" + std::to_string(k);
    fs::create_directories(dir);
    const std::string out = dir + "/throughput.json";
    const std::string what = "moment " + std::to_string(k) + " (" + ph.name + " + " + std::to_string(delay) + " ms, " +
                             strsignal(sig) + ", seed " + std::to_string(s) + ")";
    const Snapshot before;
    BenchRun run(netns_args(out));
    if (*ph.marker && !run.wait_for(ph.marker, 60)) {
      ADD_FAILURE() << what << ": the run " << (run.exited() ? "ended" : "did not reach the phase") << " first:\n"
                    << tail(run.output());
      continue;
    }
    run.pump(delay);
    if (run.exited()) {
      ADD_FAILURE() << what << ": the run ended (" << describe(run.status()) << ") before the signal:\n" << tail(run.output());
      continue;
    }
    const std::string before_signal = run.output();
    kill(run.pid(), sig);
    ++delivered;
    ++hit[ph.name];
    const auto t_sig = Clock::now();
    ASSERT_TRUE(run.wait_exit(20)) << what << ": still running 20 s after the signal:\n" << tail(run.output());
    std::printf("%s: ended %.2f s after the signal, %.1f s into the run\n", what.c_str(), since(t_sig), run.seconds());
    EXPECT_TRUE(WIFSIGNALED(run.status()) && WTERMSIG(run.status()) == sig)
        << what << ": " << describe(run.status()) << ", not killed by its signal\n" << tail(run.output());
    EXPECT_EQ(leftovers(run.pid(), before), "") << what << "\n" << tail(run.output());
    expect_valid_partial(out, before_signal, what);
    last_out = out;
  }
  EXPECT_GE(delivered, 20);
  for (const Phase& ph : kNetnsPhases) EXPECT_GT(hit[ph.name], 0) << "no moment in " << ph.name;

  // The partial file resumes: the same command finishes it, keeping what was measured.
  ASSERT_FALSE(last_out.empty());
  std::ifstream in(last_out);
  const bool had_file = bool(in);
  const Snapshot before;
  BenchRun resumed(netns_args(last_out));
  ASSERT_TRUE(resumed.wait_exit(180)) << tail(resumed.output());
  EXPECT_TRUE(WIFEXITED(resumed.status()) && WEXITSTATUS(resumed.status()) == 0)
      << describe(resumed.status()) << "\n" << tail(resumed.output());
  if (had_file) {
    EXPECT_NE(resumed.output().find("throughput: resuming"), std::string::npos) << tail(resumed.output());
  }
  std::ifstream done(last_out);
  nlohmann::json d = nlohmann::json::parse(done);
  EXPECT_EQ(d.value("complete", false), true);
  EXPECT_EQ(leftovers(resumed.pid(), before), "");
}

TEST_F(Interrupt, ASecondRunRefusesNamingTheFirst) {
  const Snapshot before;
  BenchRun first(netns_args(tmp_ + "/first.json"));
  ASSERT_TRUE(first.wait_for("calibration (sender -> receiver", 60)) << tail(first.output());
  BenchRun second(netns_args(tmp_ + "/second.json"));
  ASSERT_TRUE(second.wait_exit(20)) << "the second run did not stop:\n" << tail(second.output());
  EXPECT_TRUE(WIFEXITED(second.status()) && WEXITSTATUS(second.status()) == 3) << describe(second.status());
  EXPECT_NE(second.output().find("another ulsnet measurement is running"), std::string::npos) << second.output();
  EXPECT_NE(second.output().find("throughput (pid " + std::to_string(first.pid()) + ","), std::string::npos)
      << "the refusal does not name the first run (pid " << first.pid() << "):\n" << second.output();
  EXPECT_FALSE(fs::exists(tmp_ + "/second.json"));
  EXPECT_FALSE(first.exited()) << "the first run stopped:\n" << tail(first.output());
  kill(first.pid(), SIGINT);
  ASSERT_TRUE(first.wait_exit(20));
  EXPECT_EQ(leftovers(first.pid(), before), "");
  EXPECT_EQ(leftovers(second.pid(), before), "");
  // The lock went with its holder: a run now starts (and is stopped as soon as it does).
  BenchRun third(netns_args(tmp_ + "/third.json"));
  ASSERT_TRUE(third.wait_for("calibration (sender -> receiver", 60)) << tail(third.output());
  kill(third.pid(), SIGTERM);
  ASSERT_TRUE(third.wait_exit(20));
  EXPECT_EQ(leftovers(third.pid(), before), "");
}

// The pid of a role process of `run` (forked, so named as the binary; not one of the set-up's
// `ip` commands) inside its namespace whose name ends in `suffix` ("-prx"), 0 if none now.
pid_t process_in(pid_t run, const std::string& suffix) {
  for (const std::string& n : dir_names("/run/netns", "ulsnet-" + std::to_string(run) + "-")) {
    if (n.size() < suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    struct stat ns {};
    if (stat(("/run/netns/" + n).c_str(), &ns) != 0) continue;
    for (const std::string& p : dir_names("/proc")) {
      if (p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) == run) continue;
      struct stat st {};
      if (stat(("/proc/" + p + "/ns/net").c_str(), &st) != 0 || st.st_ino != ns.st_ino || st.st_dev != ns.st_dev)
        continue;
      std::string comm = slurp_file("/proc/" + p + "/comm");
      if (comm.rfind("throughput", 0) == 0) return std::stoi(p);
    }
  }
  return 0;
}

class DyingPeer : public Interrupt, public ::testing::WithParamInterface<const char*> {};

TEST_P(DyingPeer, EndsTheRunWithAnErrorNamingThePeer) {
  const std::string role = GetParam(), suffix = role == "proxy" ? "-prx" : "-rcv";
  const std::string out = tmp_ + "/run.json";
  const Snapshot before;
  // Long trials, no calibration: the peer is found and killed while the stream runs.
  BenchRun run({"--methods", "sandbox:af_xdp", "--modes", "relay", "--sizes", "64", "--rates", "max", "--duration", "20",
           "--reps", "1", "--no-search", "--no-calibrate", "--out", out});
  pid_t victim = 0;
  for (auto t0 = Clock::now(); !victim && since(t0) < 60 && !run.pump(20);) victim = process_in(run.pid(), suffix);
  ASSERT_GT(victim, 0) << "no " << role << " process appeared:\n" << tail(run.output());
  run.pump(500);  // into the stream
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto t_kill = Clock::now();
  ASSERT_TRUE(run.wait_exit(15)) << "the run went on after its " << role << " died:\n" << tail(run.output());
  // Well inside the 20 s trial: the generator was stopped, the run did not wait it out.
  EXPECT_LT(since(t_kill), 15);
  EXPECT_TRUE(WIFEXITED(run.status()) && WEXITSTATUS(run.status()) == 1) << describe(run.status()) << "\n"
                                                                          << tail(run.output());
  const std::string said = "the " + role + " (pid " + std::to_string(victim) + ") died";
  EXPECT_NE(run.output().find(said), std::string::npos) << tail(run.output());
  EXPECT_NE(run.output().find("killed by signal 9"), std::string::npos) << tail(run.output());
  EXPECT_NE(run.output().find("throughput: the run ends"), std::string::npos) << tail(run.output());
  std::ifstream in(out);
  ASSERT_TRUE(in) << "no result file";
  const nlohmann::json d = nlohmann::json::parse(in);
  EXPECT_EQ(d.value("complete", true), false);
  ASSERT_TRUE(d.contains("ended_by")) << d.dump(1);
  const nlohmann::json& pd = d["ended_by"]["peer_died"];
  EXPECT_EQ(pd.value("role", ""), role);
  EXPECT_EQ(pd.value("pid", 0), victim);
  EXPECT_GT(pd.value("after_s", 0.0), 0.0);
  EXPECT_GT(pd.value("run_s", 0.0), 0.0);
  EXPECT_NE(pd.value("during", "").find("max load"), std::string::npos) << pd.dump();
  // The row of the point it died in carries the same error.
  ASSERT_EQ(d["results"].size(), 1u) << d.dump(1);
  const nlohmann::json& sample = d["results"][0]["samples"][0];
  EXPECT_NE(sample.value("error", "").find(said), std::string::npos) << sample.dump(1);
  EXPECT_EQ(leftovers(run.pid(), before), "");
}

INSTANTIATE_TEST_SUITE_P(Peers, DyingPeer, ::testing::Values("proxy", "sink"));

// ---- the virtual hosts ------------------------------------------------------------------------

std::vector<std::string> vm_args(const std::string& out) {
  return {"--hosts", "vm", "--methods", "kernel-socket:batched", "--modes", "relay", "--sizes", "64", "--rates", "max",
          "--duration", "2", "--reps", "1", "--vm-icount", "off", "--out", out};
}

// The newest launch's log directory of a VM run started after `before` (its work directory
// under the temporary directory), "" if none yet.
std::string vm_launch_dir(const Snapshot& before) {
  for (const std::string& d : added(before.vm_dirs, dir_names(fs::temp_directory_path(), "ulsnet-vm-")))
    for (const std::string& l : dir_names((fs::temp_directory_path() / d).string()))
      if (fs::is_directory(fs::temp_directory_path() / d / l)) return (fs::temp_directory_path() / d / l).string();
  return "";
}

class VmInterrupt : public Interrupt {
 protected:
  void SetUp() override {
    Interrupt::SetUp();
    if (IsSkipped()) return;
    if (std::system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "qemu-system-x86_64 not installed (tools/setup.sh)";
  }
};

// SIGINT or SIGTERM while the three VMs boot, and while the stream runs in them.
TEST_F(VmInterrupt, DuringBootAndDuringTheRunNothingIsLeft) {
  const uint64_t s = seed() + 1;
  std::printf("ULSNET_INTERRUPT_SEED=%llu (VM moments: seed + 1)\n", static_cast<unsigned long long>(s - 1));
  std::mt19937_64 rng(s);
  for (const char* phase : {"build", "boot", "run"}) {
    const int sig = std::uniform_int_distribution<int>(0, 1)(rng) ? SIGINT : SIGTERM;
    // (Into the build by 2-6 s: past its first steps, which write output, into the long silent
    // ones, the compiler's or the tree's check, which nothing but the interrupt would end.)
    const int delay = phase == std::string("run")    ? std::uniform_int_distribution<int>(0, 1500)(rng)
                      : phase == std::string("boot") ? std::uniform_int_distribution<int>(0, 3000)(rng)
                                                     : std::uniform_int_distribution<int>(2000, 6000)(rng);
    const std::string what = std::string("VM ") + phase + " + " + std::to_string(delay) + " ms, " + strsignal(sig);
    const std::string out = tmp_ + "/" + phase + ".json";
    const Snapshot before;
    BenchRun run(vm_args(out));
    // Build: the guest kernel's build (kernel/build.sh, seconds even when nothing changed) has
    // started, no launch yet. Boot: the launch has started (its consoles exist), no guest is up
    // yet. Run: the sender's guest is up (the stream starts at once).
    std::string dir;
    const auto t0 = Clock::now();
    for (; since(t0) < 1200 && !run.pump(100);) {  // the first launch may build the guest kernel
      if (phase == std::string("build")) {
        if (run.output().find("building the guest kernel") == std::string::npos) continue;
        dir = "(none yet)";
        break;
      }
      dir = vm_launch_dir(before);
      if (dir.empty()) continue;
      const std::string sender = slurp_file(dir + "/sender.log");
      if (phase == std::string("boot") ? fs::exists(dir + "/proxy.log") && sender.find("ULSNET-GUEST-UP") == std::string::npos
                                       : sender.find("ULSNET-GUEST-UP") != std::string::npos)
        break;
    }
    ASSERT_FALSE(run.exited()) << what << ": the run ended first (" << describe(run.status()) << "):\n" << tail(run.output());
    ASSERT_FALSE(dir.empty()) << what << ": no launch started:\n" << tail(run.output());
    run.pump(delay);
    ASSERT_FALSE(run.exited()) << what << ": the run ended before the signal:\n" << tail(run.output());
    const std::string before_signal = run.output();
    kill(run.pid(), sig);
    const auto t_sig = Clock::now();
    ASSERT_TRUE(run.wait_exit(30)) << what << ": still running 30 s after the signal:\n" << tail(run.output());
    const double took = since(t_sig);
    std::printf("%s: ended %.2f s after the signal\n", what.c_str(), took);
    // Within seconds, whatever it was doing: a kernel build it waited for must end with it (before
    // the build's commands had a process group the interrupt ends, the run waited ~10 s for it).
    EXPECT_LT(took, 5.0) << what << ": ended " << took << " s after the signal";
    EXPECT_TRUE(WIFSIGNALED(run.status()) && WTERMSIG(run.status()) == sig) << what << ": " << describe(run.status());
    EXPECT_EQ(leftovers(run.pid(), before), "") << what << "\n" << tail(run.output());
    if (std::ifstream in(out); in) {
      nlohmann::json d;
      ASSERT_NO_THROW(d = nlohmann::json::parse(in)) << what;
      EXPECT_EQ(d.value("complete", true), false) << what;
      EXPECT_EQ(d.value("schema", ""), "ulsnet.throughput-vm.v2") << what;
    }
  }
}

// The proxy's QEMU killed while the stream runs: the launcher sees it within a second, the run
// ends naming it, not at the launch's timeout.
TEST_F(VmInterrupt, ADeadProxyVmEndsTheRunNamingIt) {
  const std::string out = tmp_ + "/run.json";
  const Snapshot before;
  BenchRun run(vm_args(out));
  std::string dir;
  for (const auto t0 = Clock::now(); since(t0) < 1200 && !run.pump(100);) {
    dir = vm_launch_dir(before);
    if (!dir.empty() && slurp_file(dir + "/sender.log").find("ULSNET-GUEST-UP") != std::string::npos) break;
  }
  ASSERT_FALSE(run.exited()) << tail(run.output());
  const std::string pid = slurp_file(dir + "/proxy.pid");
  ASSERT_FALSE(pid.empty()) << "no proxy.pid in " << dir;
  const pid_t qemu = std::stoi(pid);
  ASSERT_EQ(kill(qemu, SIGKILL), 0);
  const auto t_kill = Clock::now();
  ASSERT_TRUE(run.wait_exit(60)) << "the run went on after its proxy VM died:\n" << tail(run.output());
  EXPECT_LT(since(t_kill), 60);
  EXPECT_TRUE(WIFEXITED(run.status()) && WEXITSTATUS(run.status()) == 1) << describe(run.status()) << "\n"
                                                                          << tail(run.output());
  EXPECT_NE(run.output().find("the proxy VM (QEMU pid " + std::to_string(qemu) + ") died"), std::string::npos)
      << tail(run.output());
  std::ifstream in(out);
  ASSERT_TRUE(in) << "no result file";
  const nlohmann::json d = nlohmann::json::parse(in);
  EXPECT_EQ(d.value("complete", true), false);
  ASSERT_TRUE(d.contains("ended_by")) << d.dump(1);
  EXPECT_EQ(d["ended_by"]["peer_died"].value("role", ""), "proxy VM");
  EXPECT_EQ(d["ended_by"]["peer_died"].value("pid", 0), qemu);
  ASSERT_FALSE(d["results"].empty());
  EXPECT_NE(d["results"].back().value("error", "").find("died"), std::string::npos);
  // The logs of the failed launch are kept for the diagnosis; nothing else is left.
  std::string left = leftovers(run.pid(), before);
  EXPECT_EQ(left.find("process"), std::string::npos) << left;
}

}  // namespace
}  // namespace ulsnet
