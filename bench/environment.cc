#include "bench/environment.h"

#include <pthread.h>
#include <signal.h>

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "bench/topology.h"

namespace ulsnet {

namespace {
const std::chrono::steady_clock::time_point g_process_start = std::chrono::steady_clock::now();
}  // namespace

double seconds_since_start() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - g_process_start).count();
}

std::string cpuinfo_field(const std::string& name) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(name, 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? "" : line.substr(c + 2);
    }
  return "";
}

std::string result_path(std::string out, const std::string& prefix) {
  if (out.empty()) {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
    out = "results/" + prefix + "-" + stamp + ".json";
  }
  // Relative to where `bazel run` was started (as a path typed there means), else the cwd.
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd && out[0] != '/') out = std::string(wd) + "/" + out;
  return std::filesystem::absolute(out).string();
}

std::string write_result(const nlohmann::json& doc, std::string out, const std::string& prefix) {
  out = result_path(std::move(out), prefix);
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  // Compact: a run keeps every trial whole (histograms included), tens of MB when indented.
  const std::string tmp = out + ".partial";
  // An interrupt waits until the file is whole and in place: a signal in the middle would leave
  // the temporary behind (the handlers clean up and re-raise; they do not return here).
  sigset_t term, old;
  sigemptyset(&term);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&term, sig);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  struct Restore {
    sigset_t* old;
    ~Restore() { pthread_sigmask(SIG_SETMASK, old, nullptr); }
  } restore{&old};
  {
    std::ofstream f(tmp);
    f << doc.dump() << "\n";
    f.flush();
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, out);
  return out;
}

nlohmann::json host_environment(const std::string& hosts) {
  utsname u{};
  uname(&u);
  std::string flags = " " + cpuinfo_field("flags") + " ";
  // The commit, and whether the tree differed from it (tracked files; untracked ones do not
  // build into anything). `describe` is `git describe --always --dirty`.
  std::string commit = "unknown", describe = "unknown";
  bool dirty = false;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    try {
      auto trim = [](std::string s) { return s.erase(s.find_last_not_of("\n ") + 1); };
      const std::string git = "git -C " + std::string(ws) + " ";
      commit = trim(run_command(git + "rev-parse HEAD"));
      dirty = !run_command(git + "status --porcelain --untracked-files=no").empty();
      if (dirty) commit += "-dirty";
      describe = trim(run_command(git + "describe --always --dirty --abbrev=12"));
    } catch (...) {
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::time_t t = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return {{"kernel", std::string(u.sysname) + " " + u.release},
          {"kernel_version", u.version},
          {"machine", u.machine},
          {"cpu_model", cpuinfo_field("model name")},
          {"cores", std::thread::hardware_concurrency()},
          {"pku", flags.find(" pku ") != std::string::npos},
          {"kvm_device", std::filesystem::exists("/dev/kvm")},
          {"hostname", host},
          {"commit", commit},
          {"describe", describe},
          {"dirty", dirty},
          // Measured here: a hypervisor under this machine (cpuinfo), the ULS kernel's device.
          {"virtualized", flags.find(" hypervisor ") != std::string::npos},
          {"uls_device", std::filesystem::exists("/dev/uls")},
          {"date", date},
          {"hosts", hosts}};
}

}  // namespace ulsnet
