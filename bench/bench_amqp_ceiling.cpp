#include "bench/bench_amqp_ceiling.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "adapters/amqp.hpp"
#include "adapters/amqp_message.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

constexpr auto io_timeout = std::chrono::seconds{10};

amqp_bytes_t bytes_of(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

/// The message `vigil bench tasks` publishes (same task, id and body shape).
task_message sample_task_message() {
  task_message msg;
  msg.task = "vigil.bench.noop";
  msg.id = new_uuid4();
  msg.ignore_result = true;
  msg.body = encode_task_body({}, value_map{{"sent_us", now_unix_us()}},
                              content_type_msgpack);
  return msg;
}

/// Bytes the basic properties take on the wire (AMQP 0-9-1 content header,
/// after the class id, weight and body size), for the flags vigil sets.
size_t encoded_properties_size(const amqp_basic_properties_t& p) {
  auto has = [&](amqp_flags_t f) { return (p._flags & f) != 0; };
  size_t n = 2; // property flags
  if (has(AMQP_BASIC_CONTENT_TYPE_FLAG))
    n += 1 + p.content_type.len;
  if (has(AMQP_BASIC_CONTENT_ENCODING_FLAG))
    n += 1 + p.content_encoding.len;
  if (has(AMQP_BASIC_HEADERS_FLAG)) {
    std::vector<char> buf(65536);
    size_t offset = 0;
    auto table = p.headers;
    if (amqp_encode_table(amqp_bytes_t{buf.size(), buf.data()}, &table,
                          &offset)
        == AMQP_STATUS_OK)
      n += offset;
  }
  if (has(AMQP_BASIC_DELIVERY_MODE_FLAG))
    n += 1;
  if (has(AMQP_BASIC_PRIORITY_FLAG))
    n += 1;
  if (has(AMQP_BASIC_CORRELATION_ID_FLAG))
    n += 1 + p.correlation_id.len;
  if (has(AMQP_BASIC_REPLY_TO_FLAG))
    n += 1 + p.reply_to.len;
  return n;
}

struct latency_log {
  std::vector<int64_t> samples;
  size_t next = 0;
};

double percentile_ms(std::vector<int64_t>& xs, double p) {
  if (xs.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(i),
                   xs.end());
  return static_cast<double>(xs[i]) / 1000.0;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec)
           + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

/// Publishes `count` messages with confirms, waiting per batch.
class publisher {
public:
  publisher(amqp_connection& conn, std::string queue,
            const bench_amqp_ceiling_options& opts)
    : conn_(conn), queue_(std::move(queue)), opts_(opts) {
    // nop
  }

  caf::error run(const amqp_basic_properties_t& props, std::string body,
                 size_t count) {
    size_t sent = 0;
    auto* st = conn_.native();
    while (sent < count) {
      auto n = std::min(opts_.confirm_batch, count - sent);
      auto now = now_unix_us();
      std::memcpy(body.data(), &now, sizeof(now));
      // Full TCP segments while publishing, as vigil's publish sends them.
      conn_.cork(opts_.cork);
      for (size_t i = 0; i < n; ++i) {
        if (auto rc = amqp_basic_publish(st, amqp_connection::work_channel,
                                         amqp_empty_bytes, bytes_of(queue_),
                                         0, 0, &props, bytes_of(body));
            rc != AMQP_STATUS_OK)
          return conn_.fail(rc, "basic.publish");
        ++published_;
        // Take the confirms that arrived: a server whose writes to us back
        // up stops reading our publishes.
        if (i % 64 == 63)
          if (auto err = read_confirms(steady::now(), SIZE_MAX))
            return err;
      }
      sent += n;
      conn_.cork(false);
      if (auto err = read_confirms(steady::now() + io_timeout,
                                   sent == count ? 0 : opts_.confirm_window))
        return err;
    }
    if (nacked_ > 0)
      return caf::make_error(errc::command_failed,
                             "RabbitMQ nacked " + std::to_string(nacked_)
                               + " message(s)");
    return {};
  }

private:
  // Reads frames until at most `left` confirms are outstanding (SIZE_MAX:
  // only what already arrived) or `deadline` passes.
  caf::error read_confirms(steady::time_point deadline, size_t left) {
    for (;;) {
      if (left != SIZE_MAX && published_ - confirmed_ <= left)
        return {};
      amqp_frame_t frame;
      auto got = conn_.next_frame(frame, deadline);
      if (!got)
        return got.error();
      if (!*got) {
        if (left == SIZE_MAX)
          return {};
        return caf::make_error(errc::timeout, "no publisher confirm in time");
      }
      if (frame.frame_type != AMQP_FRAME_METHOD)
        continue;
      auto id = frame.payload.method.id;
      if (id == AMQP_BASIC_ACK_METHOD || id == AMQP_BASIC_NACK_METHOD) {
        uint64_t tag = 0;
        bool multiple = false;
        if (id == AMQP_BASIC_ACK_METHOD) {
          auto* m = static_cast<amqp_basic_ack_t*>(
            frame.payload.method.decoded);
          tag = m->delivery_tag;
          multiple = m->multiple != 0;
        } else {
          auto* m = static_cast<amqp_basic_nack_t*>(
            frame.payload.method.decoded);
          tag = m->delivery_tag;
          multiple = m->multiple != 0;
          ++nacked_;
        }
        confirmed_ = multiple ? std::max(confirmed_, tag) : confirmed_ + 1;
      } else if (auto err = conn_.on_close_method(frame)) {
        return err;
      }
      amqp_maybe_release_buffers(conn_.native());
    }
  }

  amqp_connection& conn_;
  std::string queue_;
  const bench_amqp_ceiling_options& opts_;
  uint64_t published_ = 0;
  uint64_t confirmed_ = 0;
  size_t nacked_ = 0;
};

/// Consumes `count` deliveries, acknowledging with multiple acks.
caf::error consume(amqp_connection& conn,
                   const bench_amqp_ceiling_options& opts, size_t count,
                   latency_log& log, std::atomic<bool>& stop) {
  auto* st = conn.native();
  size_t received = 0;
  size_t unacked = 0;
  uint64_t last_tag = 0;
  auto flush_acks = [&]() -> caf::error {
    if (unacked == 0)
      return {};
    if (auto rc = amqp_basic_ack(st, amqp_connection::work_channel, last_tag,
                                 1);
        rc != AMQP_STATUS_OK)
      return conn.fail(rc, "basic.ack");
    unacked = 0;
    return {};
  };
  while (received < count && !stop.load(std::memory_order_relaxed)) {
    amqp_frame_t frame;
    // Take what already arrived; when nothing did, acknowledge what we
    // have before blocking for more.
    auto got = conn.next_frame(frame, steady::now());
    if (got && !*got) {
      if (auto err = flush_acks())
        return err;
      got = conn.next_frame(frame, steady::now() + io_timeout);
      if (got && !*got)
        return caf::make_error(errc::timeout, "no delivery for 10 s");
    }
    if (!got)
      return got.error();
    if (frame.frame_type != AMQP_FRAME_METHOD)
      continue;
    if (frame.payload.method.id != AMQP_BASIC_DELIVER_METHOD) {
      if (auto err = conn.on_close_method(frame))
        return err;
      continue;
    }
    last_tag = static_cast<amqp_basic_deliver_t*>(frame.payload.method.decoded)
                 ->delivery_tag;
    amqp_message_t msg;
    if (auto err = conn.read_content(amqp_connection::work_channel, msg))
      return err;
    if (msg.body.len >= sizeof(int64_t) && log.next < log.samples.size()) {
      int64_t sent = 0;
      std::memcpy(&sent, msg.body.bytes, sizeof(sent));
      log.samples[log.next++] = now_unix_us() - sent;
    }
    amqp_destroy_message(&msg);
    amqp_maybe_release_buffers(st);
    ++received;
    if (++unacked >= opts.ack_batch)
      if (auto err = flush_acks())
        return err;
  }
  return flush_acks();
}

} // namespace

int bench_amqp_ceiling_command(const config& cfg,
                               const bench_amqp_ceiling_options& opts) {
  auto url = opts.broker_url.empty() ? cfg.get_string("broker.url")
                                     : opts.broker_url;
  auto fail = [](const std::string& what) {
    std::cerr << "vigil bench amqp-ceiling: " << what << "\n";
    return 1;
  };
  auto ep = parse_amqp_url(url);
  if (!ep)
    return fail(error_text(ep.error()));
  ep->prefetch = static_cast<uint16_t>(
    std::clamp<size_t>(opts.prefetch, 1, 65535));
  auto pub_conn = amqp_connection::connect(*ep, io_timeout);
  if (!pub_conn)
    return fail(error_text(pub_conn.error()));
  auto sub_conn = amqp_connection::connect(*ep, io_timeout);
  if (!sub_conn)
    return fail(error_text(sub_conn.error()));

  // The message: vigil's task message size, either with vigil's own
  // properties or with a bare delivery mode and a padded body.
  auto sample = sample_task_message();
  amqp_arena arena;
  amqp_basic_properties_t task_props;
  make_amqp_properties(sample, arena, task_props);
  drop_null_headers(task_props); // as vigil's publish sends them
  auto task_size = encoded_properties_size(task_props) + sample.body.size();
  auto size = opts.size > 0 ? opts.size : task_size;
  amqp_basic_properties_t props{};
  if (opts.task_headers) {
    props = task_props;
  } else {
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
  }
  auto props_size = encoded_properties_size(props);
  std::string body(std::max(sizeof(int64_t),
                            size > props_size ? size - props_size : 0),
                   'x');

  // A fresh durable queue per run; deleted at the end.
  auto queue = "vigil.ceiling." + new_uuid4().substr(0, 8);
  if (auto err = sub_conn->declare_plain_queue(queue))
    return fail(error_text(err));
  if (auto err = sub_conn->set_prefetch(false))
    return fail(error_text(err));
  amqp_basic_consume(sub_conn->native(), amqp_connection::work_channel,
                     bytes_of(queue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  if (auto err = sub_conn->check_rpc(amqp_connection::work_channel,
                                     "basic.consume"))
    return fail(error_text(err));

  latency_log log;
  log.samples.assign(opts.messages, 0);
  std::atomic<bool> stop{false};
  caf::error consume_err;
  auto cpu0 = cpu_seconds();
  auto start = steady::now();
  std::thread consumer{[&] {
    consume_err = consume(*sub_conn, opts, opts.messages, log, stop);
    if (consume_err)
      stop = true;
  }};
  publisher pub{*pub_conn, queue, opts};
  auto pub_err = pub.run(props, body, opts.messages);
  auto published_at = steady::now();
  if (pub_err)
    stop = true;
  consumer.join();
  auto end = steady::now();
  auto cpu = cpu_seconds() - cpu0;
  if (auto err = pub_conn->delete_queue(queue))
    spdlog::warn("could not delete queue {}: {}", queue, error_text(err));
  if (pub_err)
    return fail("publish failed: " + error_text(pub_err));
  if (consume_err)
    return fail("consume failed: " + error_text(consume_err));

  auto done = log.next;
  double secs = std::chrono::duration<double>(end - start).count();
  double pub_secs = std::chrono::duration<double>(published_at - start).count();
  log.samples.resize(done);
  auto p50 = percentile_ms(log.samples, 0.50);
  auto p99 = percentile_ms(log.samples, 0.99);
  auto max = percentile_ms(log.samples, 1.0);
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  double pub_rate = pub_secs > 0 ? static_cast<double>(opts.messages) / pub_secs
                                 : 0;
  double cpu_us = done > 0 ? 1e6 * cpu / static_cast<double>(done) : 0;
  if (opts.json) {
    std::cout << fmt::format(
      R"({{"scenario": "amqp-ceiling", "broker": "{}", "count": {}, )"
      R"("completed": {}, "concurrency": 1, "seconds": {:.3f}, )"
      R"("throughput_per_s": {:.0f}, "publish_per_s": {:.0f}, )"
      R"("p50_ms": {:.3f}, "p99_ms": {:.3f}, "max_ms": {:.3f}, )"
      R"("message_bytes": {}, "task_message_bytes": {}, "task_headers": {}, )"
      R"("confirm_batch": {}, "confirm_window": {}, "prefetch": {}, )"
      R"("ack_batch": {}, "cork": {}, "client_cpu_us_per_msg": {:.1f}}})",
      mask_url(url), opts.messages, done, secs, rate, pub_rate, p50, p99, max,
      props_size + body.size(), task_size, opts.task_headers,
      opts.confirm_batch, opts.confirm_window, ep->prefetch, opts.ack_batch,
      opts.cork, cpu_us)
              << std::endl;
  } else {
    std::cout << fmt::format(
      "amqp ceiling on {}: {} of {} messages ({} bytes) published with "
      "confirms, consumed and acked in {:.3f} s = {:.0f} msgs/s (publish "
      "{:.0f}/s); latency p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms; "
      "client CPU {:.1f} us/msg\n",
      mask_url(url), done, opts.messages, props_size + body.size(), secs,
      rate, pub_rate, p50, p99, max, cpu_us);
  }
  return done == opts.messages ? 0 : 1;
}

} // namespace vigil
