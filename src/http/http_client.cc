#include "http/http_client.h"

#include <poll.h>

#include <cstdint>
#include <limits>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// Each connection owns its io_context: a call runs that context until its one operation
// completes, which gives blocking calls a timeout (beast::tcp_stream's expiry applies to
// asynchronous operations only).
struct ConnectionPool::Connection {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;

  // Runs the pending operation to completion.
  void Run() {
    io.restart();
    io.run();
  }

  // A kept connection the peer has closed (or sent something unasked on) reads as ready:
  // it must not carry a request.
  bool LooksAlive() {
    pollfd p{stream.socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
};

namespace {

std::string Where(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

}  // namespace

ConnectionPool::ConnectionPool(std::string host, std::uint16_t port, std::size_t max_idle)
    : host_(std::move(host)), port_(port), max_idle_(max_idle) {}

ConnectionPool::~ConnectionPool() = default;

Result<std::unique_ptr<ConnectionPool::Connection>> ConnectionPool::Connect(
    std::chrono::milliseconds timeout) const {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host_ == "localhost" ? "127.0.0.1" : host_, ec);
  if (ec) return InvalidArgument("not an IP address: " + host_);
  auto connection = std::make_unique<Connection>();
  connection->stream.expires_after(timeout);
  connection->stream.async_connect(tcp::endpoint(address, port_),
                                   [&ec](beast::error_code e) { ec = e; });
  connection->Run();
  if (ec == beast::error::timeout) {
    return Status(StatusCode::kDeadlineExceeded, "connecting to " + Where(host_, port_) +
                                                     " timed out");
  }
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  "cannot connect to " + Where(host_, port_) + ": " + ec.message());
  }
  connection->stream.socket().set_option(tcp::no_delay(true), ec);
  return connection;
}

void ConnectionPool::Release(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

void ConnectionPool::CloseIdle() {
  std::vector<std::unique_ptr<Connection>> closing;
  std::lock_guard lock(mu_);
  closing.swap(idle_);
}

Result<ClientResponse> ConnectionPool::Send(const ClientRequest& request,
                                            std::chrono::milliseconds timeout) {
  bhttp::request<bhttp::string_body> message;
  message.method_string(request.method);
  message.target(request.target);
  message.version(11);
  message.set(bhttp::field::host, Where(host_, port_));
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = request.body;
  message.prepare_payload();

  // A reused connection may have been closed by the peer while it sat idle; the request then
  // goes once more on a fresh connection, as curl does, when nothing of a response came back.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> connection;
    {
      std::lock_guard lock(mu_);
      while (!idle_.empty() && !connection) {
        connection = std::move(idle_.back());
        idle_.pop_back();
        if (!connection->LooksAlive()) connection.reset();
      }
    }
    const bool reused = connection != nullptr;
    if (!reused) {
      ASSIGN_OR_RETURN(connection, Connect(timeout));
    }

    beast::error_code ec;
    connection->stream.expires_after(timeout);
    bhttp::async_write(connection->stream, message,
                       [&ec](beast::error_code e, std::size_t) { ec = e; });
    connection->Run();
    if (ec == beast::error::timeout) {
      return Status(StatusCode::kDeadlineExceeded,
                    "sending to " + Where(host_, port_) + " timed out");
    }
    if (ec) {
      if (reused && attempt == 0) continue;
      return Status(StatusCode::kUnavailable,
                    "sending to " + Where(host_, port_) + " failed: " + ec.message());
    }

    bhttp::response_parser<bhttp::string_body> parser;
    // No limit (the caller's own limits apply). Not boost::none: Boost 1.74's parser then
    // refuses any body that arrives after the header ("body limit exceeded").
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    connection->stream.expires_after(timeout);
    bhttp::async_read(connection->stream, connection->buffer, parser,
                      [&ec](beast::error_code e, std::size_t) { ec = e; });
    connection->Run();
    if (ec == beast::error::timeout) {
      return Status(StatusCode::kDeadlineExceeded,
                    "no response from " + Where(host_, port_) + " within " +
                        std::to_string(timeout.count()) + " ms");
    }
    if (ec) {
      if (reused && attempt == 0 && !parser.got_some()) continue;
      return Status(StatusCode::kAborted, "the connection to " + Where(host_, port_) +
                                              " broke before a whole response: " + ec.message());
    }

    auto& response = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      out.headers.Add(std::string_view(field.name_string().data(), field.name_string().size()),
                      std::string_view(field.value().data(), field.value().size()));
    }
    out.body = std::move(response.body());
    if (response.keep_alive()) {
      connection->stream.expires_never();
      Release(std::move(connection));
    }
    return out;
  }
}

}  // namespace hearth::http
