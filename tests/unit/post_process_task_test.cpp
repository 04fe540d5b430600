// The post_process task's wire form. Its msgpack body is written with
// msgpack-cxx's packer; before that it was written byte by byte, and these
// are that writer's bytes, captured for fixed inputs before the change: the
// packer must give every one of them back exactly (a Celery worker, an
// older vigil and the outbox's republished tasks read them).

#include <cstdint>
#include <limits>
#include <string>

#include <catch2/catch.hpp>

#include "messages/post_process_task.hpp"
#include "messages/task_body.hpp"
#include "messages/value.hpp"

using namespace vigil;

namespace {

std::string hex(std::string_view digits) {
  std::string out;
  for (size_t i = 0; i + 1 < digits.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string{digits.substr(i, 2)},
                                       nullptr, 16));
  return out;
}

struct fixed_case {
  std::string queue;
  std::string event_id;
  uint64_t project_id;
  int64_t group_id;
  bool is_new;
  std::string task_id;
  std::string body;
  std::string kwargsrepr;
};

} // namespace

TEST_CASE("the post_process task's bytes are those the hand-written "
          "encoder wrote", "[ingest][post_process]") {
  const fixed_case cases[] = {
    // a 32-digit id, the smallest integers
    {"celery", "0123456789abcdef0123456789abcdef", 1, 0, true, "t-a",
     hex("939084a86576656e745f6964d920303132333435363738396162636465663031"
         "3233343536373839616263646566aa70726f6a6563745f696401a867726f7570"
         "5f696400a669735f6e6577c384a963616c6c6261636b73c0a86572726261636b"
         "73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': '0123456789abcdef0123456789abcdef', 'project_id': 1, "
     "'group_id': 0, 'is_new': True}"},
    // a short id
    {"events", "abc", 7, 42, false, "t-b",
     hex("939084a86576656e745f6964a3616263aa70726f6a6563745f696407a867726f"
         "75705f69642aa669735f6e6577c284a963616c6c6261636b73c0a86572726261"
         "636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': 'abc', 'project_id': 7, 'group_id': 42, 'is_new': False}"},
    // uint64 and uint32 forms
    {"q", "0123456789abcdef0123456789abcdef", uint64_t{1} << 33, 65536, true,
     "t-c",
     hex("939084a86576656e745f6964d920303132333435363738396162636465663031"
         "3233343536373839616263646566aa70726f6a6563745f6964cf000000020000"
         "0000a867726f75705f6964ce00010000a669735f6e6577c384a963616c6c6261"
         "636b73c0a86572726261636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': '0123456789abcdef0123456789abcdef', "
     "'project_id': 8589934592, 'group_id': 65536, 'is_new': True}"},
    // the largest project, a group past 32 bits
    {"q", "0123456789abcdef0123456789abcdef",
     std::numeric_limits<uint64_t>::max(), int64_t{1} << 40, false, "t-d",
     hex("939084a86576656e745f6964d920303132333435363738396162636465663031"
         "3233343536373839616263646566aa70726f6a6563745f6964cfffffffffffff"
         "ffffa867726f75705f6964cf0000010000000000a669735f6e6577c284a96361"
         "6c6c6261636b73c0a86572726261636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': '0123456789abcdef0123456789abcdef', "
     "'project_id': 18446744073709551615, 'group_id': 1099511627776, "
     "'is_new': False}"},
    // a negative fixint group
    {"q", "0123456789abcdef0123456789abcdef", 255, -5, true, "t-e",
     hex("939084a86576656e745f6964d920303132333435363738396162636465663031"
         "3233343536373839616263646566aa70726f6a6563745f6964ccffa867726f75"
         "705f6964fba669735f6e6577c384a963616c6c6261636b73c0a8657272626163"
         "6b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': '0123456789abcdef0123456789abcdef', 'project_id': 255, "
     "'group_id': -5, 'is_new': True}"},
    // an id repr quotes with double quotes
    {"q", "it's", 128, 255, false, "t-f",
     hex("939084a86576656e745f6964a469742773aa70726f6a6563745f6964cc80a867"
         "726f75705f6964ccffa669735f6e6577c284a963616c6c6261636b73c0a86572"
         "726261636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': \"it's\", 'project_id': 128, 'group_id': 255, "
     "'is_new': False}"},
    // a str8 id
    {"q", std::string(40, 'e'), 65535, 128, true, "t-g",
     hex("939084a86576656e745f6964d928656565656565656565656565656565656565"
         "65656565656565656565656565656565656565656565aa70726f6a6563745f69"
         "64cdffffa867726f75705f6964cc80a669735f6e6577c384a963616c6c626163"
         "6b73c0a86572726261636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', "
     "'project_id': 65535, 'group_id': 128, 'is_new': True}"},
    // a str16 id
    {"q", std::string(300, 'f'), 256, 127, true, "t-h",
     hex("939084a86576656e745f6964da012c") + std::string(300, 'f')
       + hex("aa70726f6a6563745f6964cd0100a867726f75705f69647fa669735f6e6577"
             "c384a963616c6c6261636b73c0a86572726261636b73c0a5636861696ec0a5"
             "63686f7264c0"),
     "{'event_id': '" + std::string(300, 'f')
       + "', 'project_id': 256, 'group_id': 127, 'is_new': True}"},
    // an empty id, an int64 group
    {"q", "", 0, int64_t{-1} << 40, false, "t-i",
     hex("939084a86576656e745f6964a0aa70726f6a6563745f696400a867726f75705f"
         "6964d3ffffff0000000000a669735f6e6577c284a963616c6c6261636b73c0a8"
         "6572726261636b73c0a5636861696ec0a563686f7264c0"),
     "{'event_id': '', 'project_id': 0, 'group_id': -1099511627776, "
     "'is_new': False}"},
  };
  for (auto& c : cases) {
    INFO("event_id " << c.event_id << ", project " << c.project_id
                     << ", group " << c.group_id << ", is_new " << c.is_new);
    auto t = make_post_process_task(c.queue, c.event_id, c.project_id,
                                    c.group_id, c.is_new, c.task_id);
    CHECK(t.msg.body == c.body);
    CHECK(t.msg.kwargsrepr == c.kwargsrepr);
    CHECK(t.queue == c.queue);
    CHECK(t.msg.task == "vigil.events.post_process");
    CHECK(t.msg.id == c.task_id);
    CHECK(t.msg.root_id == c.task_id);
    CHECK(t.msg.correlation_id == c.task_id);
    CHECK(t.msg.origin == "vigil@ingest");
    CHECK(t.msg.ignore_result);
    CHECK(t.msg.argsrepr == "()");
    CHECK(t.msg.content_type == "application/x-msgpack");
    // And what the generic encoders write for the same kwargs.
    value_map kwargs{{"event_id", value{c.event_id}},
                     {"project_id", value{c.project_id}},
                     {"group_id", value{c.group_id}},
                     {"is_new", value{c.is_new}}};
    CHECK(c.body == encode_task_body({}, kwargs, content_type_msgpack));
    CHECK(c.kwargsrepr == to_repr(value{kwargs}));
  }
}

TEST_CASE("a post_process task without a task id gets a new one",
          "[ingest][post_process]") {
  auto a = make_post_process_task("q", "abc", 1, 2, true);
  auto b = make_post_process_task("q", "abc", 1, 2, true);
  CHECK(a.msg.id.size() == 36);
  CHECK(a.msg.id != b.msg.id);
  CHECK(a.msg.root_id == a.msg.id);
  CHECK(a.msg.body == b.msg.body);
}
