// The ssh and scp command lines of //bench/ssh:ssh_throughput, built from its options (pure,
// unit-tested). Local commands are argument vectors run without a shell (execvp); the command a
// remote host runs is one string its login shell parses, so every word is single-quoted.
//
// Every ssh and scp gets BatchMode=yes (never a password prompt: a run must not hang) and a
// ConnectTimeout; with a connection master (ControlPath) the sessions of a run share one
// authenticated connection per host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ulsnet::ssh {

struct SshOptions {
  std::string user;                  // empty: the target's user@ or ssh's default
  int port = 0;                      // 0: ssh's default (or ~/.ssh/config's)
  std::string identity;              // -i FILE; empty: ssh's default keys
  std::vector<std::string> options;  // each one -o value: "Key=Value" or "Key Value"
  int connect_timeout_s = 10;
  std::string control_path;          // non-empty: sessions go through this master's socket
};

// Throws std::invalid_argument for an option ssh would misread: a value starting with '-', one
// with control characters, an -o without a value, a port outside 1..65535.
void validate(const SshOptions& o);
// Throws std::invalid_argument for a host ssh could take for an option or that is empty.
void validate_target(const std::string& target);

// One word for a POSIX shell: 'text', with ' written as '\''. Plain words (only
// [A-Za-z0-9_./:=@,+-]) stay as they are.
std::string shell_quote(std::string_view s);
// The words quoted and joined by spaces: the command a remote shell runs.
std::string shell_join(const std::vector<std::string>& words);

// "user@host" when a user is set and the target names none; the target otherwise.
std::string destination(const std::string& target, const SshOptions& o);

// ssh ... -- DEST 'remote command' (no terminal: -T; stdin is the remote command's stdin).
std::vector<std::string> ssh_argv(const SshOptions& o, const std::string& target,
                                  const std::string& remote_command);
// The connection master for `o.control_path`: ssh -M -N -S PATH ... -- DEST, in the foreground
// (the caller owns the process and ends it).
std::vector<std::string> ssh_master_argv(const SshOptions& o, const std::string& target);
// ssh -O check through the master: exit status 0 once it is up.
std::vector<std::string> ssh_check_master_argv(const SshOptions& o, const std::string& target);
// scp -q ... -- LOCAL DEST:REMOTE_PATH (an IPv6 literal in brackets).
std::vector<std::string> scp_argv(const SshOptions& o, const std::string& local,
                                  const std::string& target, const std::string& remote_path);

// For messages: the argv as one line a user could paste (each word shell-quoted).
std::string printable(const std::vector<std::string>& argv);

}  // namespace ulsnet::ssh
