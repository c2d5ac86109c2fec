#include "bench/ssh/agent_protocol.h"

namespace ulsnet::ssh {
namespace {

// {"ulsnet_agent":1,"role":ROLE,"event":EVENT then `rest` (",..." or ""), then "}": the protocol's
// key first, so that even a line cut short is recognisably the agent's (and then an error).
std::string line(const std::string& role, const char* event, const std::string& rest) {
  return "{\"ulsnet_agent\":" + std::to_string(kAgentProtocol) + ",\"role\":" + nlohmann::json(role).dump() +
         ",\"event\":\"" + event + "\"" + rest + "}";
}

std::string dump(const nlohmann::json& j) {
  // A string that is not UTF-8 (an interface alias, a CPU model) still goes out.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string clip(std::string_view s, size_t n = 200) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

}  // namespace

bool is_agent_role(std::string_view role) {
  return role == "proxy" || role == "send" || role == "recv" || role == "env";
}

std::string agent_ready_line(const std::string& role, const nlohmann::json& extra) {
  std::string rest;
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      if (it.key() != "ulsnet_agent" && it.key() != "role" && it.key() != "event")
        rest += "," + nlohmann::json(it.key()).dump() + ":" + dump(*it);
  return line(role, "ready", rest);
}

std::string agent_report_line(const std::string& role, const nlohmann::json& report) {
  return line(role, "report", ",\"report\":" + dump(report));
}

std::string agent_error_line(const std::string& role, const std::string& error) {
  return line(role, "error", ",\"error\":" + dump(error));
}

std::string agent_status_line(const std::string& role, const nlohmann::json& snapshot) {
  return line(role, "status", ",\"status\":" + dump(snapshot));
}

std::optional<AgentLine> parse_agent_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i == text.size() || text[i] != '{' || text.find("\"ulsnet_agent\"") == std::string_view::npos)
    return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw AgentProtocolError("malformed agent line (not JSON, cut short?): " + clip(text));
  if (!j["ulsnet_agent"].is_number_integer() || j["ulsnet_agent"].get<int>() != kAgentProtocol)
    throw AgentProtocolError("agent line of protocol " + j["ulsnet_agent"].dump() + ", expected " +
                             std::to_string(kAgentProtocol) + " (an agent from another build?): " + clip(text));
  if (!j.contains("role") || !j["role"].is_string() || !j.contains("event") || !j["event"].is_string())
    throw AgentProtocolError("agent line without role or event: " + clip(text));
  const std::string_view line = text;
  AgentLine a{j["role"], j["event"], j};
  if (a.event == "report") {
    if (!j.contains("report") || !j["report"].is_object())
      throw AgentProtocolError("agent report line without a report object: " + clip(line));
  } else if (a.event == "error") {
    if (!j.contains("error") || !j["error"].is_string())
      throw AgentProtocolError("agent error line without an error message: " + clip(line));
  } else if (a.event == "status") {
    if (!j.contains("status") || !j["status"].is_object())
      throw AgentProtocolError("agent status line without a status object: " + clip(line));
  } else if (a.event != "ready") {
    throw AgentProtocolError("agent line with unknown event '" + a.event + "': " + clip(line));
  }
  return a;
}

std::string check_agent_report(std::string_view role, const nlohmann::json& r) {
  auto need = [&](std::initializer_list<const char*> keys) -> std::string {
    for (const char* k : keys)
      if (!r.contains(k)) return std::string(role) + " report has no '" + k + "'";
    return "";
  };
  if (!r.is_object()) return std::string(role) + " report is not an object";
  if (role == "send") {
    if (!r.contains("sent") && !r.contains("attempted")) return "send report has no 'sent'";
    return need({"generator"});
  }
  if (role == "recv") return need({"sink", "received"});
  if (role == "proxy") return need({"forwarded", "drops"});
  if (role == "env") return need({"kernel", "hostname"});
  return "unknown role '" + std::string(role) + "'";
}

AgentOutput parse_agent_output(std::string_view text, std::string_view role) {
  AgentOutput out;
  auto fail = [&](std::string why) {
    out.report.reset();
    if (out.error.empty()) out.error = std::move(why);
  };
  bool final_seen = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::optional<AgentLine> a;
    try {
      a = parse_agent_line(line);
    } catch (const AgentProtocolError& e) {
      fail(e.what());
      continue;
    }
    if (!a) {
      if (line.find_first_not_of(" \r\t") != std::string_view::npos) out.foreign.emplace_back(line);
      continue;
    }
    if (a->role != role) {
      fail("expected the agent's " + std::string(role) + " role, got a line of '" + a->role + "'");
      continue;
    }
    if (a->event == "ready") {
      out.ready = true;
      continue;
    }
    if (a->event == "status") {
      if (final_seen) fail(std::string(role) + ": a status line after the final line");
      ++out.statuses;
      continue;
    }
    if (final_seen) {
      fail(std::string(role) + ": more than one final line (report or error)");
      continue;
    }
    final_seen = true;
    if (a->event == "error") {
      fail(std::string(role) + ": " + a->body["error"].get<std::string>());
    } else if (std::string why = check_agent_report(role, a->body["report"]); !why.empty()) {
      fail(why);
    } else if (out.error.empty()) {
      out.report = a->body["report"];
    }
  }
  if (!final_seen && out.error.empty()) {
    std::string why = std::string(role) + ": the agent printed no report";
    for (size_t i = 0; i < out.foreign.size() && i < 3; ++i) why += (i ? " | " : ": ") + clip(out.foreign[i]);
    fail(why);
  }
  return out;
}

}  // namespace ulsnet::ssh
