// SplitMix64 (Steele, Lea and Flood 2014): one step of its generator, a 64-bit value from a 64-bit
// state that passes BigCrush as a sequence of x, x + 1, ... Used where a random value must be a
// function of a key and a counter alone (dropout masks, shuffling and augmentation seeds), so results
// do not depend on the order or the thread in which they are drawn.
#pragma once
#include <cstdint>

namespace synapse::detail {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace synapse::detail
