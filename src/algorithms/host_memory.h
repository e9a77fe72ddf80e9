// How much memory a training host may still fill, for algorithms that keep data in memory
// when it fits and stream it otherwise.
#pragma once

#include <cstddef>

namespace hearth::algorithms {

// MemAvailable from /proc/meminfo, capped by this process's cgroup limit (v2 memory.max or
// v1 memory.limit_in_bytes) less what the cgroup already uses; 0 when neither is known.
// Reads the files on each call (cheap; the answer changes as the host works).
std::size_t AvailableMemoryBytes();

}  // namespace hearth::algorithms
