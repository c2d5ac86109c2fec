// The clock comparison over real UDP on loopback: one machine, one CLOCK_MONOTONIC, so the
// measured offset must be 0 within its error bound; stale or unanswered requests give no sample,
// within the time bound.
#include "bench/ssh/clock_exchange.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace ulsnet::ssh {
namespace {

TEST(ClockExchange, OneClockComesOutZeroWithinItsBound) {
  ClockResponder r(0, 42);
  ASSERT_EQ(r.error(), "");
  ASSERT_NE(r.port(), 0);
  std::vector<SyncSample> s = exchange_clocks("127.0.0.1", r.port(), 42, 16, 1, 500);
  EXPECT_EQ(s.size(), 16u);
  // The responder counts an answer after its sendto returns, which can be after the answer
  // arrived here: wait (bounded) for its count to catch up.
  for (int i = 0; i < 200 && r.answered() < 16u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(r.answered(), 16u);
  for (const SyncSample& x : s) {
    EXPECT_LE(x.t1, x.t2);  // one clock: the answer is stamped after the request left
    EXPECT_LE(x.t2, x.t3);
    EXPECT_LE(x.t3, x.t4);
  }
  nlohmann::json o = offset_or_error(s, "127.0.0.1", r.port());
  ASSERT_FALSE(o.contains("error")) << o;
  EXPECT_EQ(o["samples"], 16);
  EXPECT_LE(std::llabs(o["offset_ns"].get<int64_t>()), o["uncertainty_ns"].get<int64_t>()) << o;
  EXPECT_LT(o["min_rtt_ns"].get<int64_t>(), 100'000'000) << o;  // loopback: far below 100 ms
  EXPECT_EQ(r.report()["answered"], 16);
}

TEST(ClockExchange, AnotherTrialsRequestsAreNotAnswered) {
  ClockResponder r(0, 7);
  ASSERT_EQ(r.error(), "");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<SyncSample> s = exchange_clocks("127.0.0.1", r.port(), 8, 50, 1, 100);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(r.answered(), 0u);
  EXPECT_LT(took, 1.5);  // gives up after 3 x 100 ms, not 50
  nlohmann::json o = offset_or_error(s, "127.0.0.1", r.port());
  ASSERT_TRUE(o.contains("error"));
  EXPECT_NE(o["error"].get<std::string>().find("no answer from the receiver's clock responder at 127.0.0.1:"),
            std::string::npos);
}

TEST(ClockExchange, NobodyListeningIsNoSampleNotAHang) {
  uint16_t port;
  {
    ClockResponder r(0, 1);
    port = r.port();
  }  // closed: the port is free again
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(exchange_clocks("127.0.0.1", port, 1, 40, 0, 200).empty());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(ClockExchange, BadInputIsAnError) {
  EXPECT_THROW(exchange_clocks("receiver.lab", 9101, 1, 1, 0, 10), std::runtime_error);
  ClockResponder a(0, 1);
  ASSERT_EQ(a.error(), "");
  ClockResponder b(a.port(), 1);  // the port is taken
  EXPECT_NE(b.error().find("UDP port"), std::string::npos) << b.error();
  EXPECT_TRUE(b.report().contains("error"));
}

}  // namespace
}  // namespace ulsnet::ssh
