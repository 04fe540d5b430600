// Kwargs-tolerant binding and the task runner's outcomes: what makes rolling
// deploys safe and bad messages harmless.

#include <catch2/catch.hpp>

#include "messages/errors.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/task_body.hpp"
#include "messages/task_schema.hpp"
#include "tasks/task_registry.hpp"
#include "tasks/task_runner.hpp"

using namespace vigil;

namespace {

task_schema sample_schema() {
  task_schema s;
  s.name = "t.sample";
  s.version = 2;
  s.params = {required("a", param_type::integer),
              optional("b", param_type::text, "dflt"),
              optional("c", param_type::number, nullptr)};
  s.upgraders[1] = [](value_array&, value_map& kwargs) {
    for (auto& [k, v] : kwargs)
      if (k == "old_b")
        k = "b";
  };
  return s;
}

delivery make_delivery(std::string task, value_array args, value_map kwargs,
                       int32_t retries = 0) {
  delivery d;
  d.msg.task = std::move(task);
  d.msg.id = "id-1";
  d.msg.retries = retries;
  d.msg.body = encode_task_body(args, kwargs, content_type_msgpack);
  d.queue = "celery";
  d.tag = "tag-1";
  return d;
}

} // namespace

TEST_CASE("arguments bind positionally and by keyword", "[schema]") {
  auto s = sample_schema();
  auto r = bind_arguments(s, {value{1}, value{"x"}}, {{"c", value{2.5}}}, 0);
  REQUIRE(r);
  CHECK(r->get_int("a") == 1);
  CHECK(r->get("b").as_text() == "x");
  CHECK(r->get_double("c") == 2.5);
  CHECK(r->extra.empty());
}

TEST_CASE("missing optional arguments take their defaults", "[schema]") {
  auto r = bind_arguments(sample_schema(), {}, {{"a", value{7}}}, 0);
  REQUIRE(r);
  CHECK(r->get("b").as_text() == "dflt");
  CHECK(r->get("c").is_nil());
}

TEST_CASE("unknown keywords are set aside, never an error", "[schema]") {
  auto r = bind_arguments(sample_schema(), {value{1}},
                          {{"new_flag", value{true}}, {"zz", value{}}}, 0);
  REQUIRE(r);
  REQUIRE(r->extra.size() == 2);
  CHECK(r->extra[0].first == "new_flag");
}

TEST_CASE("binding errors name the parameter", "[schema]") {
  auto s = sample_schema();
  auto text = [&](value_array args, value_map kwargs) {
    auto r = bind_arguments(s, std::move(args), std::move(kwargs), 0);
    REQUIRE_FALSE(r);
    return error_text(r.error());
  };
  CHECK(text({}, {}).find("'a'") != std::string::npos);
  CHECK(text({value{"one"}}, {}).find("'a'") != std::string::npos);
  CHECK(text({value{true}}, {}).find("must be int") != std::string::npos);
  CHECK(text({value{1}}, {{"b", value{3}}}).find("'b'") != std::string::npos);
  CHECK(text({value{1}}, {{"a", value{2}}}).find("multiple values")
        != std::string::npos);
  CHECK(text({value{1}, value{"b"}, value{1.0}, value{4}}, {})
          .find("positional") != std::string::npos);
  auto wrong = bind_arguments(s, {value{"x"}}, {}, 0);
  CHECK(wrong.error() == errc::wrong_type);
  auto missing = bind_arguments(s, {}, {}, 0);
  CHECK(missing.error() == errc::missing_field);
}

TEST_CASE("old schema versions are upgraded before binding", "[schema]") {
  auto r = bind_arguments(sample_schema(), {value{1}},
                          {{"old_b", value{"renamed"}}}, 1);
  REQUIRE(r);
  CHECK(r->get("b").as_text() == "renamed");
  // Unstamped (0) and current messages are not upgraded.
  auto r0 = bind_arguments(sample_schema(), {value{1}},
                           {{"old_b", value{"x"}}}, 0);
  REQUIRE(r0);
  CHECK(r0->extra.size() == 1);
}

TEST_CASE("the runner turns results into outcomes", "[runner]") {
  auto reg = default_task_registry();
  SECTION("success carries a SUCCESS document") {
    auto out = run_delivery(*reg, make_delivery("vigil.echo", {value{"hi"}},
                                                {{"unknown", value{1}}}),
                            "auto");
    CHECK(out.what() == outcome_kind::success);
    auto doc = decode_msgpack(out.result_doc);
    REQUIRE(doc);
    CHECK(doc->find("status")->as_text() == "SUCCESS");
    CHECK(doc->find("result")->as_text() == "hi");
    CHECK(doc->find("task_id")->as_text() == "id-1");
  }
  SECTION("optional arguments default; old names upgrade") {
    auto out = run_delivery(*reg, make_delivery("vigil.repeat", {value{"x"}},
                                                {}),
                            "auto");
    REQUIRE(out.what() == outcome_kind::success);
    auto doc = decode_msgpack(out.result_doc);
    CHECK(doc->find("result")->as_array().size() == 2);
    auto d = make_delivery("vigil.repeat", {value{"x"}}, {{"n", value{3}}});
    d.msg.schema_version = 1;
    auto up = run_delivery(*reg, std::move(d), "auto");
    REQUIRE(up.what() == outcome_kind::success);
    CHECK(decode_msgpack(up.result_doc)->find("result")->as_array().size() == 3);
  }
  SECTION("flaky retries until its failures are used up") {
    auto first = run_delivery(*reg, make_delivery("vigil.flaky", {value{2}}, {}), "");
    CHECK(first.what() == outcome_kind::retry);
    CHECK(first.retry_delay == 0);
    auto retry = make_retry_message(first.d.msg, 0);
    CHECK(retry.retries == 1);
    CHECK(retry.id == first.d.msg.id);
    CHECK(retry.parent_id == first.d.msg.id);
    auto last = run_delivery(*reg, make_delivery("vigil.flaky", {value{2}}, {}, 2), "auto");
    CHECK(last.what() == outcome_kind::success);
    CHECK(decode_msgpack(last.result_doc)->find("result")->as_int() == 3);
  }
  SECTION("bad messages become dead letters with the reason") {
    auto unknown = run_delivery(*reg, make_delivery("no.such", {}, {}), "auto");
    CHECK(unknown.what() == outcome_kind::dead_letter);
    CHECK(unknown.reason.find("no.such") != std::string::npos);
    auto typed = run_delivery(*reg, make_delivery("vigil.sleep", {value{"x"}}, {}), "auto");
    CHECK(typed.what() == outcome_kind::dead_letter);
    CHECK(typed.reason.find("seconds") != std::string::npos);
    auto doc = decode_msgpack(typed.result_doc);
    CHECK(doc->find("status")->as_text() == "FAILURE");
    auto d = make_delivery("vigil.ping", {}, {});
    d.msg.body = "\xc1garbage";
    auto garbage = run_delivery(*reg, std::move(d), "");
    CHECK(garbage.what() == outcome_kind::dead_letter);
  }
  SECTION("exhausted retries are dead letters") {
    auto out = run_delivery(*reg, make_delivery("vigil.flaky", {value{500}}, {},
                                                100), "auto");
    CHECK(out.what() == outcome_kind::dead_letter);
    CHECK(out.reason.find("max retries") != std::string::npos);
  }
  SECTION("expired messages are dropped as REVOKED") {
    auto d = make_delivery("vigil.ping", {}, {});
    d.msg.expires_us = 1;
    auto out = run_delivery(*reg, std::move(d), "auto");
    CHECK(out.what() == outcome_kind::expired);
    CHECK(decode_msgpack(out.result_doc)->find("status")->as_text() == "REVOKED");
  }
}
