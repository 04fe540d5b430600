#pragma once

#include <mutex>
#include <string>

#include "messages/node_card.hpp"

namespace vigil {

/// This node's card, shared by the inspector (its snapshot's "node") and
/// the membership heartbeat. The endpoints are only known once their
/// servers are bound (port 0 resolves then), so they are set later; any
/// thread may read or set.
class node_identity {
public:
  explicit node_identity(node_card card) : card_(std::move(card)) {
    // nop
  }

  /// A copy of the card as it is now.
  node_card card() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return card_;
  }

  /// The management endpoint as bound ("host:port").
  void set_inspect(std::string address) {
    std::lock_guard<std::mutex> guard{mtx_};
    card_.inspect = std::move(address);
  }

  /// The web interface as bound ("host:port").
  void set_web(std::string address) {
    std::lock_guard<std::mutex> guard{mtx_};
    card_.web = std::move(address);
  }

private:
  mutable std::mutex mtx_;
  node_card card_;
};

} // namespace vigil
