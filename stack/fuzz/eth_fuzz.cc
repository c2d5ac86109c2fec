// libFuzzer target: parse_eth on any bytes. Accepted exactly when the 14-byte header is there,
// and then its fields are those bytes; write_eth of the fields gives the header back.
#include <cstring>
#include <span>

#include "stack/fuzz/fuzz_check.h"
#include "stack/protocols.h"

using namespace ulsnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  EthView e;
  const auto r = parse_eth({data, size}, e);
  FUZZ_CHECK(r.has_value() == (size < kEthHeaderLen));
  if (r) {
    FUZZ_CHECK(*r == DropReason::kEthTooShort);
    return 0;
  }
  uint8_t back[kEthHeaderLen];
  write_eth(back, e.dst, e.src, e.ethertype);
  FUZZ_CHECK(std::memcmp(back, data, kEthHeaderLen) == 0);
  return 0;
}
