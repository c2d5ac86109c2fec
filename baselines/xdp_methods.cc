// xdp-redirect: the in-kernel XDP forwarder (baselines/bpf/xdp_forward.bpf.c), the fastest the
// proxy host's path allows: the same rewrite the Stack does, done in the driver's receive path
// and redirected to the other interface without an skb. The reference for both modes.
//
// The proxy's kernel owns the addresses (as for kernel-socket and kernel-forward) and gets
// everything the program does not forward: ARP, ICMP, IPv4 with options, TTL expiry.
// Variants: "native" (driver-mode XDP) and "skb" (generic XDP, after the skb is built: the
// slow path, for drivers without native XDP).
//
// Redirecting into a veth needs the far end of that veth (in the receiver host) to run in NAPI
// mode, or the kernel drops every frame: MethodInfo::redirects_into_veth tells the harness to
// enable GRO on the receiver's interface for these trials (recorded in the results).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>

#include "stack/drop_stage.h"
#include "baselines/methods.h"
#include "baselines/xdp_forward_bpf.h"
#include "stack/bpf_loader.h"

namespace ulsnet {
namespace {

// Mirrors struct fwd_config / fwd_port in the BPF program.
struct FwdPort {
  uint32_t ifindex, ip, net, mask;
  uint8_t mac[6], peer_mac[6];
  uint32_t peer_ip;
};
struct FwdConfig {
  FwdPort port[2];
  uint32_t relay;
  uint16_t listen_port, to_port;
  uint32_t to_ip;
};
static_assert(sizeof(FwdPort) == 32 && sizeof(FwdConfig) == 76);

const char* const kCounterNames[] = {"redirected",     "passed_not_ipv4",  "passed_not_ours",
                                     "passed_options", "passed_ttl",       "dropped_malformed",
                                     "redirect_failed"};
constexpr uint32_t kCounters = 7;

uint32_t prefix_mask(int len) { return len <= 0 ? 0 : len >= 32 ? ~0u : ~((1u << (32 - len)) - 1); }

class XdpRedirect final : public ProxyMethod {
 public:
  explicit XdpRedirect(const MethodInfo& info) : info_(info) {}
  void start(const ProxyConfig& cfg) override {
    variant_ = check_method_config(info_, cfg);
    const XdpMode mode = variant_ == "skb" ? XdpMode::kSkb : XdpMode::kNative;
    try {
      obj_.emplace(kXdpForwardBpf, kXdpForwardBpfSize, "xdp_forward");
      FwdConfig c{};
      const ProxyPort* ports[2] = {&cfg.in, &cfg.out};
      for (int i = 0; i < 2; ++i) {
        FwdPort& p = c.port[i];
        p.ifindex = if_index(ports[i]->ifname);
        p.ip = htonl(ports[i]->ip.v);
        p.mask = htonl(prefix_mask(ports[i]->prefix_len));
        p.net = p.ip & p.mask;
        std::memcpy(p.mac, ports[i]->mac.b.data(), 6);
        std::memcpy(p.peer_mac, ports[i]->peer_mac.b.data(), 6);
        p.peer_ip = htonl(ports[i]->peer_ip.v);
      }
      c.relay = cfg.mode == ForwardMode::kRelay ? 1 : 0;
      c.listen_port = htons(cfg.relay_port);
      c.to_port = htons(cfg.relay_to_port);
      c.to_ip = htonl(cfg.out.peer_ip.v);
      uint32_t zero = 0;
      if (bpf_map_update_elem(obj_->map_fd("fwd_config_map"), &zero, &c, 0) != 0)
        throw std::runtime_error(std::string("config map update: ") + std::strerror(errno));
      const int prog = obj_->program_fd("xdp_forward");
      attached_.emplace_back(prog, cfg.in.ifname, mode);
      attached_.emplace_back(prog, cfg.out.ifname, mode);
    } catch (const std::exception& e) {
      attached_.clear();
      throw MethodError(std::string("xdp-redirect: ") + e.what());
    }
    mode_ = mode;
  }

  void run(const std::atomic<bool>& stop) override {
    while (!stop.load(std::memory_order_relaxed)) usleep(10'000);
  }

  // The program's counters (a BPF map: any thread may read it), now.
  nlohmann::json live() override {
    if (!obj_ || attached_.empty()) return nullptr;  // not started
    nlohmann::json j = counts();
    j.erase("xdp_counters");
    return j;
  }

  nlohmann::json report() override {
    nlohmann::json j = counts();
    j["variant"] = variant_;
    j["xdp_mode"] = xdp_mode_name(mode_);
    // How the kernel reports the program attached on each interface now (not what was asked).
    for (const XdpAttachment& a : attached_) {
      LIBBPF_OPTS(bpf_xdp_query_opts, q);
      char name[IF_NAMESIZE] = {};
      if_indextoname(uint32_t(a.ifindex()), name);
      std::string mode = "unknown";
      if (bpf_xdp_query(a.ifindex(), 0, &q) == 0)
        mode = q.attach_mode == XDP_ATTACHED_DRV    ? "native"
               : q.attach_mode == XDP_ATTACHED_SKB  ? "skb"
               : q.attach_mode == XDP_ATTACHED_HW   ? "offload"
               : q.attach_mode == XDP_ATTACHED_MULTI ? "multi"
                                                     : "none";
      j["xdp_attached"][name] = mode;
    }
    return j;
  }

 private:
  const MethodInfo& info_;
  // {"forwarded", "xdp_counters", "drops"} from the program's counters.
  nlohmann::json counts() const {
    nlohmann::json j;
    nlohmann::json counters = nlohmann::json::object();
    uint64_t v[kCounters];
    const int fd = obj_->map_fd("fwd_counters");
    for (uint32_t k = 0; k < kCounters; ++k) counters[kCounterNames[k]] = v[k] = obj_->percpu_sum(fd, k);
    j["forwarded"] = v[0];
    j["xdp_counters"] = counters;
    // IPv4 the program handed to the kernel instead of forwarding it: in an experiment these
    // are the stream's datagrams the kernel then drops (no relay socket), so they count here.
    DropLedger drops;
    drops.add(DropStage::kProxyKernel, "xdp_passed_not_ours", v[2]);
    drops.add(DropStage::kProxyKernel, "xdp_passed_options", v[3]);
    drops.add(DropStage::kProxyKernel, "xdp_passed_ttl", v[4]);
    drops.add(DropStage::kProxyKernel, "xdp_dropped_malformed", v[5]);
    drops.add(DropStage::kProxyKernel, "xdp_redirect_failed", v[6]);
    j["drops"] = drops.to_json();
    return j;
  }
  static uint32_t if_index(const std::string& name) {
    uint32_t i = if_nametoindex(name.c_str());
    if (i == 0) throw std::runtime_error("no such interface " + name);
    return i;
  }

  std::string variant_;
  XdpMode mode_ = XdpMode::kNative;
  std::optional<BpfObject> obj_;
  std::vector<XdpAttachment> attached_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_xdp_redirect(const MethodInfo& info) { return std::make_unique<XdpRedirect>(info); }

}  // namespace ulsnet
