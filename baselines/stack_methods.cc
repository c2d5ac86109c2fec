// raw-socket and user-thread: the same Stack over the same packet-socket Devices, run by the same
// forwarding loop. They differ only in the loop's invoker: the Stack called directly by the thread
// that does the device I/O (raw-socket: DirectInvoker), or run in a second thread every burst
// must be handed to and back from (user-thread: HandOffInvoker).
#include <memory>

#include "baselines/handoff_invoker.h"
#include "baselines/methods.h"
#include "stack/forwarding_loop.h"
#include "stack/stack_method.h"

namespace ulsnet {
namespace {

using namespace stack_methods;

// raw-socket: with af_packet every frame costs a system call and a copy each way (the paper's raw
// socket); with af_packet_mmap a receive costs no system call and a transmit burst one.
class RawSocketMethod final : public StackMethod {
 public:
  explicit RawSocketMethod(const MethodInfo& info) : StackMethod(info) {}

  void start(const ProxyConfig& cfg) override {
    open_devices(cfg);
    make_stack(cfg, dev_[0].get(), dev_[1].get());
    invoker_ = std::make_unique<DirectInvoker>(*stack_, 2, batch_);
  }

  void run(const std::atomic<bool>& stop) override { run_loop(*invoker_, stop); }

  nlohmann::json report() override {
    nlohmann::json j = base_report(DropLedger{});
    j["threads"]["io_and_stack"] = loop_thread_;
    return j;
  }

 private:
  std::unique_ptr<DirectInvoker> invoker_;
};

// user-thread: device I/O in the loop's thread, the Stack in the invoker's.
class UserThreadMethod final : public StackMethod {
 public:
  explicit UserThreadMethod(const MethodInfo& info) : StackMethod(info) {}

  void start(const ProxyConfig& cfg) override {
    open_devices(cfg);
    try {
      invoker_ = std::make_unique<HandOffInvoker>(2, batch_);
    } catch (const std::exception& e) {
      throw MethodError(std::string("user-thread: ") + e.what());
    }
    make_stack(cfg, invoker_->generated(), invoker_->generated());
  }

  void run(const std::atomic<bool>& stop) override {
    invoker_->start(*stack_);
    run_loop(*invoker_, stop);
  }

  nlohmann::json report() override {
    nlohmann::json j = base_report(live_method_drops());
    j["handoff"] = invoker_->report(loop_.idle_waits);
    j["threads"]["io"] = loop_thread_;
    j["threads"]["stack"] = invoker_->stack_thread_times();
    return j;
  }

 private:
  DropLedger live_method_drops() const override {
    DropLedger queue;
    queue.add(DropStage::kProxyQueue, "handoff_queue_full", invoker_->queue_drops());
    return queue;
  }
  bool stack_on_loop_thread() const override { return false; }
  std::optional<StackCounters> live_stack_counters() override { return invoker_->stack_counters(kLiveWaitMs); }

  std::unique_ptr<HandOffInvoker> invoker_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_raw_socket(const MethodInfo& info) {
  return std::make_unique<RawSocketMethod>(info);
}
std::unique_ptr<ProxyMethod> make_user_thread(const MethodInfo& info) {
  return std::make_unique<UserThreadMethod>(info);
}

}  // namespace ulsnet
