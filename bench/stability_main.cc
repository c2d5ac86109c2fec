// //bench:stability: the stability record of several result files of one experiment (see
// bench/stability.h).
//
//   bazel run //bench:stability -- --kind netns --out bench/reference/stability-netns.json
//       results/throughput-A.json results/throughput-B.json results/throughput-C.json
//   (one command: the result files follow the options)
//
// Reads only results; relative paths are taken from where `bazel run` was started. Exit 0 when
// the record could be made (whether or not the goal is met), 2 for bad input.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "bench/environment.h"
#include "bench/stability.h"

int main(int argc, char** argv) {
  using namespace ulsnet;
  std::string kind = "netns", out;
  std::vector<std::string> files;
  CLI::App app{"ulsnet stability: how much a headline ratio moves between runs"};
  app.add_option("--kind", kind, "netns (PDR ratio) or vm (cost-per-packet ratio)")->check(CLI::IsMember({"netns", "vm"}));
  app.add_option("--out", out, "where to write the record (default: results/stability-<kind>-<time>.json)");
  app.add_option("files", files, "result files of the runs (two or more)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "stability: {}\n", e.what());
    return 2;
  }
  if (files.size() < 2) {
    fmt::print(stderr, "stability: give two or more result files\n");
    return 2;
  }
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  std::vector<nlohmann::json> docs;
  for (const std::string& f : files) {
    const std::string path = (wd && !f.empty() && f[0] != '/') ? std::string(wd) + "/" + f : f;
    std::ifstream in(path);
    if (!in) {
      fmt::print(stderr, "stability: cannot read {}\n", f);
      return 2;
    }
    nlohmann::json d = nlohmann::json::parse(in, nullptr, false);
    if (d.is_discarded() || !d.is_object()) {
      fmt::print(stderr, "stability: {} is not a result document\n", f);
      return 2;
    }
    docs.push_back(std::move(d));
  }
  const StabilityKind k = kind == "netns" ? StabilityKind::kNetns : StabilityKind::kVm;
  nlohmann::json rec = stability_record(docs, files, k);
  rec["environment"] = host_environment(kind);
  const std::string path = write_result(rec, out, "stability-" + kind);
  fmt::print("{}: headline ratios", kind);
  for (const auto& r : rec["headline_ratios"]) fmt::print(" {:.3f}", r.get<double>());
  if (rec.contains("spread"))
    fmt::print(", spread {:.1f}% (goal <= {:.0f}%): {}\n", 100 * rec["spread"].get<double>(),
               100 * rec["goal_spread"].get<double>(), rec["status"].get<std::string>());
  else
    fmt::print(": {} ({})\n", rec["status"].get<std::string>(), rec.value("note", ""));
  fmt::print("record: {}\n", path);
  return 0;
}
