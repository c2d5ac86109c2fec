#include "bench/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace ulsnet {

namespace {

constexpr const char* kHolderEnv = "ULSNET_RUN_LOCK_HOLDER";

// The parent of `pid` from /proc/<pid>/stat, 0 if unknown.
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 1));
  std::string state;
  long ppid = 0;
  rest >> state >> ppid;
  return pid_t(ppid);
}

bool is_ancestor(pid_t holder) {
  for (pid_t p = getppid(); p > 1; p = parent_of(p))
    if (p == holder) return true;
  return false;
}

std::string read_all(int fd) {
  std::string s;
  char b[4096];
  ssize_t n;
  off_t off = 0;
  while ((n = pread(fd, b, sizeof b, off)) > 0) s.append(b, size_t(n)), off += n;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

std::string RunLock::path() {
  if (const char* p = std::getenv("ULSNET_RUN_LOCK"); p && *p) return p;
  if (const char* t = std::getenv("TEST_TMPDIR"); t && *t) return std::string(t) + "/ulsnet-measure.lock";
  return "/run/lock/ulsnet-measure.lock";
}

std::optional<RunLock> RunLock::acquire(const std::string& tool, int argc, char** argv, std::string& error) {
  if (const char* h = std::getenv(kHolderEnv); h && *h) {
    char* end = nullptr;
    const long holder = std::strtol(h, &end, 10);
    if (end && *end == '\0' && holder > 1 && is_ancestor(pid_t(holder))) return RunLock(-1);
  }
  const std::string p = path();
  int fd = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EACCES) fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);  // another user's file: flock works read-only
  if (fd < 0) {
    error = "cannot open the measurement lock " + p + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::string holder = e == EWOULDBLOCK ? read_all(fd) : "";
    close(fd);
    if (e != EWOULDBLOCK) {
      error = "cannot take the measurement lock " + p + ": " + std::strerror(e);
      return std::nullopt;
    }
    error = "another ulsnet measurement is running on this machine: " +
            (holder.empty() ? std::string("(its holder wrote nothing yet)") : holder) +
            ". Two at once would share the CPUs and skew both; wait for it to end or stop it (lock: " + p + ")";
    return std::nullopt;
  }
  char when[64] = "?";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = tool + " (pid " + std::to_string(getpid()) + ", started " + when + "):";
  for (int i = 0; i < argc; ++i) line += std::string(" ") + argv[i];
  line += "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line.data(), line.size(), 0) != ssize_t(line.size())) {
    // The lock holds all the same; only the message to a second run is poorer.
  }
  setenv(kHolderEnv, std::to_string(getpid()).c_str(), 1);
  return RunLock(fd);
}

std::optional<RunLock> RunLock::take_or_explain(const std::string& tool, int argc, char** argv) {
  std::string error;
  std::optional<RunLock> l = acquire(tool, argc, argv, error);
  if (!l) std::fprintf(stderr, "%s: %s\n", tool.c_str(), error.c_str());
  return l;
}

RunLock& RunLock::operator=(RunLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

RunLock::~RunLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock (forked children that share it die with us)
}

}  // namespace ulsnet
