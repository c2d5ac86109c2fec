#include "kernel/vm_harness.h"

#include <signal.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ulsnet::vm {

namespace {
void track_workdir(const std::string& dir, bool add);  // for the interrupt handler (below)

// Children the interrupt handler ends: the launchers running now (launch() may run in several
// threads at once) and the commands sh() runs now (their process groups). Lock-free atomics,
// safe to read in a signal handler.
using PidSlots = std::array<std::atomic<pid_t>, 16>;
static_assert(std::atomic<pid_t>::is_always_lock_free);
PidSlots g_launchers{};
PidSlots g_commands{};

// A slot for `pid`, or nullptr when all are taken (then an interrupt neither ends it nor waits
// for it: 16 at once does not happen here).
std::atomic<pid_t>* take_slot(PidSlots& slots, pid_t pid) {
  for (auto& slot : slots) {
    pid_t free = 0;
    if (slot.compare_exchange_strong(free, pid)) return &slot;
  }
  return nullptr;
}
}  // namespace

std::string runfile(const std::string& workspace_path) {
  std::vector<std::string> roots;
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"})
    if (const char* r = std::getenv(var)) roots.emplace_back(r);
  std::array<char, 4096> self{};
  ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n > 0) roots.push_back(std::string(self.data(), static_cast<size_t>(n)) + ".runfiles");
  const char* ws = std::getenv("TEST_WORKSPACE");
  for (const auto& root : roots) {
    std::string p = root + "/" + (ws ? ws : "ulsnet") + "/" + workspace_path;
    if (std::filesystem::exists(p)) return p;
  }
  throw std::runtime_error("runfile " + workspace_path + " not found (run it through bazel)");
}

// The command runs in a process group of its own, recorded for the interrupt handler, which
// ends the whole group (a kernel build: make and its compilers too) before the program dies: a
// signal sent to this process alone (kill, a supervisor) would otherwise leave it running.
std::pair<int, std::string> sh(const std::string& cmd) {
  const std::string full = "PATH=$PATH:/usr/sbin:/sbin; " + cmd + " 2>&1";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {-1, std::string("pipe: ") + std::strerror(errno)};
  // Termination signals wait until the child is recorded, so the handler never misses it.
  sigset_t term, old;
  sigemptyset(&term);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&term, sig);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);  // not this program's handler
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(fds[1], 1);
    execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);  // (either side may run first)
  std::atomic<pid_t>* slot = pid > 0 ? take_slot(g_commands, pid) : nullptr;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return {-1, std::string("fork: ") + std::strerror(errno)};
  }
  std::string out;
  std::array<char, 4096> buf;
  for (;;) {
    const ssize_t k = read(fds[0], buf.data(), buf.size());
    if (k > 0) {
      out.append(buf.data(), static_cast<size_t>(k));
    } else if (k == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (slot != nullptr) slot->store(0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string test_tmpdir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto i = s.rfind('\n');
  return i == std::string::npos ? s : s.substr(i + 1);
}

std::pair<std::string, std::string> build_kernel(bool debug) {
  auto [rc, out] = sh("bash " + runfile("kernel/build.sh") + (debug ? " --debug" : ""));
  if (rc != 0) return {"", out.size() > 3000 ? out.substr(out.size() - 3000) : out};
  return {last_line(out), ""};
}

std::string make_initramfs(const std::string& out, const std::vector<std::string>& bins) {
  std::string cmd = "bash " + runfile("kernel/initramfs.sh") + " --out " + out;
  for (const auto& b : bins) cmd += " --bin " + b;
  auto [rc, o] = sh(cmd);
  return rc == 0 ? "" : o;
}

Prepared prepare(const std::vector<std::string>& bins, bool debug_kernel) {
  Prepared p;
  install_interrupt_cleanup();
  if (geteuid() != 0) {
    p.error = "needs root (QEMU hosts in a private network namespace)";
    p.usage_error = true;
    return p;
  }
  if (sh("command -v qemu-system-x86_64").first != 0) {
    p.error = "qemu-system-x86_64 not installed: run tools/setup.sh";
    p.usage_error = true;
    return p;
  }
  std::fprintf(stderr, "building the %sguest kernel (kernel/build.sh%s)...\n", debug_kernel ? "debug " : "",
               debug_kernel ? " --debug" : "");
  auto [image, build_error] = build_kernel(debug_kernel);
  if (image.empty()) {
    p.error = "kernel build failed:\n" + build_error;
    return p;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "ulsnet-vm-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    p.error = "cannot make a temporary directory";
    return p;
  }
  p.workdir = tmpl;
  track_workdir(p.workdir, true);
  p.initrd = p.workdir + "/initrd.gz";
  if (std::string err = make_initramfs(p.initrd, bins); !err.empty()) {
    p.error = "initramfs: " + err;
    return p;
  }
  p.image = image;
  return p;
}

void cleanup(const Prepared& p, bool keep_logs) {
  if (p.workdir.empty()) return;
  track_workdir(p.workdir, false);
  if (keep_logs) {
    std::fprintf(stderr, "guest logs kept in %s\n", p.workdir.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(p.workdir, ec);
}

namespace {

// The work directories of prepare() not yet cleaned up (guest image, logs), for the interrupt
// handler: fixed buffers it can read without allocating.
constexpr size_t kWorkdirSlots = 8;
char g_workdirs[kWorkdirSlots][256];
std::array<std::atomic<bool>, kWorkdirSlots> g_workdir_used{};

void track_workdir(const std::string& dir, bool add) {
  for (size_t i = 0; i < kWorkdirSlots; ++i) {
    if (add && !g_workdir_used[i].load() && dir.size() < sizeof g_workdirs[i]) {
      std::memcpy(g_workdirs[i], dir.c_str(), dir.size() + 1);
      g_workdir_used[i].store(true);
      return;
    }
    if (!add && g_workdir_used[i].load() && dir == g_workdirs[i]) {
      g_workdir_used[i].store(false);
      return;
    }
  }
}

// SIGTERM to every child in `slots` (to its whole process group if `group`), then reap each.
void end_and_reap(PidSlots& slots, bool group) {
  for (auto& slot : slots)
    if (const pid_t p = slot.load(); p > 0) kill(group ? -p : p, SIGTERM);
  for (auto& slot : slots)
    if (const pid_t p = slot.load(); p > 0) {
      int st;
      waitpid(p, &st, 0);
    }
}

// SIGINT/SIGTERM/SIGHUP while virtual hosts run or are prepared: the commands of sh() (a kernel
// build) end with their process groups, each launcher tears its hosts down (its own trap), we
// wait for them all, remove the work directories (rm -rf: fork, exec and wait are safe here),
// then die of the same signal.
void on_interrupt(int sig) {
  end_and_reap(g_commands, true);
  end_and_reap(g_launchers, false);
  for (size_t i = 0; i < kWorkdirSlots; ++i)
    if (g_workdir_used[i].load()) {
      const pid_t rm = fork();
      if (rm == 0) {
        execl("/bin/rm", "rm", "-rf", "--", g_workdirs[i], static_cast<char*>(nullptr));
        _exit(127);
      }
      if (rm > 0) {
        int st;
        waitpid(rm, &st, 0);
      }
    }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install_interrupt_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

uint64_t host_tsc_khz() {
#if defined(__x86_64__)
  static const uint64_t khz = [] {
    auto ns = [] {
      timespec t;
      clock_gettime(CLOCK_MONOTONIC_RAW, &t);
      return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
    };
    // Each end as the middle of a tight clock-TSC-clock read, so a preemption there shows.
    auto sample = [&](uint64_t& t, uint64_t& c) {
      for (int i = 0; i < 5; ++i) {
        const uint64_t a = ns(), x = __rdtsc(), b = ns();
        if (b - a < 2000) {
          t = (a + b) / 2;
          c = x;
          return;
        }
      }
      t = ns();
      c = __rdtsc();
    };
    uint64_t t0, c0, t1, c1;
    sample(t0, c0);
    timespec d = {0, 200000000};
    nanosleep(&d, nullptr);
    sample(t1, c1);
    return t1 > t0 ? uint64_t(double(c1 - c0) * 1e6 / double(t1 - t0) + 0.5) : 0;
  }();
  return khz;
#else
  return 0;
#endif
}

std::pair<int, std::string> launch(const std::string& image, const std::string& initrd,
                                   const std::string& logdir, const std::string& args, int timeout_s) {
  std::string extra;
  if (args.find("--tsc-khz") == std::string::npos)
    if (const uint64_t khz = host_tsc_khz(); khz > 0) extra = " --tsc-khz " + std::to_string(khz);
  const std::string cmd = "PATH=$PATH:/usr/sbin:/sbin; exec bash " + runfile("kernel/vm.sh") + " --kernel " +
                          image + " --initrd " + initrd + " --log-dir " + logdir + " " + args + extra +
                          " --timeout " + std::to_string(timeout_s) + " 2>&1";
  int pipefd[2];
  if (pipe(pipefd) != 0) return {-1, "pipe failed"};
  const pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return {-1, "fork failed"};
  }
  if (pid == 0) {
    // A process group of its own, as sh()'s commands: a terminal's Ctrl-C reaches only the
    // program, whose handler (install_interrupt_cleanup, or a program's own) ends the launch.
    setpgid(0, 0);
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::atomic<pid_t>* slot = take_slot(g_launchers, pid);  // `exec`: the shell becomes vm.sh, which handles SIGTERM
  close(pipefd[1]);
  std::string out;
  std::array<char, 4096> buf;
  ssize_t k;
  while ((k = read(pipefd[0], buf.data(), buf.size())) != 0)
    if (k > 0) out.append(buf.data(), size_t(k));
    else if (errno != EINTR) break;
  close(pipefd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (slot) slot->store(0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::map<std::string, long long> fields(const std::string& log, const std::string& marker,
                                        const std::string& prefer) {
  std::istringstream in(log);
  std::string line, chosen, preferred;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(marker, 0) != 0) continue;
    chosen = line;
    if (!prefer.empty() && line.find(prefer) != std::string::npos) preferred = line;
  }
  if (!preferred.empty()) chosen = preferred;
  std::map<std::string, long long> m;
  std::istringstream w(chosen);
  std::string kv;
  while (w >> kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    try {
      m[kv.substr(0, eq)] = std::stoll(kv.substr(eq + 1));
    } catch (...) {
    }
  }
  return m;
}

Accelerator resolve_accelerator(const Prepared& p, const std::string& requested) {
  Accelerator a;
  auto [rc, out] = launch(p.image, p.initrd, p.workdir + "/accel-probe", "--probe-accel --accel " + requested, 60);
  const std::string line = line_after(out, "ULSNET-ACCEL ");
  if (rc != 0 || line.rfind("name=", 0) != 0) {
    a.error = "kernel/vm.sh --probe-accel (exit " + std::to_string(rc) + "): " + last_line(out);
    return a;
  }
  const auto sp = line.find(' ');
  a.name = line.substr(5, sp == std::string::npos ? std::string::npos : sp - 5);
  if (sp != std::string::npos && line.compare(sp + 1, 7, "reason=") == 0) a.reason = line.substr(sp + 8);
  return a;
}

std::string line_after(const std::string& log, const std::string& marker) {
  std::istringstream in(log);
  std::string line, found;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(marker, 0) == 0) found = line.substr(marker.size());
  }
  return found;
}

}  // namespace ulsnet::vm
