#include "bench/netns_child.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

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

NetnsChild::NetnsChild(const std::string& ns, int cpu, RoleFn fn, std::string role)
    : role_(std::move(role)), started_ns_(monotonic_ns()) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  // The termination signals wait until the child is on the clean-up handler's list (in the
  // parent) or has its own handlers and dies with the parent (in the child): an interrupt right
  // after fork() must not leave the child behind.
  sigset_t term, old;
  sigemptyset(&term);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&term, s);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    close(p[0]);
    close(p[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the parent died before prctl
    // The child must not run the parent's namespace clean-up on signals.
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
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
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

NetnsChild::~NetnsChild() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    unregister_child(pid_);
  }
  if (fd_ >= 0) close(fd_);
}

bool NetnsChild::read_line(std::string& line, int timeout_ms, std::vector<const NetnsChild*> watch) {
  uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1000000ull;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    if (eof_) return false;
    uint64_t now = monotonic_ns();
    if (now >= deadline) return false;
    std::vector<pollfd> pfd{{fd_, POLLIN, 0}};
    for (const NetnsChild* w : watch) pfd.push_back({w->fd_, POLLIN, 0});
    int r = poll(pfd.data(), nfds_t(pfd.size()), int((deadline - now) / 1000000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    // A watched peer that wrote or closed its pipe has ended early: stop this child too, and stop
    // watching (its pipe stays readable).
    for (size_t i = watch.size(); i-- > 0;)
      if (pfd[i + 1].revents && watch[i]->ended()) {
        if (stopped_because_.empty()) {
          stopped_because_ = watch[i]->role();
          stop();
        }
        watch.erase(watch.begin() + long(i));
      }
    if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char b[65536];
    ssize_t n = read(fd_, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF: the child is gone
      eof_ = true;
      if (!ended_ns_) ended_ns_ = monotonic_ns();
      return false;
    }
    buf_.append(b, size_t(n));
  }
}

bool NetnsChild::ended() const {
  bool e = fd_ < 0 || eof_ || !buf_.empty();
  if (!e) {
    pollfd pfd{fd_, POLLIN, 0};
    e = poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR));
  }
  if (e && !ended_ns_) ended_ns_ = monotonic_ns();
  return e;
}

nlohmann::json NetnsChild::death_report() {
  // When its end was first seen: the watch of a wait for another child's result sees it within
  // a poll; this report may come later (after that child was stopped).
  const double after_s = double((ended_ns_ ? ended_ns_ : monotonic_ns()) - started_ns_) / 1e9;
  const pid_t pid = pid_;
  std::string how = "gone (its exit status could not be read)";
  int st = 0;
  // The pipe closes as the child exits: its status follows at once; bounded all the same.
  for (int i = 0; i < 200 && pid_ > 0; ++i) {
    const pid_t w = waitpid(pid_, &st, WNOHANG);
    if (w == pid_) {
      char b[96];
      if (WIFSIGNALED(st))
        std::snprintf(b, sizeof b, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
      else
        std::snprintf(b, sizeof b, "exited with status %d", WEXITSTATUS(st));
      how = b;
      unregister_child(pid_);
      pid_ = -1;
      break;
    }
    if (w < 0 && errno != EINTR) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  char msg[256];
  std::snprintf(msg, sizeof msg, "the %s (pid %d) died %.2f s after it started, before it reported: %s",
                role_.c_str(), int(pid), after_s, how.c_str());
  return {{"error", msg}, {"peer_died", {{"role", role_}, {"pid", pid}, {"after_s", after_s}, {"how", how}}}};
}

bool NetnsChild::wait_ready(int timeout_ms) {
  std::string line;
  if (!read_line(line, timeout_ms)) {
    early_ = eof_ ? death_report()
                  : nlohmann::json{{"error", "the " + role_ + " did not become ready within " +
                                                 std::to_string(timeout_ms) + " ms"}};
    return false;
  }
  if (line == "ready") return ready_ = true;
  try {
    early_ = nlohmann::json::parse(line);
  } catch (...) {
    early_ = {{"error", "unreadable output from the " + role_}};
  }
  return false;
}

void NetnsChild::stop() {
  if (pid_ > 0) kill(pid_, SIGTERM);
}

nlohmann::json NetnsChild::result(int timeout_ms, std::initializer_list<const NetnsChild*> watch) {
  nlohmann::json out;
  if (!early_.is_null()) {
    out = early_;
  } else {
    std::string line;
    bool got = read_line(line, timeout_ms, watch);
    while (got && line == "ready") got = read_line(line, timeout_ms, watch);
    if (!got && eof_) {
      out = death_report();
    } else if (!got) {
      out = {{"error", "the " + role_ + " gave no result within " + std::to_string(timeout_ms) + " ms; killed"}};
    } else {
      try {
        out = nlohmann::json::parse(line);
      } catch (...) {
        out = {{"error", "unreadable output from the " + role_}};
      }
    }
  }
  if (!stopped_because_.empty() && out.is_object()) out["stopped_because"] = stopped_because_;
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    unregister_child(pid_);
    pid_ = -1;
  }
  return out;
}

}  // namespace ulsnet
