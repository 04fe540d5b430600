#include "bench/bench_amqp_ceiling.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>
#include <variant>
#include <vector>

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "adapters/amqp.hpp"
#include "adapters/amqp_message.hpp"
#include "adapters/amqp_properties.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

constexpr auto io_timeout = std::chrono::seconds{10};

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
/// after the class id, weight and body size).
size_t encoded_properties_size(const amqp_properties& p) {
  return encode_amqp_properties(p).size();
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

  caf::error run(const amqp_properties& props, std::string body,
                 size_t count) {
    size_t sent = 0;
    while (sent < count) {
      auto n = std::min(opts_.confirm_batch, count - sent);
      auto now = now_unix_us();
      std::memcpy(body.data(), &now, sizeof(now));
      // Full TCP segments while publishing, as vigil's publish sends them.
      conn_.cork(opts_.cork);
      for (size_t i = 0; i < n; ++i) {
        if (auto err = conn_.publish("", queue_, props, body, false))
          return err;
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
  // Reads events until at most `left` confirms are outstanding (SIZE_MAX:
  // only what already arrived) or `deadline` passes.
  caf::error read_confirms(steady::time_point deadline, size_t left) {
    for (;;) {
      if (left != SIZE_MAX && published_ - confirmed_ <= left)
        return {};
      auto got = conn_.next_event(deadline);
      if (!got)
        return got.error();
      if (!*got) {
        if (left == SIZE_MAX)
          return {};
        return caf::make_error(errc::timeout, "no publisher confirm in time");
      }
      if (auto* c = std::get_if<amqp_confirm>(&**got)) {
        if (c->nack)
          ++nacked_;
        confirmed_ = c->multiple ? std::max(confirmed_, c->delivery_tag)
                                 : confirmed_ + 1;
      }
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
  size_t received = 0;
  size_t unacked = 0;
  uint64_t last_tag = 0;
  auto flush_acks = [&]() -> caf::error {
    if (unacked == 0)
      return {};
    if (auto err = conn.ack(amqp_connection::work_channel, last_tag, true))
      return err;
    unacked = 0;
    return {};
  };
  while (received < count && !stop.load(std::memory_order_relaxed)) {
    // Take what already arrived; when nothing did, acknowledge what we
    // have before blocking for more.
    auto got = conn.next_event(steady::now());
    if (got && !*got) {
      if (auto err = flush_acks())
        return err;
      got = conn.next_event(steady::now() + io_timeout);
      if (got && !*got)
        return caf::make_error(errc::timeout, "no delivery for 10 s");
    }
    if (!got)
      return got.error();
    auto* d = std::get_if<amqp_delivery>(&**got);
    if (d == nullptr)
      continue;
    last_tag = d->delivery_tag;
    if (d->body.size() >= sizeof(int64_t) && log.next < log.samples.size()) {
      int64_t sent = 0;
      std::memcpy(&sent, d->body.data(), sizeof(sent));
      log.samples[log.next++] = now_unix_us() - sent;
    }
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
  // As vigil's publish sends them.
  auto task_props = make_amqp_properties(sample, null_headers::drop);
  auto task_size = encoded_properties_size(task_props) + sample.body.size();
  auto size = opts.size > 0 ? opts.size : task_size;
  amqp_properties props;
  if (opts.task_headers)
    props = task_props;
  else
    props.delivery_mode = 2;
  auto props_size = encoded_properties_size(props);
  std::string body(std::max(sizeof(int64_t),
                            size > props_size ? size - props_size : 0),
                   'x');

  // A fresh durable queue per run; deleted at the end.
  auto queue = "vigil.ceiling." + new_uuid4().substr(0, 8);
  if (auto n = sub_conn->declare_queue(queue); !n)
    return fail(error_text(n.error()));
  if (auto err = sub_conn->set_prefetch(false))
    return fail(error_text(err));
  if (auto tag = sub_conn->consume(queue); !tag)
    return fail(error_text(tag.error()));

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
