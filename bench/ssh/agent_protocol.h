// What ulsnet_agent prints and //bench/ssh:ssh_throughput reads back (pure, unit-tested).
//
// The agent writes one JSON object per line on stdout:
//   {"ulsnet_agent": 1, "role": ROLE, "event": "ready"}              proxy and recv, once set up
//   {"ulsnet_agent": 1, "role": ROLE, "event": "report", "report": {...}}
//   {"ulsnet_agent": 1, "role": ROLE, "event": "error", "error": "why"}
//   {"ulsnet_agent": 1, "role": "proxy", "event": "status", "status": {...}}   proxy with
//       --status-interval: a snapshot of its counters (bench/proxy_status.h's form), any number of
//       them before the final line (//bench:proxy --hosts=ssh prints them as status lines)
// ROLE is proxy, send, recv or env. A role ends with exactly one report or one error line. Other
// lines (a library's or the remote shell's) are kept as foreign text; a line that claims to be
// the agent's (a JSON object naming "ulsnet_agent") but does not parse or lacks a field is an
// error, never skipped.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::ssh {

inline constexpr int kAgentProtocol = 1;

class AgentProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The agent's roles and their line's events.
bool is_agent_role(std::string_view role);

// One line (without its newline) of each kind.
std::string agent_ready_line(const std::string& role, const nlohmann::json& extra = nlohmann::json::object());
std::string agent_report_line(const std::string& role, const nlohmann::json& report);
std::string agent_error_line(const std::string& role, const std::string& error);
std::string agent_status_line(const std::string& role, const nlohmann::json& snapshot);

struct AgentLine {
  std::string role, event;  // event: ready, status, report, error
  nlohmann::json body;      // the whole object
};

// nullopt for a foreign line; throws AgentProtocolError for one that claims to be the agent's and
// is malformed (not JSON, another protocol version, no role or event, an unknown event, a report
// or status that is not an object, an error that is not a string).
std::optional<AgentLine> parse_agent_line(std::string_view line);

// The fields a role's report must have for the run to use it; "" if it has them, else what is
// missing. send: generator, sent (or attempted); recv: sink, received; proxy: forwarded, drops;
// env: kernel, hostname.
std::string check_agent_report(std::string_view role, const nlohmann::json& report);

struct AgentOutput {
  bool ready = false;
  size_t statuses = 0;  // status lines seen (their content: parse_agent_line as they come)
  std::optional<nlohmann::json> report;  // exactly one of report and error is set
  std::string error;
  std::vector<std::string> foreign;  // other stdout lines, as they came
};

// The whole stdout of one role that was expected to be `role`. Never throws: a malformed line, a
// line of another role, two final lines, a report missing fields or no final line at all give
// `error` (with the first foreign lines, which usually say why: a shell's "not found").
AgentOutput parse_agent_output(std::string_view text, std::string_view role);

}  // namespace ulsnet::ssh
