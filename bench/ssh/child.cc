#include "bench/ssh/child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace ulsnet::ssh {

std::atomic<bool> g_interrupted{false};

namespace {

constexpr int kMaxChildren = 128;
std::atomic<pid_t> g_children[kMaxChildren];

void track(pid_t p, bool on) {
  for (auto& slot : g_children) {
    pid_t expected = on ? 0 : p;
    if (slot.compare_exchange_strong(expected, on ? p : 0)) return;
  }
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int ms_until(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return ms < 0 ? 0 : ms > 100 ? 100 : int(ms);
}

}  // namespace

void kill_all_children_now() noexcept {
  for (auto& slot : g_children)
    if (pid_t p = slot.load(); p > 0) kill(p, SIGKILL);
}

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

Child::Child(const std::vector<std::string>& argv, bool stdin_pipe) {
  if (argv.empty()) throw std::runtime_error("empty command");
  int in[2] = {-1, -1}, out[2], err[2];
  if ((stdin_pipe && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int nul = open("/dev/null", O_RDONLY);
    dup2(stdin_pipe ? in[0] : nul, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(args[0], args.data());
    const std::string msg = std::string("cannot run ") + argv[0] + ": " + std::strerror(errno) + "\n";
    (void)!write(2, msg.data(), msg.size());
    _exit(127);
  }
  track(pid_, true);
  if (stdin_pipe) {
    close(in[0]);
    in_ = in[1];
  }
  close(out[1]);
  close(err[1]);
  outfd_ = out[0];
  errfd_ = err[0];
  set_nonblock(outfd_);
  set_nonblock(errfd_);
}

Child::~Child() {
  if (!reaped_) finish(Clock::now());
  for (int fd : {in_, outfd_, errfd_})
    if (fd >= 0) close(fd);
}

bool Child::pump(int ms) {
  pollfd p[2];
  int n = 0;
  if (outfd_ >= 0) p[n++] = {outfd_, POLLIN, 0};
  if (errfd_ >= 0) p[n++] = {errfd_, POLLIN, 0};
  if (n == 0) return false;
  if (poll(p, nfds_t(n), ms) <= 0) return true;
  for (int i = 0; i < n; ++i) {
    if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    int& fd = p[i].fd == outfd_ ? outfd_ : errfd_;
    std::string& buf = p[i].fd == outfd_ ? out_ : err_;
    char chunk[65536];
    for (;;) {
      const ssize_t k = read(fd, chunk, sizeof chunk);
      if (k > 0) {
        buf.append(chunk, size_t(k));
        continue;
      }
      if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fd);
        fd = -1;
      }
      break;
    }
  }
  return outfd_ >= 0 || errfd_ >= 0;
}

bool Child::wait_line(const std::function<bool(const std::string&)>& want, Clock::time_point deadline,
                      bool interruptible) {
  for (;;) {
    for (size_t nl; (nl = out_.find('\n', scanned_)) != std::string::npos;) {
      const std::string line = out_.substr(scanned_, nl - scanned_);
      scanned_ = nl + 1;
      if (want(line)) return true;
    }
    if (outfd_ < 0) return false;
    if (Clock::now() >= deadline || (interruptible && g_interrupted)) return false;
    pump(ms_until(deadline));
  }
}

bool Child::write_stdin(const std::string& text) {
  if (in_ < 0) return false;
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t k = write(in_, text.data() + off, text.size() - off);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    off += size_t(k);
  }
  return true;
}

void Child::close_stdin() {
  if (in_ >= 0) close(in_);
  in_ = -1;
}

bool Child::ended() {
  if (reaped_) return true;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) != pid_) return false;
  const auto until = after(0.5);
  while (pump(ms_until(until)) && Clock::now() < until) {
  }
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  reaped_ = true;
  track(pid_, false);
  close_stdin();
  return true;
}

int Child::finish(Clock::time_point deadline) {
  close_stdin();
  if (reaped_) return status_;
  int sent = 0;  // 0: none yet, 1: SIGTERM, 2: SIGKILL
  Clock::time_point kill_at = deadline;
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      // Whatever it wrote before it ended (bounded: a process it left behind may hold the pipes).
      const auto until = after(0.5);
      while (pump(ms_until(until)) && Clock::now() < until) {
      }
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (r < 0 && errno != EINTR) {
      status_ = -1;
      break;
    }
    if (Clock::now() >= kill_at) {
      if (sent == 0) timed_out_ = true;
      kill(pid_, sent == 0 ? SIGTERM : SIGKILL);
      ++sent;
      kill_at = sent >= 2 ? after(3600) : after(1.0);
      if (sent >= 2) {
        waitpid(pid_, &st, 0);
        status_ = 128 + SIGKILL;
        break;
      }
    }
    if (!pump(10)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reaped_ = true;
  track(pid_, false);
  return status_;
}

std::string Child::err_tail(size_t n) const {
  std::string s = err_.size() > n ? "..." + err_.substr(err_.size() - n) : err_;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

RunResult run_bounded(const std::vector<std::string>& argv, double timeout_s) {
  Child c(argv, false);
  RunResult r;
  r.status = c.finish(after(timeout_s));
  r.timed_out = c.timed_out();
  r.out = c.out();
  r.err = c.err_tail(2000);
  return r;
}

}  // namespace ulsnet::ssh
