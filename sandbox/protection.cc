#include "sandbox/protection.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace ulsnet {
namespace {

constexpr size_t kPage = 4096;

// Runs fn(arg) with the stack pointer at stack_top (16-byte aligned), then returns on the
// caller's stack. x86-64 System V only; other architectures run extensions on the caller's
// stack (see invoke()).
#if defined(__x86_64__)
extern "C" void ulsnet_call_on_stack(void* arg, void (*fn)(void*), void* stack_top);
asm(R"(
  .text
  .globl ulsnet_call_on_stack
  .type ulsnet_call_on_stack,@function
ulsnet_call_on_stack:
  pushq %rbp
  movq %rsp, %rbp
  movq %rdx, %rsp
  callq *%rsi
  movq %rbp, %rsp
  popq %rbp
  retq
  .size ulsnet_call_on_stack, .-ulsnet_call_on_stack
)");
constexpr bool kOwnStack = true;
#else
extern "C" void ulsnet_call_on_stack(void* arg, void (*fn)(void*), void*) { fn(arg); }
constexpr bool kOwnStack = false;
#endif

// The invocation a thread is inside, for the fault handler.
struct FaultFrame {
  sigjmp_buf jb;
  volatile uintptr_t addr = 0;
  volatile int sig = 0;
};
thread_local FaultFrame* tl_frame = nullptr;

// Slots protected against process writes, for the handler's report (lock-free reads).
constexpr int kMaxSlots = 64;
std::atomic<uintptr_t> g_slot_begin[kMaxSlots];
std::atomic<uintptr_t> g_slot_end[kMaxSlots];

void remember_slot(std::span<uint8_t> s) {
  for (int i = 0; i < kMaxSlots; ++i) {
    uintptr_t expected = 0;
    if (g_slot_begin[i].compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(s.data()))) {
      g_slot_end[i].store(reinterpret_cast<uintptr_t>(s.data() + s.size()));
      return;
    }
  }
}
void forget_slot(std::span<uint8_t> s) {
  for (int i = 0; i < kMaxSlots; ++i)
    if (g_slot_begin[i].load() == reinterpret_cast<uintptr_t>(s.data())) {
      g_slot_end[i].store(0);
      g_slot_begin[i].store(0);
      return;
    }
}

struct sigaction g_old_segv, g_old_bus;

void write_str(const char* s) { (void)!write(2, s, strlen(s)); }
void write_hex(uintptr_t v) {
  char b[19] = "0x";
  for (int i = 0; i < 16; ++i) b[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
  b[18] = 0;
  write_str(b);
}

void on_fault(int sig, siginfo_t* si, void* uc) {
  const auto addr = reinterpret_cast<uintptr_t>(si->si_addr);
  if (FaultFrame* f = tl_frame) {
    // Inside an invocation: contain it. invoke() restores the protections.
    f->addr = addr;
    f->sig = sig;
    tl_frame = nullptr;
    siglongjmp(f->jb, 1);
  }
  for (int i = 0; i < kMaxSlots; ++i) {
    uintptr_t b = g_slot_begin[i].load(std::memory_order_relaxed);
    if (b != 0 && addr >= b && addr < g_slot_end[i].load(std::memory_order_relaxed)) {
      write_str("ulsnet sandbox: process code (not an extension) accessed extension memory at ");
      write_hex(addr);
      write_str(" (extension slot at ");
      write_hex(b);
      write_str("); the protection domain refused it: terminating with SIGSEGV\n");
      signal(sig, SIG_DFL);
      return;  // the access repeats and the default action ends the process
    }
  }
  // Not ours: hand over to whoever had the signal before us, or the default action.
  const struct sigaction& old = sig == SIGSEGV ? g_old_segv : g_old_bus;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction != nullptr) {
    old.sa_sigaction(sig, si, uc);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_handler != nullptr) {
    old.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
  }
}

struct Call {
  void (*fn)(void*);
  void* arg;
  bool threw;
};
void call_thunk(void* p) noexcept {
  auto* c = static_cast<Call*>(p);
  try {
    c->fn(c->arg);
  } catch (...) {
    c->threw = true;
  }
}

std::vector<ProtectionSupport> probe() {
  std::vector<ProtectionSupport> v;
  v.push_back({ProtectionMode::kNone, true, ""});
  {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = p != MAP_FAILED && mprotect(p, kPage, PROT_READ) == 0;
    std::string why = ok ? "" : std::string("mprotect failed: ") + std::strerror(errno);
    if (p != MAP_FAILED) munmap(p, kPage);
    v.push_back({ProtectionMode::kMprotect, ok, why});
  }
  {
    int k = pkey_alloc(0, 0);
    std::string why;
    if (k < 0) {
      int e = errno;
      why = e == EINVAL || e == ENOSYS
                ? "no memory protection keys: the CPU (or the kernel) lacks PKU/OSPKE "
                  "(pkey_alloc: " + std::string(std::strerror(e)) + ")"
                : "pkey_alloc: " + std::string(std::strerror(e));
    } else {
      pkey_free(k);
    }
    v.push_back({ProtectionMode::kPkey, k >= 0, why});
  }
  return v;
}

}  // namespace

const char* protection_mode_name(ProtectionMode m) {
  switch (m) {
    case ProtectionMode::kNone: return "none";
    case ProtectionMode::kMprotect: return "mprotect";
    case ProtectionMode::kPkey: return "pkey";
  }
  return "?";
}

const std::vector<ProtectionSupport>& protection_support() {
  static const std::vector<ProtectionSupport> s = probe();
  return s;
}

ProtectionMode best_protection_mode() {
  for (auto m : {ProtectionMode::kPkey, ProtectionMode::kMprotect})
    for (const auto& s : protection_support())
      if (s.mode == m && s.available) return m;
  return ProtectionMode::kNone;
}

ProtectionMode parse_protection_mode(std::string_view s) {
  if (s == "auto") return best_protection_mode();
  for (const auto& p : protection_support())
    if (s == protection_mode_name(p.mode)) {
      if (!p.available)
        throw std::runtime_error("protection mode " + std::string(s) + " is not available here: " +
                                 p.reason);
      return p.mode;
    }
  throw std::invalid_argument("unknown protection mode '" + std::string(s) +
                              "' (valid: auto, pkey, mprotect, none)");
}

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    // SA_NODEFER: after siglongjmp out of the handler SIGSEGV must not stay blocked (we use
    // sigsetjmp(..., 0) so that an invocation makes no sigprocmask system call).
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  });
  // A signal stack for this thread: a fault on the extension's own stack (or on an exhausted
  // one) still gets a handler.
  thread_local bool has_stack = false;
  if (!has_stack) {
    stack_t cur{};
    if (sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
      static thread_local std::vector<uint8_t> mem(64 * 1024);
      stack_t st{};
      st.ss_sp = mem.data();
      st.ss_size = mem.size();
      sigaltstack(&st, nullptr);
    }
    has_stack = true;
  }
}

ProtectionDomain::ProtectionDomain(ProtectionMode mode, std::span<uint8_t> slot, size_t stack_bytes)
    : mode_(mode), slot_(slot) {
  auto p = reinterpret_cast<uintptr_t>(slot.data());
  if (p % kPage != 0 || slot.size() % kPage != 0)
    throw std::invalid_argument("protection domain: slot is not page aligned");
  if (stack_bytes % kPage != 0 || stack_bytes + 2 * kPage > slot.size())
    throw std::invalid_argument("protection domain: stack does not fit the slot");
  for (const auto& s : protection_support())
    if (s.mode == mode && !s.available)
      throw std::runtime_error(std::string("protection mode ") + protection_mode_name(mode) +
                               " is not available here: " + s.reason);
  install_fault_handler();
  // Slot layout: [guard page][stack, grows down toward the guard][state and heap].
  stack_top_ = slot.data() + kPage + stack_bytes;
  if (mode_ == ProtectionMode::kNone) return;
  if (mode_ == ProtectionMode::kPkey) {
    pkey_ext_ = pkey_alloc(0, 0);
    pkey_private_ = pkey_alloc(0, 0);
    if (pkey_ext_ < 0 || pkey_private_ < 0)
      throw std::runtime_error(std::string("protection domain: pkey_alloc: ") + std::strerror(errno));
  }
  protect(slot.data(), kPage, PROT_NONE, -1);  // the guard: a stack overflow faults, contained
  // Outside an invocation: the process may read the extension's memory, not write it.
  protect(slot.data() + kPage, slot.size() - kPage,
          mode_ == ProtectionMode::kPkey ? PROT_READ | PROT_WRITE : PROT_READ, pkey_ext_);
  if (mode_ == ProtectionMode::kPkey) {
    pkey_set(pkey_ext_, PKEY_DISABLE_WRITE);
    ++protection_calls_;
  }
  remember_slot(slot_);
}

ProtectionDomain::~ProtectionDomain() {
  if (mode_ == ProtectionMode::kNone) return;
  forget_slot(slot_);
  // Back to plain read-write memory (key 0), so the slot can be reused by another extension.
  if (mode_ == ProtectionMode::kPkey) {
    pkey_mprotect(slot_.data(), slot_.size(), PROT_READ | PROT_WRITE, 0);
    for (auto r : private_) pkey_mprotect(r.data(), r.size(), PROT_READ | PROT_WRITE, 0);
    pkey_free(pkey_ext_);
    pkey_free(pkey_private_);
  } else {
    mprotect(slot_.data(), slot_.size(), PROT_READ | PROT_WRITE);
    for (auto r : private_) mprotect(r.data(), r.size(), PROT_READ | PROT_WRITE);
  }
}

void ProtectionDomain::protect(void* p, size_t n, int prot, int pkey) {
  int rc = pkey >= 0 ? pkey_mprotect(p, n, prot, pkey) : mprotect(p, n, prot);
  ++protection_calls_;
  if (rc != 0)
    throw std::runtime_error(std::string("protection domain: ") +
                             (pkey >= 0 ? "pkey_mprotect: " : "mprotect: ") + std::strerror(errno));
}

void ProtectionDomain::add_private_range(std::span<uint8_t> r) {
  if (reinterpret_cast<uintptr_t>(r.data()) % kPage != 0 || r.size() % kPage != 0)
    throw std::invalid_argument("protection domain: private range is not page aligned");
  if (mode_ == ProtectionMode::kPkey) protect(r.data(), r.size(), PROT_READ | PROT_WRITE, pkey_private_);
  private_.push_back(r);
}

void ProtectionDomain::open_slot() {
  switch (mode_) {
    case ProtectionMode::kNone: return;
    case ProtectionMode::kPkey:
      // Two WRPKRUs (glibc's pkey_set reads and writes PKRU): no system call, this thread only.
      pkey_set(pkey_ext_, 0);
      pkey_set(pkey_private_, PKEY_DISABLE_ACCESS);
      protection_calls_ += 2;
      return;
    case ProtectionMode::kMprotect:
      for (auto r : private_) mprotect(r.data(), r.size(), PROT_NONE);
      mprotect(slot_.data() + kPage, slot_.size() - kPage, PROT_READ | PROT_WRITE);
      protection_calls_ += 1 + private_.size();
      return;
  }
}

void ProtectionDomain::set_slot_writable(bool w) {
  if (mode_ == ProtectionMode::kPkey) {
    pkey_set(pkey_ext_, w ? 0 : PKEY_DISABLE_WRITE);
    ++protection_calls_;
  } else if (mode_ == ProtectionMode::kMprotect) {
    protect(slot_.data() + kPage, slot_.size() - kPage, w ? PROT_READ | PROT_WRITE : PROT_READ, -1);
  }
}

void ProtectionDomain::close_slot() {
  switch (mode_) {
    case ProtectionMode::kNone: return;
    case ProtectionMode::kPkey:
      pkey_set(pkey_private_, 0);
      pkey_set(pkey_ext_, PKEY_DISABLE_WRITE);
      protection_calls_ += 2;
      return;
    case ProtectionMode::kMprotect:
      mprotect(slot_.data() + kPage, slot_.size() - kPage, PROT_READ);
      for (auto r : private_) mprotect(r.data(), r.size(), PROT_READ | PROT_WRITE);
      protection_calls_ += 1 + private_.size();
      return;
  }
}

InvokeResult ProtectionDomain::invoke(void (*fn)(void*), void* arg) noexcept {
  InvokeResult r;
  ++invocations_;
  Call call{fn, arg, false};
  if (mode_ == ProtectionMode::kNone) {
    // Trusted: a plain call on the caller's stack, no containment.
    call_thunk(&call);
    r.threw = call.threw;
    return r;
  }
  FaultFrame frame;
  open_slot();
  if (sigsetjmp(frame.jb, 0) == 0) {
    tl_frame = &frame;
    if (kOwnStack)
      ulsnet_call_on_stack(&call, call_thunk, stack_top_);
    else
      call_thunk(&call);
    tl_frame = nullptr;
  } else {
    r.faulted = true;
    r.fault_address = frame.addr;
    r.fault_signal = frame.sig;
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer poisons the redzones of the extension's frames on its stack and clears
    // them as the frames return; the fault left them poisoned, and the next invocation's frames
    // would land on them (a false stack-buffer-overflow). The frames are gone: clear it all.
    if (kOwnStack)
      __asan_unpoison_memory_region(slot_.data() + kPage, size_t(stack_top_ - (slot_.data() + kPage)));
#endif
  }
  close_slot();
  r.threw = call.threw;
  return r;
}

}  // namespace ulsnet
