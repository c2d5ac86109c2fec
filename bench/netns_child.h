// Runs a role (generator, proxy, sink) in a child process inside a host's network namespace.
//
// The child enters the namespace with setns(2), dies with the harness (PR_SET_PDEATHSIG), turns
// SIGTERM into its stop flag, may report "ready" once, and ends by writing one JSON object to a
// pipe. The parent never waits without a time limit: a child that does not answer in time is
// killed and reported as an error.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace ulsnet {

using ReadyFn = std::function<void()>;
// Runs in the child: returns its result; `stop` is set by SIGTERM; call ready() once set up.
using RoleFn = std::function<nlohmann::json(const std::atomic<bool>& stop, const ReadyFn& ready)>;

class NetnsChild {
 public:
  // Forks; the child joins `ns` and runs `fn` pinned to `cpu` (-1: not pinned).
  NetnsChild(const std::string& ns, int cpu, RoleFn fn);
  ~NetnsChild();  // kills a child still running
  NetnsChild(const NetnsChild&) = delete;
  NetnsChild& operator=(const NetnsChild&) = delete;

  // Waits up to timeout_ms for ready(); false if the child failed or timed out (see result()).
  bool wait_ready(int timeout_ms);
  // Sends SIGTERM.
  void stop();
  pid_t pid() const noexcept { return pid_; }
  // Waits up to timeout_ms for the result ({"error": ...} if the child failed or was killed).
  nlohmann::json result(int timeout_ms);

 private:
  bool read_line(std::string& line, int timeout_ms);
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool ready_ = false;
  nlohmann::json early_;  // a result that arrived before ready
};

}  // namespace ulsnet
