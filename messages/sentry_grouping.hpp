#pragma once

// How Sentry events are grouped into issues and named: the grouping hash
// (fingerprint, else exception types and values with their in-app frames,
// else the message), the title and the culprit.

#include <string>
#include <vector>

#include "messages/sentry_event_fields.hpp"

namespace vigil::sentry_fields {

/// MD5 hex over the event's grouping components.
std::string grouping_hash(const top_members& event,
                          const std::vector<dom::object>& excs);

/// "Type: value" of the last exception, a transaction's name, or the
/// message's first line (at most 100 code points).
std::string make_title(const top_members& event,
                       const std::vector<dom::object>& excs);

/// The transaction, else "<module or file> in <function>" of the last
/// in-app frame, else "".
std::string make_culprit(const top_members& event,
                         const std::vector<dom::object>& excs);

} // namespace vigil::sentry_fields
