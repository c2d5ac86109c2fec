// One measuring run per machine at a time.
//
// Two benchmarks at once on one machine share its CPUs: each one's numbers would carry the
// other's load, and both would pin their generator, proxy and sink to the same CPUs. Every
// measuring tool (//bench:throughput, jitter, micro, the VM benchmarks, //paper:reproduce) takes
// this lock before it builds anything; a second run refuses at once with a message naming the
// first (its tool, pid, start time and command line), exit status 3.
//
// The lock is flock(2) on a file, so it goes with its holder however that ends (SIGKILL too).
// Processes the holder starts inherit it (ULSNET_RUN_LOCK_HOLDER names the holder's pid; a
// process whose ancestor that is runs under it): //paper:reproduce runs the benchmarks, micro
// re-runs itself.
//
// Where: $ULSNET_RUN_LOCK if set; under `bazel test` ($TEST_TMPDIR set) the test's own
// directory, so that tests, whose runs are not measurements, may run side by side; otherwise
// /run/lock/ulsnet-measure.lock.
#pragma once

#include <optional>
#include <string>

namespace ulsnet {

class RunLock {
 public:
  // Takes the lock for `tool` (its argv for the message), or returns nullopt with `error` naming
  // the run that holds it (or why the lock file could not be used).
  static std::optional<RunLock> acquire(const std::string& tool, int argc, char** argv, std::string& error);

  RunLock(RunLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunLock& operator=(RunLock&& o) noexcept;
  RunLock(const RunLock&) = delete;
  ~RunLock();

  // acquire() for a tool's main(): on failure prints "<tool>: <error>" on stderr (the caller
  // exits 3).
  static std::optional<RunLock> take_or_explain(const std::string& tool, int argc, char** argv);

  // The lock file's path as acquire() resolves it.
  static std::string path();
  // True when this lock is the inherited one of an ancestor process.
  bool inherited() const { return fd_ < 0; }

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace ulsnet
