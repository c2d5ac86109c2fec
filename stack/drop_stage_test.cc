// The typed list of drop stages and the ledger every method, trial and result uses.
#include "stack/drop_stage.h"

#include <gtest/gtest.h>

#include <set>

namespace ulsnet {
namespace {

TEST(DropStage, NamesAreUniqueAndParseBack) {
  std::set<std::string_view> names;
  for (DropStage s : kDropStages) {
    EXPECT_TRUE(names.insert(drop_stage_name(s)).second) << drop_stage_name(s);
    EXPECT_EQ(parse_drop_stage(drop_stage_name(s)), s);
  }
  EXPECT_FALSE(parse_drop_stage("proxy_elsewhere").has_value());
  EXPECT_TRUE(is_proxy_stage(DropStage::kProxyExtension));
  EXPECT_FALSE(is_proxy_stage(DropStage::kReceiverKernel));
}

TEST(DropLedger, SumsEveryStageAndKeepsZeroReasonsVisible) {
  DropLedger d;
  uint64_t n = 1, want = 0;
  for (DropStage s : kDropStages) {
    d.add(s, "r", n);
    want += n;
    n *= 2;
  }
  d.add(DropStage::kProxyTx, "zero", 0);
  d.add(DropStage::kProxyTx, "r", 5);
  want += 5;
  EXPECT_EQ(d.total(), want);
  nlohmann::json j = d.to_json();
  EXPECT_EQ(j.size(), kDropStages.size());
  EXPECT_EQ(j["proxy_tx"]["zero"], 0);
  EXPECT_EQ(DropLedger::from_json(j).to_json(), j);
  EXPECT_EQ(DropLedger::from_json(j).total(), want);
}

TEST(DropLedger, RefusesWhatItCannotSum) {
  EXPECT_THROW(DropLedger::from_json({{"proxy_elsewhere", {{"x", 1}}}}), std::invalid_argument);
  EXPECT_THROW(DropLedger::from_json({{"proxy_tx", {{"x", -1}}}}), std::invalid_argument);
  EXPECT_THROW(DropLedger::from_json({{"proxy_tx", {{"x", "3"}}}}), std::invalid_argument);
  EXPECT_THROW(DropLedger::from_json({{"proxy_tx", 3}}), std::invalid_argument);
  EXPECT_THROW(DropLedger::from_json(nlohmann::json::array()), std::invalid_argument);
  EXPECT_EQ(DropLedger::from_json(nullptr).total(), 0u);
}

TEST(DropLedger, MergeAddsReasonByReason) {
  DropLedger a, b;
  a.add(DropStage::kSender, "ENOBUFS", 3);
  b.add(DropStage::kSender, "ENOBUFS", 4);
  b.add(DropStage::kReceiverApp, "corrupted", 1);
  a.merge(b);
  EXPECT_EQ(a.stage(DropStage::kSender).at("ENOBUFS"), 7u);
  EXPECT_EQ(a.stage_total(DropStage::kReceiverApp), 1u);
  EXPECT_EQ(a.total(), 8u);
}

}  // namespace
}  // namespace ulsnet
