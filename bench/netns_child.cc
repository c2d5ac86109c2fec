#include "bench/netns_child.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "bench/topology.h"
#include "stack/clock.h"

namespace ulsnet {

namespace {
std::atomic<bool> g_child_stop{false};
void on_term(int) { g_child_stop.store(true); }

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += size_t(n);
  }
}
}  // namespace

NetnsChild::NetnsChild(const std::string& ns, int cpu, RoleFn fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The child must not run the parent's namespace clean-up on signals.
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_DFL);
    nlohmann::json out;
    try {
      int nsfd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0)
        throw std::runtime_error("cannot enter namespace " + ns + ": " + std::strerror(errno));
      close(nsfd);
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
      }
      ReadyFn ready = [&] { write_all(p[1], "ready\n"); };
      out = fn(g_child_stop, ready);
      rusage ru{};
      getrusage(RUSAGE_SELF, &ru);
      out["rusage"] = {
          {"user_ns", uint64_t(ru.ru_utime.tv_sec) * 1000000000ull + uint64_t(ru.ru_utime.tv_usec) * 1000},
          {"sys_ns", uint64_t(ru.ru_stime.tv_sec) * 1000000000ull + uint64_t(ru.ru_stime.tv_usec) * 1000},
          {"voluntary_ctx_switches", ru.ru_nvcsw},
          {"involuntary_ctx_switches", ru.ru_nivcsw}};
    } catch (const std::exception& e) {
      out = {{"error", e.what()}};
    }
    write_all(p[1], out.dump() + "\n");
    _exit(0);
  }
  close(p[1]);
  fd_ = p[0];
  register_child(pid_);
}

NetnsChild::~NetnsChild() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    unregister_child(pid_);
  }
  if (fd_ >= 0) close(fd_);
}

bool NetnsChild::read_line(std::string& line, int timeout_ms) {
  uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1000000ull;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    uint64_t now = monotonic_ns();
    if (now >= deadline) return false;
    pollfd pfd{fd_, POLLIN, 0};
    int r = poll(&pfd, 1, int((deadline - now) / 1000000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char b[65536];
    ssize_t n = read(fd_, b, sizeof b);
    if (n <= 0) return false;  // EOF: child gone
    buf_.append(b, size_t(n));
  }
}

bool NetnsChild::wait_ready(int timeout_ms) {
  std::string line;
  if (!read_line(line, timeout_ms)) {
    early_ = {{"error", "child did not become ready within " + std::to_string(timeout_ms) + " ms"}};
    return false;
  }
  if (line == "ready") return ready_ = true;
  try {
    early_ = nlohmann::json::parse(line);
  } catch (...) {
    early_ = {{"error", "unreadable child output"}};
  }
  return false;
}

void NetnsChild::stop() {
  if (pid_ > 0) kill(pid_, SIGTERM);
}

nlohmann::json NetnsChild::result(int timeout_ms) {
  nlohmann::json out;
  if (!early_.is_null()) {
    out = early_;
  } else {
    std::string line;
    bool got = read_line(line, timeout_ms);
    while (got && line == "ready") got = read_line(line, timeout_ms);
    if (!got) {
      out = {{"error", "child gave no result within " + std::to_string(timeout_ms) + " ms; killed"}};
    } else {
      try {
        out = nlohmann::json::parse(line);
      } catch (...) {
        out = {{"error", "unreadable child output"}};
      }
    }
  }
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    unregister_child(pid_);
    pid_ = -1;
  }
  return out;
}

}  // namespace ulsnet
