#include "bench/environment.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/topology.h"

namespace ulsnet {

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

std::string write_result(const nlohmann::json& doc, std::string out, const std::string& prefix) {
  if (out.empty()) {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
    out = "results/" + prefix + "-" + stamp + ".json";
  }
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws && out[0] != '/') out = std::string(ws) + "/" + out;
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  std::ofstream(out) << doc.dump(1) << "\n";
  return out;
}

nlohmann::json host_environment(const std::string& hosts) {
  utsname u{};
  uname(&u);
  std::string flags = " " + cpuinfo_field("flags") + " ";
  std::string commit = "unknown";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    try {
      commit = run_command("git -C " + std::string(ws) + " rev-parse HEAD");
      commit.erase(commit.find_last_not_of("\n ") + 1);
      if (!run_command("git -C " + std::string(ws) + " status --porcelain --untracked-files=no").empty())
        commit += "-dirty";
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
          {"date", date},
          {"hosts", hosts}};
}

}  // namespace ulsnet
