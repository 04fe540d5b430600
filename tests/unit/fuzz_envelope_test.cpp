// Hostile input through the whole decoding path of a task message: kombu
// envelope -> body -> argument binding. Deterministic (fixed seed); the
// project also builds this test with AddressSanitizer and UBSan (fuzz_asan).

#include <catch2/catch.hpp>

#include <random>

#include "messages/clock.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"
#include "messages/task_schema.hpp"

using namespace vigil;

namespace {

task_schema fuzz_schema() {
  task_schema s;
  s.name = "fuzz.task";
  s.version = 2;
  s.params = {required("a", param_type::integer),
              optional("b", param_type::text, "x"),
              optional("c", param_type::list, value_array{})};
  s.upgraders[1] = [](value_array& args, value_map& kwargs) {
    if (!args.empty())
      kwargs.emplace_back("a", args.front());
  };
  return s;
}

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  task_message msg;
  msg.task = "fuzz.task";
  msg.id = "00000000-0000-4000-8000-000000000000";
  msg.eta_us = 1795404664123456;
  msg.argsrepr = "(1,)";
  msg.extra_headers = R"({"h": [1, {"k": null}]})";
  msg.body = encode_task_body({value{1}}, {{"b", value{"t"}}},
                              content_type_msgpack);
  out.push_back(encode_kombu_envelope(msg, "celery", "tag-1"));
  msg.content_type = std::string{content_type_json};
  msg.body = encode_task_body({value{2}, value{"s"}, value_array{value{1.5}}},
                              {}, content_type_json);
  out.push_back(encode_kombu_envelope(msg, "q", "tag-2"));
  return out;
}

// Decodes as a worker would; must never crash, whatever comes back.
void run_path(const task_schema& schema, std::string_view text) {
  auto d = decode_kombu_envelope(text);
  if (!d)
    return;
  auto body = decode_task_body(d->msg.body, d->msg.content_type);
  if (!body)
    return;
  auto args = bind_arguments(schema, std::move(body->args),
                             std::move(body->kwargs), d->msg.schema_version);
  (void) args;
  (void) mark_redelivered(text);
  (void) find_delivery_tag(text);
}

} // namespace

TEST_CASE("fuzz: mutated envelopes never crash the decoding path",
          "[fuzz][envelope]") {
  auto schema = fuzz_schema();
  auto base = seeds();
  for (auto& s : base) {
    auto d = decode_kombu_envelope(s);
    REQUIRE(d);
  }
  std::mt19937_64 rng{20261123};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  static constexpr std::string_view tokens[] = {
    "\"", "\\", "{", "}", "[", "]", ",", ":", "null", "true", "-1",
    "1e999", "\"\\ud800\"", "\"retries\": -5", "\"eta\": \"x\"",
    "\"body\": 7", "\xff", "\x00"};
  for (int round = 0; round < 20000; ++round) {
    auto text = base[pick(base.size())];
    auto edits = 1 + pick(4);
    for (size_t e = 0; e < edits && !text.empty(); ++e) {
      auto pos = pick(text.size());
      switch (pick(5)) {
        case 0: text[pos] = static_cast<char>(rng()); break;
        case 1: text.erase(pos, 1 + pick(8)); break;
        case 2: text.insert(pos, tokens[pick(std::size(tokens))]); break;
        case 3: text.resize(pos); break;
        default: text[pos] ^= static_cast<char>(1 << pick(8)); break;
      }
    }
    run_path(schema, text);
  }
  // Valid envelopes whose body is random bytes.
  for (int round = 0; round < 5000; ++round) {
    task_message msg;
    msg.task = "fuzz.task";
    msg.id = "i";
    msg.content_type = round % 2 ? std::string{content_type_json}
                                 : std::string{content_type_msgpack};
    msg.schema_version = static_cast<int32_t>(pick(3));
    std::string body(pick(64), '\0');
    for (auto& c : body)
      c = static_cast<char>(rng());
    msg.body = body;
    run_path(schema, encode_kombu_envelope(msg, "q", "t"));
  }
  SUCCEED("no crash");
}
