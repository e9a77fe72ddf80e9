#include "serving/endpoint_router.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <utility>

namespace hearth::serving {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Idle connections kept per instance: as many as requests were once in flight to it at the
// same time, up to this. Fewer would make every request beyond them connect anew.
constexpr std::size_t kMaxIdleConnections = 256;

struct EndpointRouter::Instance {
  explicit Instance(InstanceAddress a)
      : address(std::move(a)), pool(address.host, address.port, kMaxIdleConnections) {}

  const InstanceAddress address;
  http::ConnectionPool pool;
  std::atomic<int> in_flight{0};
};

struct EndpointRouter::Fleet {
  struct Variant {
    std::string name;
    double weight = 0;  // negative weights are taken as 0
    std::vector<std::shared_ptr<Instance>> instances;
    // Where the next scan for the least busy instance starts, so that ties rotate.
    std::atomic<std::uint64_t> next{0};
  };
  std::vector<std::unique_ptr<Variant>> variants;
  double total_weight = 0;
};

namespace {

// Counts a request against its instance for as long as it is being sent or answered.
class InFlightGuard {
 public:
  explicit InFlightGuard(std::atomic<int>& count) : count_(count) { ++count_; }
  ~InFlightGuard() { --count_; }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

 private:
  std::atomic<int>& count_;
};

// SplitMix64 (Steele, Lea and Flood): the n-th number of a seeded sequence, computed from n
// alone, so that concurrent draws need no lock.
std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Which of a variant's instances were tried: a bit mask for the usual few, a vector beyond.
class TriedSet {
 public:
  explicit TriedSet(std::size_t n) {
    if (n > 64) many_.assign(n, false);
  }
  bool contains(std::size_t i) const { return many_.empty() ? (few_ >> i) & 1 : many_[i]; }
  void insert(std::size_t i) {
    if (many_.empty()) {
      few_ |= std::uint64_t{1} << i;
    } else {
      many_[i] = true;
    }
  }

 private:
  std::uint64_t few_ = 0;
  std::vector<bool> many_;
};

}  // namespace

EndpointRouter::EndpointRouter() : EndpointRouter(std::random_device{}()) {}
EndpointRouter::EndpointRouter(std::uint64_t seed) : seed_(seed) {}
EndpointRouter::~EndpointRouter() = default;

double EndpointRouter::NextDraw() {
  const std::uint64_t n = draws_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t bits = SplitMix64(seed_ + n * 0x9e3779b97f4a7c15ULL);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

void EndpointRouter::SetFleet(const std::string& endpoint, std::vector<VariantFleet> variants) {
  auto fleet = std::make_shared<Fleet>();
  std::shared_ptr<const Fleet> replaced;  // released after the lock: it may close connections
  std::unique_lock lock(mu_);
  for (VariantFleet& v : variants) {
    auto variant = std::make_unique<Fleet::Variant>();
    variant->name = std::move(v.name);
    variant->weight = std::max(0.0, v.weight);
    for (InstanceAddress& address : v.instances) {
      std::shared_ptr<Instance> instance;
      if (auto it = instances_.find(address.id); it != instances_.end()) {
        instance = it->second.lock();
      }
      // An id that comes back at another address is another process: a fresh pool.
      if (instance == nullptr || instance->address.host != address.host ||
          instance->address.port != address.port) {
        instance = std::make_shared<Instance>(address);
        instances_[address.id] = instance;
      }
      variant->instances.push_back(std::move(instance));
    }
    fleet->total_weight += variant->weight;
    fleet->variants.push_back(std::move(variant));
  }
  std::shared_ptr<const Fleet>& slot = fleets_[endpoint];
  replaced = std::move(slot);
  slot = std::move(fleet);
  std::erase_if(instances_, [](const auto& entry) { return entry.second.expired(); });
}

void EndpointRouter::Remove(const std::string& endpoint) {
  std::shared_ptr<const Fleet> removed;  // released after the lock
  std::unique_lock lock(mu_);
  if (auto it = fleets_.find(endpoint); it != fleets_.end()) {
    removed = std::move(it->second);
    fleets_.erase(it);
  }
  std::erase_if(instances_, [](const auto& entry) { return entry.second.expired(); });
}

bool EndpointRouter::Has(const std::string& endpoint) const {
  std::shared_lock lock(mu_);
  return fleets_.contains(endpoint);
}

bool EndpointRouter::Reachable(const std::string& instance_id) const {
  std::shared_lock lock(mu_);
  // Fleets own their instances and requests own their fleet: the instance lives exactly as
  // long as something may still send to it.
  auto it = instances_.find(instance_id);
  return it != instances_.end() && !it->second.expired();
}

int EndpointRouter::InFlight(const std::string& instance_id) const {
  std::shared_lock lock(mu_);
  auto it = instances_.find(instance_id);
  if (it == instances_.end()) return 0;
  std::shared_ptr<Instance> instance = it->second.lock();
  return instance ? instance->in_flight.load() : 0;
}

Result<InvocationResult> EndpointRouter::Invoke(const Invocation& invocation) {
  const auto deadline = steady_clock::now() + invocation.timeout;
  // The fleet (and its instances) stays alive for this request, whatever SetFleet does
  // meanwhile.
  std::shared_ptr<const Fleet> fleet;
  {
    std::shared_lock lock(mu_);
    auto it = fleets_.find(invocation.endpoint);
    if (it == fleets_.end()) {
      return NotFound("no fleet for endpoint " + invocation.endpoint);
    }
    fleet = it->second;
  }
  double draw = 0;
  if (invocation.target_variant.empty() && fleet->total_weight > 0) {
    draw = NextDraw() * fleet->total_weight;
  }

  Fleet::Variant* variant = nullptr;
  if (!invocation.target_variant.empty()) {
    for (const auto& v : fleet->variants) {
      if (v->name == invocation.target_variant) variant = v.get();
    }
    if (variant == nullptr) {
      return InvalidArgument("endpoint " + invocation.endpoint + " has no variant " +
                             invocation.target_variant);
    }
  } else {
    if (fleet->total_weight <= 0) {
      return Unavailable("no variant of endpoint " + invocation.endpoint +
                         " takes untargeted traffic (every weight is 0)");
    }
    double cumulative = 0;
    for (const auto& v : fleet->variants) {
      if (v->weight <= 0) continue;
      variant = v.get();  // the last positive one also takes a draw rounded up to the total
      cumulative += v->weight;
      if (draw < cumulative) break;
    }
  }

  const std::size_t n = variant->instances.size();
  if (n == 0) {
    return Unavailable("variant " + variant->name + " of endpoint " + invocation.endpoint +
                       " has no instances");
  }
  const std::size_t start = variant->next.fetch_add(1, std::memory_order_relaxed) % n;
  TriedSet tried(n);
  Status last;
  for (std::size_t attempt = 0; attempt < n; ++attempt) {
    // The untried instance with the fewest requests in flight, first in rotation order.
    std::size_t chosen = n;
    int fewest = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = (start + i) % n;
      if (tried.contains(k)) continue;
      const int busy = variant->instances[k]->in_flight.load();
      if (chosen == n || busy < fewest) {
        chosen = k;
        fewest = busy;
      }
    }
    tried.insert(chosen);
    Instance& instance = *variant->instances[chosen];

    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left <= milliseconds(0)) {
      return Status(StatusCode::kDeadlineExceeded,
                    "no instance of variant " + variant->name + " answered within " +
                        std::to_string(invocation.timeout.count()) + " ms");
    }
    Result<http::ClientResponse> response = [&] {
      InFlightGuard guard(instance.in_flight);
      return instance.pool.Send(invocation.request, left);
    }();
    if (response.ok()) {
      return InvocationResult{.variant = variant->name,
                              .instance_id = instance.address.id,
                              .response = std::move(response).value()};
    }
    // Only a request the instance never saw may go to another one.
    if (response.status().code() != StatusCode::kUnavailable) return response.status();
    last = response.status();
  }
  return Unavailable("no instance of variant " + variant->name + " of endpoint " +
                     invocation.endpoint + " accepted the request (last: " + last.message() + ")");
}

}  // namespace hearth::serving
