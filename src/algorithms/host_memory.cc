#include "algorithms/host_memory.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <string>
#include <utility>

namespace hearth::algorithms {

std::size_t AvailableMemoryBytes() {
  std::size_t available = std::numeric_limits<std::size_t>::max();
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.starts_with("MemAvailable:")) {
      available = std::stoull(line.substr(13)) * 1024;
      break;
    }
  }
  auto read_number = [](const char* path) -> std::size_t {
    std::ifstream in(path);
    std::size_t value = 0;
    return (in >> value) ? value : 0;  // "max" and missing files read as no limit
  };
  for (auto [limit_path, usage_path] :
       {std::pair{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
        std::pair{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  "/sys/fs/cgroup/memory/memory.usage_in_bytes"}}) {
    const std::size_t limit = read_number(limit_path);
    if (limit == 0) continue;
    const std::size_t usage = read_number(usage_path);
    available = std::min(available, limit > usage ? limit - usage : 0);
  }
  return available == std::numeric_limits<std::size_t>::max() ? 0 : available;
}

}  // namespace hearth::algorithms
