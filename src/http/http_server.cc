#include "http/http_server.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
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

// A request's head and a small body arrive in one read; a large body is read in bigger steps.
constexpr std::size_t kSmallRead = 16 * 1024;
constexpr std::size_t kLargeRead = 64 * 1024;  // Beast reads at most this much at a time

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
  if (const std::string* auth = req->headers.Find("authorization")) {
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

// Collects a request body: in memory while it is small, in a spool file once it grows past
// the in-memory limit.
class BodyCollector {
 public:
  BodyCollector(const HttpServerOptions& options, const std::string& request_id)
      : options_(options), request_id_(request_id) {}
  ~BodyCollector() {
    if (fd_ >= 0) ::close(fd_);
    if (!spool_.empty()) ::unlink(spool_.c_str());
  }
  BodyCollector(const BodyCollector&) = delete;
  BodyCollector& operator=(const BodyCollector&) = delete;

  void Expect(std::uint64_t length) {
    if (length <= options_.in_memory_body_limit) memory_.reserve(length);
  }

  // False when the spool file cannot be written.
  bool Append(std::string_view data) {
    total_ += data.size();
    if (fd_ < 0 && memory_.size() + data.size() > options_.in_memory_body_limit) {
      spool_ = options_.spool_dir / ("body-" + request_id_);
      fd_ = ::open(spool_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd_ < 0 || !WriteAll(memory_)) return false;
      memory_.clear();
      memory_.shrink_to_fit();
    }
    if (fd_ >= 0) return WriteAll(data);
    memory_.append(data);
    return true;
  }

  // The body; the collector no longer owns the spool file.
  RequestBody Finish() {
    if (fd_ < 0) return RequestBody::InMemory(std::move(memory_));
    ::close(fd_);
    fd_ = -1;
    return RequestBody::Spooled(std::exchange(spool_, {}), total_);
  }

 private:
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  const HttpServerOptions& options_;
  const std::string& request_id_;
  std::string memory_;
  std::filesystem::path spool_;
  int fd_ = -1;
  std::uint64_t total_ = 0;
};

// Fills a Request straight from Beast's parser: no intermediate Beast message, whose fields
// would be allocated one by one and then copied again.
class RequestParser : public bhttp::basic_parser<true> {
 public:
  RequestParser(Request* request, BodyCollector* body) : request_(*request), body_(*body) {}

  unsigned version() const { return version_; }
  bool is_head() const { return method_ == bhttp::verb::head; }
  // The spool file could not be written.
  bool body_failed() const { return body_failed_; }

 private:
  void on_request_impl(bhttp::verb method, beast::string_view method_str, beast::string_view target,
                       int version, beast::error_code&) override {
    method_ = method;
    version_ = static_cast<unsigned>(version);
    request_.method.assign(method_str.data(), method_str.size());
    request_.target.assign(target.data(), target.size());
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(bhttp::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    request_.headers.Add(std::string_view(name.data(), name.size()),
                         std::string_view(value.data(), value.size()));
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (length) body_.Expect(*length);
  }
  std::size_t on_body_impl(beast::string_view data, beast::error_code& ec) override {
    return Take(data, ec);
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code& ec) override {
    return Take(data, ec);
  }
  void on_finish_impl(beast::error_code&) override {}

  std::size_t Take(beast::string_view data, beast::error_code& ec) {
    if (!body_.Append(std::string_view(data.data(), data.size()))) {
      body_failed_ = true;
      ec = boost::system::errc::make_error_code(boost::system::errc::io_error);
      return 0;
    }
    return data.size();
  }

  Request& request_;
  BodyCollector& body_;
  bhttp::verb method_ = bhttp::verb::unknown;
  unsigned version_ = 11;
  bool body_failed_ = false;
};

// "Date: <IMF-fixdate>\r\n", formatted once a second per thread.
std::string_view DateLine() {
  thread_local std::int64_t second = -1;
  thread_local std::string line;
  const std::int64_t now = NowMillis() / 1000;
  if (now != second) {
    second = now;
    line = "Date: " + FormatHttpDate(now * 1000) + "\r\n";
  }
  return line;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The status line and headers of `res`, as Beast would have written them: the handler's
// headers, then Date, Server, Connection when it is not the version's default, and
// Content-Length when `content_length` is set. Framing headers are the server's own.
void AppendHead(const Response& res, unsigned version, bool keep_alive,
                std::optional<std::uint64_t> content_length, std::string* out) {
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(res.status));
  const int status = std::clamp(res.status, 0, 999);
  char line[] = "HTTP/1.1 000 ";
  line[5] = static_cast<char>('0' + version / 10 % 10);
  line[7] = static_cast<char>('0' + version % 10);
  line[9] = static_cast<char>('0' + status / 100);
  line[10] = static_cast<char>('0' + status / 10 % 10);
  line[11] = static_cast<char>('0' + status % 10);
  out->append(line, sizeof(line) - 1).append(reason.data(), reason.size()).append("\r\n");
  for (const auto& [name, value] : res.headers) {
    if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") ||
        IEquals(name, "connection") || IEquals(name, "date") || IEquals(name, "server")) {
      continue;
    }
    out->append(name).append(": ").append(value).append("\r\n");
  }
  out->append(DateLine());
  out->append("Server: Hearth\r\n");
  if (!keep_alive && version >= 11) out->append("Connection: close\r\n");
  if (keep_alive && version < 11) out->append("Connection: keep-alive\r\n");
  if (content_length) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof(digits), *content_length).ptr;
    out->append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out->append("\r\n");
}

// Sends all of `a` then `b` in as few system calls as the socket allows.
bool SendAll(int fd, std::string_view a, std::string_view b = {}) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  int first = a.empty() ? 1 : 0;
  const int count = b.empty() ? 1 : 2;
  while (first < count) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = static_cast<std::size_t>(count - first);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    auto left = static_cast<std::size_t>(n);
    while (first < count && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

// A handler may end the connection after its response with "Connection: close".
bool AsksToClose(const Response& res) {
  return std::any_of(res.headers.begin(), res.headers.end(), [](const auto& h) {
    return IEquals(h.first, "connection") && IEquals(h.second, "close");
  });
}

// Writes `res` to the socket. Returns false if the connection must close. `head` is scratch
// space, kept by the connection so that its capacity is reused.
bool WriteResponse(int fd, const Response& res, bool keep_alive, bool is_head, unsigned version,
                   std::string* head) {
  head->clear();
  if (res.file) {
    if (!res.file->fd || !res.file->fd->valid()) return false;
    AppendHead(res, version, keep_alive, res.file->length, head);
    if (!SendAll(fd, *head)) return false;
    off_t offset = static_cast<off_t>(res.file->offset);
    std::uint64_t left = res.file->length;
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 30));
      ssize_t n = ::sendfile(fd, res.file->fd->get(), &offset, want);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // an error, or the file is shorter than promised
      left -= static_cast<std::uint64_t>(n);
    }
    return true;
  }
  if (is_head || res.head_content_length) {
    AppendHead(res, version, keep_alive, res.head_content_length.value_or(res.body.size()), head);
    return SendAll(fd, *head);
  }
  // These statuses have no body, and so no Content-Length (RFC 9110 8.6).
  const bool bodiless = res.status / 100 == 1 || res.status == 204 || res.status == 304;
  AppendHead(res, version, keep_alive,
             bodiless ? std::nullopt : std::optional<std::uint64_t>(res.body.size()), head);
  return SendAll(fd, *head, bodiless ? std::string_view() : std::string_view(res.body));
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
  impl_->conn_cv.wait_for(lock, std::chrono::seconds(30),
                          [&] { return impl_->open_sockets.empty() && impl_->live_threads == 0; });
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
  const int fd = socket.native_handle();
  // Kept across the connection's requests: bytes read ahead, and the response head's buffer.
  beast::flat_buffer buffer;
  buffer.reserve(kSmallRead);
  std::string head;
  while (true) {
    Request req;
    BodyCollector body(options, req.request_id);
    RequestParser parser(&req, &body);
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    bhttp::read_header(socket, buffer, parser, ec);
    if (ec) return;  // closed by the client, or garbage: nothing useful to answer
    const unsigned version = parser.version();
    const bool is_head = parser.is_head();
    const bool keep_alive = parser.keep_alive();
    req.request_id = NewUuid();
    if (!ParseTarget(req.target, &req)) {
      WriteResponse(fd, PlainError(400, "malformed request target"), false, is_head, version,
                    &head);
      return;
    }
    AttachCredential(&req);

    if (handlers.precheck) {
      if (auto refusal = handlers.precheck(req)) {
        // The body was not read: the connection cannot be reused.
        refusal->SetHeader("Connection", "close");
        WriteResponse(fd, *refusal, false, is_head, version, &head);
        return;
      }
    }
    if (const std::string* expect = req.headers.Find("expect");
        expect != nullptr && beast::iequals(*expect, "100-continue")) {
      if (!SendAll(fd, version < 11 ? "HTTP/1.0 100 Continue\r\n\r\n"
                                    : "HTTP/1.1 100 Continue\r\n\r\n")) {
        return;
      }
    }

    // The body goes to memory while it is small, to a spool file once it grows.
    if (!parser.is_done()) {
      if (!parser.content_length() || *parser.content_length() > buffer.capacity()) {
        buffer.reserve(kLargeRead);
      }
      bhttp::read(socket, buffer, parser, ec);
      if (ec) {
        if (ec == bhttp::error::body_limit && !parser.body_failed()) {
          WriteResponse(fd, PlainError(413, "request body too large"), false, is_head, version,
                        &head);
        }
        return;
      }
    }
    req.body = body.Finish();

    Response res;
    try {
      res = handlers.handle(req);
    } catch (const std::exception& e) {
      spdlog::error("request {} {} failed: {}", req.method, req.target, e.what());
      res = PlainError(500, "internal error");
    }
    req.body = RequestBody();  // removes a spooled body before the client hears back
    const bool keep = keep_alive && !AsksToClose(res);
    if (!WriteResponse(fd, res, keep, is_head, version, &head) || !keep) {
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
  }
}

}  // namespace hearth::http
