// Socket buffer sizing shared by every socket ulsnet opens.
#pragma once

#include <sys/socket.h>

namespace ulsnet {

// Asks for `bytes` of receive and/or send buffer. The FORCE options ignore rmem_max/wmem_max
// but need CAP_NET_ADMIN in the initial user namespace (absent in some sandboxes); then the
// capped options are used. Large buffers absorb bursts; what still overflows is counted by the
// kernel (and read back by the caller's accounting).
inline void set_socket_buffers(int fd, int bytes, bool rx, bool tx) {
  if (rx && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (tx && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

}  // namespace ulsnet
