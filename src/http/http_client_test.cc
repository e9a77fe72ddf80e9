#include "http/http_client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "http/test_peer.h"

namespace hearth::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using test_support::ClosedPort;
using test_support::ScriptedPeer;

ClientRequest Post(std::string body) {
  ClientRequest r;
  r.method = "POST";
  r.target = "/invocations";
  r.headers = {{"Content-Type", "text/csv"}};
  r.body = std::move(body);
  return r;
}

TEST(ConnectionPool, KeepsOneConnectionAliveAcrossRequests) {
  ScriptedPeer peer([](tcp::socket& s, ScriptedPeer& p) {
    std::string request;
    while (ScriptedPeer::ReadRequest(s, &request)) {
      ++p.requests;
      ScriptedPeer::Reply(s, "echo:" + request.substr(request.find("\r\n\r\n") + 4));
    }
  });
  ConnectionPool pool("127.0.0.1", peer.port());
  for (int i = 0; i < 5; ++i) {
    auto response = pool.Send(Post("1," + std::to_string(i)), milliseconds(5000));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "echo:1," + std::to_string(i));
  }
  EXPECT_EQ(peer.connections.load(), 1);
  EXPECT_EQ(peer.requests.load(), 5);
}

TEST(ConnectionPool, ReadsABodyThatArrivesAfterTheHeader) {
  // As Python's http.server answers: the header in one write, the body in a later one.
  ScriptedPeer peer([](tcp::socket& s, ScriptedPeer& p) {
    while (ScriptedPeer::ReadRequest(s)) {
      ++p.requests;
      boost::system::error_code ec;
      asio::write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")), ec);
      std::this_thread::sleep_for(milliseconds(30));  // the client parses the header alone
      asio::write(s, asio::buffer(std::string("0.125")), ec);
    }
  });
  ConnectionPool pool("127.0.0.1", peer.port());
  for (int i = 0; i < 3; ++i) {
    auto response = pool.Send(Post("x"), milliseconds(5000));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->body, "0.125");
  }
}

TEST(ConnectionPool, ResendsOnAFreshConnectionWhenTheKeptOneWasClosed) {
  // Each connection answers one request, then closes without saying so (as a server whose
  // keep-alive timeout expired does): the next request finds the kept connection dead.
  ScriptedPeer peer([](tcp::socket& s, ScriptedPeer& p) {
    if (!ScriptedPeer::ReadRequest(s)) return;
    ++p.requests;
    ScriptedPeer::Reply(s, "ok");
    s.shutdown(tcp::socket::shutdown_both);
    s.close();
  });
  ConnectionPool pool("127.0.0.1", peer.port());
  for (int i = 0; i < 3; ++i) {
    auto response = pool.Send(Post("x"), milliseconds(5000));
    ASSERT_TRUE(response.ok()) << i << ": " << response.status().ToString();
    EXPECT_EQ(response->body, "ok");
  }
  // Delivered exactly once each.
  EXPECT_EQ(peer.requests.load(), 3);
  EXPECT_EQ(peer.connections.load(), 3);
}

TEST(ConnectionPool, ReportsHowFarAFailedRequestGot) {
  // Nobody listening: not delivered.
  ConnectionPool nobody("127.0.0.1", ClosedPort());
  EXPECT_EQ(nobody.Send(Post("x"), milliseconds(2000)).status().code(), StatusCode::kUnavailable);

  // Read, then hung up on: delivered, no answer.
  ScriptedPeer hangs_up([](tcp::socket& s, ScriptedPeer& p) {
    if (ScriptedPeer::ReadRequest(s)) ++p.requests;
    s.close();
  });
  ConnectionPool broken("127.0.0.1", hangs_up.port());
  EXPECT_EQ(broken.Send(Post("x"), milliseconds(2000)).status().code(), StatusCode::kAborted);
  EXPECT_EQ(hangs_up.requests.load(), 1);

  // Read, then silence: the deadline.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  ScriptedPeer silent([&](tcp::socket& s, ScriptedPeer&) {
    ScriptedPeer::ReadRequest(s);
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  ConnectionPool slow("127.0.0.1", silent.port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(slow.Send(Post("x"), milliseconds(200)).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(200));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(ConnectionPool, ServesConcurrentCallersOnSeparateConnections) {
  std::atomic<int> inside{0}, most{0};
  ScriptedPeer peer([&](tcp::socket& s, ScriptedPeer& p) {
    while (ScriptedPeer::ReadRequest(s)) {
      ++p.requests;
      const int now = ++inside;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(milliseconds(20));  // hold the request so others overlap
      --inside;
      ScriptedPeer::Reply(s, "ok");
    }
  });
  ConnectionPool pool("127.0.0.1", peer.port());
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (pool.Send(Post("x"), milliseconds(5000)).ok()) ++ok;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(peer.requests.load(), 20);
  EXPECT_LE(peer.connections.load(), 4);  // reused, never more than the callers at once
  EXPECT_GE(most.load(), 2);
}

TEST(ConnectionPool, FramesAnEmptyPostAndReadsAChunkedAnswer) {
  std::string seen;
  ScriptedPeer peer([&](tcp::socket& s, ScriptedPeer& p) {
    while (ScriptedPeer::ReadRequest(s, &seen)) {
      ++p.requests;
      boost::system::error_code ec;
      asio::write(s,
                  asio::buffer(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                           "X-Model: m\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")),
                  ec);
    }
  });
  ConnectionPool pool("127.0.0.1", peer.port());
  for (int i = 0; i < 2; ++i) {
    auto response = pool.Send(Post(""), milliseconds(5000));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->body, "abcde");
    EXPECT_EQ(response->headers.GetOr("x-model", ""), "m");
  }
  // A POST says it has no body; the Host header names the peer.
  EXPECT_NE(seen.find("\r\nContent-Length: 0\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\r\nHost: 127.0.0.1:" + std::to_string(peer.port()) + "\r\n"),
            std::string::npos)
      << seen;
  EXPECT_EQ(peer.connections.load(), 1);
}

}  // namespace
}  // namespace hearth::http
