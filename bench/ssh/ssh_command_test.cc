// The ssh and scp command lines from the options: quoting for the remote shell, the options every
// session gets, ports (-p for ssh, -P for scp), users, IPv6 targets, and what is refused.
#include "bench/ssh/ssh_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace ulsnet::ssh {
namespace {

bool has_pair(const std::vector<std::string>& a, const std::string& x, const std::string& y) {
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == x && a[i + 1] == y) return true;
  return false;
}

TEST(ShellQuote, PlainWordsStayAsTheyAre) {
  EXPECT_EQ(shell_quote("/tmp/ulsnet-agent.Ab12/ulsnet_agent"), "/tmp/ulsnet-agent.Ab12/ulsnet_agent");
  EXPECT_EQ(shell_quote("kernel-socket:batched"), "kernel-socket:batched");
  EXPECT_EQ(shell_quote("10.201.1.2"), "10.201.1.2");
  EXPECT_EQ(shell_quote("--in-if"), "--in-if");
}

TEST(ShellQuote, EverythingElseIsSingleQuoted) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("$(reboot)"), "'$(reboot)'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("a;b|c&d>e`f`\"g\"\\h*?~"), "'a;b|c&d>e`f`\"g\"\\h*?~'");
  EXPECT_EQ(shell_quote("line\nbreak"), "'line\nbreak'");
}

// What a POSIX shell makes of the joined words is the words themselves.
TEST(ShellQuote, TheShellGetsTheWordsBack) {
  const std::vector<std::string> words = {"printf", "[%s]", "a b", "it's", "$HOME", "`id`", "", "*", "-n", "x\"y"};
  const std::string cmd = shell_join(words) + " > /tmp/ulsnet_ssh_command_test.out";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  FILE* f = std::fopen("/tmp/ulsnet_ssh_command_test.out", "r");
  ASSERT_NE(f, nullptr);
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::remove("/tmp/ulsnet_ssh_command_test.out");
  EXPECT_EQ(std::string(buf, n), "[a b][it's][$HOME][`id`][][*][-n][x\"y]");
}

TEST(SshArgv, DefaultsAndTheRemoteCommandLast) {
  SshOptions o;
  auto a = ssh_argv(o, "proxy.lab", "exec /tmp/x/ulsnet_agent env");
  ASSERT_GE(a.size(), 4u);
  EXPECT_EQ(a[0], "ssh");
  EXPECT_TRUE(has_pair(a, "-o", "BatchMode=yes"));
  EXPECT_TRUE(has_pair(a, "-o", "ConnectTimeout=10"));
  EXPECT_EQ(std::count(a.begin(), a.end(), "-T"), 1);
  EXPECT_EQ(a[a.size() - 3], "--");
  EXPECT_EQ(a[a.size() - 2], "proxy.lab");
  EXPECT_EQ(a.back(), "exec /tmp/x/ulsnet_agent env");
  EXPECT_EQ(std::count(a.begin(), a.end(), "-p"), 0);
  EXPECT_EQ(std::count(a.begin(), a.end(), "-i"), 0);
}

TEST(SshArgv, UserPortIdentityOptionsAndMaster) {
  SshOptions o;
  o.user = "root";
  o.port = 2222;
  o.identity = "/keys/id ed25519";
  o.options = {"StrictHostKeyChecking=no", "UserKnownHostsFile /dev/null"};
  o.connect_timeout_s = 3;
  o.control_path = "/tmp/ulsnet-ssh.X/m0";
  auto a = ssh_argv(o, "10.0.0.1", "true");
  EXPECT_TRUE(has_pair(a, "-p", "2222"));
  EXPECT_TRUE(has_pair(a, "-i", "/keys/id ed25519"));  // an argv word: no quoting needed locally
  EXPECT_TRUE(has_pair(a, "-o", "StrictHostKeyChecking=no"));
  EXPECT_TRUE(has_pair(a, "-o", "UserKnownHostsFile /dev/null"));
  EXPECT_TRUE(has_pair(a, "-o", "ConnectTimeout=3"));
  EXPECT_TRUE(has_pair(a, "-o", "ControlPath=/tmp/ulsnet-ssh.X/m0"));
  EXPECT_TRUE(has_pair(a, "-o", "ControlMaster=no"));
  EXPECT_EQ(a[a.size() - 2], "root@10.0.0.1");
  // A target that names its user keeps it.
  EXPECT_EQ(ssh_argv(o, "admin@10.0.0.1", "true")[a.size() - 2], "admin@10.0.0.1");
}

TEST(SshArgv, TheMasterAndItsCheck) {
  SshOptions o;
  o.control_path = "/tmp/c/m1";
  o.port = 22;
  auto m = ssh_master_argv(o, "h");
  EXPECT_TRUE(has_pair(m, "-S", "/tmp/c/m1"));
  EXPECT_NE(std::find(m.begin(), m.end(), "-M"), m.end());
  EXPECT_NE(std::find(m.begin(), m.end(), "-N"), m.end());
  EXPECT_TRUE(has_pair(m, "-o", "ControlPersist=no"));
  EXPECT_TRUE(has_pair(m, "-p", "22"));
  EXPECT_EQ(m.back(), "h");
  auto c = ssh_check_master_argv(o, "h");
  EXPECT_TRUE(has_pair(c, "-O", "check"));
  EXPECT_EQ(c.back(), "h");
  EXPECT_THROW(ssh_master_argv(SshOptions{}, "h"), std::invalid_argument);
}

TEST(ScpArgv, PortIsCapitalPAndTheDestinationHasThePath) {
  SshOptions o;
  o.user = "root";
  o.port = 2222;
  auto a = scp_argv(o, "/local/ulsnet_agent", "host", "/tmp/d/ulsnet_agent");
  EXPECT_EQ(a[0], "scp");
  EXPECT_TRUE(has_pair(a, "-P", "2222"));
  EXPECT_EQ(std::count(a.begin(), a.end(), "-p"), 0);
  EXPECT_EQ(a[a.size() - 2], "/local/ulsnet_agent");
  EXPECT_EQ(a.back(), "root@host:/tmp/d/ulsnet_agent");
  EXPECT_TRUE(has_pair(a, "-o", "BatchMode=yes"));
}

TEST(ScpArgv, Ipv6LiteralsGoInBrackets) {
  SshOptions o;
  EXPECT_EQ(scp_argv(o, "a", "fd00::2", "/p").back(), "[fd00::2]:/p");
  o.user = "u";
  EXPECT_EQ(scp_argv(o, "a", "fd00::2", "/p").back(), "u@[fd00::2]:/p");
  EXPECT_EQ(scp_argv(o, "a", "[fd00::2]", "/p").back(), "u@[fd00::2]:/p");
}

TEST(Validate, RefusesWhatSshWouldMisread) {
  SshOptions o;
  EXPECT_NO_THROW(validate(o));
  o.options = {"-oProxyCommand=evil"};
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.options = {"StrictHostKeyChecking"};  // no value
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.options = {"Key=a\nb"};
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.options = {};
  o.port = 70000;
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.port = 0;
  o.user = "-l";
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.user = "";
  o.identity = "-F/etc/passwd";
  EXPECT_THROW(validate(o), std::invalid_argument);
  EXPECT_THROW(validate_target("-oProxyCommand=x"), std::invalid_argument);
  EXPECT_THROW(validate_target(""), std::invalid_argument);
  EXPECT_THROW(validate_target("a b"), std::invalid_argument);
  EXPECT_THROW(validate_target("user@"), std::invalid_argument);
  EXPECT_THROW(validate_target("user@-x"), std::invalid_argument);
  EXPECT_NO_THROW(validate_target("root@10.251.1.2"));
  EXPECT_NO_THROW(validate_target("fd00::2"));
}

TEST(Printable, IsPasteable) {
  EXPECT_EQ(printable({"ssh", "--", "h", "exec /x 'a b'"}), "ssh -- h 'exec /x '\\''a b'\\'''");
}

}  // namespace
}  // namespace ulsnet::ssh
