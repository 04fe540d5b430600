#include "messages/metrics_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "messages/json_writer.hpp"

namespace vigil {

const std::array<double, metric_bucket_count - 1> timing_bucket_bounds = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5,   1,      2.5,   5,    10,    30,   60};

const std::array<double, metric_bucket_count - 1> distribution_bucket_bounds
  = {1,     5,     10,     50,     100,    500,     1000, 5000,
     10000, 50000, 100000, 500000, 1000000, 5000000, 10000000};

size_t metric_bucket(metric_kind kind, double value) {
  const auto& bounds = kind == metric_kind::timing ? timing_bucket_bounds
                                                   : distribution_bucket_bounds;
  // Timings arrive in milliseconds; the bounds are seconds.
  auto x = kind == metric_kind::timing ? value / 1000 : value;
  for (size_t i = 0; i < bounds.size(); ++i)
    if (x <= bounds[i])
      return i;
  return metric_bucket_count - 1;
}

bool should_sample(double rate, double random) {
  return rate >= 1 || random >= 1 - rate;
}

void observe(metric_point& p, double x, size_t max_samples, double random) {
  if (p.count == 0) {
    p.min = x;
    p.max = x;
  } else {
    p.min = std::min(p.min, x);
    p.max = std::max(p.max, x);
  }
  ++p.count;
  p.sum += x;
  p.buckets[metric_bucket(p.kind, x)] += 1;
  if (p.samples.size() < max_samples) {
    p.samples.push_back(x);
  } else if (max_samples > 0) {
    // Algorithm R: each of the `count` observations stays with chance
    // max_samples / count.
    auto j = static_cast<uint64_t>(random * static_cast<double>(p.count));
    if (j < max_samples)
      p.samples[j] = x;
  }
}

void merge_point(metric_point& into, const metric_point& x,
                 size_t max_samples) {
  switch (into.kind) {
    case metric_kind::counter:
      into.value += x.value;
      return;
    case metric_kind::gauge:
      if (x.order >= into.order) {
        into.value = x.value;
        into.order = x.order;
      }
      return;
    case metric_kind::timing:
    case metric_kind::distribution:
      break;
  }
  if (x.count == 0)
    return;
  if (into.count == 0) {
    into.min = x.min;
    into.max = x.max;
  } else {
    into.min = std::min(into.min, x.min);
    into.max = std::max(into.max, x.max);
  }
  into.count += x.count;
  into.sum += x.sum;
  for (size_t i = 0; i < metric_bucket_count; ++i)
    into.buckets[i] += x.buckets[i];
  // Both samples are uniform over their own observations; taking them in
  // turn keeps the merged one close to uniform without a random source.
  for (auto v : x.samples) {
    if (into.samples.size() >= max_samples)
      break;
    into.samples.push_back(v);
  }
}

namespace {

std::string number(double x) {
  if (!std::isfinite(x))
    return x > 0 ? "+Inf" : (x < 0 ? "-Inf" : "NaN");
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

std::string clean(std::string_view s, std::string_view bad) {
  std::string out{s};
  for (auto& c : out)
    if (bad.find(c) != std::string_view::npos || c == '\n' || c == '\r')
      c = '_';
  return out;
}

const char* statsd_type(metric_kind kind, statsd_flavor flavor) {
  switch (kind) {
    case metric_kind::counter: return "c";
    case metric_kind::gauge: return "g";
    case metric_kind::timing: return "ms";
    case metric_kind::distribution:
      return flavor == statsd_flavor::dogstatsd ? "d" : "ms";
  }
  return "c";
}

std::string tag_suffix(const metric_tags& tags, const metric_tags& constant) {
  std::string out;
  auto add = [&](const std::pair<std::string, std::string>& t) {
    out += out.empty() ? "|#" : ",";
    out += clean(t.first, ":|@#,");
    if (!t.second.empty()) {
      out += ':';
      // A value may hold ':' (DogStatsD splits at the first one).
      out += clean(t.second, "|@#,");
    }
  };
  for (auto& t : tags)
    add(t);
  for (auto& t : constant)
    add(t);
  return out;
}

} // namespace

void append_statsd_lines(std::vector<std::string>& out, const metric_point& p,
                         std::string_view prefix, statsd_flavor flavor,
                         const metric_tags& constant_tags) {
  auto name = clean(std::string{prefix} + p.key, ":|@#,");
  auto tags = flavor == statsd_flavor::dogstatsd
                ? tag_suffix(p.tags, constant_tags)
                : std::string{};
  auto type = statsd_type(p.kind, flavor);
  auto line = [&](double value, double rate) {
    auto s = name + ':' + number(value) + '|' + type;
    if (rate < 1)
      s += "|@" + number(rate);
    s += tags;
    out.push_back(std::move(s));
  };
  switch (p.kind) {
    case metric_kind::counter:
      line(p.value, p.rate);
      return;
    case metric_kind::gauge:
      if (flavor == statsd_flavor::statsd && p.value < 0)
        line(0, 1);
      line(p.value, 1);
      return;
    case metric_kind::timing:
    case metric_kind::distribution: {
      if (p.samples.empty())
        return;
      auto kept = static_cast<double>(p.samples.size())
                  / static_cast<double>(std::max<uint64_t>(p.count, 1));
      auto rate = std::min(1.0, p.rate * kept);
      for (auto v : p.samples)
        line(v, rate);
      return;
    }
  }
}

std::vector<std::string> pack_datagrams(const std::vector<std::string>& lines,
                                        size_t max_bytes) {
  std::vector<std::string> out;
  std::string cur;
  for (auto& l : lines) {
    if (!cur.empty() && cur.size() + 1 + l.size() > max_bytes) {
      out.push_back(std::move(cur));
      cur.clear();
    }
    if (!cur.empty())
      cur += '\n';
    cur += l;
  }
  if (!cur.empty())
    out.push_back(std::move(cur));
  return out;
}

namespace {

double quantile(std::vector<double> xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto i = static_cast<size_t>(q * static_cast<double>(xs.size() - 1) + 0.5);
  return xs[std::min(i, xs.size() - 1)];
}

} // namespace

std::string datadog_series_json(const std::vector<metric_point>& points,
                                std::string_view prefix,
                                const metric_tags& constant_tags, double now,
                                double interval, std::string_view host) {
  auto series = nlohmann::json::array();
  auto one = [&](const metric_point& p, std::string_view suffix,
                 std::string_view type, double value) {
    nlohmann::json s;
    s["metric"] = std::string{prefix} + p.key + std::string{suffix};
    s["type"] = type;
    s["points"] = {{static_cast<int64_t>(now), value}};
    if (type == "count")
      s["interval"] = static_cast<int64_t>(interval);
    if (!host.empty())
      s["host"] = host;
    auto tags = nlohmann::json::array();
    for (auto* ts : {&p.tags, &constant_tags})
      for (auto& [k, v] : *ts)
        tags.push_back(v.empty() ? k : k + ':' + v);
    s["tags"] = std::move(tags);
    series.push_back(std::move(s));
  };
  for (auto& p : points) {
    switch (p.kind) {
      case metric_kind::counter:
        one(p, "", "count", p.rate > 0 ? p.value / p.rate : p.value);
        break;
      case metric_kind::gauge:
        one(p, "", "gauge", p.value);
        break;
      case metric_kind::timing:
      case metric_kind::distribution:
        if (p.count == 0)
          break;
        one(p, ".avg", "gauge", p.sum / static_cast<double>(p.count));
        one(p, ".max", "gauge", p.max);
        one(p, ".median", "gauge", quantile(p.samples, 0.5));
        one(p, ".95percentile", "gauge", quantile(p.samples, 0.95));
        one(p, ".count", "count",
            static_cast<double>(p.count) / (p.rate > 0 ? p.rate : 1));
        break;
    }
  }
  nlohmann::json doc;
  doc["series"] = std::move(series);
  return dump_json(doc);
}

std::string metric_log_line(const metric_point& p, std::string_view prefix) {
  std::string out = "'" + std::string{prefix} + p.key + "': ";
  switch (p.kind) {
    case metric_kind::counter:
      out += (p.value >= 0 ? "+" : "") + number(p.value);
      if (p.rate < 1)
        out += " @" + number(p.rate);
      break;
    case metric_kind::gauge:
      out += "= " + number(p.value);
      break;
    case metric_kind::timing:
    case metric_kind::distribution:
      out += number(p.count ? p.sum / static_cast<double>(p.count) : 0);
      out += p.kind == metric_kind::timing ? " ms" : "";
      out += " (mean of " + std::to_string(p.count) + ", max "
             + number(p.max) + ")";
      break;
  }
  if (!p.tags.empty()) {
    out += " tags {";
    bool first = true;
    for (auto& [k, v] : p.tags) {
      out += (first ? "" : ", ") + k + ": " + v;
      first = false;
    }
    out += "}";
  }
  return out;
}

std::string prometheus_name(std::string_view key, bool label) {
  std::string out;
  out.reserve(key.size() + 1);
  for (auto c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || (!label && c == ':');
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9'))
    out.insert(out.begin(), '_');
  return out;
}

namespace {

std::string label_value(std::string_view v) {
  std::string out;
  for (auto c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string label_set(const metric_tags& tags) {
  if (tags.empty())
    return {};
  // Sorted and unique by name: Prometheus takes a label once.
  std::map<std::string, std::string> sorted;
  for (auto& [k, v] : tags)
    sorted.emplace(prometheus_name(k, true), v);
  std::string out = "{";
  for (auto& [k, v] : sorted) {
    if (out.size() > 1)
      out += ',';
    out += k + "=\"" + label_value(v) + '"';
  }
  return out + "}";
}

// Adds `le` to a rendered label set.
std::string with_le(const std::string& labels, const std::string& le) {
  auto item = "le=\"" + le + '"';
  if (labels.empty())
    return "{" + item + "}";
  return labels.substr(0, labels.size() - 1) + ',' + item + '}';
}

} // namespace

void prometheus_state::add(const metric_point& p, std::string_view prefix) {
  auto base = prometheus_name(std::string{prefix} + p.key);
  std::string name;
  std::string help = "vigil's " + p.key;
  switch (p.kind) {
    case metric_kind::counter:
      name = base + "_total";
      help += " (counter)";
      break;
    case metric_kind::gauge:
      name = base;
      help += " (gauge)";
      break;
    case metric_kind::timing:
      name = base + "_seconds";
      help += " (timing, seconds)";
      break;
    case metric_kind::distribution:
      name = base;
      help += " (distribution)";
      break;
  }
  auto [it, fresh] = families_.try_emplace(name);
  auto& fam = it->second;
  if (fresh) {
    fam.kind = p.kind;
    fam.help = std::move(help);
  } else if (fam.kind != p.kind) {
    ++clashes_;
    return;
  }
  auto& s = fam.series[label_set(p.tags)];
  switch (p.kind) {
    case metric_kind::counter:
      s.value += p.rate > 0 ? p.value / p.rate : p.value;
      break;
    case metric_kind::gauge:
      s.value = p.value;
      break;
    case metric_kind::timing:
    case metric_kind::distribution: {
      // Sampled calls stand for 1/rate observations each.
      auto scale = p.rate > 0 && p.rate < 1 ? 1 / p.rate : 1.0;
      auto scaled = [scale](uint64_t n) {
        return static_cast<uint64_t>(std::llround(static_cast<double>(n)
                                                  * scale));
      };
      s.count += scaled(p.count);
      auto sum = p.kind == metric_kind::timing ? p.sum / 1000 : p.sum;
      s.sum += sum * scale;
      for (size_t i = 0; i < metric_bucket_count; ++i)
        s.buckets[i] += scaled(p.buckets[i]);
      break;
    }
  }
}

std::string prometheus_state::render() const {
  std::string out;
  for (auto& [name, fam] : families_) {
    out += "# HELP " + name + ' ' + fam.help + '\n';
    switch (fam.kind) {
      case metric_kind::counter:
        out += "# TYPE " + name + " counter\n";
        break;
      case metric_kind::gauge:
        out += "# TYPE " + name + " gauge\n";
        break;
      case metric_kind::timing:
      case metric_kind::distribution:
        out += "# TYPE " + name + " histogram\n";
        break;
    }
    for (auto& [labels, s] : fam.series) {
      if (fam.kind == metric_kind::counter || fam.kind == metric_kind::gauge) {
        out += name + labels + ' ' + number(s.value) + '\n';
        continue;
      }
      const auto& bounds = fam.kind == metric_kind::timing
                             ? timing_bucket_bounds
                             : distribution_bucket_bounds;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < metric_bucket_count; ++i) {
        cumulative += s.buckets[i];
        auto le = i < bounds.size() ? number(bounds[i]) : std::string{"+Inf"};
        out += name + "_bucket" + with_le(labels, le) + ' '
               + std::to_string(cumulative) + '\n';
      }
      out += name + "_sum" + labels + ' ' + number(s.sum) + '\n';
      out += name + "_count" + labels + ' ' + std::to_string(cumulative)
             + '\n';
    }
  }
  return out;
}

} // namespace vigil
