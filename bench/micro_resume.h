// //bench:micro point by point (pure, unit-tested; bench/micro.cc runs the processes). Given
// --benchmark_out=FILE, each benchmark instance the filter selects runs alone (the same binary,
// --benchmark_filter=^NAME$, its own JSON), and FILE is rewritten after each with what is done so
// far: Google Benchmark's JSON (`context`, `benchmarks[]`) plus "experiment": "micro", the
// configuration (the arguments that shape the numbers, and the instances), "complete", and
// every row's "point" (its instance). Run again with the same FILE and arguments, the instances
// FILE finished are kept and only the rest run (bench/resume.h; --fresh starts over).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::micro {

// `s` as a regular expression that matches exactly `s` (Google Benchmark's filter is a regex).
std::string regex_escape(const std::string& s);

// The instance names of --benchmark_list_tests output (one per line; blank lines dropped).
std::vector<std::string> parse_listing(const std::string& listing);

// The configuration two runs must agree on to share a file: the arguments as given (minus
// --benchmark_out, --fresh and the display format, which change no number) and the instances.
nlohmann::json configuration(const std::vector<std::string>& args, const std::vector<std::string>& instances);

// An empty document of a resumable run.
nlohmann::json new_document(const nlohmann::json& config);

// Adds what a child that ran `instance` alone wrote (`part`: Google Benchmark's JSON) to `doc`:
// its rows, each with "point" = instance; the first part's `context` becomes the document's.
// A part with no rows is an error row (so a rerun runs the instance again).
void add_part(nlohmann::json& doc, const nlohmann::json& part, const std::string& instance);

// An error row for an instance whose child failed: "error" (not kept on resume) and Google
// Benchmark's own error fields (what the plots read).
nlohmann::json error_row(const std::string& instance, const std::string& why);

// `text` with bare NaN / nan / Infinity / inf tokens (signed or not) outside strings (Google
// Benchmark's non-finite counters, e.g. the cv of a counter that is always 0; not JSON)
// replaced by null.
std::string null_non_finite(const std::string& text);

// Google Benchmark's JSON output as a document (non-finite tokens read as null); discarded when
// it is not JSON even so.
nlohmann::json parse_benchmark_json(const std::string& text);

}  // namespace ulsnet::micro
