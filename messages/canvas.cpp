#include "messages/canvas.hpp"

#include <algorithm>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/result_doc.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

caf::error malformed(std::string what) {
  return caf::make_error(errc::malformed, std::move(what));
}

// A list of signatures where Celery may also write a single one.
caf::expected<value_array> signature_list(const value* v, const char* key) {
  if (v == nullptr || v->is_nil())
    return value_array{};
  if (v->is_array())
    return v->as_array();
  if (v->is_map())
    return value_array{*v};
  return malformed(std::string{"embed '"} + key
                   + "' must be a list of signatures, got "
                   + to_repr(*v, 80));
}

const std::string* text_of(const value* v) {
  return v != nullptr && v->is_text() ? &v->as_text() : nullptr;
}

std::string text_or(const value_map* m, std::string_view key,
                    std::string fallback = {}) {
  if (m == nullptr)
    return fallback;
  for (auto& [k, v] : *m)
    if (k == key && v.is_text())
      return v.as_text();
  return fallback;
}

const value* opt(const value_map* m, std::string_view key) {
  if (m == nullptr)
    return nullptr;
  for (auto& [k, v] : *m)
    if (k == key)
      return v.is_nil() ? nullptr : &v;
  return nullptr;
}

// An ETA or expiry option: seconds from now (a number) or an ISO 8601 time.
caf::expected<int64_t> time_option(const value* v, const char* name,
                                   int64_t now) {
  if (v == nullptr)
    return int64_t{0};
  if (v->is_number())
    return now + static_cast<int64_t>(v->as_double() * 1e6);
  if (v->is_text()) {
    auto t = parse_iso8601(v->as_text());
    if (!t)
      return malformed(std::string{"signature option '"} + name
                       + "' is not an ISO 8601 time: "
                       + to_repr(*v, 80));
    return *t;
  }
  return malformed(std::string{"signature option '"} + name
                   + "' must be a number or an ISO 8601 time, got "
                   + to_repr(*v, 80));
}

double limit_option(const value* v) {
  return v != nullptr && v->is_number() ? v->as_double() : 0;
}

// The signature's args with `partial` prepended unless it is immutable.
value_array merged_args(const value& sig, const value_array& partial) {
  value_array out;
  bool immutable = false;
  if (auto* im = sig.find("immutable"); im != nullptr && im->is_bool())
    immutable = im->as_bool();
  if (!immutable)
    out = partial;
  if (auto* a = sig.find("args"); a != nullptr && a->is_array())
    out.insert(out.end(), a->as_array().begin(), a->as_array().end());
  return out;
}

caf::error apply_into(const value& sig, const value_array& partial,
                      const send_context& ctx, const value_array& chain,
                      std::vector<outgoing_task>& out);

// A "chain" signature: kwargs.tasks in order; the first runs now with the
// partial args, the rest ride in its embed (reversed) after `chain`'s.
caf::error apply_chain(const value& sig, const value_array& partial,
                       const send_context& ctx, const value_array& chain,
                       std::vector<outgoing_task>& out) {
  auto* kw = sig.find("kwargs");
  auto* tasks = kw != nullptr ? kw->find("tasks") : nullptr;
  if (tasks == nullptr || !tasks->is_array())
    return malformed("chain signature without kwargs.tasks");
  auto& list = tasks->as_array();
  if (list.empty())
    return {};
  value_array rest = chain;
  for (size_t i = list.size(); i-- > 1;)
    rest.push_back(list[i]);
  return apply_into(list.front(), partial, ctx, rest, out);
}

// `sig` with option `key` set to `v`.
value with_option(value sig, const char* key, value v) {
  auto* mo = sig.find("options");
  value o = mo != nullptr && mo->is_map() ? *mo : value{value_map{}};
  o.set(key, std::move(v));
  sig.set("options", std::move(o));
  return sig;
}

// `sig` with options.group_id set to `gid` unless it has one.
value in_group(value sig, const std::string& gid) {
  if (!sig.is_map())
    return sig;
  if (auto* o = sig.find("options");
      o != nullptr && o->is_map() && o->find("group_id") != nullptr)
    return sig;
  return with_option(std::move(sig), "group_id", value{gid});
}

// A "group" signature: each member sent with the group's id.
caf::error apply_group(const value& sig, const value_array& partial,
                       const send_context& ctx,
                       std::vector<outgoing_task>& out) {
  auto* kw = sig.find("kwargs");
  auto* tasks = kw != nullptr ? kw->find("tasks") : nullptr;
  if (tasks == nullptr || !tasks->is_array())
    return malformed("group signature without kwargs.tasks");
  auto* opts = sig.find("options");
  const value_map* om = opts != nullptr && opts->is_map() ? &opts->as_map()
                                                          : nullptr;
  auto gid = text_or(om, "task_id", text_or(om, "group_id"));
  if (gid.empty())
    gid = new_uuid4();
  for (auto& member : tasks->as_array())
    if (auto err = apply_into(in_group(member, gid), partial, ctx, {}, out))
      return err;
  return {};
}

// A chord header member made a part of chord `gid` (Celery's group freeze
// with chord=body): a simple signature gets the group id, its index and
// the body; a chain's last task does (it is the one that finishes). Adds
// the completions it contributes to `size` (Celery's _chord._descend).
caf::expected<value> as_chord_member(const value& member,
                                     const std::string& gid, size_t index,
                                     const value& body, int64_t& size) {
  if (!member.is_map())
    return malformed("a chord header member must be a signature, got "
                     + to_repr(member, 80));
  auto* st = text_of(member.find("subtask_type"));
  if (st != nullptr && *st == "chain") {
    auto* kw = member.find("kwargs");
    auto* tasks = kw != nullptr ? kw->find("tasks") : nullptr;
    if (tasks == nullptr || !tasks->is_array() || tasks->as_array().empty())
      return malformed("chain in a chord header without kwargs.tasks");
    auto list = tasks->as_array();
    auto last = as_chord_member(list.back(), gid, index, body, size);
    if (!last)
      return last.error();
    list.back() = std::move(*last);
    value kw2 = *kw;
    kw2.set("tasks", value{std::move(list)});
    value out = member;
    out.set("kwargs", std::move(kw2));
    return out;
  }
  if (st != nullptr && (*st == "group" || *st == "chord"))
    return caf::make_error(errc::unsupported,
                           "a " + *st + " inside a chord header is not "
                           "supported by vigil workers (Celery joins it "
                           "through a saved GroupResult)");
  ++size;
  auto m = with_option(member, "group_id", value{gid});
  m = with_option(std::move(m), "chord", body);
  auto* o = m.find("options");
  if (o->find("group_index") == nullptr)
    m = with_option(std::move(m), "group_index",
                    value{static_cast<int64_t>(index)});
  return m;
}

// A "chord" signature applied by a worker (nested in a chain, a group or a
// callback), as Celery's chord.run does: the header group's id (its
// options.task_id, else a new one), the body carrying the rest of the
// chain, each header member sent with the partial args as a part of the
// chord, and the chord size set in the result backend before the header
// is published (outgoing_task::chord_size). An empty header sends the body
// with `([],)`, as Celery does.
caf::error apply_chord(const value& sig, const value_array& partial,
                       const send_context& ctx, const value_array& chain,
                       std::vector<outgoing_task>& out) {
  auto* kw = sig.find("kwargs");
  auto* header = kw != nullptr ? kw->find("header") : nullptr;
  auto* body = kw != nullptr ? kw->find("body") : nullptr;
  if (body == nullptr || !body->is_map())
    return malformed("chord signature without a kwargs.body signature");
  const value_array* members = nullptr;
  std::string gid;
  if (header != nullptr && header->is_array()) {
    members = &header->as_array();
  } else if (header != nullptr && header->is_map()) {
    auto* hkw = header->find("kwargs");
    auto* tasks = hkw != nullptr ? hkw->find("tasks") : nullptr;
    if (tasks == nullptr || !tasks->is_array())
      return malformed("chord header group without kwargs.tasks");
    members = &tasks->as_array();
    auto* ho = header->find("options");
    if (ho != nullptr && ho->is_map())
      gid = text_or(&ho->as_map(), "task_id");
  } else {
    return malformed("chord signature without a kwargs.header group");
  }
  value full_body = chain.empty() ? *body
                                  : with_option(*body, "chain", value{chain});
  if (members->empty())
    return apply_into(full_body, value_array{value{value_array{}}}, ctx, {},
                      out);
  if (gid.empty())
    gid = new_uuid4();
  int64_t size = 0;
  std::vector<value> parts;
  parts.reserve(members->size());
  for (size_t i = 0; i < members->size(); ++i) {
    auto m = as_chord_member((*members)[i], gid, i, full_body, size);
    if (!m)
      return m.error();
    parts.push_back(std::move(*m));
  }
  auto first = out.size();
  for (auto& m : parts)
    if (auto err = apply_into(m, partial, ctx, {}, out))
      return err;
  if (out.size() > first)
    out[first].chord_size = size;
  return {};
}

caf::error apply_into(const value& sig, const value_array& partial,
                      const send_context& ctx, const value_array& chain,
                      std::vector<outgoing_task>& out) {
  if (!sig.is_map())
    return malformed("a signature must be a dict, got " + to_repr(sig, 80));
  auto* name = text_of(sig.find("task"));
  if (name == nullptr || name->empty())
    return malformed("signature without a task name: " + to_repr(sig, 120));
  if (auto* st = text_of(sig.find("subtask_type")); st != nullptr) {
    if (*st == "chain")
      return apply_chain(sig, partial, ctx, chain, out);
    if (*st == "group")
      return apply_group(sig, partial, ctx, out);
    if (*st == "chord")
      return apply_chord(sig, partial, ctx, chain, out);
    // Other types (chunks, xmap...) are tasks of their own name.
  }
  auto* opts_v = sig.find("options");
  const value_map* o = opts_v != nullptr && opts_v->is_map()
                         ? &opts_v->as_map()
                         : nullptr;
  auto now = now_unix_us();
  outgoing_task t;
  auto& msg = t.msg;
  msg.task = *name;
  msg.id = text_or(o, "task_id");
  if (msg.id.empty())
    msg.id = new_uuid4();
  msg.root_id = ctx.root_id.empty() ? msg.id : ctx.root_id;
  msg.parent_id = ctx.parent_id;
  msg.group = text_or(o, "group_id");
  if (auto* gi = opt(o, "group_index"); gi != nullptr && gi->is_int())
    msg.group_index = static_cast<int32_t>(
      std::clamp<int64_t>(gi->as_int(), 0, INT32_MAX));
  msg.shadow = text_or(o, "shadow");
  if (auto* q = opt(o, "queue")) {
    if (q->is_text())
      t.queue = q->as_text();
    else if (q->is_map())
      t.queue = text_or(&q->as_map(), "name");
  }
  if (t.queue.empty())
    t.queue = text_or(o, "routing_key", ctx.default_queue);
  if (auto* countdown = opt(o, "countdown"); countdown != nullptr) {
    auto eta = time_option(countdown, "countdown", now);
    if (!eta)
      return eta.error();
    msg.eta_us = *eta;
  } else {
    auto eta = time_option(opt(o, "eta"), "eta", now);
    if (!eta)
      return eta.error();
    msg.eta_us = *eta;
  }
  auto expires = time_option(opt(o, "expires"), "expires", now);
  if (!expires)
    return expires.error();
  msg.expires_us = *expires;
  msg.priority = ctx.priority;
  if (auto* p = opt(o, "priority"); p != nullptr && p->is_int())
    msg.priority = static_cast<int32_t>(std::clamp<int64_t>(p->as_int(), 0, 9));
  msg.time_limit = limit_option(opt(o, "time_limit"));
  msg.soft_time_limit = limit_option(opt(o, "soft_time_limit"));
  if (auto* ir = opt(o, "ignore_result"); ir != nullptr && ir->is_bool())
    msg.ignore_result = ir->as_bool();
  if (auto* h = opt(o, "headers"); h != nullptr && h->is_map()
                                   && !h->as_map().empty())
    msg.extra_headers = encode_json(*h);
  msg.origin = ctx.origin;
  msg.correlation_id = msg.id;
  msg.reply_to = text_or(o, "reply_to");
  msg.content_type = ctx.content_type.empty()
                       ? std::string{content_type_msgpack}
                       : ctx.content_type;
  auto args = merged_args(sig, partial);
  value_map kwargs;
  if (auto* k = sig.find("kwargs"); k != nullptr && k->is_map())
    kwargs = k->as_map();
  auto links = signature_list(opt(o, "link"), "link");
  if (!links)
    return links.error();
  auto errbacks = signature_list(opt(o, "link_error"), "link_error");
  if (!errbacks)
    return errbacks.error();
  auto* chord = opt(o, "chord");
  // A chain given at apply time wins over the signature's own (Celery
  // merges the apply options over the signature's): a chord body carries
  // the rest of its chain in its options.
  const value* own_chain = opt(o, "chain");
  value chain_v = !chain.empty() ? value{chain}
                  : own_chain != nullptr && own_chain->is_array()
                      && !own_chain->as_array().empty()
                    ? *own_chain
                    : value{};
  value embed = value_map{
    {"callbacks", links->empty() ? value{} : value{std::move(*links)}},
    {"errbacks", errbacks->empty() ? value{} : value{std::move(*errbacks)}},
    {"chain", std::move(chain_v)},
    {"chord", chord != nullptr ? *chord : value{}}};
  msg.argsrepr = to_repr(value{args});
  msg.kwargsrepr = to_repr(value{kwargs});
  msg.body = encode_task_body(args, kwargs, msg.content_type, embed);
  out.push_back(std::move(t));
  return {};
}

} // namespace

caf::expected<task_embed> parse_embed(const value& embed) {
  task_embed out;
  if (embed.is_nil())
    return out;
  if (!embed.is_map())
    return malformed("embed must be a dict, got " + to_repr(embed, 80));
  auto cb = signature_list(embed.find("callbacks"), "callbacks");
  if (!cb)
    return cb.error();
  auto eb = signature_list(embed.find("errbacks"), "errbacks");
  if (!eb)
    return eb.error();
  auto ch = signature_list(embed.find("chain"), "chain");
  if (!ch)
    return ch.error();
  out.callbacks = std::move(*cb);
  out.errbacks = std::move(*eb);
  out.chain = std::move(*ch);
  if (auto* c = embed.find("chord"); c != nullptr && !c->is_nil()) {
    if (!c->is_map())
      return malformed("embed 'chord' must be a signature, got "
                       + to_repr(*c, 80));
    out.chord = *c;
  }
  return out;
}

caf::expected<std::vector<outgoing_task>>
apply_signature(const value& sig, const value_array& partial_args,
                const send_context& ctx, const value_array& chain) {
  std::vector<outgoing_task> out;
  if (auto err = apply_into(sig, partial_args, ctx, chain, out))
    return err;
  return out;
}

caf::expected<std::vector<outgoing_task>>
success_follow_ups(const task_embed& embed, const value& result,
                   const send_context& ctx) {
  std::vector<outgoing_task> out;
  value_array partial{result};
  // Several callbacks: Celery sends them as one group (one group id).
  std::string gid = embed.callbacks.size() > 1 ? new_uuid4() : std::string{};
  for (auto& cb : embed.callbacks) {
    auto* st = text_of(cb.find("subtask_type"));
    bool grouped = !gid.empty() && (st == nullptr || *st != "group");
    if (auto err = apply_into(grouped ? in_group(cb, gid) : cb, partial, ctx,
                              {}, out))
      return err;
  }
  if (!embed.chain.empty()) {
    value_array rest(embed.chain.begin(), embed.chain.end() - 1);
    if (auto err = apply_into(embed.chain.back(), partial, ctx, rest, out))
      return err;
  }
  return out;
}

caf::expected<std::vector<outgoing_task>>
failure_follow_ups(const task_embed& embed, const send_context& ctx) {
  std::vector<outgoing_task> out;
  value_array partial{value{ctx.parent_id}};
  for (auto& eb : embed.errbacks)
    if (auto err = apply_into(eb, partial, ctx, {}, out))
      return err;
  return out;
}

std::vector<std::string> pending_chain_ids(const task_embed& embed) {
  std::vector<std::string> out;
  for (auto& sig : embed.chain) {
    auto* o = sig.find("options");
    if (o == nullptr || !o->is_map())
      continue;
    auto id = text_or(&o->as_map(), "task_id");
    if (!id.empty())
      out.push_back(std::move(id));
  }
  return out;
}

std::string encode_chord_entry(const std::string& task_id,
                               const std::string& state, const value& result,
                               std::string_view content_type) {
  return encode_as(value{value_array{value{int64_t{1}}, value{task_id},
                                     value{state}, result}},
                   content_type);
}

caf::expected<chord_completion>
complete_chord(const chord_part& last, const std::vector<std::string>& entries,
               std::string_view result_content_type) {
  auto body = decode_msgpack(last.body);
  if (!body)
    return malformed("chord body does not decode: "
                     + error_text(body.error()));
  chord_completion out;
  value_array results;
  results.reserve(entries.size());
  for (auto& raw : entries) {
    auto e = !raw.empty() && (raw[0] == '[' || raw[0] == ' ')
               ? decode_json(raw)
               : decode_msgpack(raw);
    if (!e || !e->is_array() || e->as_array().size() != 4)
      return malformed("chord entry is not [1, id, state, result]");
    auto& parts = e->as_array();
    auto* state = text_of(&parts[2]);
    if (state != nullptr && (*state == "FAILURE" || *state == "REVOKED")) {
      // Celery's ChordError: the body fails, its errbacks run.
      std::string raised = "?";
      if (auto* t = text_of(parts[3].find("exc_type"))) {
        raised = *t + "(";
        if (auto* m = parts[3].find("exc_message");
            m != nullptr && m->is_array() && !m->as_array().empty())
          raised += to_repr(m->as_array().front(), 200);
        raised += ")";
      }
      auto tid = text_of(&parts[1]);
      auto msg = "Dependency " + (tid != nullptr ? *tid : std::string{"?"})
                 + " raised " + raised;
      auto* bo = body->find("options");
      auto body_id = bo != nullptr && bo->is_map()
                       ? text_or(&bo->as_map(), "task_id")
                       : std::string{};
      send_context ctx;
      ctx.parent_id = body_id;
      ctx.root_id = last.root_id;
      ctx.content_type = last.content_type;
      ctx.priority = last.priority;
      if (!body_id.empty()) {
        auto doc = make_result_doc(
          task_state::failure, body_id,
          make_exception("ChordError", msg, "celery.exceptions"),
          now_unix_us());
        out.results.push_back(
          extra_result{body_id, encode_as(doc, result_content_type)});
      }
      if (bo != nullptr && bo->is_map()) {
        auto ebs = signature_list(opt(&bo->as_map(), "link_error"),
                                  "link_error");
        if (ebs)
          for (auto& eb : *ebs)
            if (auto err = apply_into(eb, value_array{value{body_id}}, ctx,
                                      {}, out.messages))
              return err;
      }
      return out;
    }
    results.push_back(std::move(parts[3]));
  }
  send_context ctx;
  ctx.parent_id = last.task_id;
  ctx.root_id = last.root_id;
  ctx.content_type = last.content_type;
  ctx.priority = last.priority;
  if (auto err = apply_into(*body, value_array{value{std::move(results)}},
                            ctx, {}, out.messages))
    return err;
  return out;
}

} // namespace vigil
