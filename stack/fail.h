// Errors a caller has to fix (a configuration that cannot work). In ordinary builds they throw
// std::invalid_argument. The Stack also runs as a freestanding image in the sandbox region of
// the ULS kernel (sandbox/uls/), built without C++ exceptions: there the image's runtime
// defines throw_invalid_argument, which records the message in the region for the process that
// loaded the image and ends the upcall with a fault. Its loader checks the configuration with an
// ordinary build of the same code first, so that path is a last line of defence.
#pragma once

#include <string>

#if __cpp_exceptions
#include <stdexcept>
#endif

namespace ulsnet {

#if __cpp_exceptions
[[noreturn]] inline void throw_invalid_argument(const std::string& what) {
  throw std::invalid_argument(what);
}
#else
[[noreturn]] void throw_invalid_argument(const std::string& what);
#endif

}  // namespace ulsnet
