#include "bench/micro_resume.h"

#include <cctype>
#include <sstream>

namespace ulsnet::micro {

std::string regex_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) r += '\\';
    r += c;
  }
  return r;
}

std::vector<std::string> parse_listing(const std::string& listing) {
  std::vector<std::string> v;
  std::istringstream in(listing);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) v.push_back(line);
  }
  return v;
}

nlohmann::json configuration(const std::vector<std::string>& args, const std::vector<std::string>& instances) {
  std::vector<std::string> kept;
  for (const std::string& a : args)
    if (a.rfind("--benchmark_out=", 0) != 0 && a != "--fresh" && a.rfind("--benchmark_format=", 0) != 0 &&
        a.rfind("--benchmark_color=", 0) != 0)
      kept.push_back(a);
  return {{"args", kept}, {"instances", instances}};
}

nlohmann::json new_document(const nlohmann::json& config) {
  return {{"experiment", "micro"},
          {"config", config},
          {"context", nlohmann::json::object()},
          {"benchmarks", nlohmann::json::array()},
          {"complete", false}};
}

nlohmann::json error_row(const std::string& instance, const std::string& why) {
  return {{"point", instance},     {"name", instance},          {"run_name", instance},
          {"run_type", "iteration"}, {"error", why},              {"error_occurred", true},
          {"error_message", why}};
}

void add_part(nlohmann::json& doc, const nlohmann::json& part, const std::string& instance) {
  const bool rows = part.is_object() && part.contains("benchmarks") && part["benchmarks"].is_array() &&
                    !part["benchmarks"].empty();
  if (!rows) {
    doc["benchmarks"].push_back(error_row(instance, "its run wrote no result"));
    return;
  }
  if (part.contains("context") && (!doc.contains("context") || doc["context"].empty()))
    doc["context"] = part["context"];
  for (nlohmann::json r : part["benchmarks"]) {
    r["point"] = instance;
    doc["benchmarks"].push_back(std::move(r));
  }
}

// Google Benchmark writes non-finite counters as bare NaN / -nan / Infinity / inf, which is not
// JSON: outside strings, such a token becomes null.
std::string null_non_finite(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    size_t j = i + (c == '-' ? 1 : 0);
    for (const std::string tok : {"Infinity", "NaN", "nan", "inf"}) {
      const size_t end = j + tok.size();
      if (text.compare(j, tok.size(), tok) == 0 &&
          (end >= text.size() || !std::isalnum(static_cast<unsigned char>(text[end])))) {
        out += "null";
        i = end - 1;
        goto next;
      }
    }
    out += c;
  next:;
  }
  return out;
}

nlohmann::json parse_benchmark_json(const std::string& text) {
  nlohmann::json d = nlohmann::json::parse(text, nullptr, false);
  return d.is_discarded() ? nlohmann::json::parse(null_non_finite(text), nullptr, false) : d;
}

}  // namespace ulsnet::micro
