#include "http/http_server.h"

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/ids.h"
#include "spdlog/spdlog.h"

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandlers handlers;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  // Connections being served, so that Stop() can end them and wait for their threads: a
  // handler must never run after the objects it borrows are gone.
  std::mutex conn_mu;
  std::condition_variable conn_cv;
  std::set<int> open_sockets;  // GUARDED_BY(conn_mu)
  // Connection threads not yet finished with their socket. A socket's destructor uses the
  // io_context, so Stop() (and the Impl's destruction after it) must wait for these too.
  int live_threads = 0;  // GUARDED_BY(conn_mu)

  void AcceptLoop();
  void Serve(tcp::socket& socket);
};

namespace {

constexpr std::size_t kChunk = 256 * 1024;

// Splits "a/b?x=1&y" into the decoded path and query pairs.
bool ParseTarget(std::string_view target, Request* req) {
  std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  req->raw_path = std::string(path);
  if (!PercentDecode(path, &req->path)) return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    std::size_t amp = rest.find('&');
    std::string_view item = rest.substr(0, amp);
    if (!item.empty()) {
      std::size_t eq = item.find('=');
      std::string key, value;
      std::string raw_key(item.substr(0, eq));
      std::string raw_value(eq == std::string_view::npos ? "" : item.substr(eq + 1));
      for (char& c : raw_value) {
        if (c == '+') c = ' ';
      }
      if (!PercentDecode(raw_key, &key) || !PercentDecode(raw_value, &value)) return false;
      req->query.emplace_back(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return true;
}

void AttachCredential(Request* req) {
  if (auto auth = req->headers.Get("authorization")) {
    req->credential = ParseSigV4Authorization(*auth);
  } else if (auto scope = req->QueryParam("X-Amz-Credential")) {
    req->credential = ParseSigV4CredentialScope(*scope);
  }
}

Response PlainError(int status, std::string message) {
  Response r;
  r.status = status;
  r.body = std::move(message);
  r.SetHeader("Content-Type", "text/plain");
  return r;
}

template <typename Message>
void CopyHeaders(const Response& res, Message* msg) {
  for (const auto& [k, v] : res.headers) msg->set(k, v);
  msg->set(bhttp::field::date, FormatHttpDate(NowMillis()));
  msg->set(bhttp::field::server, "Hearth");
}

// Writes `res` to the socket. Returns false if the connection must close.
bool WriteResponse(tcp::socket& socket, const Response& res, bool keep_alive, bool is_head,
                   unsigned version) {
  beast::error_code ec;
  if (res.file) {
    if (!res.file->fd || !res.file->fd->valid()) return false;
    int fd = res.file->fd->get();
    bhttp::response<bhttp::buffer_body> msg{static_cast<bhttp::status>(res.status), version};
    CopyHeaders(res, &msg);
    msg.content_length(res.file->length);
    msg.keep_alive(keep_alive);
    msg.body().data = nullptr;
    msg.body().more = true;
    bhttp::response_serializer<bhttp::buffer_body> sr{msg};
    bhttp::write_header(socket, sr, ec);
    std::string buf(kChunk, '\0');
    std::uint64_t sent = 0;
    bool ok = !ec;
    while (ok && sent < res.file->length) {
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, res.file->length - sent));
      ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(res.file->offset + sent));
      if (n <= 0) {
        ok = false;
        break;
      }
      msg.body().data = buf.data();
      msg.body().size = static_cast<std::size_t>(n);
      msg.body().more = true;
      bhttp::write(socket, sr, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) ok = false;
      sent += static_cast<std::uint64_t>(n);
    }
    if (!ok) return false;
    msg.body().data = nullptr;
    msg.body().more = false;
    bhttp::write(socket, sr, ec);
    return !ec;
  }
  if (is_head || res.head_content_length) {
    bhttp::response<bhttp::empty_body> msg{static_cast<bhttp::status>(res.status), version};
    CopyHeaders(res, &msg);
    msg.keep_alive(keep_alive);
    msg.content_length(res.head_content_length.value_or(res.body.size()));
    bhttp::response_serializer<bhttp::empty_body> sr{msg};
    sr.split(true);
    bhttp::write_header(socket, sr, ec);
    return !ec;
  }
  bhttp::response<bhttp::string_body> msg{static_cast<bhttp::status>(res.status), version};
  CopyHeaders(res, &msg);
  msg.keep_alive(keep_alive);
  msg.body() = res.body;
  msg.prepare_payload();
  bhttp::write(socket, msg, ec);
  return !ec;
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandlers handlers) {
  std::size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("--listen must be host:port, got '" + options.listen + "'");
  }
  std::string host = options.listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(options.listen.substr(colon + 1));
  } catch (...) {
    return InvalidArgument("--listen port is not a number: '" + options.listen + "'");
  }
  if (port < 0 || port > 65535) return InvalidArgument("--listen port out of range");

  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.options = options;
  impl.handlers = std::move(handlers);
  beast::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return InvalidArgument("--listen host is not an IP address: '" + host + "'");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + options.listen + ": " + ec.message());
  auto bound = impl.acceptor.local_endpoint();
  server->address_ = bound.address().to_string() + ":" + std::to_string(bound.port());
  impl.accept_thread = std::thread([&impl] { impl.AcceptLoop(); });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // A thread blocked in accept() is not woken by close(); shutdown() wakes it.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  beast::error_code ec;
  impl_->acceptor.cancel(ec);
  impl_->acceptor.close(ec);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  // Wake every connection thread (blocked reading the next request, typically) and wait for
  // them; a request being handled finishes first.
  std::unique_lock<std::mutex> lock(impl_->conn_mu);
  for (int fd : impl_->open_sockets) ::shutdown(fd, SHUT_RDWR);
  impl_->conn_cv.wait_for(lock, std::chrono::seconds(30), [&] {
    return impl_->open_sockets.empty() && impl_->live_threads == 0;
  });
}

void HttpServer::Impl::AcceptLoop() {
  while (!stopping) {
    beast::error_code ec;
    tcp::socket socket(io);
    acceptor.accept(socket, ec);
    if (ec) {
      if (stopping) return;
      if (ec == asio::error::no_descriptors)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    int fd = socket.native_handle();
    {
      std::lock_guard<std::mutex> lock(conn_mu);
      if (stopping) return;
      open_sockets.insert(fd);
      ++live_threads;
    }
    auto owned = std::make_unique<tcp::socket>(std::move(socket));
    std::thread([this, fd, s = std::move(owned)]() mutable {
      Serve(*s);
      {
        // Erased while the descriptor is still open, so its number cannot be reused by a
        // new connection and then erased here.
        std::lock_guard<std::mutex> lock(conn_mu);
        open_sockets.erase(fd);
      }
      s.reset();  // closes it, while the io_context surely exists
      std::lock_guard<std::mutex> lock(conn_mu);
      --live_threads;
      conn_cv.notify_all();
    }).detach();
  }
}

void HttpServer::Impl::Serve(tcp::socket& socket) {
  beast::flat_buffer buffer;
  while (true) {
    beast::error_code ec;
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    bhttp::read_header(socket, buffer, parser, ec);
    if (ec) return;  // closed by the client, or garbage: nothing useful to answer
    auto& msg = parser.get();
    unsigned version = msg.version();
    bool is_head = msg.method() == bhttp::verb::head;

    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.request_id = NewUuid();
    for (const auto& field : msg) {
      req.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    bool keep_alive = msg.keep_alive();
    if (!ParseTarget(req.target, &req)) {
      WriteResponse(socket, PlainError(400, "malformed request target"), false, is_head, version);
      return;
    }
    AttachCredential(&req);

    if (handlers.precheck) {
      if (auto refusal = handlers.precheck(req)) {
        // The body was not read: the connection cannot be reused.
        refusal->SetHeader("Connection", "close");
        WriteResponse(socket, *refusal, false, is_head, version);
        return;
      }
    }
    if (beast::iequals(msg[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
      bhttp::write(socket, cont, ec);
      if (ec) return;
    }

    // Read the body: into memory while small, into a spool file once it grows.
    std::string memory;
    std::filesystem::path spool;
    int spool_fd = -1;
    std::uint64_t total = 0;
    std::string chunk(kChunk, '\0');
    bool failed = false;
    while (!parser.is_done()) {
      msg.body().data = chunk.data();
      msg.body().size = chunk.size();
      bhttp::read(socket, buffer, parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        failed = true;
        break;
      }
      std::size_t got = chunk.size() - msg.body().size;
      if (got == 0) continue;
      total += got;
      if (spool_fd < 0 && memory.size() + got > options.in_memory_body_limit) {
        spool = options.spool_dir / ("body-" + req.request_id);
        spool_fd = ::open(spool.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (spool_fd < 0 || ::write(spool_fd, memory.data(), memory.size()) !=
                                static_cast<ssize_t>(memory.size())) {
          failed = true;
          break;
        }
        memory.clear();
        memory.shrink_to_fit();
      }
      if (spool_fd >= 0) {
        if (::write(spool_fd, chunk.data(), got) != static_cast<ssize_t>(got)) {
          failed = true;
          break;
        }
      } else {
        memory.append(chunk.data(), got);
      }
    }
    if (spool_fd >= 0) ::close(spool_fd);
    if (failed) {
      if (!spool.empty()) ::unlink(spool.c_str());
      if (ec == bhttp::error::body_limit) {
        WriteResponse(socket, PlainError(413, "request body too large"), false, is_head, version);
      }
      return;
    }
    req.body = spool.empty() ? RequestBody::InMemory(std::move(memory))
                             : RequestBody::Spooled(spool, total);

    Response res;
    try {
      res = handlers.handle(req);
    } catch (const std::exception& e) {
      spdlog::error("request {} {} failed: {}", req.method, req.target, e.what());
      res = PlainError(500, "internal error");
    }
    req.body = RequestBody();  // removes a spooled body before the client hears back
    if (!WriteResponse(socket, res, keep_alive, is_head, version) || !keep_alive) {
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
  }
}

}  // namespace hearth::http
