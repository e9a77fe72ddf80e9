// HttpServer: the one listening socket of `hearth server` (Boost.Beast, HTTP/1.1 keep-alive).
//
// Each connection is served by its own thread with blocking I/O: simple, and on loopback with
// keep-alive it is as fast as an event loop for the request rates a single machine sees (an
// nginx reverse proxy, event-driven, costs as much CPU per proxied request: see
// bench/results/invoke_latency.md). InvokeEndpoint runs through here twice (the front, and the
// instance's model server), so a request costs one read and one write when its head and body
// arrive together: Beast's parser fills the Request directly, the read buffer is kept for the
// connection, and the response head is written beside the body in one call.
// Request bodies up to `in_memory_body_limit` are read into memory; larger ones are spooled
// to a file under `spool_dir`, so a multi-gigabyte upload never sits in memory.
// `Expect: 100-continue` is answered after `precheck` has accepted the headers, so a client
// that will be refused (an over-size PUT) is refused before it sends its body.
//
// Thread safety: Start/Stop from one thread; the handler is called concurrently from many.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "http/http_message.h"

namespace hearth::http {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::filesystem::path spool_dir;        // must exist
  std::size_t in_memory_body_limit = 8 << 20;
  std::uint64_t max_body_bytes = 6ULL << 30;  // S3 enforces its own 5 GiB rule in precheck
};

struct HttpHandlers {
  // Called with the headers only (empty body). A response refuses the request before its
  // body is read; nullopt lets it through.
  std::function<std::optional<Response>(const Request&)> precheck;
  // Called with the whole request. Must not throw.
  std::function<Response(Request&)> handle;
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, "127.0.0.1:7070" (with the real port when 0 was asked for).
  std::string address() const { return address_; }
  // Stops accepting; connections in flight finish their current request.
  void Stop();

 private:
  struct Impl;
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace hearth::http
