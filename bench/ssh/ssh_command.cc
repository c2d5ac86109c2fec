#include "bench/ssh/ssh_command.h"

#include <cctype>
#include <stdexcept>

namespace ulsnet::ssh {
namespace {

bool has_control(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

// Options every ssh and scp of a run shares (scp takes the port as -P, ssh as -p).
std::vector<std::string> common(const SshOptions& o, const char* port_flag) {
  std::vector<std::string> a = {"-o", "BatchMode=yes", "-o",
                                "ConnectTimeout=" + std::to_string(o.connect_timeout_s)};
  if (o.port > 0) a.insert(a.end(), {port_flag, std::to_string(o.port)});
  if (!o.identity.empty()) a.insert(a.end(), {"-i", o.identity});
  for (const std::string& opt : o.options) a.insert(a.end(), {"-o", opt});
  return a;
}

// Sessions through an existing master only: never a second connection of their own.
void add_client_of_master(std::vector<std::string>& a, const SshOptions& o) {
  if (o.control_path.empty()) return;
  a.insert(a.end(), {"-o", "ControlPath=" + o.control_path, "-o", "ControlMaster=no"});
}

}  // namespace

void validate(const SshOptions& o) {
  if (o.port < 0 || o.port > 65535) throw std::invalid_argument("ssh port " + std::to_string(o.port) + " outside 1..65535");
  if (o.connect_timeout_s <= 0) throw std::invalid_argument("ssh connect timeout must be > 0");
  if (!o.user.empty() && (o.user[0] == '-' || has_control(o.user) || o.user.find('@') != std::string::npos))
    throw std::invalid_argument("bad ssh user '" + o.user + "'");
  if (!o.identity.empty() && (o.identity[0] == '-' || has_control(o.identity)))
    throw std::invalid_argument("bad ssh identity file '" + o.identity + "'");
  for (const std::string& opt : o.options) {
    if (opt.empty() || opt[0] == '-' || has_control(opt))
      throw std::invalid_argument("bad ssh option '" + opt + "' (give Key=Value, e.g. StrictHostKeyChecking=no)");
    const auto sep = opt.find_first_of("= ");
    if (sep == std::string::npos || sep == 0 || sep + 1 >= opt.size())
      throw std::invalid_argument("ssh option '" + opt + "' has no value (give Key=Value)");
  }
}

void validate_target(const std::string& target) {
  if (target.empty()) throw std::invalid_argument("empty host");
  if (target[0] == '-' || has_control(target) || target.find(' ') != std::string::npos)
    throw std::invalid_argument("bad host '" + target + "'");
  const auto at = target.find('@');
  if (at != std::string::npos && (at == 0 || at + 1 == target.size() || target[at + 1] == '-'))
    throw std::invalid_argument("bad host '" + target + "'");
}

std::string shell_quote(std::string_view s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_./:=@,+-").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return std::string(s);
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + shell_quote(w);
  return s;
}

std::string destination(const std::string& target, const SshOptions& o) {
  if (o.user.empty() || target.find('@') != std::string::npos) return target;
  return o.user + "@" + target;
}

std::vector<std::string> ssh_argv(const SshOptions& o, const std::string& target, const std::string& remote_command) {
  std::vector<std::string> a = {"ssh", "-T"};
  for (std::string& w : common(o, "-p")) a.push_back(std::move(w));
  add_client_of_master(a, o);
  a.insert(a.end(), {"--", destination(target, o), remote_command});
  return a;
}

std::vector<std::string> ssh_master_argv(const SshOptions& o, const std::string& target) {
  if (o.control_path.empty()) throw std::invalid_argument("a connection master needs a control path");
  std::vector<std::string> a = {"ssh", "-M", "-N", "-T", "-S", o.control_path, "-o", "ControlPersist=no"};
  for (std::string& w : common(o, "-p")) a.push_back(std::move(w));
  a.insert(a.end(), {"--", destination(target, o)});
  return a;
}

std::vector<std::string> ssh_check_master_argv(const SshOptions& o, const std::string& target) {
  if (o.control_path.empty()) throw std::invalid_argument("checking a connection master needs a control path");
  return {"ssh", "-S", o.control_path, "-O", "check", "--", destination(target, o)};
}

std::vector<std::string> scp_argv(const SshOptions& o, const std::string& local, const std::string& target,
                                  const std::string& remote_path) {
  std::vector<std::string> a = {"scp", "-q"};
  for (std::string& w : common(o, "-P")) a.push_back(std::move(w));
  add_client_of_master(a, o);
  // scp's host:path needs an IPv6 literal in brackets: [::1]:path, user@[::1]:path.
  std::string dest = destination(target, o);
  const auto at = dest.find('@');
  std::string host = at == std::string::npos ? dest : dest.substr(at + 1);
  if (host.find(':') != std::string::npos && host.front() != '[')
    dest = (at == std::string::npos ? "" : dest.substr(0, at + 1)) + "[" + host + "]";
  a.insert(a.end(), {"--", local, dest + ":" + remote_path});
  return a;
}

std::string printable(const std::vector<std::string>& argv) { return shell_join(argv); }

}  // namespace ulsnet::ssh
