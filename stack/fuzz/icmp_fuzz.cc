// libFuzzer target: parse_icmp on any message. Accepted exactly when it has the 8-byte header
// and its ones'-complement sum checks; type and code are its first two bytes.
#include <span>

#include "stack/checksum.h"
#include "stack/fuzz/fuzz_check.h"
#include "stack/protocols.h"

using namespace ulsnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  IcmpView m;
  const auto r = parse_icmp({data, size}, m);
  if (size < kIcmpHeaderLen) {
    FUZZ_CHECK(r == DropReason::kIcmpMalformed);
    return 0;
  }
  const bool sums = internet_checksum(data, size) == 0;
  FUZZ_CHECK(sums ? !r.has_value() : r == DropReason::kIcmpBadChecksum);
  if (!r) FUZZ_CHECK(m.type == data[0] && m.code == data[1]);
  return 0;
}
