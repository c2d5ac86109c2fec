// bazel run //paper:reproduce -- --from DIR [--out DIR] [--readme README.md] [--no-figures]
//
// Judges the paper's claims from the result files in DIR (e.g. bench/reference), draws the
// figures (//plots:figures) and writes OUT/report.md (default paper/) with OUT/figures/; with
// --readme, also replaces the README's generated verdict block. Relative paths are taken from
// where `bazel run` was started. Running the experiments themselves from here (without --from)
// is not built yet.
#include <sys/wait.h>
#include <unistd.h>

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

#include "paper/claims.h"
#include "paper/report.h"

namespace {

std::string from_cwd(const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) return std::string(wd) + "/" + p;
  return p;
}

// The figures binary next to this one in the runfiles tree.
std::string figures_binary(const char* argv0) {
  std::vector<std::string> dirs;
  if (const char* r = std::getenv("RUNFILES_DIR")) dirs.push_back(r);
  dirs.push_back(std::string(argv0) + ".runfiles");
  for (const std::string& d : dirs) {
    const std::string p = d + "/ulsnet/plots/figures";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

int run_figures(const std::string& bin, const std::string& out, const std::vector<std::string>& files) {
  std::vector<std::string> args = {bin, "--out", out};
  args.insert(args.end(), files.begin(), files.end());
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  av.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    unsetenv("BUILD_WORKING_DIRECTORY");  // the paths given are absolute already
    execv(av[0], av.data());
    _exit(127);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ulsnet reproduce: the paper's claims judged from stored results, with figures and a report"};
  std::string from, out = "paper", readme;
  bool no_figures = false;
  app.add_option("--from", from, "a directory of result files (e.g. bench/reference)");
  app.add_option("--out", out, "where report.md and figures/ go (default paper)");
  app.add_option("--readme", readme, "a README whose generated verdict block to replace");
  app.add_flag("--no-figures", no_figures, "skip the figures");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (from.empty()) {
    fmt::print(stderr,
               "reproduce: running the experiments from here is not built yet (issue 11); give --from DIR to judge "
               "stored results, e.g. --from bench/reference\n");
    return 2;
  }
  namespace fs = std::filesystem;
  const std::string from_dir = from_cwd(from), out_dir = from_cwd(out);
  ulsnet::paper::Inputs in;
  try {
    in = ulsnet::paper::load_inputs(from_dir);
  } catch (const std::exception& e) {
    fmt::print(stderr, "reproduce: {}\n", e.what());
    return 2;
  }
  // The report names inputs as the user typed the directory, not by this machine's absolute path.
  std::map<std::string, std::string> absolute = in.files;
  auto shown = [&](const std::string& p) {
    const std::string rel = fs::path(p).lexically_relative(from_dir).string();
    return (fs::path(from) / rel).lexically_normal().string();
  };
  for (auto& [kind, path] : in.files) path = shown(path);
  const std::string prefix = fs::path(from_dir).lexically_normal().string() + "/";
  const std::string typed = fs::path(from).lexically_normal().string() + "/";
  for (std::string& i : in.ignored)
    for (size_t at = 0; (at = i.find(prefix, at)) != std::string::npos; at += typed.size())
      i.replace(at, prefix.size(), typed);
  if (in.files.empty()) {
    fmt::print(stderr, "reproduce: no result file in {}\n", from_dir);
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
    const std::string bin = figures_binary(argv[0]);
    std::vector<std::string> files;
    for (const auto& [kind, path] : absolute)
      if (kind.find("stability") == std::string::npos && kind != "micro") files.push_back(fs::absolute(path).string());
    const std::string fig_dir = out_dir + "/figures";
    if (bin.empty()) {
      fmt::print(stderr, "reproduce: the figures binary (//plots:figures) is not in the runfiles\n");
      rc = 1;
    } else if (int r = run_figures(bin, fig_dir, files); r != 0) {
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
  std::string command = "bazel run //paper:reproduce -- --from " + from;
  if (out != "paper") command += " --out " + out;
  if (!readme.empty()) command += " --readme " + readme;
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
  return rc;
}
