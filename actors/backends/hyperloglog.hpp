#pragma once

// Distinct counts for the in-process TSDB, answering as Redis's PFADD /
// PFCOUNT / PFMERGE do for the same elements: 2^14 six-bit registers,
// MurmurHash64A with Redis's seed, and Redis's estimator (Ertl's improved
// raw estimate, Redis 5 and later). The memory and Redis backends thus
// give the same figures, not only figures within the same error bound
// (0.81 %), which the contract suite checks against a real redis-server.

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

/// One HyperLogLog of Redis's precision. Like Redis, it starts sparse (the
/// registers that are set, in index order) and turns dense (16 KiB, one
/// byte per register) once that list would be larger than a few KiB: a
/// TSDB keeps one per group and bucket, and most count a handful of users.
class hyperloglog {
public:
  /// Number of registers (Redis's HLL_REGISTERS, precision 14).
  static constexpr int precision = 14;
  static constexpr int registers = 1 << precision;

  /// Adds `element`; true if a register changed (PFADD's answer, as far as
  /// the estimate can change).
  bool add(std::string_view element);

  /// The estimated number of distinct elements added (PFCOUNT).
  uint64_t count() const;

  /// Takes the register-wise maximum of `other` (PFMERGE; PFCOUNT of
  /// several keys counts their union this way).
  void merge(const hyperloglog& other);

  /// True if nothing was added.
  bool empty() const;

  /// Bytes held for the registers (for the memory backend's figures).
  size_t memory_bytes() const;

  hyperloglog() = default;
  hyperloglog(const hyperloglog& other);
  hyperloglog& operator=(const hyperloglog& other);
  hyperloglog(hyperloglog&&) noexcept = default;
  hyperloglog& operator=(hyperloglog&&) noexcept = default;

private:
  /// Sparse entries beyond which the registers turn dense (about 2 KiB).
  static constexpr size_t max_sparse = 1024;

  using dense_registers = std::array<uint8_t, registers>;

  /// Register `index` -> at least `run`; true if it grew.
  bool raise(uint16_t index, uint8_t run);
  void make_dense();

  /// Set registers, ascending by index, while dense_ is null.
  std::vector<std::pair<uint16_t, uint8_t>> sparse_;
  std::unique_ptr<dense_registers> dense_;
};

/// Redis's MurmurHash64A of `data` (the 64-bit variant by Austin Appleby,
/// little-endian reads, seed as given): the hash PFADD uses.
uint64_t murmur_hash64a(std::string_view data, uint64_t seed);

} // namespace vigil
