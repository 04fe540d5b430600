#include "messages/post_process_task.hpp"

#include "messages/clock.hpp"
#include "messages/msgpack_packer.hpp"
#include "messages/value.hpp"

namespace vigil {

namespace {

// An id Python's repr prints as it is between single quotes.
bool plain_repr_text(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
          || (c >= 'A' && c <= 'Z') || c == '-'))
      return false;
  return true;
}

} // namespace

std::string encode_post_process_body(std::string_view event_id,
                                     uint64_t project_id, int64_t group_id,
                                     bool is_new, bool is_regression) {
  std::string out;
  out.reserve(96 + event_id.size());
  msgpack_sink sink{out};
  msgpack_packer pk{sink};
  pk.pack_array(3);
  pk.pack_array(0); // args
  pk.pack_map(is_regression ? 5 : 4); // kwargs, in parameter order
  pack_text(pk, "event_id");
  pack_text(pk, event_id);
  pack_text(pk, "project_id");
  pk.pack_uint64(project_id);
  pack_text(pk, "group_id");
  // The packer writes a non-negative signed integer in the unsigned forms,
  // as encode_msgpack does.
  pk.pack_int64(group_id);
  pack_text(pk, "is_new");
  if (is_new)
    pk.pack_true();
  else
    pk.pack_false();
  if (is_regression) {
    pack_text(pk, "is_regression");
    pk.pack_true();
  }
  pk.pack_map(4); // embed, as Celery writes an empty one
  for (std::string_view key : {"callbacks", "errbacks", "chain", "chord"}) {
    pack_text(pk, key);
    pk.pack_nil();
  }
  return out;
}

std::string post_process_kwargsrepr(std::string_view event_id,
                                    uint64_t project_id, int64_t group_id,
                                    bool is_new, bool is_regression) {
  // Written directly for the usual id (the writer's thread builds one per
  // stored event); anything to_repr would escape or cut, or a negative
  // group id, goes through to_repr itself.
  if (!is_regression && group_id >= 0 && event_id.size() <= 255
      && plain_repr_text(event_id)) {
    std::string repr;
    repr.reserve(80 + event_id.size());
    repr += "{'event_id': '";
    repr += event_id;
    repr += "', 'project_id': ";
    repr += std::to_string(project_id);
    repr += ", 'group_id': ";
    repr += std::to_string(group_id);
    repr += is_new ? ", 'is_new': True}" : ", 'is_new': False}";
    return repr;
  }
  value_map kwargs{{"event_id", value{std::string{event_id}}},
                   {"project_id", value{project_id}},
                   {"group_id", value{group_id}},
                   {"is_new", value{is_new}}};
  if (is_regression)
    kwargs.emplace_back("is_regression", value{true});
  return to_repr(value{kwargs});
}

outgoing_task make_post_process_task(const std::string& queue,
                                     const std::string& event_id,
                                     uint64_t project_id, int64_t group_id,
                                     bool is_new,
                                     const std::string& task_id,
                                     bool is_regression) {
  outgoing_task out;
  out.queue = queue;
  auto& msg = out.msg;
  msg.task = post_process_task_name;
  msg.id = task_id.empty() ? new_uuid4() : task_id;
  msg.root_id = msg.id;
  msg.correlation_id = msg.id;
  msg.origin = "vigil@ingest";
  msg.ignore_result = true;
  msg.argsrepr = "()";
  msg.kwargsrepr = post_process_kwargsrepr(event_id, project_id, group_id,
                                           is_new, is_regression);
  msg.body = encode_post_process_body(event_id, project_id, group_id, is_new,
                                      is_regression);
  return out;
}

} // namespace vigil
