// The agent's report lines as the controller reads them: what is the agent's, what is foreign,
// and every malformed or incomplete output as a clear error, never a silent skip.
#include "bench/ssh/agent_protocol.h"

#include <gtest/gtest.h>

namespace ulsnet::ssh {
namespace {

const nlohmann::json kSink = {{"sink", "socket"}, {"received", 10}};

TEST(AgentLine, RoundTrip) {
  auto r = parse_agent_line(agent_report_line("recv", kSink));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->role, "recv");
  EXPECT_EQ(r->event, "report");
  EXPECT_EQ(r->body["report"], kSink);
  auto e = parse_agent_line(agent_error_line("proxy", "no interface 'p9'"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "error");
  EXPECT_EQ(e->body["error"], "no interface 'p9'");
  auto y = parse_agent_line(agent_ready_line("proxy", {{"in_mac", "02:00:00:00:00:01"}}));
  ASSERT_TRUE(y);
  EXPECT_EQ(y->event, "ready");
  EXPECT_EQ(y->body["in_mac"], "02:00:00:00:00:01");
  // A line as it comes over ssh, with a carriage return.
  EXPECT_TRUE(parse_agent_line(agent_ready_line("recv") + "\r"));
}

TEST(AgentLine, ForeignLinesAreNotTheAgents) {
  EXPECT_FALSE(parse_agent_line(""));
  EXPECT_FALSE(parse_agent_line("bash: /tmp/x/ulsnet_agent: cannot execute binary file"));
  EXPECT_FALSE(parse_agent_line("{\"something\": 1}"));
  EXPECT_FALSE(parse_agent_line("libbpf: warning about \"ulsnet_agent\""));  // not an object
}

TEST(AgentLine, MalformedLinesAreErrors) {
  EXPECT_THROW(parse_agent_line("{\"ulsnet_agent\": 1, \"role\": \"recv\", \"event\": \"report\", \"report\": {"),
               AgentProtocolError);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 2, "role": "recv", "event": "ready"})"), AgentProtocolError);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 1, "event": "ready"})"), AgentProtocolError);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 1, "role": "recv", "event": "done"})"), AgentProtocolError);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 1, "role": "recv", "event": "report", "report": 3})"),
               AgentProtocolError);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 1, "role": "recv", "event": "error"})"), AgentProtocolError);
  try {
    parse_agent_line("{\"ulsnet_agent\": 1, \"role\": tru");
    FAIL();
  } catch (const AgentProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed agent line"), std::string::npos) << e.what();
  }
}

TEST(AgentOutput, ReadyThenReportAmongForeignLines) {
  const std::string text = "Warning: Permanently added 'x' to the list of known hosts.\n" + agent_ready_line("recv") +
                           "\n\n" + agent_report_line("recv", kSink) + "\n";
  AgentOutput o = parse_agent_output(text, "recv");
  EXPECT_TRUE(o.ready);
  ASSERT_TRUE(o.report) << o.error;
  EXPECT_EQ((*o.report)["received"], 10);
  EXPECT_TRUE(o.error.empty());
  ASSERT_EQ(o.foreign.size(), 1u);
}

// --status-interval's snapshots: parsed as they come, counted, never taken for the final line.
TEST(AgentOutput, StatusLinesBeforeTheReport) {
  const nlohmann::json snap = {{"t", 1.0}, {"method", {{"forwarded", 7}}}, {"netdev", {{"p0.rx_packets", 9}}}};
  auto s = parse_agent_line(agent_status_line("proxy", snap));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->event, "status");
  EXPECT_EQ(s->body["status"], snap);
  const nlohmann::json rep = {{"forwarded", 7}, {"drops", nlohmann::json::object()}};
  AgentOutput o = parse_agent_output(agent_status_line("proxy", {{"t", 0.0}}) + "\n" + agent_ready_line("proxy") +
                                         "\n" + agent_status_line("proxy", snap) + "\n" +
                                         agent_report_line("proxy", rep) + "\n",
                                     "proxy");
  ASSERT_TRUE(o.report) << o.error;
  EXPECT_EQ(o.statuses, 2u);
  EXPECT_EQ((*o.report)["forwarded"], 7);
  // Statuses alone are no report; a status without its object, or after the report, is an error.
  EXPECT_NE(parse_agent_output(agent_status_line("proxy", snap) + "\n", "proxy").error.find("printed no report"),
            std::string::npos);
  EXPECT_THROW(parse_agent_line(R"({"ulsnet_agent": 1, "role": "proxy", "event": "status", "status": [1]})"),
               AgentProtocolError);
  AgentOutput late = parse_agent_output(agent_report_line("proxy", rep) + "\n" + agent_status_line("proxy", snap),
                                        "proxy");
  EXPECT_FALSE(late.report);
  EXPECT_NE(late.error.find("status line after the final line"), std::string::npos) << late.error;
}

TEST(AgentOutput, TheAgentsErrorIsTheError) {
  AgentOutput o = parse_agent_output(agent_error_line("proxy", "needs root") + "\n", "proxy");
  EXPECT_FALSE(o.report);
  EXPECT_EQ(o.error, "proxy: needs root");
}

TEST(AgentOutput, NothingFromTheAgentSaysWhatCameInstead) {
  AgentOutput o = parse_agent_output("sh: 1: exec: /tmp/d/ulsnet_agent: not found\n", "send");
  EXPECT_FALSE(o.report);
  EXPECT_NE(o.error.find("printed no report"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("not found"), std::string::npos) << o.error;
  EXPECT_FALSE(parse_agent_output("", "send").error.empty());
  // Ready alone (the session ended before the report) is no report.
  AgentOutput r = parse_agent_output(agent_ready_line("recv") + "\n", "recv");
  EXPECT_TRUE(r.ready);
  EXPECT_FALSE(r.report);
  EXPECT_FALSE(r.error.empty());
}

TEST(AgentOutput, ATruncatedReportIsAnErrorNotASkip) {
  const std::string full = agent_report_line("recv", kSink);
  AgentOutput o = parse_agent_output(full.substr(0, full.size() / 2) + "\n", "recv");
  EXPECT_FALSE(o.report);
  EXPECT_NE(o.error.find("malformed agent line"), std::string::npos) << o.error;
  // Even after a good report: the output as a whole is not trusted.
  AgentOutput p = parse_agent_output(full + "\n" + full.substr(0, 30) + "\n", "recv");
  EXPECT_FALSE(p.report);
  EXPECT_FALSE(p.error.empty());
}

TEST(AgentOutput, WrongRoleTwoReportsOrMissingFields) {
  EXPECT_NE(parse_agent_output(agent_report_line("send", kSink) + "\n", "recv").error.find("got a line of 'send'"),
            std::string::npos);
  const std::string two = agent_report_line("recv", kSink) + "\n" + agent_report_line("recv", kSink) + "\n";
  EXPECT_NE(parse_agent_output(two, "recv").error.find("more than one"), std::string::npos);
  AgentOutput m = parse_agent_output(agent_report_line("recv", {{"sink", "socket"}}) + "\n", "recv");
  EXPECT_FALSE(m.report);
  EXPECT_NE(m.error.find("'received'"), std::string::npos) << m.error;
  EXPECT_NE(parse_agent_output(agent_report_line("proxy", {{"forwarded", 1}}) + "\n", "proxy").error.find("'drops'"),
            std::string::npos);
  EXPECT_NE(parse_agent_output(agent_report_line("send", {{"generator", "socket"}}) + "\n", "send").error.find("'sent'"),
            std::string::npos);
  EXPECT_TRUE(parse_agent_output(agent_report_line("env", {{"kernel", "Linux"}, {"hostname", "h"}}) + "\n", "env").report);
}

TEST(AgentOutput, ReportsThatAreNotUtf8StillGoOut) {
  AgentOutput o = parse_agent_output(agent_report_line("env", {{"kernel", "L"}, {"hostname", std::string("h\xff")}}) + "\n", "env");
  EXPECT_TRUE(o.report) << o.error;
}

}  // namespace
}  // namespace ulsnet::ssh
