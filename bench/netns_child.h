// Runs a role (generator, proxy, sink) in a child process inside a host's network namespace.
//
// The child enters the namespace with setns(2), dies with the harness (PR_SET_PDEATHSIG), turns
// SIGTERM into its stop flag, may report "ready" once, and ends by writing one JSON object to a
// pipe. The parent never waits without a time limit: a child that does not answer in time is
// killed and reported as an error. A child that dies before it reports (a crash, a kill) is
// reported as a dead peer: {"error": "the proxy (pid N) died 1.20 s after it started, ...",
// "peer_died": {"role", "pid", "after_s", "how"}}, and a wait for one child's result can watch
// others, stopping the awaited one as soon as a watched one ends (a generator does not go on
// sending into a dead proxy).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

using ReadyFn = std::function<void()>;
// Runs in the child: returns its result; `stop` is set by SIGTERM; call ready() once set up.
using RoleFn = std::function<nlohmann::json(const std::atomic<bool>& stop, const ReadyFn& ready)>;

class NetnsChild {
 public:
  // Forks; the child joins `ns` and runs `fn` pinned to `cpu` (-1: not pinned). `role` names it
  // in errors ("generator", "proxy", "sink").
  NetnsChild(const std::string& ns, int cpu, RoleFn fn, std::string role = "child");
  ~NetnsChild();  // kills a child still running
  NetnsChild(const NetnsChild&) = delete;
  NetnsChild& operator=(const NetnsChild&) = delete;

  // Waits up to timeout_ms for ready(); false if the child failed or timed out (see result()).
  bool wait_ready(int timeout_ms);
  // Sends SIGTERM.
  void stop();
  pid_t pid() const noexcept { return pid_; }
  const std::string& role() const noexcept { return role_; }
  // True once the child has written its result or closed its pipe (died) without being asked
  // to stop: a peer that ended early. Does not block.
  bool ended() const;
  // Waits up to timeout_ms for the result ({"error": ...} if the child failed or was killed).
  // While it waits, a child of `watch` that ends() stops this one (SIGTERM): the result then
  // carries "stopped_because": that child's role.
  nlohmann::json result(int timeout_ms, std::initializer_list<const NetnsChild*> watch = {});

 private:
  bool read_line(std::string& line, int timeout_ms, std::vector<const NetnsChild*> watch = {});
  // The error for a child whose pipe closed without a result: how it died, when.
  nlohmann::json death_report();
  std::string role_;
  uint64_t started_ns_ = 0;
  mutable uint64_t ended_ns_ = 0;  // when its end was first seen (ended(), or EOF)
  std::string stopped_because_;
  bool eof_ = false;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool ready_ = false;
  nlohmann::json early_;  // a result that arrived before ready
};

}  // namespace ulsnet
