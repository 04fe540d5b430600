// `vigil inspect`'s live view, like `top`: every node's actors with their
// mailbox, throughput and errors, refreshed every --interval; keys sort,
// pick a node and open one actor's detail. ANSI escapes on a raw tty
// (termios): no curses.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli/inspect_commands.hpp"
#include "messages/clock.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

using json = nlohmann::json;

/// Puts the terminal in raw mode for the view's lifetime (and back).
class raw_terminal {
public:
  raw_terminal() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0)
      return;
    auto raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    ok_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
    // The alternate screen, cursor hidden.
    std::cout << "\x1b[?1049h\x1b[?25l" << std::flush;
  }

  ~raw_terminal() {
    std::cout << "\x1b[?25h\x1b[?1049l" << std::flush;
    if (ok_)
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }

  bool ok() const { return ok_; }

private:
  termios saved_{};
  bool ok_ = false;
};

enum class sort_key { mailbox, rate, errors };

const char* sort_name(sort_key k) {
  switch (k) {
    case sort_key::mailbox: return "mailbox";
    case sort_key::rate: return "rate";
    case sort_key::errors: return "errors";
  }
  return "?";
}

/// One actor row of the table.
struct row {
  std::string node;
  const json* actor = nullptr;
  double rate = 0;
  bool rate_known = false;
};

std::string str(const json& j, const char* key) {
  auto i = j.find(key);
  if (i == j.end() || i->is_null())
    return "";
  if (i->is_string())
    return i->get<std::string>();
  return i->dump();
}

uint64_t num(const json& j, const char* key) {
  auto i = j.find(key);
  return i != j.end() && i->is_number_unsigned() ? i->get<uint64_t>() : 0;
}

std::string node_id(const json& snap) {
  auto n = snap.find("node");
  return n != snap.end() && n->is_object() ? str(*n, "id") : "?";
}

std::string fit(std::string s, size_t width) {
  if (s.size() > width)
    s = s.substr(0, width > 1 ? width - 1 : 0) + (width > 0 ? "~" : "");
  return s + std::string(width - std::min(width, s.size()), ' ');
}

std::string rfit(const std::string& s, size_t width) {
  if (s.size() >= width)
    return s.substr(0, width);
  return std::string(width - s.size(), ' ') + s;
}

class top_view {
public:
  top_view(snapshot_source& source, double interval)
    : source_(source), interval_(interval) {
    // nop
  }

  int run() {
    refresh();
    draw();
    auto next = now_unix_seconds() + interval_;
    for (;;) {
      auto wait = std::max(0.0, next - now_unix_seconds());
      pollfd p{STDIN_FILENO, POLLIN, 0};
      auto n = ::poll(&p, 1, static_cast<int>(wait * 1000));
      if (n > 0) {
        char buf[64];
        auto got = ::read(STDIN_FILENO, buf, sizeof buf);
        for (ssize_t i = 0; i < got; ++i)
          if (!key(buf, i, got))
            return 0;
        draw();
        continue;
      }
      refresh();
      draw();
      next = now_unix_seconds() + interval_;
    }
  }

private:
  /// Handles the key at buf[i] (advancing `i` past an escape sequence);
  /// false to quit.
  bool key(const char* buf, ssize_t& i, ssize_t n) {
    char c = buf[i];
    if (c == '\x1b') {
      if (i + 2 < n && buf[i + 1] == '[') {
        char k = buf[i + 2];
        i += 2;
        if (k == 'A')
          move(-1);
        else if (k == 'B')
          move(1);
        return true;
      }
      detail_ = false; // Esc alone: back to the table
      return true;
    }
    switch (c) {
      case 'q': case 'Q': case 3: return false;
      case 'm': sort_ = sort_key::mailbox; break;
      case 'r': sort_ = sort_key::rate; break;
      case 'e': sort_ = sort_key::errors; break;
      case 'n': pick(node_ + 1 >= static_cast<int>(nodes_.size()) ? -1 : node_ + 1); break;
      case 'a': case '0': pick(-1); break;
      case 'j': move(1); break;
      case 'k': move(-1); break;
      case '\r': case '\n': detail_ = !rows_.empty(); break;
      case 'b': case 127: case 8: detail_ = false; break;
      default:
        if (c >= '1' && c <= '9'
            && c - '1' < static_cast<int>(nodes_.size()))
          pick(c - '1');
    }
    return true;
  }

  void pick(int node) {
    node_ = node;
    selected_ = 0;
    detail_ = false;
  }

  void move(int by) {
    selected_ = std::clamp<int>(selected_ + by, 0,
                                std::max<int>(0, static_cast<int>(rows_.size()) - 1));
  }

  void refresh() {
    auto fresh = source_.fetch();
    std::map<std::string, std::pair<uint64_t, double>> seen;
    for (auto& snap : fresh) {
      auto id = node_id(snap);
      double t = snap.value("time", 0.0);
      if (auto a = snap.find("actors"); a != snap.end() && a->is_array())
        for (auto& actor : *a)
          if (actor.value("answering", false))
            seen[id + "/" + str(actor, "id")] = {num(actor, "processed"), t};
    }
    rates_.clear();
    for (auto& [k, v] : seen)
      if (auto p = last_.find(k);
          p != last_.end() && v.second > p->second.second
          && v.first >= p->second.first)
        rates_[k] = static_cast<double>(v.first - p->second.first)
                    / (v.second - p->second.second);
    last_ = std::move(seen);
    nodes_ = std::move(fresh);
    if (node_ >= static_cast<int>(nodes_.size()))
      node_ = -1;
  }

  void build_rows() {
    rows_.clear();
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (node_ >= 0 && static_cast<int>(i) != node_)
        continue;
      auto id = node_id(nodes_[i]);
      if (auto a = nodes_[i].find("actors"); a != nodes_[i].end() && a->is_array())
        for (auto& actor : *a) {
          row r{id, &actor};
          if (auto x = rates_.find(id + "/" + str(actor, "id")); x != rates_.end()) {
            r.rate = x->second;
            r.rate_known = true;
          }
          rows_.push_back(r);
        }
    }
    auto k = sort_;
    std::stable_sort(rows_.begin(), rows_.end(), [k](const row& x, const row& y) {
      switch (k) {
        case sort_key::mailbox:
          return num(*x.actor, "mailbox") > num(*y.actor, "mailbox");
        case sort_key::rate: return x.rate > y.rate;
        case sort_key::errors:
          return num(*x.actor, "errors") > num(*y.actor, "errors");
      }
      return false;
    });
    move(0);
  }

  void draw() {
    build_rows();
    winsize ws{};
    size_t width = 120, height = 40;
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      width = ws.ws_col;
      height = ws.ws_row;
    }
    std::vector<std::string> lines;
    std::ostringstream head;
    head << "vigil inspect  " << nodes_.size() << " node"
         << (nodes_.size() == 1 ? "" : "s") << "  showing "
         << (node_ < 0 ? std::string{"all"} : node_id(nodes_[node_]))
         << "  sort: " << sort_name(sort_) << "  every " << interval_ << " s";
    lines.push_back("\x1b[1m" + fit(head.str(), width) + "\x1b[0m");
    lines.push_back(fit("keys: m mailbox  r rate  e errors  n/1-9 node  a all"
                        "  j/k move  Enter detail  q quit", width));
    for (size_t i = 0; i < nodes_.size(); ++i)
      lines.push_back(fit(node_line(i), width));
    lines.push_back("");
    if (detail_ && !rows_.empty())
      detail_lines(rows_[selected_], width, lines);
    else
      table_lines(width, height, lines);
    std::string out = "\x1b[H";
    for (size_t i = 0; i < lines.size() && i < height; ++i)
      out += lines[i] + "\x1b[K\r\n";
    out += "\x1b[J";
    std::cout << out << std::flush;
  }

  std::string node_line(size_t i) {
    auto& snap = nodes_[i];
    std::ostringstream l;
    l << (static_cast<int>(i) == node_ ? "*" : " ") << (i + 1) << " "
      << node_id(snap);
    auto n = snap.find("node");
    if (n != snap.end() && n->is_object())
      l << "  " << str(*n, "mode") << "  " << str(*n, "inspect");
    if (!snap.value("reachable", true)) {
      l << "  UNREACHABLE: " << str(snap, "error");
      return l.str();
    }
    if (auto q = snap.find("queues"); q != snap.end() && q->is_array())
      for (auto& x : *q)
        l << "  " << str(x, "name") << " " << num(x, "ready") << "/"
          << num(x, "unacked");
    if (auto d = snap.find("dead_letters"); d != snap.end() && d->is_object())
      l << "  dead " << num(*d, "count");
    if (auto b = snap.find("buffer"); b != snap.end() && b->is_object())
      l << "  buffer " << num(*b, "pending_keys");
    if (auto c = snap.find("cron"); c != snap.end() && c->is_object())
      l << "  cron lock " << (str(*c, "lock_holder").empty()
                                ? std::string{"-"}
                                : str(*c, "lock_holder"));
    return l.str();
  }

  void table_lines(size_t width, size_t height, std::vector<std::string>& lines) {
    auto header = " " + fit("NODE", 22) + " " + fit("SERVICE", 10) + " "
                  + rfit("ID", 5) + " " + fit("NAME", 18) + " " + fit("ANS", 3)
                  + " " + rfit("MAILBOX", 8) + " " + rfit("PROCESSED", 10) + " "
                  + rfit("RATE/s", 8) + " " + rfit("ERRORS", 7) + " "
                  + rfit("RESTART", 7) + "  LAST ERROR";
    lines.push_back("\x1b[7m" + fit(header, width) + "\x1b[0m");
    auto room = height > lines.size() + 1 ? height - lines.size() - 1 : 1;
    size_t first = selected_ >= static_cast<int>(room)
                     ? static_cast<size_t>(selected_) - room + 1
                     : 0;
    for (size_t i = first; i < rows_.size() && i < first + room; ++i) {
      auto& r = rows_[i];
      auto& a = *r.actor;
      bool answering = a.value("answering", false);
      std::ostringstream rate;
      if (r.rate_known)
        rate << std::fixed << std::setprecision(1) << r.rate;
      else
        rate << "-";
      bool sel = static_cast<int>(i) == selected_;
      auto line = (sel ? ">" : " ") + fit(r.node, 22) + " " + fit(str(a, "service"), 10) + " "
                  + rfit(str(a, "id"), 5) + " "
                  + fit(str(a, "name").empty() ? "?" : str(a, "name"), 18) + " "
                  + fit(answering ? "yes" : "NO", 3) + " "
                  + rfit(answering ? str(a, "mailbox") : "-", 8) + " "
                  + rfit(answering ? str(a, "processed") : "-", 10) + " "
                  + rfit(rate.str(), 8) + " "
                  + rfit(answering ? str(a, "errors") : "-", 7) + " "
                  + rfit(str(a, "restarts"), 7) + "  " + str(a, "last_error");
      line = fit(line, width);
      if (sel)
        line = "\x1b[1m" + line + "\x1b[0m";
      lines.push_back(line);
    }
    if (rows_.empty())
      lines.push_back("(no actors)");
  }

  void detail_lines(const row& r, size_t width, std::vector<std::string>& lines) {
    auto& a = *r.actor;
    lines.push_back("\x1b[1m" + fit("actor " + str(a, "name") + " (id "
                                      + str(a, "id") + ") on " + r.node
                                      + "   Esc/b back", width)
                    + "\x1b[0m");
    for (auto key : {"service", "answering", "mailbox", "processed", "errors",
                     "restarts", "last_error"})
      lines.push_back(fit("  " + std::string{key} + ": " + str(a, key), width));
    if (r.rate_known) {
      std::ostringstream s;
      s << std::fixed << std::setprecision(2) << r.rate;
      lines.push_back("  rate: " + s.str() + " /s");
    }
    if (auto x = a.find("extra"); x != a.end() && x->is_object())
      for (auto& [k, v] : x->items())
        lines.push_back(fit("  " + k + ": "
                              + (v.is_string() ? v.get<std::string>() : dump_json(v)),
                            width));
  }

  snapshot_source& source_;
  double interval_;
  std::vector<json> nodes_;
  std::map<std::string, std::pair<uint64_t, double>> last_;
  std::map<std::string, double> rates_;
  std::vector<row> rows_;
  sort_key sort_ = sort_key::mailbox;
  int node_ = -1;
  int selected_ = 0;
  bool detail_ = false;
};

} // namespace

int inspect_top(snapshot_source& source, double interval) {
  if (!::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO)) {
    std::cerr << "vigil inspect: the live view needs a terminal; use "
                 "--json for scripts\n";
    return 2;
  }
  if (interval < 0.2)
    interval = 0.2;
  raw_terminal term;
  if (!term.ok()) {
    std::cerr << "vigil inspect: cannot put the terminal in raw mode\n";
    return 1;
  }
  return top_view{source, interval}.run();
}

} // namespace vigil
