#include "serving/endpoint_router.h"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <thread>

#include <boost/asio.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "http/http_server.h"
#include "http/test_peer.h"

namespace hearth::serving {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
using http::test_support::ClosedPort;
using http::test_support::ScriptedPeer;

// An instance: hearth's own HTTP server answering POST /invocations with its name. It can
// hold requests inside the handler until released, to stand for a slow model.
class FakeInstance {
 public:
  explicit FakeInstance(std::string name) : name_(std::move(name)) {
    static std::atomic<int> counter{0};
    spool_ =
        std::filesystem::temp_directory_path() /
        ("endpoint_router_test." + std::to_string(::getpid()) + "." + std::to_string(counter++));
    std::filesystem::create_directories(spool_);
    auto server = http::HttpServer::Start(
        {.listen = "127.0.0.1:0", .spool_dir = spool_},
        {.precheck = [](const http::Request&) { return std::optional<http::Response>(); },
         .handle = [this](http::Request& r) { return Handle(r); }});
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    const std::string address = server_->address();
    port_ = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  ~FakeInstance() {
    Release();
    server_->Stop();
    std::filesystem::remove_all(spool_);
  }

  InstanceAddress Address(std::string id) const { return {.id = std::move(id), .port = port_}; }
  int requests() const { return requests_.load(); }

  // Requests arriving from now on wait in the handler until Release().
  void Hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    cv_.notify_all();
  }
  // Blocks until `n` requests are waiting in the handler.
  void WaitHeld(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_ >= n; });
  }

 private:
  http::Response Handle(http::Request& request) {
    ++requests_;
    {
      std::unique_lock lock(mu_);
      ++held_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !holding_; });
      --held_;
    }
    http::Response r;
    r.body = name_ + ":" + request.body.ReadAll().value();
    r.SetHeader("Content-Type", "text/plain");
    return r;
  }

  const std::string name_;
  std::filesystem::path spool_;
  std::unique_ptr<http::HttpServer> server_;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool holding_ = false;  // GUARDED_BY(mu_)
  int held_ = 0;          // GUARDED_BY(mu_)
};

// A misbehaving instance at `peer`'s port.
InstanceAddress At(const http::test_support::ScriptedPeer& peer, std::string id) {
  return {.id = std::move(id), .port = peer.port()};
}

Invocation Call(std::string endpoint, std::string body = "1,2", std::string target_variant = "") {
  Invocation inv;
  inv.endpoint = std::move(endpoint);
  inv.target_variant = std::move(target_variant);
  inv.request.method = "POST";
  inv.request.target = "/invocations";
  inv.request.headers = {{"Content-Type", "text/csv"}};
  inv.request.body = std::move(body);
  inv.timeout = milliseconds(10000);
  return inv;
}

TEST(EndpointRouter, SendsTheRequestToAnInstanceAndReturnsItsAnswer) {
  FakeInstance a("a");
  EndpointRouter router;
  router.SetFleet("ep", {{.name = "AllTraffic", .instances = {a.Address("ep/AllTraffic/0")}}});
  auto result = router.Invoke(Call("ep", "3,4"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->variant, "AllTraffic");
  EXPECT_EQ(result->instance_id, "ep/AllTraffic/0");
  EXPECT_EQ(result->response.status, 200);
  EXPECT_EQ(result->response.body, "a:3,4");
  EXPECT_EQ(result->response.headers.GetOr("content-type", ""), "text/plain");
}

TEST(EndpointRouter, SplitsUntargetedTrafficByWeight) {
  FakeInstance a("a"), b("b"), c("c");
  EndpointRouter router(/*seed=*/42);
  router.SetFleet("ep", {{.name = "A", .weight = 3, .instances = {a.Address("ep/A/0")}},
                         {.name = "B", .weight = 1, .instances = {b.Address("ep/B/0")}},
                         {.name = "C", .weight = 0, .instances = {c.Address("ep/C/0")}}});
  constexpr int kRequests = 4000;
  std::map<std::string, int> by_variant;
  for (int i = 0; i < kRequests; ++i) {
    auto result = router.Invoke(Call("ep"));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ++by_variant[result->variant];
  }
  // 3:1 within 3 points (the binomial's standard deviation is 0.7 points here).
  EXPECT_NEAR(by_variant["A"] / double(kRequests), 0.75, 0.03);
  EXPECT_NEAR(by_variant["B"] / double(kRequests), 0.25, 0.03);
  EXPECT_EQ(by_variant["C"], 0);  // weight 0: targeted traffic only
  EXPECT_EQ(a.requests(), by_variant["A"]);
  EXPECT_EQ(b.requests(), by_variant["B"]);
  EXPECT_EQ(c.requests(), 0);
}

TEST(EndpointRouter, TheSameSeedSplitsTheSameWay) {
  FakeInstance a("a"), b("b");
  auto sequence = [&](std::uint64_t seed) {
    EndpointRouter router(seed);
    router.SetFleet("ep", {{.name = "A", .instances = {a.Address("ep/A/0")}},
                           {.name = "B", .instances = {b.Address("ep/B/0")}}});
    std::string out;
    for (int i = 0; i < 64; ++i) out += router.Invoke(Call("ep")).value().variant;
    return out;
  };
  const std::string first = sequence(7);
  EXPECT_EQ(first, sequence(7));
  EXPECT_NE(first.find('A'), std::string::npos);
  EXPECT_NE(first.find('B'), std::string::npos);
}

TEST(EndpointRouter, TargetVariantOverridesTheWeights) {
  FakeInstance a("a"), b("b");
  EndpointRouter router(1);
  router.SetFleet("ep", {{.name = "A", .weight = 1, .instances = {a.Address("ep/A/0")}},
                         {.name = "B", .weight = 0, .instances = {b.Address("ep/B/0")}}});
  for (int i = 0; i < 20; ++i) {
    auto result = router.Invoke(Call("ep", "x", "B"));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->variant, "B");
    EXPECT_EQ(result->response.body, "b:x");
  }
  EXPECT_EQ(a.requests(), 0);

  auto unknown = router.Invoke(Call("ep", "x", "Nope"));
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("Nope"), std::string::npos);
}

TEST(EndpointRouter, EveryWeightZeroRefusesUntargetedTraffic) {
  FakeInstance a("a");
  EndpointRouter router;
  router.SetFleet("ep", {{.name = "A", .weight = 0, .instances = {a.Address("ep/A/0")}}});
  EXPECT_EQ(router.Invoke(Call("ep")).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(router.Invoke(Call("ep", "x", "A")).ok());
}

TEST(EndpointRouter, SpreadsEvenlyOverIdleInstances) {
  FakeInstance a("a"), b("b"), c("c");
  EndpointRouter router;
  router.SetFleet("ep",
                  {{.name = "V",
                    .instances = {a.Address("ep/V/0"), b.Address("ep/V/1"), c.Address("ep/V/2")}}});
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(router.Invoke(Call("ep")).ok());
  // Sequential requests find every instance idle: the ties rotate.
  EXPECT_EQ(a.requests(), 10);
  EXPECT_EQ(b.requests(), 10);
  EXPECT_EQ(c.requests(), 10);
}

TEST(EndpointRouter, ABusyInstanceGetsNoRequestsWhileAnIdleOneIsThere) {
  FakeInstance slow("slow"), fast("fast");
  EndpointRouter router;
  router.SetFleet(
      "ep", {{.name = "V", .instances = {slow.Address("ep/V/slow"), fast.Address("ep/V/fast")}}});
  slow.Hold();
  // The first request on a fresh fleet starts the rotation at the first instance.
  std::thread stuck([&] {
    auto result = router.Invoke(Call("ep", "first"));
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->response.body, "slow:first");
  });
  slow.WaitHeld(1);
  EXPECT_EQ(router.InFlight("ep/V/slow"), 1);
  EXPECT_EQ(router.InFlight("ep/V/fast"), 0);
  for (int i = 0; i < 10; ++i) {
    auto result = router.Invoke(Call("ep"));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->instance_id, "ep/V/fast");
  }
  EXPECT_EQ(slow.requests(), 1);
  EXPECT_EQ(fast.requests(), 10);
  slow.Release();
  stuck.join();
  EXPECT_EQ(router.InFlight("ep/V/slow"), 0);
  EXPECT_EQ(router.InFlight("unknown"), 0);
}

TEST(EndpointRouter, ADeadInstanceIsSkippedAndTheRequestSucceedsOnAnother) {
  FakeInstance live("live");
  EndpointRouter router;
  router.SetFleet(
      "ep",
      {{.name = "V",
        .instances = {{.id = "ep/V/dead", .port = ClosedPort()}, live.Address("ep/V/live")}}});
  for (int i = 0; i < 10; ++i) {
    auto result = router.Invoke(Call("ep"));
    ASSERT_TRUE(result.ok()) << i << ": " << result.status().ToString();
    EXPECT_EQ(result->instance_id, "ep/V/live");
  }
  EXPECT_EQ(live.requests(), 10);
}

TEST(EndpointRouter, NoLiveInstanceIsUnavailable) {
  EndpointRouter router;
  router.SetFleet("ep", {{.name = "V",
                          .instances = {{.id = "ep/V/0", .port = ClosedPort()},
                                        {.id = "ep/V/1", .port = ClosedPort()}}}});
  EXPECT_EQ(router.Invoke(Call("ep")).status().code(), StatusCode::kUnavailable);
  router.SetFleet("ep", {{.name = "V", .instances = {}}});
  EXPECT_EQ(router.Invoke(Call("ep")).status().code(), StatusCode::kUnavailable);
}

TEST(EndpointRouter, ADeliveredRequestIsNotSentAgainWhenTheConnectionBreaks) {
  // Reads the request, then hangs up without answering: the model may have acted on it.
  ScriptedPeer hangs_up([](tcp::socket& s, ScriptedPeer& p) {
    if (ScriptedPeer::ReadRequest(s)) ++p.requests;
    s.close();
  });
  FakeInstance live("live");
  EndpointRouter router;
  router.SetFleet(
      "ep",
      {{.name = "V", .instances = {At(hangs_up, "ep/V/broken"), live.Address("ep/V/live")}}});
  // The first request on a fresh fleet goes to the first instance.
  auto result = router.Invoke(Call("ep"));
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ(hangs_up.requests.load(), 1);
  EXPECT_EQ(live.requests(), 0);
}

TEST(EndpointRouter, NoAnswerInTimeIsDeadlineExceeded) {
  ScriptedPeer silent([](tcp::socket& s, ScriptedPeer& p) {
    if (!ScriptedPeer::ReadRequest(s)) return;
    ++p.requests;
    ScriptedPeer::ReadRequest(s);  // returns when the client gives up and closes
  });
  EndpointRouter router;
  router.SetFleet("ep", {{.name = "V", .instances = {At(silent, "ep/V/0")}}});
  Invocation call = Call("ep");
  call.timeout = milliseconds(200);
  EXPECT_EQ(router.Invoke(call).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(silent.requests.load(), 1);
}

TEST(EndpointRouter, FleetsListingTheSameInstanceShareItsConnections) {
  ScriptedPeer echo([](tcp::socket& s, ScriptedPeer& p) {
    while (ScriptedPeer::ReadRequest(s)) {
      ++p.requests;
      ScriptedPeer::Reply(s, "ok");
    }
  });
  EndpointRouter router;
  router.SetFleet("ep", {{.name = "V", .instances = {At(echo, "ep/V/0")}}});
  ASSERT_TRUE(router.Invoke(Call("ep")).ok());
  router.SetFleet("ep", {{.name = "V", .weight = 2, .instances = {At(echo, "ep/V/0")}}});
  ASSERT_TRUE(router.Invoke(Call("ep")).ok());
  EXPECT_EQ(echo.requests.load(), 2);
  EXPECT_EQ(echo.connections.load(), 1);  // the kept-alive connection survived the swap
}

TEST(EndpointRouter, SwappingFleetsUnderLoadFailsNoRequest) {
  FakeInstance blue("blue"), green("green");
  EndpointRouter router;
  const std::vector<VariantFleet> blue_fleet = {
      {.name = "V", .instances = {blue.Address("ep/V/blue")}}};
  const std::vector<VariantFleet> green_fleet = {
      {.name = "V", .instances = {green.Address("ep/V/green")}}};
  router.SetFleet("ep", blue_fleet);

  // A request held on the old fleet across the swap finishes there.
  blue.Hold();
  std::thread held([&] {
    auto result = router.Invoke(Call("ep", "held"));
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->response.body, "blue:held");
  });
  blue.WaitHeld(1);
  router.SetFleet("ep", green_fleet);
  EXPECT_EQ(router.InFlight("ep/V/blue"), 1);  // no fleet lists it; its request is still seen
  EXPECT_TRUE(router.Reachable("ep/V/blue"));  // the held request still owns the old fleet
  EXPECT_TRUE(router.Reachable("ep/V/green"));

  std::atomic<int> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        if (!router.Invoke(Call("ep")).ok()) ++failed;
        ++done;
      }
    });
  }
  blue.Release();
  held.join();
  // 2000 requests while the fleets swap back and forth (counted from here: the clients may
  // have done many already).
  const int before = done.load();
  int swaps = 0;
  while (done < before + 2000) {
    router.SetFleet("ep", swaps++ % 2 == 0 ? blue_fleet : green_fleet);
  }
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(swaps, 1);
  EXPECT_GT(blue.requests(), 1);
  EXPECT_GT(green.requests(), 0);
  EXPECT_EQ(router.InFlight("ep/V/blue") + router.InFlight("ep/V/green"), 0);
  // Once green is published and nothing holds a blue fleet any more, blue can be stopped.
  router.SetFleet("ep", green_fleet);
  EXPECT_FALSE(router.Reachable("ep/V/blue"));
  EXPECT_TRUE(router.Reachable("ep/V/green"));
  EXPECT_FALSE(router.Reachable("unknown"));
}

TEST(EndpointRouter, RemovedOrUnknownEndpointsAreNotFound) {
  FakeInstance a("a");
  EndpointRouter router;
  EXPECT_FALSE(router.Has("ep"));
  EXPECT_EQ(router.Invoke(Call("ep")).status().code(), StatusCode::kNotFound);
  router.SetFleet("ep", {{.name = "V", .instances = {a.Address("ep/V/0")}}});
  EXPECT_TRUE(router.Has("ep"));
  ASSERT_TRUE(router.Invoke(Call("ep")).ok());
  router.Remove("ep");
  EXPECT_FALSE(router.Has("ep"));
  EXPECT_EQ(router.Invoke(Call("ep")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(a.requests(), 1);
}

}  // namespace
}  // namespace hearth::serving
