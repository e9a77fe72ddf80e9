// HttpClient: blocking HTTP/1.1 calls from the server to processes it runs on this machine —
// endpoint instances' GET /ping and POST /invocations — over keep-alive connections kept per
// address. It is on InvokeEndpoint's path, so a call is one write and (normally) one read on a
// blocking socket; Beast's parser reads the answer.
//
// Failures are reported by how far the request got, because only a request the instance
// never saw may be sent again elsewhere:
//   Unavailable       the request was not delivered: the connection could not be made, or a
//                     reused idle connection turned out closed by the peer before the request
//                     went out (retried once on a fresh connection first);
//   Aborted           the request was sent, but the connection broke before a whole response
//                     came back: the instance may have acted on it;
//   DeadlineExceeded  no whole response within the timeout, counted from the call (the
//                     connection is dropped).
// A response with any status code is a success here; judging it is the caller's business.
//
// Thread safety: thread safe. Concurrent Sends to one address use separate connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/http_message.h"

namespace hearth::http {

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

// The connections to one host:port (IPv4 or IPv6 literal, or "localhost").
class ConnectionPool {
 public:
  // At most `max_idle` idle connections are kept; more are closed after use.
  ConnectionPool(std::string host, std::uint16_t port, std::size_t max_idle = 32);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  Result<ClientResponse> Send(const ClientRequest& request, std::chrono::milliseconds timeout);

  // Closes the idle connections (an instance being replaced).
  void CloseIdle();

  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }

 private:
  struct Connection;
  Result<std::unique_ptr<Connection>> Connect(std::chrono::milliseconds timeout) const;
  void Release(std::unique_ptr<Connection> connection);

  const std::string host_;
  const std::uint16_t port_;
  const std::size_t max_idle_;
  const std::string where_;  // "host:port": the Host header, and messages
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace hearth::http
