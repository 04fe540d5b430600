#include "messages/internal_task.hpp"

#include "messages/clock.hpp"
#include "messages/task_body.hpp"

namespace vigil {

outgoing_task make_internal_task(std::string_view name,
                                 const std::string& queue, value_map kwargs,
                                 std::string_view origin) {
  outgoing_task out;
  out.queue = queue;
  auto& msg = out.msg;
  msg.task = std::string{name};
  msg.id = new_uuid4();
  msg.root_id = msg.id;
  msg.correlation_id = msg.id;
  msg.origin = std::string{origin};
  msg.ignore_result = true;
  msg.content_type = std::string{content_type_msgpack};
  msg.argsrepr = "()";
  msg.kwargsrepr = to_repr(value{kwargs});
  msg.body = encode_task_body({}, kwargs, msg.content_type);
  return out;
}

} // namespace vigil
