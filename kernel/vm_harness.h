// Host-side helpers for everything that runs the patched kernel in virtual hosts (kernel/vm_test,
// bench/vm_jitter): finding the scripts among the runfiles, building the kernel and an
// initramfs, launching kernel/vm.sh, reading the serial logs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ulsnet::vm {

// A file of the calling target's runfiles, by its path in the workspace ("kernel/vm.sh").
// Throws std::runtime_error when it is not there.
std::string runfile(const std::string& workspace_path);

// Runs a shell command (PATH extended with /usr/sbin and /sbin, stdin /dev/null); returns
// {exit status, output} with stderr merged into stdout. The command runs in a process group of
// its own, which an interrupt (install_interrupt_cleanup) ends with the program.
std::pair<int, std::string> sh(const std::string& cmd);

std::string slurp(const std::string& path);
// The test's scratch directory ($TEST_TMPDIR under bazel test), else /tmp.
std::string test_tmpdir();
std::string last_line(std::string s);
// The numeric key=value pairs of the last line of `log` starting with `marker` (preferring the
// last one that also contains `prefer`, if any does).
std::map<std::string, long long> fields(const std::string& log, const std::string& marker,
                                        const std::string& prefer = "");
// The rest of the last line of `log` starting with `marker` (after it), or "".
std::string line_after(const std::string& log, const std::string& marker);

// kernel/build.sh (with --debug: the debug kernel, KASAN and lockdep, never for measurements):
// returns {image path, ""} or {"", the build's output tail} on failure.
std::pair<std::string, std::string> build_kernel(bool debug = false);

// kernel/initramfs.sh with the given static binaries in /bin; returns "" or the error output.
std::string make_initramfs(const std::string& out, const std::vector<std::string>& bins);

// What an experiment on virtual hosts starts from: the kernel built, an initramfs with `bins`,
// a fresh temporary directory for logs. `error` says why not (not root, no QEMU, a failed
// build); `usage_error` is true for what the user can fix (root, QEMU), false for failures.
struct Prepared {
  std::string image, initrd, workdir, error;
  bool usage_error = false;
};
Prepared prepare(const std::vector<std::string>& bins, bool debug_kernel = false);

// Removes what prepare() made, unless `keep_logs` (a run failed): then says where the logs are.
void cleanup(const Prepared& p, bool keep_logs);

// Makes SIGINT/SIGTERM/SIGHUP tear down the virtual hosts of a launch in progress (vm.sh's own
// teardown) before the process dies of the signal. prepare() installs it.
void install_interrupt_cleanup();

// The rate of this machine's TSC in kHz, measured against CLOCK_MONOTONIC_RAW (once, 200 ms;
// within ~10 ppm), or 0 where there is none. Under TCG a guest's TSC is the host's: guests given
// this rate keep time by their TSC instead of calibrating it (kernel/vm.sh --tsc-khz).
uint64_t host_tsc_khz();

// kernel/vm.sh; `args` are its remaining arguments (--hosts, --run/--test, --append...). Unless
// `args` say otherwise, the guests are given the host's TSC rate (--tsc-khz host_tsc_khz()).
// Returns {exit status, the launcher's output}. Several threads may launch at once (each vm.sh
// has its own network namespace); an interrupt tears every launch in progress down. vm.sh runs
// in a process group of its own: a terminal's Ctrl-C reaches only the calling program.
std::pair<int, std::string> launch(const std::string& image, const std::string& initrd,
                                   const std::string& logdir, const std::string& args, int timeout_s);

// The accelerator a launch with `--accel requested` (auto, kvm or tcg) would run under, and why,
// as kernel/vm.sh --probe-accel resolves it (under auto, one probe guest at most, cached by
// vm.sh for an hour). `error` is set (and `name` empty) when vm.sh could not say.
struct Accelerator {
  std::string name, reason, error;
};
Accelerator resolve_accelerator(const Prepared& p, const std::string& requested);

}  // namespace ulsnet::vm
