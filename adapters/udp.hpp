#pragma once

// A connected UDP socket that sends datagrams without ever blocking: the
// statsd and DogStatsD backends' way out. A datagram the kernel cannot take
// at once (a full buffer, no daemon listening: ECONNREFUSED from an earlier
// datagram's ICMP answer) is dropped and counted, never an error of the
// node.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

class udp_sender {
public:
  /// Resolves `host` (bounded, see resolve_host) and connects a non-blocking
  /// UDP socket to it. Fails with the host and port named.
  static caf::expected<std::unique_ptr<udp_sender>>
  open(const std::string& host, uint16_t port);

  ~udp_sender();
  udp_sender(const udp_sender&) = delete;
  udp_sender& operator=(const udp_sender&) = delete;

  /// Sends one datagram; false (and counted) when it was dropped.
  bool send(std::string_view payload);

  /// Datagrams sent and dropped since the start.
  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }

private:
  explicit udp_sender(int fd) : fd_(fd) {
    // nop
  }
  int fd_;
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
};

} // namespace vigil
