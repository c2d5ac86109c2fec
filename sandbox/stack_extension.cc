#include "sandbox/stack_extension.h"

#include <new>
#include <stdexcept>
#include <string>

namespace ulsnet {

// One upcall's grant: a burst received on `iface`, and where forwarded frames go.
struct StackUpcallGrant {
  int iface;
  uint32_t n;
  Frame* frames;  // in the region's rings area
  TxBatch* out;   // where the Stack puts what it sends, also in the rings area
};

namespace {

constexpr char kStackType[] = "ulsnet-stack";

// The extension's state, in its slot.
struct StackExtension {
  Stack* stack;  // points into storage
  uint64_t bursts;
  uint64_t frames;
  alignas(64) unsigned char storage[sizeof(Stack)];
};

void stack_entry(void* state, const ExtensionEvent& ev) {
  auto* s = static_cast<StackExtension*>(state);
  auto* b = static_cast<StackUpcallGrant*>(ev.grant);
  s->stack->process(b->iface, {b->frames, b->n}, *b->out, ev.now_ns);
  ++s->bursts;
  s->frames += b->n;
}

}  // namespace

ExtensionHandle register_stack_extension(ExtensionRegistry& reg, const StackConfig& config,
                                         ProtectionMode mode) {
  register_extension_type(kStackType, stack_entry);
  return reg.register_extension(kStackType, "proxy-stack", sizeof(StackExtension), mode, [&](void* st) {
    auto* s = static_cast<StackExtension*>(st);
    s->stack = new (s->storage) Stack(config);
  });
}

const Stack* stack_extension_stack(const ExtensionRegistry& reg, ExtensionHandle h) {
  return static_cast<const StackExtension*>(reg.state(h))->stack;
}

void remove_stack_extension(ExtensionRegistry& reg, ExtensionHandle h) {
  reg.remove(h, [](void* st) { static_cast<StackExtension*>(st)->stack->~Stack(); });
}

// The grant's layout in the rings area: the descriptor, the burst's frames, the TX batch, its
// storage (every part 64-byte aligned).
namespace {
constexpr size_t align64(size_t n) { return (n + 63) & ~size_t(63); }
size_t frames_off() { return align64(sizeof(StackUpcallGrant)); }
size_t batch_off(uint32_t batch) { return frames_off() + align64(sizeof(Frame) * batch); }
size_t storage_off(uint32_t batch) { return batch_off(batch) + align64(sizeof(TxBatch)); }
}  // namespace

size_t UpcallInvoker::grant_bytes(size_t ifaces, uint32_t batch) {
  return storage_off(batch) + sizeof(Frame) * ifaces * tx_capacity(batch);
}

UpcallInvoker::UpcallInvoker(ExtensionRegistry& reg, ExtensionHandle h, std::span<uint8_t> grant_area,
                             size_t ifaces, uint32_t batch)
    : reg_(reg), h_(h), batch_(batch) {
  if (grant_bytes(ifaces, batch) > grant_area.size())
    throw std::invalid_argument("batch too large for the region's rings area (" +
                                std::to_string(grant_bytes(ifaces, batch)) + " bytes needed, " +
                                std::to_string(grant_area.size()) + " there)");
  uint8_t* a = grant_area.data();
  grant_ = new (a) StackUpcallGrant{};
  frames_ = reinterpret_cast<Frame*>(a + frames_off());
  out_ = new (a + batch_off(batch))
      TxBatch(ifaces, tx_capacity(batch), reinterpret_cast<Frame*>(a + storage_off(batch)));
}

UpcallInvoker::~UpcallInvoker() { out_->~TxBatch(); }

void UpcallInvoker::submit(int iface, std::span<Frame> burst, uint64_t now_ns) {
  if (burst.empty()) return;
  const size_t n = burst.size();
  *grant_ = StackUpcallGrant{iface, uint32_t(n), burst.data(), out_};
  ExtensionEvent ev;
  ev.kind = ExtensionEvent::kFrames;
  ev.source = uint32_t(iface);
  ev.now_ns = now_ns;
  ev.grant = grant_;
  const UpcallResult r = reg_.invoke(h_, ev);
  if (r.status != UpcallResult::kRan) {
    // Disabled or removed under us: the frames never reached the stack.
    release_all(burst);
    not_active_drops_ += n;
  } else if (r.invoke.faulted || r.invoke.threw) {
    // The Stack faulted part-way through the burst (contained). Frames it had not yet handled
    // are counted here; the ones it forwarded are in out_ and still go out.
    faulted_drops_ += n;
  }
}

}  // namespace ulsnet
