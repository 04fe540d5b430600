#include "actors/backends/hyperloglog.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace vigil {

namespace {

// Redis's constants: the seed of PFADD's hash, the bits left for the run
// length once the register index is taken, and the asymptotic alpha.
constexpr uint64_t redis_hll_seed = 0xadc83b19ULL;
constexpr int run_bits = 64 - hyperloglog::precision; // Redis's HLL_Q
constexpr double alpha_inf = 0.721347520444481703680;

// sigma and tau of Ertl's estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), iterated to convergence.
double sigma(double x) {
  if (x == 1.0)
    return INFINITY;
  double y = 1.0;
  double z = x;
  double previous = 0;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (previous != z);
  return z;
}

double tau(double x) {
  if (x == 0.0 || x == 1.0)
    return 0.0;
  double y = 1.0;
  double z = 1.0 - x;
  double previous = 0;
  do {
    x = std::sqrt(x);
    previous = z;
    y *= 0.5;
    z -= std::pow(1.0 - x, 2) * y;
  } while (previous != z);
  return z / 3.0;
}

} // namespace

uint64_t murmur_hash64a(std::string_view data, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  uint64_t h = seed ^ (static_cast<uint64_t>(data.size()) * m);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t blocks = data.size() / 8;
  for (size_t i = 0; i < blocks; ++i, p += 8) {
    uint64_t k = 0;
    for (int b = 7; b >= 0; --b)
      k = (k << 8) | p[b]; // little-endian, as Redis reads on x86
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  size_t tail = data.size() & 7;
  if (tail > 0) {
    for (size_t b = tail; b-- > 0;)
      h ^= static_cast<uint64_t>(p[b]) << (8 * b);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

hyperloglog::hyperloglog(const hyperloglog& other)
  : sparse_(other.sparse_),
    dense_(other.dense_ ? std::make_unique<dense_registers>(*other.dense_)
                        : nullptr) {
}

hyperloglog& hyperloglog::operator=(const hyperloglog& other) {
  if (this != &other) {
    sparse_ = other.sparse_;
    dense_ = other.dense_ ? std::make_unique<dense_registers>(*other.dense_)
                          : nullptr;
  }
  return *this;
}

bool hyperloglog::add(std::string_view element) {
  uint64_t hash = murmur_hash64a(element, redis_hll_seed);
  auto index = static_cast<uint16_t>(hash & (registers - 1));
  // The run length of zeros after the index bits, plus one; the guard bit
  // bounds it at run_bits + 1 as in Redis.
  uint64_t rest = (hash >> precision) | (uint64_t{1} << run_bits);
  auto run = static_cast<uint8_t>(std::countr_zero(rest) + 1);
  return raise(index, run);
}

bool hyperloglog::raise(uint16_t index, uint8_t run) {
  if (dense_) {
    auto& r = (*dense_)[index];
    if (run <= r)
      return false;
    r = run;
    return true;
  }
  auto it = std::lower_bound(
    sparse_.begin(), sparse_.end(), index,
    [](const auto& entry, uint16_t i) { return entry.first < i; });
  if (it != sparse_.end() && it->first == index) {
    if (run <= it->second)
      return false;
    it->second = run;
    return true;
  }
  sparse_.insert(it, {index, run});
  if (sparse_.size() > max_sparse)
    make_dense();
  return true;
}

void hyperloglog::make_dense() {
  dense_ = std::make_unique<dense_registers>();
  dense_->fill(0);
  for (auto [index, run] : sparse_)
    (*dense_)[index] = run;
  sparse_.clear();
  sparse_.shrink_to_fit();
}

uint64_t hyperloglog::count() const {
  int histogram[64] = {0};
  if (dense_) {
    for (auto r : *dense_)
      ++histogram[r];
  } else {
    histogram[0] = registers - static_cast<int>(sparse_.size());
    for (auto [_, run] : sparse_)
      ++histogram[run];
  }
  double m = registers;
  double z = m * tau((m - histogram[run_bits + 1]) / m);
  for (int j = run_bits; j >= 1; --j) {
    z += histogram[j];
    z *= 0.5;
  }
  z += m * sigma(histogram[0] / m);
  return static_cast<uint64_t>(std::llround(alpha_inf * m * m / z));
}

void hyperloglog::merge(const hyperloglog& other) {
  if (other.dense_) {
    if (!dense_)
      make_dense();
    for (size_t i = 0; i < registers; ++i)
      (*dense_)[i] = std::max((*dense_)[i], (*other.dense_)[i]);
    return;
  }
  for (auto [index, run] : other.sparse_)
    raise(index, run);
}

bool hyperloglog::empty() const {
  if (!dense_)
    return sparse_.empty();
  return std::all_of(dense_->begin(), dense_->end(),
                     [](uint8_t r) { return r == 0; });
}

size_t hyperloglog::memory_bytes() const {
  return dense_ ? sizeof(dense_registers)
                : sparse_.capacity() * sizeof(sparse_[0]);
}

} // namespace vigil
