#include "adapters/udp.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapters/resolve.hpp"
#include "messages/errors.hpp"

namespace vigil {

caf::expected<std::unique_ptr<udp_sender>>
udp_sender::open(const std::string& host, uint16_t port) {
  auto target = host + ":" + std::to_string(port);
  auto addrs = resolve_host(host, std::chrono::seconds{2});
  if (!addrs)
    return caf::make_error(errc::connection_failed, "cannot resolve " + target + ": "
                                             + error_text(addrs.error()));
  std::string why = "no address";
  for (auto& addr : *addrs) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    auto service = std::to_string(port);
    if (getaddrinfo(addr.c_str(), service.c_str(), &hints, &res) != 0
        || res == nullptr) {
      why = "bad address " + addr;
      continue;
    }
    int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      0);
    if (fd < 0) {
      why = std::strerror(errno);
      freeaddrinfo(res);
      continue;
    }
    // Connected: send() needs no address, and a refused port shows up as
    // ECONNREFUSED on a later send (counted as a drop).
    if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      freeaddrinfo(res);
      continue;
    }
    freeaddrinfo(res);
    return std::unique_ptr<udp_sender>{new udp_sender(fd)};
  }
  return caf::make_error(errc::connection_failed,
                         "cannot open UDP to " + target + ": " + why);
}

udp_sender::~udp_sender() {
  ::close(fd_);
}

bool udp_sender::send(std::string_view payload) {
  auto n = ::send(fd_, payload.data(), payload.size(),
                  MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(payload.size())) {
    ++sent_;
    return true;
  }
  ++dropped_;
  return false;
}

} // namespace vigil
