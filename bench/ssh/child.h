// Local child processes of //bench/ssh:ssh_throughput (the ssh and scp clients): started without
// a shell, stdin/stdout/stderr on pipes, every wait bounded by a deadline.
//
// Each child is in a process group of its own (a Ctrl-C at the terminal reaches only the
// controller, which then ends the remote roles in order) and gets SIGTERM if the controller dies
// (PR_SET_PDEATHSIG): an ssh client that ends closes its session, and the agent on the other end
// stops at the end of its stdin.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ulsnet::ssh {

using Clock = std::chrono::steady_clock;

// Set by the controller's SIGINT/SIGTERM/SIGHUP handler. Waits that are `interruptible` return
// early once it is set; clean-up waits are not.
extern std::atomic<bool> g_interrupted;

// Async-signal-safe: SIGKILL to every child still running (a second Ctrl-C).
void kill_all_children_now() noexcept;

Clock::time_point after(double seconds);

class Child {
 public:
  // Starts argv[0] (searched in PATH) with argv. `stdin_pipe`: the child's stdin is a pipe the
  // caller writes (else /dev/null). Throws std::runtime_error if it cannot start.
  Child(const std::vector<std::string>& argv, bool stdin_pipe);
  ~Child();  // a child still running: SIGTERM, then SIGKILL after 1 s; always reaped
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Reads until a complete stdout line for which want(line) is true (true), or the deadline, the
  // end of stdout or, if interruptible, g_interrupted (false).
  bool wait_line(const std::function<bool(const std::string&)>& want, Clock::time_point deadline,
                 bool interruptible = true);
  // Writes to the child's stdin; false if it is closed.
  bool write_stdin(const std::string& text);
  void close_stdin();
  // Closes stdin, reads everything until the child exits, and reaps it. At the deadline: SIGTERM,
  // and SIGKILL 1 s later. Returns the exit code, or 128 + signal.
  int finish(Clock::time_point deadline);
  bool timed_out() const noexcept { return timed_out_; }
  // Whether the child has ended (reaped now if it has; finish() then returns its status).
  bool ended();

  const std::string& out() const noexcept { return out_; }
  const std::string& err() const noexcept { return err_; }
  // The last `n` bytes of stderr, trimmed, for messages.
  std::string err_tail(size_t n = 600) const;

 private:
  // One poll over the open pipes (at most `ms`); false once both are at their end.
  bool pump(int ms);
  pid_t pid_ = -1;
  int in_ = -1, outfd_ = -1, errfd_ = -1;
  std::string out_, err_;
  size_t scanned_ = 0;  // stdout before this has been offered to wait_line
  bool reaped_ = false, timed_out_ = false;
  int status_ = -1;
};

struct RunResult {
  int status = -1;  // exit code, or 128 + signal
  bool timed_out = false;
  std::string out, err;
};

// Runs argv to completion (stdin /dev/null), bounded by timeout_s.
RunResult run_bounded(const std::vector<std::string>& argv, double timeout_s);

}  // namespace ulsnet::ssh
