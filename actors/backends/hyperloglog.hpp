#pragma once

// Distinct counts for the in-process TSDB, answering as Redis's PFADD /
// PFCOUNT / PFMERGE do for the same elements: 2^14 six-bit registers,
// MurmurHash64A with Redis's seed, and Redis's estimator (Ertl's improved
// raw estimate, Redis 5 and later). The memory and Redis backends thus
// give the same figures, not only figures within the same error bound
// (0.81 %), which the contract suite checks against a real redis-server.

#include <array>
#include <cstdint>
#include <string_view>

namespace vigil {

/// One HyperLogLog of Redis's precision. 16 KiB of registers, one byte
/// each (Redis packs them in six bits; the values are the same).
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

private:
  std::array<uint8_t, registers> registers_{};
};

/// Redis's MurmurHash64A of `data` (the 64-bit variant by Austin Appleby,
/// little-endian reads, seed as given): the hash PFADD uses.
uint64_t murmur_hash64a(std::string_view data, uint64_t seed);

} // namespace vigil
