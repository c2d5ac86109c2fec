// kernel-socket:io_uring: the UDP relay as an engineer writes the fastest kernel-socket proxy
// today (liburing). The same sockets, port plan and kernel counters as the other kernel-socket
// variants (baselines/kernel_socket.h); what differs is how the relay talks to the kernel:
//   - one multishot receive (IORING_RECV_MULTISHOT) on the receiving socket, into a ring of
//     provided buffers (a buffer per datagram, any UDP datagram fits: 64 KiB each, touched only
//     as far as datagrams reach); it stays armed, one completion per datagram;
//   - each received datagram sent from its buffer by a sendmsg to the receiver (the buffer goes
//     back to the ring when the send completes), every send of a pass submitted together;
//   - one io_uring_enter per pass: io_uring_submit_and_wait_timeout submits the pass's sends
//     and waits for the next completions (at most kIdleWaitMs, so that stop is seen);
//   - both sockets registered (fixed files).
// A datagram is copied twice, as in the other variants: kernel -> buffer on receive, buffer ->
// kernel on send. The kernel does all protocol processing.
//
// Two more variants, run only when named (each changes one thing, labelled in the report):
//   - io_uring-sqpoll: IORING_SETUP_SQPOLL. A kernel thread of the relay's process (iou-sqp-PID)
//     takes the submissions off the ring, so the relay enters the kernel only to wait for
//     completions or to wake that thread. The thread is pinned (IORING_SETUP_SQ_AFF): when the
//     relay may use more than one CPU, the relay thread goes on the first (for run()) and the SQ
//     thread on the last; on one CPU (the namespace hosts' proxy) they share it, and the report
//     says so. The SQ
//     thread's CPU time is the process's (getrusage counts its threads), and the report has it
//     apart too (its thread CPU clock).
//   - io_uring-send_zc: each send is IORING_OP_SEND_ZC from the buffers registered as one fixed
//     buffer: the kernel may send from the pages without copying. The buffer goes back to the
//     ring only at the send's notification; the notification says whether the kernel copied
//     anyway (IORING_SEND_ZC_REPORT_USAGE, Linux >= 6.2; veth always does, on delivery into the
//     receiving socket), and `copies` counts those. Where the kernel does not say, `copies` is
//     left out. For large payloads: below a few KiB the pinning costs more than the copy.
//
// Every io_uring_enter is the relay's own call (enter()): `io_uring_enter` counts them exactly.
//
// Accounting: received = forwarded + send failures (each errno counted; a short send counts as
// a failure) + sends still in flight at stop (waited for, bounded: normally none). A receive
// that finds the buffer ring empty ends with ENOBUFS and leaves the datagram in the socket, where
// it waits for the re-armed receive or, if the socket's buffer fills meanwhile, is dropped by the
// kernel (Udp.RcvbufErrors, counted): the report counts those events as rx_buffer_ring_empty.
#include <liburing.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baselines/kernel_socket.h"
#include "baselines/proc_counters.h"
#include "stack/cpu_affinity.h"
#include "stack/live_exchange.h"

namespace ulsnet::kernel_socket {
namespace {

constexpr uint64_t kRecvTag = ~uint64_t(0);      // the multishot receive's user_data
constexpr uint64_t kCancelTag = ~uint64_t(0) - 1;  // its cancellation's
constexpr uint16_t kBufferGroup = 1;
constexpr int kInFile = 0, kOutFile = 1;         // registered file indices
constexpr unsigned kSqThreadIdleMs = 10;           // SQPOLL: the SQ thread sleeps after this idle
// Linux >= 6.2 (liburing 2.3's header predates them): the send_zc notification says whether the
// kernel copied the data after all.
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

// Why io_uring cannot be used here, for the MethodError: the sysctl that disables it (Linux >= 6.6),
// the kernel without it, a policy refusing it, the locked-memory limit.
std::string unavailable(const std::string& name, int err) {
  std::string disabled;
  std::ifstream f("/proc/sys/kernel/io_uring_disabled");
  if (f) std::getline(f, disabled);
  const std::string pre = name + ": io_uring is not available here: ";
  if (disabled == "2") return pre + "it is disabled on this host (kernel.io_uring_disabled = 2)";
  if (disabled == "1" && err == EPERM)
    return pre + "kernel.io_uring_disabled = 1 allows it only to root and the group in kernel.io_uring_group";
  if (err == ENOSYS) return pre + "this kernel has no io_uring (CONFIG_IO_URING off), io_uring_setup: ENOSYS";
  if (err == EPERM)
    return pre + "io_uring_setup was refused (EPERM; kernel.io_uring_disabled = " +
           (disabled.empty() ? std::string("not present") : disabled) + "): a seccomp filter or a container policy";
  if (err == ENOMEM) return pre + "io_uring_setup: ENOMEM (the locked-memory limit, RLIMIT_MEMLOCK?)";
  return pre + "io_uring_setup: " + std::strerror(err);
}

// This kernel's version as major * 1000 + minor (0 if unreadable), and its release string.
int kernel_version(std::string* release = nullptr) {
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  if (release) *release = u.release;
  return major * 1000 + minor;
}

// Multishot receive needs Linux >= 6.0 (provided-buffer rings: 5.19; IORING_OP_SEND_ZC: 6.0).
void require_kernel_6(const std::string& name) {
  std::string release;
  const int v = kernel_version(&release);
  if (v != 0 && v < 6000)
    throw MethodError(name + ": needs Linux >= 6.0 (multishot receive into a provided-buffer ring); this kernel is " +
                      release);
}

// A thread's CPU time, ns (its per-thread CPU clock: the kernel adds the running slice, which
// /proc's schedstat of a thread running on another CPU leaves out), or -1.
int64_t thread_run_ns(int tid) {
  if (tid < 0) return -1;
  const clockid_t clock = clockid_t((~unsigned(tid) << 3) | 6);  // CPUCLOCK_SCHED | PERTHREAD
  timespec t{};
  if (clock_gettime(clock, &t) != 0) return -1;
  return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

uint32_t power_of_two_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

class UringRelay final : public ProxyMethod {
 public:
  explicit UringRelay(const MethodInfo& info) : info_(info) {}
  ~UringRelay() override {
    if (ring_up_) io_uring_queue_exit(&ring_);  // before the buffers and sockets it refers to
    if (br_ != nullptr) munmap(br_, br_bytes_);
    if (bufs_ != nullptr) munmap(bufs_, size_t(nbufs_) * kMaxDatagram);
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
  }

  void start(const ProxyConfig& cfg) override {
    variant_ = check_method_config(info_, cfg);
    name_ = "kernel-socket:" + variant_;
    sqpoll_ = variant_ == "io_uring-sqpoll";
    send_zc_ = variant_ == "io_uring-send_zc";
    require_kernel_6(name_);
    batch_ = std::clamp<uint32_t>(cfg.batch, 1, 1024);
    // Buffers for 8 passes of the batch size (at least 256, at most 4096): the ring runs dry only
    // when the sends fall that far behind.
    nbufs_ = std::min<uint32_t>(4096, power_of_two_at_least(std::max<uint32_t>(256, batch_ * 8)));
    io_uring_params p{};
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    // Room for a completion of every buffer's receive and send (and send_zc's notification).
    p.cq_entries = nbufs_ * (send_zc_ ? 4 : 2);
    std::vector<int> sq_threads_before;
    if (sqpoll_) {
      const std::vector<int> cpus = allowed_cpus();
      if (cpus.empty()) throw MethodError(name_ + ": sched_getaffinity: " + std::strerror(errno));
      // A CPU each where there are two: run() pins its thread to the first.
      relay_cpu_ = cpus.front();
      sq_cpu_ = cpus.back();
      p.flags |= IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF;
      p.sq_thread_cpu = unsigned(sq_cpu_);
      p.sq_thread_idle = kSqThreadIdleMs;
      sq_threads_before = sq_threads();
    }
    if (int r = io_uring_queue_init_params(nbufs_, &ring_, &p); r < 0) throw MethodError(unavailable(name_, -r));
    ring_up_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG))
      throw MethodError(name_ + ": this kernel's io_uring lacks IORING_FEAT_EXT_ARG (Linux >= 5.11)");
    // Submission slots map one to one onto entries: enter() hands the kernel the tail only.
    for (unsigned i = 0; i < ring_.sq.ring_entries; ++i) ring_.sq.array[i] = i;
    if (sqpoll_) {
      // The thread names itself when it first runs (it may be waiting for this one's CPU).
      for (int i = 0; i < 1000 && sq_tid_ < 0; ++i) {
        for (int tid : sq_threads())
          if (std::find(sq_threads_before.begin(), sq_threads_before.end(), tid) == sq_threads_before.end())
            sq_tid_ = tid;
        if (sq_tid_ < 0) usleep(1000);
      }
      if (sq_tid_ < 0) throw MethodError(name_ + ": the ring's SQPOLL thread (iou-sqp-*) is not among this process's threads");
      std::ifstream st("/proc/self/task/" + std::to_string(sq_tid_) + "/status");
      for (std::string line; std::getline(st, line);)
        if (line.rfind("Cpus_allowed_list:", 0) == 0) sq_cpus_seen_ = line.substr(line.find_first_not_of(" \t", 18));
    }
    in_ = udp_socket_bound(cfg.in.ip, cfg.relay_port, true);
    out_ = udp_socket_bound(cfg.out.ip, 0, false);
    dst_ = socket_address(cfg.out.peer_ip, cfg.relay_to_port);
    const int files[2] = {in_, out_};
    if (int r = io_uring_register_files(&ring_, files, 2); r < 0)
      throw MethodError(name_ + ": registering the sockets: " + std::strerror(-r));
    // The provided-buffer ring and its buffers (anonymous memory: pages touched as data reaches them).
    br_bytes_ = size_t(nbufs_) * sizeof(io_uring_buf);
    void* ring_mem = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* bufs = mmap(nullptr, size_t(nbufs_) * kMaxDatagram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring_mem == MAP_FAILED || bufs == MAP_FAILED) {
      if (ring_mem != MAP_FAILED) munmap(ring_mem, br_bytes_);
      if (bufs != MAP_FAILED) munmap(bufs, size_t(nbufs_) * kMaxDatagram);
      throw MethodError(name_ + ": mmap: " + std::strerror(errno));
    }
    br_ = static_cast<io_uring_buf_ring*>(ring_mem);
    bufs_ = static_cast<uint8_t*>(bufs);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = nbufs_;
    reg.bgid = kBufferGroup;
    if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0)
      throw MethodError(name_ + ": registering the provided-buffer ring: " + std::strerror(-r) +
                        (r == -EINVAL ? " (Linux >= 5.19 needed)" : ""));
    io_uring_buf_ring_init(br_);
    for (uint32_t i = 0; i < nbufs_; ++i)
      io_uring_buf_ring_add(br_, buffer(i), kMaxDatagram, uint16_t(i), io_uring_buf_ring_mask(nbufs_), int(i));
    io_uring_buf_ring_advance(br_, int(nbufs_));
    if (send_zc_) {
      // All buffers as one registered (fixed) buffer: pinned once here, not per send.
      const iovec whole{bufs_, size_t(nbufs_) * kMaxDatagram};
      if (int r = io_uring_register_buffers(&ring_, &whole, 1); r < 0)
        throw MethodError(name_ + ": registering " + std::to_string(whole.iov_len >> 20) + " MiB of buffers: " +
                          std::strerror(-r) + (r == -ENOMEM ? " (the locked-memory limit, RLIMIT_MEMLOCK?)" : ""));
      zc_usage_reported_ = kernel_version() >= 6002;
    }
    // One sendmsg header per buffer, to the receiver.
    iov_.resize(nbufs_);
    msg_.resize(nbufs_);
    for (uint32_t i = 0; i < nbufs_; ++i) {
      iov_[i] = {buffer(i), 0};
      msg_[i] = {};
      msg_[i].msg_name = &dst_;
      msg_[i].msg_namelen = sizeof dst_;
      msg_[i].msg_iov = &iov_[i];
      msg_[i].msg_iovlen = 1;
    }
    snmp0_ = read_snmp();
    sq_ns0_ = thread_run_ns(sq_tid_);
  }

  void run(const std::atomic<bool>& stop) override {
    // SQPOLL with a CPU each: this thread on the relay's, for the run.
    std::optional<AffinityRestore> restore;
    if (sqpoll_ && sq_cpu_ != relay_cpu_) {
      restore.emplace();
      if (!pin_to(relay_cpu_))
        throw MethodError(name_ + ": pinning the relay thread to CPU " + std::to_string(relay_cpu_) + ": " +
                          std::strerror(errno));
    }
    run_passes(stop);
  }

  void run_passes(const std::atomic<bool>& stop) {
    arm_receive();
    while (!stop.load(std::memory_order_relaxed)) {
      if (live_.asked()) live_.answer([this](LiveCopy& c) { c = {received_, forwarded_, send_failed_}; });
      if (pass(kIdleWaitMs * 1'000'000LL) == 0) ++idle_waits_;
    }
    // What is queued already is received and sent too (bounded: the sender may still be
    // sending), then the receive is cancelled and the sends in flight complete.
    for (int i = 0; i < 64 && pass(1'000'000) > 0; ++i) {
    }
    cancel_receive();
    for (int i = 0; i < 1000 && (inflight_ > 0 || receiving_); ++i) pass(1'000'000);
    in_flight_at_stop_ = inflight_;
    // What is left in the socket (a relay that fell behind) goes with it: counted as dropped at
    // the proxy's queue, not lost from the accounting.
    for (uint64_t n = 0; n < 100'000'000; ++n) {
      if (recv(in_, buffer(0), kMaxDatagram, MSG_DONTWAIT) < 0) break;
      ++left_at_stop_;
    }
    sq_ns1_ = thread_run_ns(sq_tid_);
  }

  nlohmann::json live() override {
    std::optional<LiveCopy> l = live_.ask(kLiveWaitMs);
    if (!l) return nullptr;
    return {{"forwarded", l->forwarded}, {"drops", drops(counter_delta(snmp0_, read_snmp()), l->send_failed).to_json()}};
  }

  nlohmann::json report() override {
    const auto d = counter_delta(snmp0_, read_snmp());
    DropLedger ledger = drops(d, send_failed_);
    ledger.add(DropStage::kProxyQueue, "left_in_socket_at_stop", left_at_stop_);
    ledger.add(DropStage::kProxyTx, "send_in_flight_at_stop", in_flight_at_stop_);
    nlohmann::json j = relay_report(received_, forwarded_, ledger, send_errors_, d, in_, out_);
    j["variant"] = variant_;
    nlohmann::json u = {{"io_uring_enter", enters_},
                        {"io_uring_enter_errors", errno_counts(enter_errors_)},
                        {"provided_buffers", nbufs_},
                        {"buffer_bytes", kMaxDatagram},
                        {"receive", "multishot recv, provided-buffer ring"},
                        {"send", send_zc_ ? "IORING_OP_SEND_ZC per datagram from the registered buffers, the "
                                            "pass's sends in one submission"
                                          : "sendmsg per datagram, the pass's sends in one submission"},
                        {"fixed_files", true},
                        {"sqpoll", sqpoll_},
                        {"send_zc", send_zc_},
                        {"receive_arms", arms_},
                        {"rx_buffer_ring_empty", ring_empty_},
                        {"short_sends", short_sends_},
                        {"receive_errors", errno_counts(recv_errors_)}};
    if (sqpoll_) {
      u["sq_thread"] = {{"cpu", sq_cpu_},
                        {"relay_cpu", relay_cpu_},
                        {"cpus_allowed", sq_cpus_seen_},
                        {"shares_relay_cpu", sq_cpu_ == relay_cpu_},
                        {"idle_ms", kSqThreadIdleMs},
                        {"wakeups", sq_wakeups_},
                        {"cpu_ns", sq_ns0_ >= 0 && sq_ns1_ >= sq_ns0_ ? nlohmann::json(sq_ns1_ - sq_ns0_) : nlohmann::json()},
                        {"cpu_ns_is", "the SQ thread's CPU time while the relay ran (its thread CPU clock); a thread "
                                      "of the relay's process, so in the process's CPU time too"}};
    }
    if (send_zc_) {
      u["send_zc_notifications"] = zc_notifications_;
      u["usage_reported"] = zc_usage_reported_;
      if (zc_usage_reported_) {
        u["sends_copied_by_kernel"] = zc_copied_;
        u["sends_zero_copy"] = zc_notifications_ - zc_copied_;
      }
    }
    j["io_uring"] = u;
    j["syscalls"] = enters_;
    if (!send_zc_) {
      j["copies"] = received_ + forwarded_;  // kernel -> buffer on receive, buffer -> kernel on send
    } else if (zc_usage_reported_) {
      j["copies"] = received_ + zc_copied_;  // on receive, and the sends the kernel copied after all
    } else {
      j["copies_unknown"] = "this kernel (< 6.2) does not report whether a zero-copy send was copied";
    }
    j["idle_waits"] = idle_waits_;
    return j;
  }

 private:
  struct LiveCopy {
    uint64_t received = 0, forwarded = 0, send_failed = 0;
  };

  uint8_t* buffer(uint32_t i) const { return bufs_ + size_t(i) * kMaxDatagram; }

  // The thread ids of this process's SQPOLL threads (comm "iou-sqp-PID").
  static std::vector<int> sq_threads() {
    std::vector<int> v;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
      std::string comm;
      std::ifstream(e.path() / "comm") >> comm;
      if (comm.rfind("iou-sqp-", 0) == 0) v.push_back(std::atoi(e.path().filename().c_str()));
    }
    return v;
  }

  // The submissions queued since the last call handed to the kernel (the ring's tail); the
  // number not yet consumed.
  unsigned flush_sq() {
    io_uring_sq& sq = ring_.sq;
    const unsigned tail = sq.sqe_tail;
    if (sq.sqe_head != tail) {
      sq.sqe_head = tail;
      io_uring_smp_store_release(sq.ktail, tail);
    }
    return tail - io_uring_smp_load_acquire(sq.khead);
  }

  // SQPOLL: IORING_ENTER_SQ_WAKEUP if the SQ thread went to sleep (it must be woken to see new
  // submissions), else 0.
  unsigned sq_wakeup() {
    if (!sqpoll_) return 0;
    io_uring_smp_mb();
    if (!(IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_NEED_WAKEUP)) return 0;
    ++sq_wakeups_;
    return IORING_ENTER_SQ_WAKEUP;
  }

  // The relay's every io_uring_enter: counted here. With wait_ns >= 0, waits for min_complete
  // completions at most that long. ETIME, EINTR, EAGAIN and EBUSY are a wait that ended early,
  // not failures; any other error is counted.
  int enter(unsigned to_submit, unsigned min_complete, unsigned flags, long long wait_ns) {
    ++enters_;
    long r;
    if (wait_ns >= 0) {
      __kernel_timespec ts{0, wait_ns};
      io_uring_getevents_arg arg{};
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      r = syscall(__NR_io_uring_enter, ring_.ring_fd, to_submit, min_complete,
                  flags | IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    } else {
      r = syscall(__NR_io_uring_enter, ring_.ring_fd, to_submit, min_complete, flags, nullptr, 0);
    }
    if (r < 0 && errno != ETIME && errno != EINTR && errno != EAGAIN && errno != EBUSY) ++enter_errors_[errno];
    return int(r);
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {  // the submission queue is full: what is there goes first
      const unsigned n = flush_sq();
      if (sqpoll_) enter(0, 0, IORING_ENTER_SQ_WAIT | sq_wakeup(), -1);  // until the SQ thread took some
      else enter(n, 0, 0, -1);
      s = io_uring_get_sqe(&ring_);
    }
    if (s == nullptr) throw MethodError(name_ + ": no submission queue entry after a submit");
    return s;
  }

  void arm_receive() {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, kInFile, nullptr, 0, 0);
    s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    s->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(s, kRecvTag);
    receiving_ = true;
    ++arms_;
  }

  void cancel_receive() {
    if (!receiving_) return;
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, kRecvTag, 0);
    io_uring_sqe_set_data64(s, kCancelTag);
    cancelling_ = true;
  }

  // At most one io_uring_enter: the pending submissions go (SQPOLL: the SQ thread woken if it
  // sleeps), and if no completion is ready, one is waited for (at most `wait_ns`); every
  // completion there is handled. Returns the completions handled.
  size_t pass(long long wait_ns) {
    const unsigned to_submit = flush_sq();
    const unsigned wake = sq_wakeup();
    // Completions the kernel holds back (the CQ overflowed, or task work to run) need an enter.
    const bool held = IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
    const unsigned submit = sqpoll_ ? 0 : to_submit;
    if (io_uring_cq_ready(&ring_) == 0 || held) enter(submit, 1, wake, wait_ns);
    else if (submit > 0 || wake != 0) enter(submit, 0, wake, -1);
    size_t n = 0;
    unsigned head;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      if (tag == kRecvTag) on_receive(cqe);
      else if (tag != kCancelTag) on_send(uint32_t(tag), cqe->res, cqe->flags);
    }
    io_uring_cq_advance(&ring_, unsigned(n));
    // The multishot receive ended (the ring ran dry, or an error): armed again, unless stopping.
    // Not while every buffer is out in a send: it would only end with ENOBUFS again.
    if (!receiving_ && !cancelling_ && inflight_ < nbufs_) arm_receive();
    return n;
  }

  void on_receive(const io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) receiving_ = false;
    if (cqe->res < 0) {
      if (cqe->res == -ENOBUFS) ++ring_empty_;
      else if (cqe->res != -ECANCELED) ++recv_errors_[-cqe->res];
      return;
    }
    if (!(cqe->flags & IORING_CQE_F_BUFFER)) {  // cannot happen with IOSQE_BUFFER_SELECT
      ++recv_errors_[EINVAL];
      return;
    }
    const uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    ++received_;
    iov_[bid].iov_len = size_t(cqe->res);
    io_uring_sqe* s = sqe();
    if (send_zc_) {
      io_uring_prep_send_zc_fixed(s, kOutFile, buffer(bid), size_t(cqe->res), 0,
                                  zc_usage_reported_ ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
      io_uring_prep_send_set_addr(s, reinterpret_cast<const sockaddr*>(&dst_), sizeof dst_);
    } else {
      io_uring_prep_sendmsg(s, kOutFile, &msg_[bid], 0);
    }
    s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, bid);
    ++inflight_;
  }

  // A send's completion; with send_zc, its notification follows (IORING_CQE_F_MORE) and only
  // that gives the buffer back.
  void on_send(uint32_t bid, int res, uint32_t flags) {
    if (flags & IORING_CQE_F_NOTIF) {
      ++zc_notifications_;
      if (zc_usage_reported_ && (uint32_t(res) & IORING_NOTIF_USAGE_ZC_COPIED)) ++zc_copied_;
      release(bid);
      return;
    }
    if (res >= 0 && size_t(res) == iov_[bid].iov_len) {
      ++forwarded_;
    } else {
      ++send_failed_;
      if (res >= 0) ++short_sends_, ++send_errors_[EMSGSIZE];
      else ++send_errors_[-res];
    }
    if (!(flags & IORING_CQE_F_MORE)) release(bid);
  }

  void release(uint32_t bid) {
    --inflight_;
    io_uring_buf_ring_add(br_, buffer(bid), kMaxDatagram, uint16_t(bid), io_uring_buf_ring_mask(nbufs_), 0);
    io_uring_buf_ring_advance(br_, 1);
  }

  const MethodInfo& info_;
  std::string variant_, name_ = "kernel-socket:io_uring";
  bool sqpoll_ = false, send_zc_ = false, zc_usage_reported_ = false;
  io_uring ring_{};
  bool ring_up_ = false;
  uint32_t batch_ = 32, nbufs_ = 0;
  io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  uint8_t* bufs_ = nullptr;
  int in_ = -1, out_ = -1;
  sockaddr_in dst_{};
  std::vector<iovec> iov_;
  std::vector<msghdr> msg_;
  bool receiving_ = false, cancelling_ = false;
  int relay_cpu_ = -1, sq_cpu_ = -1, sq_tid_ = -1;
  std::string sq_cpus_seen_;  // the SQ thread's Cpus_allowed_list, read at start
  int64_t sq_ns0_ = -1, sq_ns1_ = -1;
  std::map<std::string, uint64_t> snmp0_;
  std::map<int, uint64_t> send_errors_, recv_errors_, enter_errors_;
  uint64_t received_ = 0, forwarded_ = 0, send_failed_ = 0, enters_ = 0, idle_waits_ = 0, left_at_stop_ = 0,
           inflight_ = 0, in_flight_at_stop_ = 0, arms_ = 0, ring_empty_ = 0, short_sends_ = 0, sq_wakeups_ = 0,
           zc_notifications_ = 0, zc_copied_ = 0;
  LiveExchange<LiveCopy> live_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_uring_relay(const MethodInfo& info) { return std::make_unique<UringRelay>(info); }

}  // namespace ulsnet::kernel_socket
