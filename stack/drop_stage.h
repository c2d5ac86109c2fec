// Where a datagram of an experiment can be dropped, as one typed list shared by the proxy
// methods (which report their own stages), the trials (which add the sender's, the links' and the
// receiver's) and the result JSON. Accounting closes over exactly these stages:
//   sent = received + sum over every stage of its drops + unaccounted
// A report naming a stage outside this list is refused, so no stage can be left out of the sum.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ulsnet {

enum class DropStage : uint8_t {
  kSender,             // the generator could not send (by errno or ring)
  kLinkSenderProxy,    // the link into the proxy (interface drop counters)
  kProxyKernel,        // the proxy's kernel, before the method saw the frame
  kProxyStack,         // the Stack's drop reasons
  kProxyQueue,         // a queue inside the proxy: user-thread's hand-off, a socket left unread at stop
  kProxyExtension,     // sandbox: the extension was not there to take the burst
  kProxyTx,            // the method could not send it on
  kLinkProxyReceiver,  // the link out of the proxy
  kReceiverKernel,     // the receiver's kernel or socket
  kReceiverApp,        // the sink refused it (corrupted)
  kLinkSenderReceiver,  // the two-host calibration's one link (no proxy)
};

inline constexpr std::array<DropStage, 11> kDropStages = {
    DropStage::kSender,          DropStage::kLinkSenderProxy, DropStage::kProxyKernel,
    DropStage::kProxyStack,      DropStage::kProxyQueue,      DropStage::kProxyExtension,
    DropStage::kProxyTx,         DropStage::kLinkProxyReceiver, DropStage::kReceiverKernel,
    DropStage::kReceiverApp,     DropStage::kLinkSenderReceiver};

std::string_view drop_stage_name(DropStage s) noexcept;
std::optional<DropStage> parse_drop_stage(std::string_view name) noexcept;
// The stages a proxy method reports itself (the rest are the harness's).
bool is_proxy_stage(DropStage s) noexcept;

// Drops by stage and reason. A reason added with 0 stays visible in the JSON (a counter that
// was read and found zero), and adds nothing.
class DropLedger {
 public:
  void add(DropStage s, std::string_view reason, uint64_t n);
  void merge(const DropLedger& o);
  uint64_t total() const noexcept;
  uint64_t stage_total(DropStage s) const noexcept;
  const std::map<std::string, uint64_t, std::less<>>& stage(DropStage s) const { return by_stage_[size_t(s)]; }

  // {stage: {reason: n}} with every stage of kDropStages, in that order (empty objects included).
  nlohmann::json to_json() const;
  // The inverse; throws std::invalid_argument naming an unknown stage or a value that is not a
  // non-negative count. A missing stage is an empty one.
  static DropLedger from_json(const nlohmann::json& j);

 private:
  std::array<std::map<std::string, uint64_t, std::less<>>, kDropStages.size()> by_stage_;
};

}  // namespace ulsnet
