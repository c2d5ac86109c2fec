// bazel run //paper:reproduce [-- --quick] [--out DIR] [--readme README.md]
// bazel run //paper:reproduce -- --from DIR [--out DIR] [--readme README.md] [--no-figures]
//
// Without --from: runs the experiments (as root) into OUT/results/, one JSON each, then judges
// them. A result file already in OUT/results/ that reads as its experiment's kind is kept, not
// re-run (--fresh re-runs everything). With --from: judges the result files in DIR only.
// Either way it draws the figures (//plots:figures) and writes OUT/report.md (default OUT:
// paper/) with OUT/figures/; with --readme, also replaces the README's generated verdict block.
// Relative paths are taken from where `bazel run` was started.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/run_lock.h"
#include "paper/claims.h"
#include "paper/report.h"

namespace {

std::string from_cwd(const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) return std::string(wd) + "/" + p;
  return p;
}

}  // namespace

namespace {

namespace fs = std::filesystem;

std::string self_runfiles(const char* argv0) {
  if (const char* r = std::getenv("RUNFILES_DIR")) return r;
  return std::string(argv0) + ".runfiles";
}

// One experiment: a binary of this workspace (a data dependency), its arguments (OUT replaced by
// the result path), the result file's name and kind, and how long it took here (an estimate for
// the progress line, from the reference runs' run_seconds).
struct Experiment {
  std::string name, binary;
  std::vector<std::string> args;
  std::string file, kind;
  int estimate_s;
};

std::vector<Experiment> experiments(bool quick) {
  const std::string micro_filter =
      "--benchmark_filter=NullSyscall|FunctionCall|ExtensionInvoke|DomainInvoke|ThreadHandoff|ProcessPipe|"
      "SignalRoundTrip|IoUringNop";
  if (quick)
    return {
        {"throughput, namespaces (--quick)", "bench/throughput", {"--quick", "--out", "OUT"}, "throughput.json", "netns", 45},
        {"service under competition, host (--quick)", "bench/jitter", {"--quick", "--out", "OUT"}, "jitter.json", "jitter", 15},
        {"micro-benchmarks", "bench/micro",
         {micro_filter, "--benchmark_repetitions=3", "--benchmark_min_time=0.05", "--benchmark_format=console",
          "--benchmark_out=OUT", "--benchmark_out_format=json"},
         "micro.json", "micro", 15},
        {"upcall cost on the ULS kernel (--quick)", "bench/vm_micro", {"--quick", "--out", "OUT"}, "vm-micro.json",
         "vm-micro", 15},
        {"jitter on the ULS kernel (--quick)", "bench/vm_jitter", {"--quick", "--protection", "kernel,none", "--out", "OUT"},
         "vm-jitter.json", "vm-jitter", 60},
    };
  return {
      // E1, E2, E3 (forwarding under competition) and E5 on the namespaces: one variant per
      // method (the paper's comparison) and the kernel-socket relay in all three forms (every
      // variant is //bench:throughput's default run), five
      // frame sizes, the offered load from 10% of each method's PDR into overload, the common load
      // with 0-4 CPU competitors. (The full reproduction's 30 minutes here: the sweep's 10/50/90%
      // and two overload points, three forwarding rates for C3, the VMs' search at 5 launches.)
      {"throughput, namespaces",
       "bench/throughput",
       {"--methods", "kernel-socket:batched,kernel-socket:per-datagram,kernel-socket:io_uring,raw-socket:af_packet,"
                     "user-thread:af_packet,sandbox:af_xdp,xdp-redirect:native",
        "--modes", "relay", "--sizes", "64,256,512,1024,1472", "--loads", "0.1,0.5,0.9,1.25,1.5",
        "--competitors", "0,1,2,4", "--out", "OUT"},
       "throughput.json",
       "netns",
       780},
      {"service under competition, host", "bench/jitter", {"--out", "OUT"}, "jitter.json", "jitter", 60},
      // E1/E2/E5 on the real ULS path: the quick set of methods (sandbox:uls and the three paper
      // baselines), relay, NDR/PDR by a search of one VM launch per trial, the delay at 10/50/90%
      // of each one's PDR, and one icount cost run per method (an instruction count, which host
      // load cannot move). Three repetitions (95% CIs) and 8 search launches under KVM; under TCG
      // (~13 s a launch) one and 5: with two the VM part took 952 s here, in a run that shared
      // the machine for 4 of its minutes, which the 30 minutes cannot hold.
      {"throughput, three VMs on the ULS kernel (NDR/PDR, 10/50/90% of each PDR)",
       "bench/throughput",
       {"--hosts=vm", "--quick", "--modes", "relay", "--vm-search", "--reps", "3", "--search-trials", "8",
        "--vm-tcg-reps", "1", "--vm-tcg-search-trials", "5", "--loads", "0.1,0.5,0.9", "--vm-cost-reps", "1",
        "--vm-cost-count", "5000", "--out", "OUT"},
       "throughput-vm.json",
       "vm",
       820},
      // Under TCG each delay is taken in guest instruction time (-icount, idle included), so two
      // launches per mode, side by side, show whether a boot repeats (here: to the nanosecond).
      {"jitter on the ULS kernel", "bench/vm_jitter",
       {"--protection", "kernel,none", "--hogs", "0,1,2,4", "--count", "1000", "--launches", "2", "--out", "OUT"},
       "vm-jitter.json", "vm-jitter", 100},
      {"zero-copy forwarding at paced rates", "bench/vm_forward", {"--rates", "1000,5000,20000", "--out", "OUT"},
       "vm-forward.json", "vm-forward", 165},
      {"upcall cost on the ULS kernel", "bench/vm_micro", {"--out", "OUT"}, "vm-micro.json", "vm-micro", 40},
      {"micro-benchmarks", "bench/micro",
       {micro_filter, "--benchmark_repetitions=5", "--benchmark_min_time=0.2", "--benchmark_format=console",
        "--benchmark_out=OUT", "--benchmark_out_format=json"},
       "micro.json", "micro", 60},
  };
}

// The document at `path` when it reads as `kind`.
bool finished(const std::string& path, const std::string& kind) {
  const nlohmann::json d = ulsnet::paper::read_result(path);
  // A run that was cut short leaves "complete": false (throughput writes after every point).
  return !d.is_discarded() && ulsnet::paper::kind_of(d) == kind && d.value("complete", true);
}

// Runs a binary of this workspace's runfiles (an experiment or the figures) and waits for it. It
// finds its own runfiles through RUNFILES_DIR; every path it is given is absolute, so
// BUILD_WORKING_DIRECTORY is not passed on.
int run_child(std::vector<std::string> args, const std::string& runfiles) {
  std::vector<char*> av;
  for (auto& x : args) av.push_back(x.data());
  av.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setenv("RUNFILES_DIR", runfiles.c_str(), 1);
    unsetenv("BUILD_WORKING_DIRECTORY");
    execv(av[0], av.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// E1/E2/E3/E5 across real hosts over SSH (--ssh SENDER,PROXY,RECEIVER): the paper's comparison
// (the sandbox on AF_XDP against the kernel-socket relay and the paper-era raw-socket and
// user-thread forms), relay, 64 B, NDR/PDR, the delay at 10/50/90% of each method's PDR, and the
// common load with CPU competitors on the proxy's CPU (latency, CPU per packet), through
// //bench:throughput --hosts=ssh; `extra` are passed on as given (e.g. --ssh-identity=KEY).
Experiment ssh_experiment(const std::vector<std::string>& hosts, const std::vector<std::string>& extra, bool quick) {
  Experiment e{quick ? "throughput, real hosts over SSH (quick)" : "throughput, real hosts over SSH",
               "bench/throughput",
               {"--hosts=ssh", "--sender", hosts[0], "--proxy", hosts[1], "--receiver", hosts[2], "--methods",
                quick ? "kernel-socket:batched,sandbox:af_xdp"
                      : "kernel-socket:batched,raw-socket:af_packet,user-thread:af_packet,sandbox:af_xdp",
                "--modes", "relay",
                "--sizes", "64", "--search", "--loads", "0.1,0.5,0.9",
                // E3/E5 on the forwarding path: the common load (half the kernel relay's PDR) with
                // 0.. CPU-bound competitors on the proxy's CPU, and the proxy's CPU per packet.
                "--competitors", quick ? "0,1" : "0,1,2,4",
                // Kernel methods own the proxy's test addresses, the Stack's must not: the agent
                // adds or removes them per method and restores them.
                "--proxy-addresses", "adjust"},
               "throughput-ssh.json",
               "ssh",
               quick ? 60 : 400};
  if (quick)
    for (const char* a : {"--reps", "1", "--duration", "0.5", "--search-duration", "0.2", "--search-precision", "0.05",
                          "--search-trials", "12"})
      e.args.push_back(a);
  e.args.insert(e.args.end(), extra.begin(), extra.end());
  e.args.insert(e.args.end(), {"--out", "OUT"});
  return e;
}

// What each result file in OUT/results/ was last run with: the experiment's arguments (OUT not
// yet replaced), by file name, in OUT/results/.reproduce-args (no .json: the report does not
// read it). A file made with other arguments (by --quick into the same directory, or another
// --ssh) is neither kept nor resumed but run again; a file with no record is judged as before.
constexpr const char* kArgsRecord = ".reproduce-args";

nlohmann::json read_args_record(const std::string& results_dir) {
  std::ifstream in(results_dir + "/" + kArgsRecord);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

void write_args_record(const std::string& results_dir, const nlohmann::json& j) {
  fs::create_directories(results_dir);
  const std::string path = results_dir + "/" + kArgsRecord;
  std::ofstream(path + ".partial") << j.dump(1) << "\n";
  fs::rename(path + ".partial", path);
}

// Runs what is not finished yet; returns the number of experiments that failed.
int run_experiments(const char* argv0, bool quick, bool fresh, const std::string& results_dir,
                    const std::vector<std::string>& ssh_hosts, const std::vector<std::string>& ssh_args,
                    const std::vector<std::string>& only) {
  const std::string runfiles = self_runfiles(argv0);
  auto list = experiments(quick);
  if (!ssh_hosts.empty()) list.push_back(ssh_experiment(ssh_hosts, ssh_args, quick));
  if (!only.empty())
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const Experiment& e) {
                                return std::find(only.begin(), only.end(), e.kind) == only.end();
                              }),
               list.end());
  int left_s = 0, failed = 0;
  for (const auto& e : list) left_s += e.estimate_s;
  nlohmann::json record = read_args_record(results_dir);
  for (size_t i = 0; i < list.size(); ++i) {
    const Experiment& e = list[i];
    const std::string out = results_dir + "/" + e.file;
    const nlohmann::json wanted = e.args;
    if (record.contains(e.file) && record[e.file] != wanted && fs::exists(out)) {
      fmt::print("[{}/{}] {}: {} was made with other arguments ({}); running it again\n", i + 1, list.size(), e.name,
                 out, record[e.file].dump());
      std::fflush(stdout);
      fs::remove(out);
    }
    if (fs::exists(out) && ulsnet::paper::kind_of(ulsnet::paper::read_result(out)) != e.kind) {
      // Not a result of this experiment (broken, or something else): nothing to keep or resume.
      fmt::print("[{}/{}] {}: {} is not a {} result; running it again\n", i + 1, list.size(), e.name, out, e.kind);
      std::fflush(stdout);
      fs::remove(out);
    }
    if (!fresh && finished(out, e.kind)) {
      fmt::print("[{}/{}] {}: kept from an earlier run ({}; --fresh re-runs it)\n", i + 1, list.size(), e.name, out);
      std::fflush(stdout);
      left_s -= e.estimate_s;
      continue;
    }
    const std::string bin = runfiles + "/ulsnet/" + e.binary;
    if (access(bin.c_str(), X_OK) != 0) {
      fmt::print(stderr, "reproduce: {} is not in the runfiles\n", e.binary);
      ++failed;
      continue;
    }
    fmt::print("[{}/{}] {}: running (about {} s; about {} min left in all)\n", i + 1, list.size(), e.name,
               e.estimate_s, (left_s + 59) / 60);
    std::fflush(stdout);
    std::vector<std::string> args = {bin};
    for (std::string a : e.args) {
      if (a == "OUT") a = out;
      else if (a == "--benchmark_out=OUT") a = "--benchmark_out=" + out;
      args.push_back(a);
    }
    // A failed run must not leave a file that reads as finished. Every experiment writes its
    // file after every point, launch or benchmark with "complete": false, and the same --out
    // resumes it: that file is kept.
    if (fresh) fs::remove(out);
    record[e.file] = wanted;
    write_args_record(results_dir, record);
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = run_child(args, runfiles);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    left_s -= e.estimate_s;
    if (rc != 0 || !finished(out, e.kind)) {
      fmt::print(stderr, "reproduce: {} failed (exit {}); the report will say what is missing\n", e.name, rc);
      ++failed;
    } else {
      fmt::print("[{}/{}] {}: done in {:.0f} s\n", i + 1, list.size(), e.name, took);
      std::fflush(stdout);
    }
  }
  return failed;
}

// report.pdf beside report.md when a converter is at hand: pandoc (Markdown to groff -ms) and
// groff's PDF device with pdfinfo (poppler-utils) for the figures; "" when it was made, else why not.
std::string write_pdf(const std::string& out_dir, const std::string& runfiles) {
  if (run_child({"/bin/sh", "-c", "command -v pandoc >/dev/null && command -v groff >/dev/null && command -v pdfinfo >/dev/null"}, runfiles) != 0)
    return "no PDF: it needs pandoc, groff and pdfinfo (tools/setup.sh installs them)";
  const std::string ms = out_dir + "/report.ms";
  if (run_child({"/bin/sh", "-c", "cd \"$0\" && pandoc report.md -t ms -s -o report.ms", out_dir}, runfiles) != 0)
    return "no PDF: pandoc failed";
  std::stringstream ss;
  ss << std::ifstream(ms).rdbuf();
  const std::string fixed = ulsnet::paper::ms_with_figures(ss.str(), "figures", [&](const std::string& name) {
    return fs::exists(fs::path(out_dir) / "figures" / (name + ".pdf"));
  });
  std::ofstream(ms) << fixed;
  const int r = run_child({"/bin/sh", "-c",
                           "cd \"$0\" && groff -U -ms -Tpdf -t -e -k report.ms > report.pdf.partial 2> /dev/null && "
                           "mv report.pdf.partial report.pdf",
                           out_dir},
                          runfiles);
  fs::remove(ms);
  if (r != 0) {
    fs::remove(out_dir + "/report.pdf.partial");
    return "no PDF: groff failed";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ulsnet reproduce: the paper's claims judged from stored results, with figures and a report"};
  std::vector<std::string> froms;
  std::string out = "paper", readme;
  bool no_figures = false, quick = false, fresh = false;
  app.add_option("--from", froms,
                 "judge the result files in this directory (e.g. bench/reference); no experiment runs. Repeatable: "
                 "the directories are read together, each kind's newest file wins");
  app.add_flag("--quick", quick, "the short experiments (about 2 min here); without --from");
  app.add_flag("--fresh", fresh, "re-run experiments whose result file is already in OUT/results");
  app.add_option("--out", out, "where report.md and figures/ go (default paper)");
  app.add_option("--readme", readme, "a README whose generated verdict block to replace");
  app.add_flag("--no-figures", no_figures, "skip the figures");
  std::vector<std::string> ssh_hosts, ssh_args;
  app.add_option("--ssh", ssh_hosts,
                 "also run E1/E2 across real hosts: SENDER,PROXY,RECEIVER (as ssh names them; see bench/README.md, "
                 "Real hosts over SSH)")
      ->delimiter(',')
      ->expected(3);
  std::vector<std::string> only;
  app.add_option("--only", only,
                 "run only these experiments, by kind: netns, jitter, vm, vm-jitter, vm-forward, vm-micro, micro, ssh "
                 "(the report still judges every file in OUT/results)")
      ->delimiter(',')
      ->check(CLI::IsMember({"netns", "jitter", "vm", "vm-jitter", "vm-forward", "vm-micro", "micro", "ssh"}));
  app.add_option("--ssh-arg", ssh_args,
                 "an argument for //bench:throughput --hosts=ssh, repeatable (e.g. --ssh-arg=--ssh-identity=KEY)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::string from = froms.empty() ? "" : froms.front();
  if (!from.empty() && (quick || fresh || !ssh_hosts.empty() || !only.empty())) {
    fmt::print(stderr, "reproduce: --quick, --fresh, --only and --ssh run experiments; --from only judges stored results\n");
    return 2;
  }
  if (std::find(only.begin(), only.end(), "ssh") != only.end() && ssh_hosts.empty()) {
    fmt::print(stderr, "reproduce: --only ssh needs --ssh SENDER,PROXY,RECEIVER\n");
    return 2;
  }
  if (!ssh_args.empty() && ssh_hosts.empty()) {
    fmt::print(stderr, "reproduce: --ssh-arg needs --ssh SENDER,PROXY,RECEIVER\n");
    return 2;
  }
  int experiment_failures = 0;
  std::optional<ulsnet::RunLock> lock;  // the benchmarks it runs work under it (bench/run_lock.h)
  if (from.empty()) {
    if (geteuid() != 0) {
      fmt::print(stderr,
                 "reproduce: running the experiments needs root (network namespaces, packet sockets, VMs); to judge "
                 "stored results instead: --from bench/reference\n");
      return 2;
    }
    from = (fs::path(out) / "results").string();
    std::error_code ec;
    fs::create_directories(from_cwd(from), ec);
    if (ec) {
      fmt::print(stderr, "reproduce: cannot create {}: {}\n", from_cwd(from), ec.message());
      return 2;
    }
    if (!(lock = ulsnet::RunLock::take_or_explain("reproduce", argc, argv))) return 3;
    experiment_failures = run_experiments(argv[0], quick, fresh, from_cwd(from), ssh_hosts, ssh_args, only);
    froms = {from};
  }
  std::vector<std::string> from_dirs;
  for (const auto& f : froms) from_dirs.push_back(from_cwd(f));
  const std::string from_dir = from_cwd(from), out_dir = from_cwd(out);
  ulsnet::paper::Inputs in;
  try {
    in = ulsnet::paper::load_inputs(from_dirs);
  } catch (const std::exception& e) {
    fmt::print(stderr, "reproduce: {}\n", e.what());
    return 2;
  }
  // The report names inputs as the user typed the directory, not by this machine's absolute path.
  std::map<std::string, std::string> absolute = in.files;
  auto shown = [&](const std::string& p) {
    for (size_t k = 0; k < from_dirs.size(); ++k)
      if (fs::path(p).parent_path().lexically_normal() == fs::path(from_dirs[k]).lexically_normal())
        return (fs::path(froms[k]) / fs::path(p).filename()).lexically_normal().string();
    return p;
  };
  for (auto& [kind, path] : in.files) path = shown(path);
  for (size_t k = 0; k < from_dirs.size(); ++k) {
    const std::string prefix = fs::path(from_dirs[k]).lexically_normal().string() + "/";
    const std::string typed = fs::path(froms[k]).lexically_normal().string() + "/";
    for (std::string& i : in.ignored)
      for (size_t at = 0; (at = i.find(prefix, at)) != std::string::npos; at += typed.size())
        i.replace(at, prefix.size(), typed);
  }
  if (in.files.empty()) {
    fmt::print(stderr, "reproduce: no result file in {}\n", from_dirs.front());
    return 2;
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    fmt::print(stderr, "reproduce: cannot create {}: {}\n", out_dir, ec.message());
    return 2;
  }
  const auto claims = ulsnet::paper::evaluate_claims(in);

  nlohmann::json manifest = nlohmann::json::array();
  int rc = 0;
  if (!no_figures) {
    const std::string runfiles = self_runfiles(argv[0]), bin = runfiles + "/ulsnet/plots/figures";
    std::vector<std::string> files;
    for (const auto& [kind, path] : absolute)
      if (kind.find("stability") == std::string::npos) files.push_back(fs::absolute(path).string());
    const std::string fig_dir = out_dir + "/figures";
    std::vector<std::string> args = {bin, "--out", fig_dir};
    args.insert(args.end(), files.begin(), files.end());
    if (access(bin.c_str(), X_OK) != 0) {
      fmt::print(stderr, "reproduce: the figures binary (//plots:figures) is not in the runfiles\n");
      rc = 1;
    } else if (int r = run_child(args, runfiles); r != 0) {
      fmt::print(stderr, "reproduce: //plots:figures failed (exit {})\n", r);
      rc = 1;
    } else {
      std::ifstream mf(fig_dir + "/figures.json");
      nlohmann::json m = nlohmann::json::parse(mf, nullptr, false);
      if (m.is_array())
        for (auto& f : m) {
          if (f.contains("files") && f["files"].is_array())
            for (auto& p : f["files"])
              p = fs::relative(fs::path(p.get<std::string>()).is_absolute() ? fs::path(p.get<std::string>())
                                                                             : fs::path(fig_dir) / p.get<std::string>(),
                               out_dir)
                      .string();
          manifest.push_back(f);
        }
    }
  }
  std::string command = "bazel run //paper:reproduce --" + std::string(quick ? " --quick" : "") +
                        "";
  if (from != (fs::path(out) / "results").string() || froms.size() > 1)
    for (const auto& f : froms) command += " --from " + f;
  if (out != "paper") command += " --out " + out;
  if (!readme.empty()) command += " --readme " + readme;
  if (command.size() > 3 && command.compare(command.size() - 3, 3, " --") == 0) command.resize(command.size() - 3);
  const std::string report = ulsnet::paper::render_report(claims, in, manifest, command);
  const std::string report_path = out_dir + "/report.md";
  {
    std::ofstream f(report_path);
    f << report;
    if (!f) {
      fmt::print(stderr, "reproduce: cannot write {}\n", report_path);
      return 1;
    }
  }
  if (!readme.empty()) {
    const std::string rp = from_cwd(readme);
    std::ifstream f(rp);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) {
      fmt::print(stderr, "reproduce: cannot read {}\n", rp);
      return 2;
    }
    try {
      const std::string link = fs::relative(report_path, fs::path(rp).parent_path()).string();
      const std::string updated =
          ulsnet::paper::replace_generated_block(ss.str(), ulsnet::paper::render_verdict_table(claims, link));
      std::ofstream o(rp);
      o << updated;
    } catch (const std::exception& e) {
      fmt::print(stderr, "reproduce: {}: {}\n", rp, e.what());
      return 2;
    }
  }
  for (const auto& c : claims) fmt::print("{} {:<34} {}\n", c.id, c.title, ulsnet::paper::verdict_name(c.verdict));
  fmt::print("report: {}\n", report_path);
  if (!no_figures) {
    if (const std::string why = write_pdf(out_dir, self_runfiles(argv[0])); why.empty())
      fmt::print("report: {}/report.pdf\n", out_dir);
    else
      fmt::print("report: {}\n", why);
  }
  if (experiment_failures) fmt::print(stderr, "reproduce: {} experiment(s) failed\n", experiment_failures);
  return rc != 0 || experiment_failures ? 1 : 0;
}
