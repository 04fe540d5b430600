// Celery canvas: the messages a finished task sends on (chain links,
// callbacks, errbacks, chord bodies), built from protocol v2's embed.

#include <catch2/catch.hpp>

#include "messages/canvas.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/task_body.hpp"
#include "tasks/task_runner.hpp"

using namespace vigil;

namespace {

value sig(std::string task, value_array args = {}, value_map options = {},
          bool immutable = false) {
  return value_map{{"task", std::move(task)},
                   {"args", std::move(args)},
                   {"kwargs", value_map{}},
                   {"options", std::move(options)},
                   {"subtask_type", nullptr},
                   {"immutable", immutable}};
}

task_body body_of(const outgoing_task& t) {
  auto b = decode_task_body(t.msg.body, t.msg.content_type);
  REQUIRE(b);
  return std::move(*b);
}

send_context ctx_of(std::string id, std::string root) {
  send_context ctx;
  ctx.parent_id = std::move(id);
  ctx.root_id = std::move(root);
  ctx.priority = 3;
  return ctx;
}

delivery make(std::string task, value_array args, value embed,
              std::string id = "T1") {
  delivery d;
  d.msg.task = std::move(task);
  d.msg.id = id;
  d.msg.root_id = "ROOT";
  d.msg.body = encode_task_body(args, {}, content_type_msgpack, embed);
  d.tag = "tag";
  d.queue = "celery";
  return d;
}

value embed_with(value_array callbacks, value_array errbacks,
                 value_array chain, value chord = {}) {
  auto list = [](value_array x) {
    return x.empty() ? value{} : value{std::move(x)};
  };
  return value_map{{"callbacks", list(std::move(callbacks))},
                   {"errbacks", list(std::move(errbacks))},
                   {"chain", list(std::move(chain))},
                   {"chord", std::move(chord)}};
}

} // namespace

TEST_CASE("the next chain link is the last element, with the result "
          "prepended and the rest of the chain in its embed",
          "[canvas]") {
  // chain(a, b, c, d) as Celery sends a: embed.chain = [d, c, b].
  auto e = parse_embed(embed_with(
    {}, {},
    {sig("d", {}, {{"task_id", "ID-D"}}), sig("c", {}, {{"task_id", "ID-C"}}),
     sig("b", {value{2}}, {{"task_id", "ID-B"}})}));
  REQUIRE(e);
  auto next = success_follow_ups(*e, value{"r"}, ctx_of("ID-A", "ROOT"));
  REQUIRE(next);
  REQUIRE(next->size() == 1);
  auto& t = next->front();
  CHECK(t.msg.task == "b");
  CHECK(t.msg.id == "ID-B");
  CHECK(t.msg.parent_id == "ID-A");
  CHECK(t.msg.root_id == "ROOT");
  CHECK(t.msg.priority == 3);
  CHECK(t.queue.empty()); // the consumer's default queue
  auto b = body_of(t);
  CHECK(b.args == value_array{value{"r"}, value{2}});
  auto rest = parse_embed(b.embed);
  REQUIRE(rest);
  REQUIRE(rest->chain.size() == 2);
  CHECK(rest->chain[0].find("task")->as_text() == "d");
  CHECK(rest->chain[1].find("task")->as_text() == "c");
  // The ids a client waits on are the ones still to run.
  CHECK(pending_chain_ids(*e) == std::vector<std::string>{"ID-D", "ID-C",
                                                          "ID-B"});
}

TEST_CASE("an immutable signature keeps its own args", "[canvas]") {
  auto e = parse_embed(embed_with({sig("cb", {value{1}}, {}, true)}, {}, {}));
  REQUIRE(e);
  auto next = success_follow_ups(*e, value{"r"}, ctx_of("P", "R"));
  REQUIRE(next);
  REQUIRE(next->size() == 1);
  CHECK(body_of(next->front()).args == value_array{value{1}});
}

TEST_CASE("signature options become headers and routing", "[canvas]") {
  value_map opts{{"task_id", "X"},   {"queue", "other"},
                 {"countdown", 10},  {"priority", 7},
                 {"group_id", "G"},  {"group_index", 2},
                 {"time_limit", 30}, {"soft_time_limit", 20},
                 {"headers", value_map{{"custom", "yes"}}},
                 {"link", sig("after")}};
  auto out = apply_signature(sig("t", {}, opts), {value{5}}, ctx_of("P", "R"));
  REQUIRE(out);
  REQUIRE(out->size() == 1);
  auto& t = out->front();
  CHECK(t.queue == "other");
  CHECK(t.msg.id == "X");
  CHECK(t.msg.correlation_id == "X");
  CHECK(t.msg.eta_us > 0);
  CHECK(t.msg.priority == 7);
  CHECK(t.msg.group == "G");
  CHECK(t.msg.group_index == 2);
  CHECK(t.msg.time_limit == 30);
  CHECK(t.msg.soft_time_limit == 20);
  // The envelope carries them as Celery's headers, and they read back.
  auto env = encode_kombu_envelope(t.msg, t.queue, "tag");
  CHECK(env.find("\"group_index\": 2") != std::string::npos);
  CHECK(env.find("\"custom\"") != std::string::npos);
  auto back = decode_kombu_envelope(env);
  REQUIRE(back);
  CHECK(back->msg.group_index == 2);
  CHECK(back->msg.parent_id == "P");
  CHECK(back->msg.root_id == "R");
  auto b = body_of(t);
  CHECK(b.args == value_array{value{5}});
  auto e = parse_embed(b.embed);
  REQUIRE(e);
  REQUIRE(e->callbacks.size() == 1);
  CHECK(e->callbacks[0].find("task")->as_text() == "after");
}

TEST_CASE("errbacks get the failed task's id, as Celery 5 sends them",
          "[canvas]") {
  auto e = parse_embed(embed_with({}, {sig("on_err"), sig("imm", {value{9}},
                                                          {}, true)},
                                  {}));
  REQUIRE(e);
  auto out = failure_follow_ups(*e, ctx_of("FAILED", "ROOT"));
  REQUIRE(out);
  REQUIRE(out->size() == 2);
  CHECK(body_of((*out)[0]).args == value_array{value{"FAILED"}});
  CHECK((*out)[0].msg.parent_id == "FAILED");
  CHECK(body_of((*out)[1]).args == value_array{value{9}});
}

TEST_CASE("bad canvas input is an error, never a crash", "[canvas]") {
  CHECK(!parse_embed(value{"chain"}));
  CHECK(!parse_embed(value_map{{"chain", 5}}));
  CHECK(!apply_signature(value{1}, {}, {}));
  CHECK(!apply_signature(value_map{{"args", value_array{}}}, {}, {}));
  auto bad_eta = sig("t", {}, {{"eta", "not a time"}});
  CHECK(!apply_signature(bad_eta, {}, {}));
  auto nested_chord = sig("celery.chord");
  nested_chord.set("subtask_type", "chord");
  CHECK(!apply_signature(nested_chord, {}, {}));
}

TEST_CASE("chain and group signatures expand", "[canvas]") {
  value chain = value_map{
    {"task", "celery.chain"}, {"args", value_array{}},
    {"kwargs", value_map{{"tasks", value_array{sig("x"), sig("y"),
                                                sig("z")}}}},
    {"options", value_map{}}, {"subtask_type", "chain"}, {"immutable", false}};
  auto out = apply_signature(chain, {value{1}}, ctx_of("P", "R"));
  REQUIRE(out);
  REQUIRE(out->size() == 1);
  CHECK(out->front().msg.task == "x");
  auto e = parse_embed(body_of(out->front()).embed);
  REQUIRE(e);
  REQUIRE(e->chain.size() == 2);
  CHECK(e->chain.back().find("task")->as_text() == "y");

  value group = chain;
  group.set("task", "celery.group");
  group.set("subtask_type", "group");
  group.set("options", value_map{{"task_id", "GID"}});
  auto members = apply_signature(group, {value{1}}, ctx_of("P", "R"));
  REQUIRE(members);
  REQUIRE(members->size() == 3);
  for (auto& m : *members)
    CHECK(m.msg.group == "GID");
}

TEST_CASE("the runner sends the next link after success and errbacks "
          "after a final failure", "[canvas]") {
  auto reg = default_task_registry();
  auto ok = run_delivery(*reg,
                         make("vigil.echo", {value{"a"}},
                              embed_with({sig("vigil.echo")}, {},
                                         {sig("vigil.echo", {},
                                              {{"task_id", "NEXT"}})})),
                         "msgpack");
  REQUIRE(ok.what() == outcome_kind::success);
  REQUIRE(ok.canvas.follow_ups.size() == 2); // the callback, then the link
  CHECK(ok.canvas.follow_ups[1].msg.id == "NEXT");
  CHECK(body_of(ok.canvas.follow_ups[1]).args == value_array{value{"a"}});
  CHECK(ok.canvas.follow_ups[1].msg.root_id == "ROOT");

  // vigil.echo without its argument fails at once (TypeError).
  auto bad = run_delivery(*reg,
                          make("vigil.echo", {},
                               embed_with({sig("vigil.echo")},
                                          {sig("vigil.echo")},
                                          {sig("vigil.echo", {},
                                               {{"task_id", "NEXT"}})})),
                          "msgpack");
  REQUIRE(bad.what() == outcome_kind::dead_letter);
  REQUIRE(bad.canvas.follow_ups.size() == 1); // only the errback
  CHECK(body_of(bad.canvas.follow_ups[0]).args == value_array{value{"T1"}});
  REQUIRE(bad.canvas.extra_results.size() == 1); // the link that won't run
  CHECK(bad.canvas.extra_results[0].task_id == "NEXT");
  auto doc = decode_msgpack(bad.canvas.extra_results[0].doc);
  REQUIRE(doc);
  CHECK(doc->find("status")->as_text() == "FAILURE");
}

TEST_CASE("a chord part returns its entry; without a result backend it is "
          "a dead letter with the reason", "[canvas]") {
  auto reg = default_task_registry();
  auto body = sig("vigil.echo", {}, {{"task_id", "BODY"}});
  auto d = make("vigil.echo", {value{"p0"}}, embed_with({}, {}, {}, body));
  d.msg.group = "GRP";
  d.msg.group_index = 1;
  auto out = run_delivery(*reg, d, "msgpack");
  REQUIRE(out.what() == outcome_kind::success);
  auto& part = out.canvas.chord;
  CHECK(part.group_id == "GRP");
  CHECK(part.group_index == 1);
  auto entry = decode_msgpack(part.entry);
  REQUIRE(entry);
  CHECK(*entry == value{value_array{value{1}, value{"T1"}, value{"SUCCESS"},
                                    value{"p0"}}});
  auto none = run_delivery(*reg, d, "");
  CHECK(none.what() == outcome_kind::dead_letter);
  CHECK(none.reason.find("result backend") != std::string::npos);

  // Completing it: the body gets the results in order as its first arg.
  std::vector<std::string> entries{
    encode_chord_entry("A", "SUCCESS", value{"r0"}, content_type_msgpack),
    encode_chord_entry("B", "SUCCESS", value{"r1"}, content_type_json)};
  auto fin = complete_chord(part, entries, content_type_msgpack);
  REQUIRE(fin);
  REQUIRE(fin->messages.size() == 1);
  CHECK(fin->messages[0].msg.id == "BODY");
  CHECK(fin->messages[0].msg.parent_id == "T1");
  CHECK(body_of(fin->messages[0]).args
        == value_array{value{value_array{value{"r0"}, value{"r1"}}}});

  // A failed part fails the body with ChordError instead.
  entries[1] = encode_chord_entry(
    "B", "FAILURE",
    value_map{{"exc_type", "ValueError"},
              {"exc_message", value_array{value{"no"}}},
              {"exc_module", "builtins"}},
    content_type_msgpack);
  fin = complete_chord(part, entries, content_type_msgpack);
  REQUIRE(fin);
  CHECK(fin->messages.empty());
  REQUIRE(fin->results.size() == 1);
  auto doc = decode_msgpack(fin->results[0].doc);
  REQUIRE(doc);
  CHECK(doc->find("status")->as_text() == "FAILURE");
  CHECK(doc->find("result")->find("exc_type")->as_text() == "ChordError");
}

namespace {

value chord_sig(value_array header, value body, std::string gid = "GID") {
  value group = value_map{
    {"task", "celery.group"}, {"args", value_array{}},
    {"kwargs", value_map{{"tasks", std::move(header)}}},
    {"options", value_map{{"task_id", std::move(gid)}}},
    {"subtask_type", "group"}, {"immutable", false}};
  return value_map{
    {"task", "celery.chord"}, {"args", value_array{}},
    {"kwargs", value_map{{"kwargs", value_map{}}, {"header", std::move(group)},
                         {"body", std::move(body)}}},
    {"options", value_map{}}, {"subtask_type", "chord"}, {"immutable", false}};
}

} // namespace

TEST_CASE("a chord nested in a chain sends its header as chord parts, the "
          "size first and the rest of the chain in the body", "[canvas]") {
  auto body = sig("tally", {}, {{"task_id", "BODY"}});
  auto chord = chord_sig({sig("p", {}, {{"task_id", "P0"}}),
                          sig("p", {}, {{"task_id", "P1"}})},
                         body);
  value_array rest{sig("after", {}, {{"task_id", "AFTER"}})};
  auto out = apply_signature(chord, {value{7}}, ctx_of("PREV", "R"), rest);
  REQUIRE(out);
  REQUIRE(out->size() == 2);
  CHECK((*out)[0].chord_size == 2);
  CHECK((*out)[1].chord_size == 0);
  for (size_t i = 0; i < 2; ++i) {
    auto& m = (*out)[i].msg;
    CHECK(m.group == "GID");
    CHECK(m.group_index == static_cast<int32_t>(i));
    CHECK(m.parent_id == "PREV");
    CHECK(m.root_id == "R");
    auto b = body_of((*out)[i]);
    CHECK(b.args == value_array{value{7}});
    auto e = parse_embed(b.embed);
    REQUIRE(e);
    CHECK(e->chain.empty()); // the header parts don't carry the chain
    REQUIRE(e->chord.is_map());
    CHECK(e->chord.find("task")->as_text() == "tally");
  }

  // The part that completes the chord sends the body, with the chain.
  auto reg = default_task_registry();
  delivery d;
  d.msg = (*out)[1].msg;
  d.msg.task = "vigil.echo";
  d.tag = "t";
  auto ran = run_delivery(*reg, d, "msgpack");
  REQUIRE(ran.what() == outcome_kind::success);
  std::vector<std::string> entries{
    encode_chord_entry("P0", "SUCCESS", value{7}, content_type_msgpack),
    encode_chord_entry("P1", "SUCCESS", value{7}, content_type_msgpack)};
  auto fin = complete_chord(ran.canvas.chord, entries, content_type_msgpack);
  REQUIRE(fin);
  REQUIRE(fin->messages.size() == 1);
  CHECK(fin->messages[0].msg.id == "BODY");
  auto be = parse_embed(body_of(fin->messages[0]).embed);
  REQUIRE(be);
  REQUIRE(be->chain.size() == 1);
  CHECK(be->chain[0].find("task")->as_text() == "after");
}

TEST_CASE("a nested chord with an empty header sends its body with ([],); a "
          "group inside a header is refused", "[canvas]") {
  auto out = apply_signature(chord_sig({}, sig("tally")), {value{1}},
                             ctx_of("P", "R"));
  REQUIRE(out);
  REQUIRE(out->size() == 1);
  CHECK(out->front().msg.task == "tally");
  CHECK(body_of(out->front()).args == value_array{value{value_array{}}});

  value inner = chord_sig({sig("x")}, sig("y"));
  auto refused = apply_signature(chord_sig({inner}, sig("tally")), {}, {});
  CHECK(!refused);
}

TEST_CASE("a task whose success starts a chord needs a result backend",
          "[canvas]") {
  auto reg = default_task_registry();
  auto d = make("vigil.echo", {value{"a"}},
                embed_with({}, {}, {chord_sig({sig("vigil.echo")},
                                              sig("vigil.echo"))}));
  auto none = run_delivery(*reg, d, "");
  CHECK(none.what() == outcome_kind::dead_letter);
  CHECK(none.reason.find("result-backend") != std::string::npos);
  auto ok = run_delivery(*reg, d, "msgpack");
  REQUIRE(ok.what() == outcome_kind::success);
  REQUIRE(ok.canvas.follow_ups.size() == 1);
  CHECK(ok.canvas.follow_ups[0].chord_size == 1);
}

namespace {

// A header part of chord "GRP".
delivery grp_part() {
  auto d = make("vigil.echo", {value{"p0"}},
                embed_with({}, {}, {}, sig("vigil.echo")));
  d.msg.group = "GRP";
  return d;
}

// The state of the entry `out` returns to chord "GRP".
value returned_state(const task_outcome& out) {
  REQUIRE(out.canvas.chord.group_id == "GRP");
  auto entry = decode_msgpack(out.canvas.chord.entry);
  REQUIRE(entry);
  return entry->as_array()[2];
}

} // namespace

TEST_CASE("an expired chord part returns REVOKED to its chord", "[canvas]") {
  auto reg = default_task_registry();
  auto d = grp_part();
  d.msg.expires_us = 1;
  auto out = run_delivery(*reg, d, "msgpack");
  CHECK(out.what() == outcome_kind::expired);
  CHECK(returned_state(out) == value{"REVOKED"});
  auto doc = decode_msgpack(out.result_doc);
  REQUIRE(doc);
  CHECK(doc->find("status")->as_text() == "REVOKED");
}

TEST_CASE("a chord inside a group expands to decodable parts", "[canvas]") {
  value group = value_map{
    {"task", "celery.group"}, {"args", value_array{}},
    {"kwargs", value_map{{"tasks", value_array{
      chord_sig({sig("a"), sig("b")}, sig("body", {}, {{"task_id", "B"}})),
      sig("other")}}}},
    {"options", value_map{{"task_id", "OUTER"}}},
    {"subtask_type", "group"}, {"immutable", false}};
  auto out = apply_signature(group, {value{3}}, ctx_of("P", "R"));
  REQUIRE(out);
  REQUIRE(out->size() == 3);
  for (auto& t : *out) {
    auto b = decode_task_body(t.msg.body, t.msg.content_type);
    CHECK(b);
  }
}

TEST_CASE("a terminated chord part returns REVOKED to its chord", "[canvas]") {
  auto reg = default_task_registry();
  auto out = terminated_outcome(*reg, grp_part(), "msgpack");
  CHECK(out.what() == outcome_kind::dead_letter);
  CHECK(returned_state(out) == value{"REVOKED"});
}
