// //bench:proxy run as a user runs it, for its tests: the binary from the test's runfiles, its
// --json events as they come, its exit status.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

inline std::string tool_path() {
  const char* src = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return std::string(src ? src : ".") + "/" + (ws ? ws : "__main__") + "/bench/proxy";
}

// The tool running with --json: its events as they come, its exit status.
class Tool {
 public:
  explicit Tool(std::vector<std::string> args) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      close(out[0]);
      close(err[0]);
      std::vector<char*> argv;
      static std::string bin = tool_path();
      argv.push_back(bin.data());
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Tool() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  // The next event, or null if none came within timeout_ms (or the tool closed stdout).
  nlohmann::json next(int timeout_ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        nlohmann::json j = nlohmann::json::parse(buf_.substr(0, nl));
        buf_.erase(0, nl + 1);
        events_.push_back(j);
        return j;
      }
      const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
      if (left <= 0) return nullptr;
      pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (poll(p, 2, left) <= 0) continue;
      char b[4096];
      if (p[1].revents) {
        const ssize_t n = read(err_, b, sizeof b);
        if (n > 0) stderr_.append(b, size_t(n));
      }
      if (p[0].revents) {
        const ssize_t n = read(out_, b, sizeof b);
        if (n <= 0) return nullptr;
        buf_.append(b, size_t(n));
      }
    }
  }
  // Events until one of `kind` (null if the tool ended or timed out first).
  nlohmann::json until(const std::string& kind, int timeout_ms) {
    for (nlohmann::json j; !(j = next(timeout_ms)).is_null();)
      if (j.value("event", "") == kind) return j;
    return nullptr;
  }
  // Reads to the end; the exit status (-1: did not end within timeout_ms).
  int wait(int timeout_ms) {
    while (!next(timeout_ms).is_null()) {
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int st = 0;
    while (waitpid(pid_, &st, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > end) return -1;
      usleep(20'000);
    }
    char b[4096];
    for (ssize_t n; (n = read(err_, b, sizeof b)) > 0;) stderr_.append(b, size_t(n));
    waited_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  void signal(int sig) { kill(pid_, sig); }
  const std::vector<nlohmann::json>& events() const { return events_; }
  const std::string& err() const { return stderr_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  bool waited_ = false;
  std::string buf_, stderr_;
  std::vector<nlohmann::json> events_;
};

}  // namespace ulsnet
