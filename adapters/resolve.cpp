#include "adapters/resolve.hpp"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

bool is_numeric(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1
         || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

/// What the lookup thread and the waiting callers share; whichever of them
/// lets go last frees it.
struct pending_lookup {
  std::mutex mtx;
  std::condition_variable done_cv;
  std::optional<caf::expected<std::vector<std::string>>> result;
};

/// Lookups still running, by host: a caller that retries while the DNS
/// server is dead waits on the lookup already running instead of leaving
/// one more thread behind each time.
struct running_lookups {
  std::mutex mtx;
  std::map<std::string, std::weak_ptr<pending_lookup>> by_host;
};

/// Never destroyed: a lookup thread may still finish while the process
/// exits, after static destructors ran.
running_lookups& running() {
  static auto* r = new running_lookups;
  return *r;
}

} // namespace

caf::expected<std::vector<std::string>>
system_host_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (auto rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
    return caf::make_error(errc::connection_failed,
                           "cannot resolve host '" + host
                             + "': " + gai_strerror(rc));
  std::vector<std::string> out;
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = nullptr;
    if (ai->ai_family == AF_INET)
      addr = &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr;
    else if (ai->ai_family == AF_INET6)
      addr = &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    if (addr == nullptr
        || inet_ntop(ai->ai_family, addr, text, sizeof(text)) == nullptr)
      continue;
    std::string a{text};
    bool seen = false;
    for (const auto& x : out)
      seen = seen || x == a;
    if (!seen)
      out.push_back(std::move(a));
  }
  freeaddrinfo(found);
  if (out.empty())
    return caf::make_error(errc::connection_failed,
                           "host '" + host + "' has no TCP address");
  return out;
}

caf::expected<std::vector<std::string>>
resolve_host(const std::string& host, std::chrono::milliseconds timeout,
             const host_lookup& lookup) {
  if (host.empty())
    return caf::make_error(errc::malformed, "no host to connect to");
  if (is_numeric(host))
    return std::vector<std::string>{host};
  std::shared_ptr<pending_lookup> shared;
  {
    auto& reg = running();
    std::lock_guard<std::mutex> guard{reg.mtx};
    shared = reg.by_host[host].lock();
    if (shared == nullptr) {
      shared = std::make_shared<pending_lookup>();
      try {
        std::thread{[shared, host, lookup] {
          auto r = lookup(host);
          {
            auto& reg = running();
            std::lock_guard<std::mutex> done{reg.mtx};
            if (auto i = reg.by_host.find(host);
                i != reg.by_host.end() && i->second.lock() == shared)
              reg.by_host.erase(i);
          }
          std::lock_guard<std::mutex> guard{shared->mtx};
          shared->result.emplace(std::move(r));
          shared->done_cv.notify_all();
        }}.detach();
      } catch (const std::system_error& e) {
        reg.by_host.erase(host);
        return caf::make_error(errc::connection_failed,
                               std::string{"cannot start resolving host '"}
                                 + host + "': " + e.what());
      }
      reg.by_host[host] = shared;
    }
  }
  std::unique_lock<std::mutex> guard{shared->mtx};
  if (!shared->done_cv.wait_for(guard, timeout,
                                [&] { return shared->result.has_value(); }))
    return caf::make_error(errc::timeout,
                           "resolving host '" + host + "' took longer than "
                             + std::to_string(timeout.count()) + " ms");
  // A copy: other callers may be waiting on the same lookup. Callers may
  // rely on at least one address.
  if (*shared->result && (*shared->result)->empty())
    return caf::make_error(errc::connection_failed,
                           "host '" + host + "' has no address");
  return *shared->result;
}

caf::error connect_failure(const caf::error& lookup_error,
                           const std::string& target) {
  return caf::make_error(lookup_error == errc::timeout ? errc::timeout
                                                       : errc::connection_failed,
                         "cannot connect to " + target + ": "
                           + error_text(lookup_error));
}

} // namespace vigil
