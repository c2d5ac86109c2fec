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
// Accounting: received = forwarded + send failures (each errno counted; a short send counts as
// a failure) + sends still in flight at stop (waited for, bounded: normally none). A receive
// that finds the buffer ring empty ends with ENOBUFS and leaves the datagram in the socket, where
// it waits for the re-armed receive or, if the socket's buffer fills meanwhile, is dropped by the
// kernel (Udp.RcvbufErrors, counted): the report counts those events as rx_buffer_ring_empty.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baselines/kernel_socket.h"
#include "baselines/proc_counters.h"
#include "stack/live_exchange.h"

namespace ulsnet::kernel_socket {
namespace {

constexpr uint64_t kRecvTag = ~uint64_t(0);      // the multishot receive's user_data
constexpr uint64_t kCancelTag = ~uint64_t(0) - 1;  // its cancellation's
constexpr uint16_t kBufferGroup = 1;
constexpr int kInFile = 0, kOutFile = 1;         // registered file indices

// Why io_uring cannot be used here, for the MethodError: the sysctl that disables it (Linux >= 6.6),
// the kernel without it, a policy refusing it, the locked-memory limit.
std::string unavailable(int err) {
  std::string disabled;
  std::ifstream f("/proc/sys/kernel/io_uring_disabled");
  if (f) std::getline(f, disabled);
  const std::string pre = "kernel-socket:io_uring: io_uring is not available here: ";
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

// Multishot receive needs Linux >= 6.0 (provided-buffer rings: 5.19).
void require_kernel_6() {
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 && major < 6)
    throw MethodError(std::string("kernel-socket:io_uring: needs Linux >= 6.0 (multishot receive into a "
                                  "provided-buffer ring); this kernel is ") +
                      u.release);
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
    check_method_config(info_, cfg);
    require_kernel_6();
    batch_ = std::clamp<uint32_t>(cfg.batch, 1, 1024);
    // Buffers for 8 passes of the batch size (at least 256, at most 4096): the ring runs dry only
    // when the sends fall that far behind.
    nbufs_ = std::min<uint32_t>(4096, power_of_two_at_least(std::max<uint32_t>(256, batch_ * 8)));
    io_uring_params p{};
    p.flags = IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = nbufs_ * 2;
    p.flags |= IORING_SETUP_CQSIZE;
    if (int r = io_uring_queue_init_params(nbufs_, &ring_, &p); r < 0) throw MethodError(unavailable(-r));
    ring_up_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG))
      throw MethodError("kernel-socket:io_uring: this kernel's io_uring lacks IORING_FEAT_EXT_ARG (Linux >= 5.11)");
    in_ = udp_socket_bound(cfg.in.ip, cfg.relay_port, true);
    out_ = udp_socket_bound(cfg.out.ip, 0, false);
    dst_ = socket_address(cfg.out.peer_ip, cfg.relay_to_port);
    const int files[2] = {in_, out_};
    if (int r = io_uring_register_files(&ring_, files, 2); r < 0)
      throw MethodError(std::string("kernel-socket:io_uring: registering the sockets: ") + std::strerror(-r));
    // The provided-buffer ring and its buffers (anonymous memory: pages touched as data reaches them).
    br_bytes_ = size_t(nbufs_) * sizeof(io_uring_buf);
    void* ring_mem = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* bufs = mmap(nullptr, size_t(nbufs_) * kMaxDatagram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring_mem == MAP_FAILED || bufs == MAP_FAILED) {
      if (ring_mem != MAP_FAILED) munmap(ring_mem, br_bytes_);
      if (bufs != MAP_FAILED) munmap(bufs, size_t(nbufs_) * kMaxDatagram);
      throw MethodError(std::string("kernel-socket:io_uring: mmap: ") + std::strerror(errno));
    }
    br_ = static_cast<io_uring_buf_ring*>(ring_mem);
    bufs_ = static_cast<uint8_t*>(bufs);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = nbufs_;
    reg.bgid = kBufferGroup;
    if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0)
      throw MethodError(std::string("kernel-socket:io_uring: registering the provided-buffer ring: ") +
                        std::strerror(-r) + (r == -EINVAL ? " (Linux >= 5.19 needed)" : ""));
    io_uring_buf_ring_init(br_);
    for (uint32_t i = 0; i < nbufs_; ++i)
      io_uring_buf_ring_add(br_, buffer(i), kMaxDatagram, uint16_t(i), io_uring_buf_ring_mask(nbufs_), int(i));
    io_uring_buf_ring_advance(br_, int(nbufs_));
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
  }

  void run(const std::atomic<bool>& stop) override {
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
    j["variant"] = "io_uring";
    j["io_uring"] = {{"io_uring_enter", enters_},
                     {"provided_buffers", nbufs_},
                     {"buffer_bytes", kMaxDatagram},
                     {"receive", "multishot recv, provided-buffer ring"},
                     {"send", "sendmsg per datagram, the pass's sends in one submission"},
                     {"fixed_files", true},
                     {"sqpoll", false},
                     {"receive_arms", arms_},
                     {"rx_buffer_ring_empty", ring_empty_},
                     {"short_sends", short_sends_},
                     {"receive_errors", errno_counts(recv_errors_)}};
    j["syscalls"] = enters_;
    j["copies"] = received_ + forwarded_;  // kernel -> buffer on receive, buffer -> kernel on send
    j["idle_waits"] = idle_waits_;
    return j;
  }

 private:
  struct LiveCopy {
    uint64_t received = 0, forwarded = 0, send_failed = 0;
  };

  uint8_t* buffer(uint32_t i) const { return bufs_ + size_t(i) * kMaxDatagram; }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {  // the submission queue is full: submit what is there first
      ++enters_;
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    if (s == nullptr) throw MethodError("kernel-socket:io_uring: no submission queue entry after a submit");
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

  // One io_uring_enter: the pending submissions go, completions are waited for (at most
  // `wait_ns`), every completion there is handled. Returns the completions handled.
  size_t pass(long long wait_ns) {
    __kernel_timespec ts{0, wait_ns};
    io_uring_cqe* cqe = nullptr;
    ++enters_;
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    size_t n = 0;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      if (tag == kRecvTag) on_receive(cqe);
      else if (tag != kCancelTag) on_send(uint32_t(tag), cqe->res);
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
    io_uring_prep_sendmsg(s, kOutFile, &msg_[bid], 0);
    s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, bid);
    ++inflight_;
  }

  void on_send(uint32_t bid, int res) {
    --inflight_;
    if (res >= 0 && size_t(res) == iov_[bid].iov_len) {
      ++forwarded_;
    } else {
      ++send_failed_;
      if (res >= 0) ++short_sends_, ++send_errors_[EMSGSIZE];
      else ++send_errors_[-res];
    }
    io_uring_buf_ring_add(br_, buffer(bid), kMaxDatagram, uint16_t(bid), io_uring_buf_ring_mask(nbufs_), 0);
    io_uring_buf_ring_advance(br_, 1);
  }

  const MethodInfo& info_;
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
  std::map<std::string, uint64_t> snmp0_;
  std::map<int, uint64_t> send_errors_, recv_errors_;
  uint64_t received_ = 0, forwarded_ = 0, send_failed_ = 0, enters_ = 0, idle_waits_ = 0, left_at_stop_ = 0,
           inflight_ = 0, in_flight_at_stop_ = 0, arms_ = 0, ring_empty_ = 0, short_sends_ = 0;
  LiveExchange<LiveCopy> live_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_uring_relay(const MethodInfo& info) { return std::make_unique<UringRelay>(info); }

}  // namespace ulsnet::kernel_socket
