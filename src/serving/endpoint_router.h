// EndpointRouter: the data plane of InvokeEndpoint. It holds, per endpoint, the fleet that
// takes its traffic — the production variants with their weights, and each variant's
// instances (loopback addresses of processes serving the inference contract: POST
// /invocations) — and sends each request to one instance.
//
// Choice: the variant named by X-Amzn-SageMaker-Target-Variant, else one drawn by weight
// (weight / sum of weights; variants of weight 0 take only targeted traffic); within the
// variant, the instance with the fewest requests in flight, ties broken round-robin. A request
// that was not delivered (the instance refused the connection: http Unavailable) is tried on
// the variant's other instances in turn; one that was delivered is never sent again, since the
// model may have acted on it.
//
// The endpoint controller publishes fleets: SetFleet replaces an endpoint's fleet as a whole
// (an endpoint coming InService, a blue/green update switching to the new fleet once it is
// healthy, a repaired instance); requests already in flight finish where they are. An
// instance is identified by its id; fleets that list the same id share its connection pool
// and in-flight count, so a swap keeps warm connections and InFlight sees requests of every
// fleet. (An id listed at another host:port than before is taken as a new instance.)
//
// Invoke only reads shared state (a reader lock, held for a map lookup) and draws variants
// from a counter-based generator, so concurrent requests do not queue behind each other.
//
// Thread safety: thread safe; Invoke runs concurrently with SetFleet and Remove.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/http_client.h"

namespace hearth::serving {

struct InstanceAddress {
  std::string id;  // unique over all endpoints, e.g. "<endpoint>/<variant>/<n>"
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
};

struct VariantFleet {
  std::string name;
  double weight = 1.0;
  std::vector<InstanceAddress> instances;
};

struct Invocation {
  std::string endpoint;
  std::string target_variant;    // empty: drawn by weight
  http::ClientRequest request;   // what the instance receives (POST /invocations)
  std::chrono::milliseconds timeout{60000};
};

struct InvocationResult {
  std::string variant;      // the variant that answered
  std::string instance_id;  // the instance that answered
  http::ClientResponse response;  // the instance's answer, whatever its status
};

class EndpointRouter {
 public:
  // Variants are drawn with a generator seeded from std::random_device, or from `seed` (tests
  // that count where requests went: the same seed and the same sequence of calls draw the
  // same variants).
  EndpointRouter();
  explicit EndpointRouter(std::uint64_t seed);
  ~EndpointRouter();
  EndpointRouter(const EndpointRouter&) = delete;
  EndpointRouter& operator=(const EndpointRouter&) = delete;

  // Publishes `variants` as the endpoint's fleet, replacing any earlier one.
  void SetFleet(const std::string& endpoint, std::vector<VariantFleet> variants);
  // Takes the endpoint out: later Invokes get NotFound.
  void Remove(const std::string& endpoint);
  bool Has(const std::string& endpoint) const;

  // Requests being sent to or answered by the instance `instance_id` right now (0 when it is
  // unknown).
  int InFlight(const std::string& instance_id) const;
  // False once no request can reach the instance any more: no published fleet lists it and
  // no request holds a fleet that does (a request takes its fleet before it counts itself
  // in flight, so InFlight alone can read 0 for a request about to be sent). A controller
  // drains an instance it took out of the fleet by waiting for this to turn false.
  bool Reachable(const std::string& instance_id) const;

  // NotFound: no fleet for the endpoint. InvalidArgument: the target variant is not one of
  // the endpoint's. Unavailable: no instance of the variant accepted the request (or it has
  // none, or the request names no variant and every weight is 0).
  // DeadlineExceeded / Aborted: as http::ConnectionPool::Send, from the chosen instance.
  Result<InvocationResult> Invoke(const Invocation& invocation);

 private:
  struct Instance;  // connection pool + in-flight count, shared by fleets
  struct Fleet;

  // A number in [0, 1), the next of the generator's sequence.
  double NextDraw();

  // Shared by Invoke, Has and InFlight; exclusive for SetFleet and Remove. (Not a spin lock:
  // on a busy machine a preempted holder must not make the others spin.)
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<const Fleet>> fleets_;  // GUARDED_BY(mu_)
  std::map<std::string, std::weak_ptr<Instance>> instances_;    // GUARDED_BY(mu_)
  const std::uint64_t seed_;
  std::atomic<std::uint64_t> draws_{0};
};

}  // namespace hearth::serving
