// Test support: loopback HTTP peers scripted byte by byte, for tests of clients that must
// cope with servers misbehaving (hanging up, stalling, splitting a response). Header-only;
// for tests, never for the product.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

namespace hearth::http::test_support {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A loopback peer that serves each accepted connection with `behaviour` on its own thread,
// counting connections and requests, so the tests can see what went over the wire.
class ScriptedPeer {
 public:
  using Behaviour = std::function<void(tcp::socket&, ScriptedPeer&)>;

  explicit ScriptedPeer(Behaviour behaviour) : behaviour_(std::move(behaviour)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    accept_thread_ = std::thread([this] {
      while (true) {
        boost::system::error_code ec;
        tcp::socket socket(io_);
        acceptor_.accept(socket, ec);
        if (ec || stopping_) return;
        ++connections;
        workers_.emplace_back([this, s = std::move(socket)]() mutable { behaviour_(s, *this); });
      }
    });
  }

  ~ScriptedPeer() {
    stopping_ = true;
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);
    accept_thread_.join();
    for (auto& w : workers_) w.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Reads one request's head (and a Content-Length body); false at end of stream.
  static bool ReadRequest(tcp::socket& socket, std::string* head_out = nullptr) {
    std::string data;
    char c;
    boost::system::error_code ec;
    while (data.find("\r\n\r\n") == std::string::npos) {
      if (asio::read(socket, asio::buffer(&c, 1), ec) != 1) return false;
      data.push_back(c);
    }
    std::size_t length = 0;
    if (auto at = data.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(data.substr(at + 16));
    }
    std::string body(length, '\0');
    if (length > 0 && asio::read(socket, asio::buffer(body), ec) != length) return false;
    if (head_out) *head_out = data + body;
    return true;
  }

  static void Reply(tcp::socket& socket, const std::string& body, bool keep_alive = true) {
    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                           (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") + "\r\n" + body;
    boost::system::error_code ec;
    asio::write(socket, asio::buffer(response), ec);
  }

  std::atomic<int> connections{0};
  std::atomic<int> requests{0};

 private:
  Behaviour behaviour_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::vector<std::thread> workers_;  // joined in the destructor
};

// A loopback port nobody listens on.
inline std::uint16_t ClosedPort() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

}  // namespace hearth::http::test_support
