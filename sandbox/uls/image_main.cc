// The sandbox image's entry: every upcall of the extension starts here (kernel/uapi/linux/uls.h:
// rdi = its state, here the ImageControl; rsi = the event's time; rdx = the extension's id).
//
// The first upcall (raised by the loader) builds the Stack and its two zero-copy devices on the
// image's heap and stocks the fill rings. Every later one -- frames on a bound interface, in
// whatever process was current -- takes buffers back from the completion rings, runs one pass of
// the forwarding loop every user-level method runs (stack/forwarding_loop.h, compiled here
// freestanding) with the image's invoker, and refills the fill rings and publishes its counters.
// The pass takes up to a ring's worth of each interface's frames in bursts; the invoker records
// each burst before it is taken and hands its frames to Stack::process one by one (so that an
// upcall the kernel ends can be picked up exactly: recover_ended_burst); the loop posts what the
// Stack forwards or generates on the tx rings (the kernel sends them when the upcall ends; one
// post the kernel cut short is finished by the next upcall: recover_post). Only
// the device (UlsRingDevice) and the invocation (a kernel upcall) differ from the other methods.
#include <cstring>
#include <new>

#include "sandbox/uls/image.h"
#include "sandbox/uls/image_runtime.h"
#include "stack/forwarding_loop.h"

#define ULS_STRINGIFY_(x) #x
#define ULS_STRINGIFY(x) ULS_STRINGIFY_(x)

__asm__(
    ".section .text.entry,\"ax\"\n"
    ".globl _start\n"
    "_start:\n"
    "  sub $8, %rsp\n"   // entered as if called: realign the stack for the call below
    "  call uls_image_main\n"
    "  mov $" ULS_STRINGIFY(ULS_SYSCALL_RETURN) ", %eax\n"
    "  syscall\n"
    "  ud2\n"
    ".text\n");

extern "C" char _start[];

namespace ulsnet::uls {
namespace {

constexpr uint32_t kMaxBurst = 64;

struct Runtime;

// Stores a record the next upcall reads should the kernel end this one at any instruction:
// after every store before it and before every store after it (compiler barriers suffice: the
// next upcall runs on a CPU that saw this one's stores in order).
inline void record(uint32_t& v, uint32_t x) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&v, x, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

// How the loop invokes the Stack inside the image: each burst is recorded in the control block
// before it is taken (rx_buffer) and its frames go to Stack::process one by one, the count of
// finished ones following each (submit), so that recover_ended_burst can settle a burst the
// kernel cut short. The record, then its mark, then the frames (and the same order back); each
// frame's process call is into another translation unit, so when it returns that frame's outcome
// is in memory.
struct ImageInvoker {
  ImageControl* c;
  Runtime* rt;
  std::span<Frame> rx_buffer(int iface);
  void submit(int iface, std::span<Frame> burst, uint64_t now_ns);
  void refuse(int, std::span<Frame>) {}  // rx_buffer always has room
  template <class Send>
  bool collect(Send send);
  int wait_fd() const { return -1; }
  void on_wake() {}
  void finish() {}
};

struct Runtime {
  Runtime(ImageControl* c, uint8_t* base)
      : pool(base, uint32_t(kPoolOff), kPoolBuffers),
        dev0(std::string(c->config.ifaces[0].name, strnlen(c->config.ifaces[0].name, 16)),
             reinterpret_cast<uls_net_rings*>(base + kRingsOff[0]), pool, c->fill_target, c->reserve),
        dev1(std::string(c->config.ifaces[1].name, strnlen(c->config.ifaces[1].name, 16)),
             reinterpret_cast<uls_net_rings*>(base + kRingsOff[1]), pool, c->fill_target, c->reserve),
        stack(config(c)),
        // Room for a full ring of forwarded frames plus generated ones.
        out(2, 2 * ULS_NET_RING_SIZE),
        invoker{c, this},
        loop(invoker, {&dev0, &dev1}, loop_options(c)) {}
  static LoopOptions loop_options(const ImageControl* c) {
    LoopOptions o;
    o.batch = c->burst;
    // At most one ring's worth per interface and upcall: the tx rings are emptied only when it
    // ends, so more could not be sent anyway (and the next event brings us back).
    o.frames_per_pass = ULS_NET_RING_SIZE;
    return o;
  }
  StackConfig config(ImageControl* c) {
    FrameAllocator* const a[2] = {&dev0, &dev1};
    return from_pod(c->config, a);
  }
  UlsRingDevice& dev(int i) { return i == 0 ? dev0 : dev1; }

  UlsBufferPool pool;
  UlsRingDevice dev0, dev1;
  Stack stack;
  TxBatch out;
  Frame burst[kMaxBurst];
  uint64_t upcalls = 0, passes = 0;
  // The TX post under way (ImageInvoker::collect): phase 1 from before its device's tx_burst
  // until it returns, 2 until its list is cleared, then 0; its interface and where it began.
  uint32_t post_phase = 0, post_iface = 0;
  UlsRingDevice::TxMark post_mark;
  ImageInvoker invoker;
  ForwardingLoop<ImageInvoker> loop;
};

std::span<Frame> ImageInvoker::rx_buffer(int i) {
  c->inflight_iface = uint32_t(i);
  c->inflight_rx_cons0 = rt->dev(i).rx_consumer();
  c->inflight_rx_invalid0 = rt->dev(i).rx_invalid();
  c->inflight_dev_rx0 = rt->dev(i).rx_frames_taken();
  c->inflight_stack_rx0 = rt->stack.counters().rx_frames;
  c->inflight_done = 0;
  record(c->inflight, 1u);
  return {rt->burst, c->burst};
}

void ImageInvoker::submit(int i, std::span<Frame> burst, uint64_t now_ns) {
  if (!burst.empty()) ++rt->passes;
  for (size_t k = 0; k < burst.size(); ++k) {
    rt->stack.process(i, {&burst[k], 1}, rt->out, now_ns);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->inflight_done = k + 1;
  }
  record(c->inflight, 0u);
}

// Posts each interface's list as the loop's transmit does (tx_burst, then clear), recorded so
// that the next upcall can finish one the kernel cut short (recover_post): posted twice, its
// buffers would be sent twice and come back twice.
template <class Send>
bool ImageInvoker::collect(Send) {
  for (uint32_t k = 0; k < 2; ++k) {
    TxList& l = rt->out.per_iface[k];
    if (l.empty()) continue;
    rt->post_iface = k;
    rt->post_mark = rt->dev(int(k)).tx_mark();
    record(rt->post_phase, 1u);
    rt->dev(int(k)).tx_burst(l, rt->post_mark);
    record(rt->post_phase, 2u);
    l.clear();
    record(rt->post_phase, 0u);
  }
  return false;  // nothing outstanding: output is posted in the same pass
}

void init(ImageControl* c) {
  if (c->magic != kControlMagic || c->version != kControlVersion)
    image_fail("the control block is not this image's version", nullptr);
  if (c->image_address != reinterpret_cast<uint64_t>(_start))
    image_fail("the image was loaded at another address than it is linked for", nullptr);
  if (c->burst < 1 || c->burst > kMaxBurst || c->fill_target < 1 ||
      c->fill_target > ULS_NET_RING_SIZE || c->reserve >= kPoolBuffers || c->config.n_ifaces != 2)
    image_fail("bad parameters in the control block", nullptr);
  auto* base = reinterpret_cast<uint8_t*>(c) - kControlOff;
  heap_init(base + kHeapOff, kHeapBytes);
  auto* rt = new Runtime(c, base);
  rt->dev0.refill();
  rt->dev1.refill();
  c->runtime = reinterpret_cast<uint64_t>(rt);
  __atomic_store_n(&c->phase, Phase::kRunning, __ATOMIC_RELEASE);
}

uint64_t finished(const Runtime* rt) {
  const StackCounters& s = rt->stack.counters();
  return s.forwarded + s.consumed + s.drops.total();
}

// The previous upcall was ended by the kernel inside a burst (c->inflight is still set): the
// frames of it the Stack never finished are counted by kind and their buffers go back to the
// pool. The untouched ones are held by nothing else. The one it was working on may be anywhere
// (its outcome counted or not, its buffer queued for sending, released, or neither: the
// compiler orders the Stack's stores as it likes within a call): if its outcome was not counted
// it is lost, and its buffer is taken back from the TX batch, or left free, or freed.
void recover_ended_burst(ImageControl* c, Runtime* rt) {
  const int i = c->inflight_iface == 1 ? 1 : 0;
  UlsRingDevice& d = rt->dev(i);
  // The frames it holds: the valid ring entries given up since the burst began (rx_burst puts
  // each in the array before it gives its entry up). Counted by the device, if it had not yet.
  uint64_t n = uint32_t(d.rx_consumer() - c->inflight_rx_cons0) - (d.rx_invalid() - c->inflight_rx_invalid0);
  if (n > kMaxBurst) n = kMaxBurst;  // cannot be
  d.settle_rx(c->inflight_dev_rx0 + n, {rt->burst, size_t(n)});
  const uint64_t done = c->inflight_done < n ? c->inflight_done : n;
  const uint64_t fin = finished(rt);
  const bool counted = fin - (c->inflight_stack_rx0 - c->stack_gap) > done;
  const std::span<Frame> taken(rt->burst, size_t(n));
  const EndedBurst e = ended_burst(taken, done, counted);
  ++c->ended_bursts;
  c->ended_udp += e.lost_udp;
  c->ended_other += e.lost_other;
  c->ended_partial += e.partial;
  c->stack_gap = rt->stack.counters().rx_frames - fin;
  // Cleared before the buffers go back: should this upcall be ended too, a buffer is kept
  // (one fewer in the pool) rather than released twice.
  record(c->inflight, 0u);
  if (e.partial) {
    const Frame& f = taken[done];
    bool queued = false;
    for (auto& l : rt->out.per_iface)
      for (size_t k = 0; k < l.size(); ++k)
        if (l[k].owner == f.owner && l[k].handle == f.handle) {
          l.erase(k);
          queued = true;
          break;
        }
    if (queued || !rt->pool.is_free(uint32_t(f.handle))) f.release();
  }
  for (uint64_t k = done + 1; k < n; ++k) taken[k].release();
}

// The previous upcall was ended inside a TX post (rt->post_phase is set; then c->inflight is
// not: a burst is finished before its output is posted). Committed, the list is dropped (its
// frames are the kernel's, or released); not, it stays for collect to post again. Ended again
// in here, this runs again: settling twice is settling once.
void recover_post(ImageControl* c, Runtime* rt) {
  const uint32_t k = rt->post_iface & 1;
  TxList& l = rt->out.per_iface[k];
  if (rt->post_phase == 1) {
    if (!rt->dev(int(k)).settle_tx(rt->post_mark, l)) {
      ++c->ended_posts_redone;
      record(rt->post_phase, 0u);
      return;
    }
    ++c->ended_posts_committed;
    record(rt->post_phase, 2u);
  }
  l.clear();
  record(rt->post_phase, 0u);
}

void run(ImageControl* c, uint64_t now_ns) {
  auto* rt = reinterpret_cast<Runtime*>(c->runtime);
  ++rt->upcalls;
  if (rt->post_phase != 0) recover_post(c, rt);
  if (c->inflight != 0) recover_ended_burst(c, rt);
  // What an ended upcall had forwarded (counted) and not yet posted goes out now.
  rt->loop.collect();
  rt->dev0.reclaim();
  rt->dev1.reclaim();
  rt->loop.poll_once(now_ns);
  rt->dev0.refill();
  rt->dev1.refill();
}

void publish(ImageControl* c, uint64_t now_ns) {
  auto* rt = reinterpret_cast<Runtime*>(c->runtime);
  c->last_now_ns = now_ns;
  c->heap_used = heap_used();
  c->heap_allocs = heap_allocs();
  if (rt == nullptr) return;
  c->upcalls = rt->upcalls;
  c->passes = rt->passes;
  c->pool_free = rt->pool.free_count();
  c->stack = rt->stack.counters();
  c->dev[0] = rt->dev0.stats();
  c->dev[1] = rt->dev1.stats();
  c->ring[0] = rt->dev0.counters();
  c->ring[1] = rt->dev1.counters();
  c->pool = rt->pool.counters();
}

}  // namespace
}  // namespace ulsnet::uls

extern "C" void uls_image_main(ulsnet::uls::ImageControl* c, uint64_t now_ns, uint64_t /*id*/) {
  using namespace ulsnet::uls;
  runtime_enter(c);
  switch (__atomic_load_n(&c->phase, __ATOMIC_ACQUIRE)) {
    case Phase::kLoaded:
      init(c);
      break;
    case Phase::kRunning:
      run(c, now_ns);
      break;
    default:
      return;  // failed: nothing runs any more
  }
  publish(c, now_ns);
}
