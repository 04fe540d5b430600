#include "messages/node_card.hpp"

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

nlohmann::json to_json(const node_card& card) {
  return nlohmann::json{{"id", card.id},         {"host", card.host},
                        {"pid", card.pid},       {"version", card.version},
                        {"mode", card.mode},     {"queues", card.queues},
                        {"started", card.started},
                        {"inspect", card.inspect}, {"web", card.web}};
}

std::string encode_node_card(const node_card& card) {
  return dump_json(to_json(card));
}

namespace {

template <class T>
void take(const nlohmann::json& obj, const char* key, T& out) {
  auto i = obj.find(key);
  if (i == obj.end())
    return;
  if constexpr (std::is_same_v<T, std::string>) {
    if (i->is_string())
      out = i->get<std::string>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (i->is_number())
      out = i->get<double>();
  } else {
    if (i->is_number_integer())
      out = i->get<T>();
  }
}

} // namespace

caf::expected<node_card> decode_node_card(std::string_view text) {
  auto obj = nlohmann::json::parse(text, nullptr, false);
  if (obj.is_discarded() || !obj.is_object())
    return caf::make_error(errc::malformed,
                           "a node card must be a JSON object");
  node_card card;
  take(obj, "id", card.id);
  take(obj, "host", card.host);
  take(obj, "pid", card.pid);
  take(obj, "version", card.version);
  take(obj, "mode", card.mode);
  take(obj, "started", card.started);
  take(obj, "inspect", card.inspect);
  take(obj, "web", card.web);
  if (auto q = obj.find("queues"); q != obj.end() && q->is_array())
    for (auto& x : *q)
      if (x.is_string())
        card.queues.push_back(x.get<std::string>());
  if (card.id.empty())
    return caf::make_error(errc::malformed, "a node card needs an id");
  return card;
}

} // namespace vigil
