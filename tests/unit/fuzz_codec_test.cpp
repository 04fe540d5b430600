// Deterministic fuzzing of the decoders: random input, mutated valid
// documents and random round trips. Fixed seeds keep failures reproducible;
// the project also runs this under AddressSanitizer and UBSan.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "messages/json_string.hpp"
#include "messages/base64.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

using namespace vigil;

namespace {

using rng_t = std::mt19937_64;

size_t below(rng_t& rng, size_t n) {
  return static_cast<size_t>(rng() % n);
}

bool coin(rng_t& rng, size_t one_in) {
  return below(rng, one_in) == 0;
}

std::string to_hex(std::string_view bytes) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

/// Bytes that steer the msgpack and JSON decoders into interesting paths:
/// type tags with big declared lengths, JSON punctuation, UTF-8 leads.
constexpr unsigned char interesting[] = {
  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3,
  0xc4, 0xc5, 0xc6, 0xc7, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd9,
  0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xed, 0xf0, 0xf4, 0xff, '[',
  ']',  '{',  '}',  '"',  ':',  ',',  '\\', 'u',  '0',  '1',  '-',  'e',
  '.',  't',  'n',  '=',  'A',  '+',  '/',  ' ',
};

unsigned char random_byte(rng_t& rng) {
  if (coin(rng, 2))
    return interesting[below(rng, sizeof(interesting))];
  return static_cast<unsigned char>(rng());
}

/// Runs all three decoders on `input` and checks the contract: no crash, a
/// value or an error with a code and a text, and canonical re-encoding.
/// Returns false (after reporting) on a violation.
bool exercise(std::string_view input) {
  auto check_error = [&](const caf::error& err, const char* who) {
    auto code = static_cast<errc>(err.code());
    if (err && (code == errc::malformed || code == errc::too_large)
        && !error_text(err).empty())
      return true;
    FAIL_CHECK(who << " returned a bad error for " << to_hex(input));
    return false;
  };
  bool ok = true;
  if (auto x = decode_msgpack(input); x) {
    // Whatever decodes must survive encode -> decode unchanged.
    auto again = decode_msgpack(encode_msgpack(*x));
    if (!again || !(*again == *x)) {
      FAIL_CHECK("msgpack re-encoding differs for " << to_hex(input));
      ok = false;
    }
    (void) to_repr(*x, 64);
  } else {
    ok &= check_error(x.error(), "decode_msgpack");
  }
  if (auto x = decode_json(input); x) {
    auto again = decode_json(encode_json(*x));
    if (!again || !(*again == *x)) {
      FAIL_CHECK("JSON re-encoding differs for " << to_hex(input));
      ok = false;
    }
  } else {
    ok &= check_error(x.error(), "decode_json");
  }
  if (auto x = base64_decode(input); x) {
    if (x->size() > input.size()) {
      FAIL_CHECK("base64 output larger than input for " << to_hex(input));
      ok = false;
    }
  } else {
    ok &= check_error(x.error(), "base64_decode");
  }
  return ok;
}

// -- random values ------------------------------------------------------------

/// Appends one random code point as UTF-8, biased to edge cases.
void append_code_point(rng_t& rng, std::string& out) {
  uint32_t cp = 0;
  switch (below(rng, 6)) {
    case 0: cp = static_cast<uint32_t>(below(rng, 0x20)); break; // controls
    case 1: cp = "\"\\'/ u"[below(rng, 6)]; break;
    case 2: cp = static_cast<uint32_t>(0x80 + below(rng, 0x780)); break;
    case 3:
      cp = static_cast<uint32_t>(0x800 + below(rng, 0xF800));
      if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
      break;
    case 4: cp = static_cast<uint32_t>(0x10000 + below(rng, 0x100000)); break;
    default: cp = static_cast<uint32_t>(0x20 + below(rng, 0x5F)); break;
  }
  append_utf8(out, cp);
}

std::string random_text(rng_t& rng) {
  std::string out;
  // Mostly short, sometimes past the fixstr and str8 boundaries.
  size_t n = coin(rng, 20) ? below(rng, 300) : below(rng, 12);
  for (size_t i = 0; i < n; ++i)
    append_code_point(rng, out);
  return out;
}

int64_t random_int(rng_t& rng) {
  static constexpr int64_t edges[] = {
    0,      1,      127,    128,         255,         256,
    65535,  65536,  -1,     -32,         -33,         -128,
    -129,   -32768, -32769, 4294967295LL, 4294967296LL, -2147483648LL,
    -2147483649LL, std::numeric_limits<int64_t>::max(),
    std::numeric_limits<int64_t>::min(),
  };
  switch (below(rng, 3)) {
    case 0: return edges[below(rng, std::size(edges))];
    case 1: return static_cast<int64_t>(below(rng, 1000)) - 500;
    default: return static_cast<int64_t>(rng());
  }
}

double random_double(rng_t& rng, bool finite_only) {
  switch (below(rng, 4)) {
    case 0: return static_cast<double>(random_int(rng)) / 8.0;
    case 1: {
      static constexpr double edges[] = {0.0, -0.0, 1.0, 0.1, 1e16, 1e-5,
                                         5e-324, 1.7976931348623157e308};
      return edges[below(rng, std::size(edges))];
    }
    default: {
      for (;;) {
        uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        if (!finite_only || std::isfinite(d))
          return d;
      }
    }
  }
}

/// A random value; `json_safe` leaves out what JSON cannot carry back
/// (binary, non-finite floats).
value random_value(rng_t& rng, size_t depth, bool json_safe) {
  size_t kinds = depth == 0 ? 7 : 9;
  switch (below(rng, kinds)) {
    case 0: return value{};
    case 1: return value{coin(rng, 2)};
    case 2: return value{random_int(rng)};
    case 3: return value{rng() | (uint64_t{1} << 63)};
    case 4: return value{random_double(rng, json_safe)};
    case 5: return value{random_text(rng)};
    case 6: {
      if (json_safe)
        return value{random_text(rng)};
      binary bin;
      size_t n = coin(rng, 20) ? below(rng, 300) : below(rng, 8);
      for (size_t i = 0; i < n; ++i)
        bin.bytes += static_cast<char>(rng());
      return value{std::move(bin)};
    }
    case 7: {
      value_array xs;
      size_t n = coin(rng, 10) ? below(rng, 40) : below(rng, 5);
      for (size_t i = 0; i < n; ++i)
        xs.push_back(random_value(rng, depth - 1, json_safe));
      return value{std::move(xs)};
    }
    default: {
      value x = value_map{};
      size_t n = coin(rng, 10) ? below(rng, 40) : below(rng, 5);
      for (size_t i = 0; i < n; ++i) {
        // set() keeps keys unique, as decoding would.
        auto key = coin(rng, 2) ? random_text(rng) : "k" + std::to_string(i);
        x.set(std::move(key), random_value(rng, depth - 1, json_safe));
      }
      return x;
    }
  }
}

// -- mutations ----------------------------------------------------------------

std::string mutate(rng_t& rng, std::string doc,
                   const std::vector<std::string>& corpus) {
  size_t rounds = 1 + below(rng, 4);
  for (size_t r = 0; r < rounds; ++r) {
    switch (below(rng, 7)) {
      case 0: // bit flip
        if (!doc.empty()) {
          auto& c = doc[below(rng, doc.size())];
          c = static_cast<char>(static_cast<unsigned char>(c)
                                ^ (1u << below(rng, 8)));
        }
        break;
      case 1: // byte insert
        doc.insert(doc.begin()
                     + static_cast<ptrdiff_t>(below(rng, doc.size() + 1)),
                   static_cast<char>(random_byte(rng)));
        break;
      case 2: // byte delete
        if (!doc.empty())
          doc.erase(below(rng, doc.size()), 1);
        break;
      case 3: // truncation
        doc.resize(below(rng, doc.size() + 1));
        break;
      case 4: { // splice a random piece of another document
        const auto& other = corpus[below(rng, corpus.size())];
        auto from = below(rng, other.size() + 1);
        auto len = below(rng, other.size() - from + 1);
        doc.insert(below(rng, doc.size() + 1), other, from, len);
        break;
      }
      case 5: // overwrite with an interesting byte
        if (!doc.empty())
          doc[below(rng, doc.size())] = static_cast<char>(
            interesting[below(rng, sizeof(interesting))]);
        break;
      default: { // duplicate a chunk
        if (doc.empty())
          break;
        auto from = below(rng, doc.size());
        auto len = below(rng, std::min<size_t>(doc.size() - from, 16) + 1);
        doc.insert(below(rng, doc.size() + 1), doc.substr(from, len));
        break;
      }
    }
  }
  return doc;
}

} // namespace

TEST_CASE("fuzz: random bytes through every decoder", "[codec][fuzz]") {
  rng_t rng{0x76696769'6c303031};
  size_t failures = 0;
  for (int i = 0; i < 20000 && failures < 10; ++i) {
    std::string input;
    auto n = below(rng, 301);
    input.reserve(n);
    for (size_t j = 0; j < n; ++j)
      input += static_cast<char>(random_byte(rng));
    failures += exercise(input) ? 0 : 1;
  }
  CHECK(failures == 0);
}

TEST_CASE("fuzz: mutated valid documents", "[codec][fuzz]") {
  rng_t rng{0x6d757461'74653031};
  std::vector<std::string> corpus;
  corpus.push_back(*base64_decode(
    "k5ICA4CEqWNhbGxiYWNrc8CoZXJyYmFja3PApWNoYWluwKVjaG9yZMA="));
  corpus.push_back(
    R"({"body": "k5ICA4CEqWNhbGxiYWNrc8CoZXJyYmFja3PApWNoYWluwKVjaG9yZMA=", )"
    R"("content-encoding": "binary", "headers": {"retries": 0, "timelimit": )"
    R"([null, null], "eta": 1.5e3, "s": "caf\u00e9 \ud83d\ude00"}})");
  corpus.push_back("Zm9vYmFy");
  for (int i = 0; i < 40; ++i) {
    auto x = random_value(rng, 4, i % 2 == 0);
    corpus.push_back(encode_msgpack(x));
    corpus.push_back(encode_json(x));
    corpus.push_back(base64_encode(encode_msgpack(x)));
  }
  size_t failures = 0;
  for (int i = 0; i < 20000 && failures < 10; ++i) {
    auto doc = mutate(rng, corpus[below(rng, corpus.size())], corpus);
    failures += exercise(doc) ? 0 : 1;
  }
  CHECK(failures == 0);
}

TEST_CASE("fuzz: random values round trip", "[codec][fuzz]") {
  rng_t rng{0x726f756e'64747270};
  size_t failures = 0;
  for (int i = 0; i < 3000 && failures < 10; ++i) {
    auto x = random_value(rng, 1 + below(rng, 5), false);
    auto packed = encode_msgpack(x);
    auto back = decode_msgpack(packed);
    if (!back || !(*back == x)) {
      FAIL_CHECK("msgpack round trip failed for " << to_repr(x, 200) << ": "
                   << (back ? "different value"
                            : error_text(back.error())));
      ++failures;
    }
    auto repr = to_repr(x, 40);
    if (repr.size() > 40) {
      FAIL_CHECK("to_repr exceeded max_len: " << repr);
      ++failures;
    }
    auto y = random_value(rng, 1 + below(rng, 5), true);
    auto text = encode_json(y);
    auto back_json = decode_json(text);
    if (!back_json || !(*back_json == y)) {
      FAIL_CHECK("JSON round trip failed for " << text << ": "
                   << (back_json ? "different value"
                                 : error_text(back_json.error())));
      ++failures;
    }
    std::string bytes = packed.substr(0, below(rng, packed.size() + 1));
    auto b64 = base64_decode(base64_encode(bytes));
    if (!b64 || *b64 != bytes) {
      FAIL_CHECK("base64 round trip failed for " << to_hex(bytes));
      ++failures;
    }
  }
  CHECK(failures == 0);
}
