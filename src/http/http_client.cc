#include "http/http_client.h"

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/fs.h"

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using std::chrono::microseconds;
using std::chrono::steady_clock;

namespace {

// A blocking socket. Timeouts are the socket's own SO_RCVTIMEO / SO_SNDTIMEO, so that a call
// costs one system call per read or write; they are changed only when a call's deadline needs
// it (see Arm).
struct KeptSocket {
  OwnedFd fd;
  beast::flat_buffer buffer;        // bytes read ahead of the next response (none, normally)
  std::string head;                 // scratch for the request head, reused across requests
  microseconds receive_timeout{0};  // as set on the socket; 0: none
  microseconds send_timeout{0};

  // A kept connection the peer has closed (or sent something unasked on) reads as ready:
  // it must not carry a request.
  bool LooksAlive() {
    if (buffer.size() > 0) return false;
    pollfd p{fd.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  // Makes the socket's timeout `option` end a blocked call by `deadline`, give or take 1/64 of
  // the time left (so that calls with the same timeout need not set it each time). False when
  // the deadline has passed. `expired` says the last call timed out before the deadline (an
  // earlier, shorter timeout): the timeout is then set to exactly what is left.
  bool Arm(int option, microseconds* current, steady_clock::time_point deadline, bool expired) {
    const auto left = std::chrono::duration_cast<microseconds>(deadline - steady_clock::now());
    if (left < microseconds(1)) return false;
    const microseconds slack = left / 64 + microseconds(1000);
    if (!expired && current->count() != 0 && *current <= left + slack) return true;
    timeval tv{.tv_sec = static_cast<time_t>(left.count() / 1000000),
               .tv_usec = static_cast<suseconds_t>(left.count() % 1000000)};
    if (::setsockopt(fd.get(), SOL_SOCKET, option, &tv, sizeof(tv)) != 0) return false;
    *current = left;
    return true;
  }
};

std::string Where(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

beast::error_code LastError() { return beast::error_code(errno, boost::system::system_category()); }

// Beast's SyncReadStream over a connection, failing with beast::error::timeout at `deadline`.
class DeadlineReader {
 public:
  DeadlineReader(KeptSocket* c, steady_clock::time_point deadline) : c_(*c), deadline_(deadline) {}

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    ec = {};
    asio::mutable_buffer b;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      b = *it;
      if (b.size() > 0) break;
    }
    if (b.size() == 0) return 0;
    bool expired = false;
    while (true) {
      if (!c_.Arm(SO_RCVTIMEO, &c_.receive_timeout, deadline_, expired)) {
        ec = beast::error::timeout;
        return 0;
      }
      const ssize_t n = ::recv(c_.fd.get(), b.data(), b.size(), 0);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        expired = true;
        continue;
      }
      ec = LastError();
      return 0;
    }
  }

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  KeptSocket& c_;
  const steady_clock::time_point deadline_;
};

// Fills a ClientResponse straight from Beast's parser, without an intermediate message.
class ResponseParser : public bhttp::basic_parser<false> {
 public:
  explicit ResponseParser(ClientResponse* out) : out_(*out) {}

 private:
  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    out_.status = code;
  }
  void on_field_impl(bhttp::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    out_.headers.Add(std::string_view(name.data(), name.size()),
                     std::string_view(value.data(), value.size()));
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    // A bound on what is reserved up front: the length is the peer's claim.
    if (length)
      out_.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, 8 << 20)));
  }
  std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  ClientResponse& out_;
};

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The request head as Beast would write it: Host unless the request sets its own, the
// request's headers (a repeated name: the last one), and Content-Length when there is a body
// or the method expects one.
void AppendHead(const ClientRequest& request, std::string_view host, std::string* out) {
  out->append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  const auto& headers = request.headers;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding")) continue;
    bool repeated = false;
    for (std::size_t j = i + 1; j < headers.size() && !repeated; ++j) {
      repeated = IEquals(headers[j].first, name);
    }
    if (repeated) continue;
    has_host = has_host || IEquals(name, "host");
    out->append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) out->append("Host: ").append(host).append("\r\n");
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "OPTIONS") {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof(digits), request.body.size()).ptr;
    out->append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out->append("\r\n");
}

// Sends the head and the body; beast::error::timeout at `deadline`.
beast::error_code SendRequest(KeptSocket& c, std::string_view body,
                              steady_clock::time_point deadline) {
  iovec iov[2] = {{c.head.data(), c.head.size()}, {const_cast<char*>(body.data()), body.size()}};
  int first = 0;
  const int count = body.empty() ? 1 : 2;
  bool expired = false;
  while (first < count) {
    if (!c.Arm(SO_SNDTIMEO, &c.send_timeout, deadline, expired)) return beast::error::timeout;
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = static_cast<std::size_t>(count - first);
    const ssize_t n = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        expired = true;
        continue;
      }
      return LastError();
    }
    expired = false;
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
  return {};
}

}  // namespace

struct ConnectionPool::Connection : KeptSocket {};

ConnectionPool::ConnectionPool(std::string host, std::uint16_t port, std::size_t max_idle)
    : host_(std::move(host)), port_(port), max_idle_(max_idle), where_(Where(host_, port_)) {}

ConnectionPool::~ConnectionPool() = default;

Result<std::unique_ptr<ConnectionPool::Connection>> ConnectionPool::Connect(
    std::chrono::milliseconds timeout) const {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host_ == "localhost" ? "127.0.0.1" : host_, ec);
  if (ec) return InvalidArgument("not an IP address: " + host_);
  const tcp::endpoint endpoint(address, port_);
  auto connection = std::make_unique<Connection>();
  // Non-blocking while connecting, for the timeout; blocking afterwards.
  connection->fd = OwnedFd(
      ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const int fd = connection->fd.get();
  auto unavailable = [&](const char* what) {
    const int error = errno;
    return Status(StatusCode::kUnavailable,
                  "cannot connect to " + where_ + ": " + what + std::strerror(error));
  };
  if (fd < 0) return unavailable("socket: ");
  if (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
    if (errno != EINPROGRESS) return unavailable("");
    pollfd p{fd, POLLOUT, 0};
    int ready = 0;
    do {
      ready = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(timeout.count(), INT32_MAX)));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
      return Status(StatusCode::kDeadlineExceeded, "connecting to " + where_ + " timed out");
    }
    int error = 0;
    socklen_t length = sizeof(error);
    if (ready < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
      return unavailable("");
    }
    if (error != 0) {
      errno = error;
      return unavailable("");
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  // A request and its answer are single small writes: never wait to coalesce them.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  connection->buffer.reserve(16 * 1024);
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
  const auto deadline = steady_clock::now() + timeout;
  // A reused connection may have been closed by the peer while it sat idle; the request then
  // goes once more on a fresh connection, as curl does, when nothing of a response came back.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> connection;
    // The most recently used idle connection; checked outside the lock (a system call), so
    // that concurrent callers do not queue behind it.
    while (connection == nullptr) {
      {
        std::lock_guard lock(mu_);
        if (idle_.empty()) break;
        connection = std::move(idle_.back());
        idle_.pop_back();
      }
      if (!connection->LooksAlive()) connection.reset();
    }
    const bool reused = connection != nullptr;
    if (!reused) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
      ASSIGN_OR_RETURN(connection, Connect(std::max(left, std::chrono::milliseconds(1))));
    }

    connection->head.clear();
    AppendHead(request, where_, &connection->head);
    beast::error_code ec = SendRequest(*connection, request.body, deadline);
    if (ec == beast::error::timeout) {
      return Status(StatusCode::kDeadlineExceeded, "sending to " + where_ + " timed out");
    }
    if (ec) {
      if (reused && attempt == 0) continue;
      return Status(StatusCode::kUnavailable, "sending to " + where_ + " failed: " + ec.message());
    }

    ClientResponse out;
    ResponseParser parser(&out);
    // No limit (the caller's own limits apply). Not boost::none: Boost 1.74's parser then
    // refuses any body that arrives after the header ("body limit exceeded").
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    DeadlineReader reader(connection.get(), deadline);
    bhttp::read(reader, connection->buffer, parser, ec);
    if (ec == beast::error::timeout) {
      return Status(StatusCode::kDeadlineExceeded, "no response from " + where_ + " within " +
                                                       std::to_string(timeout.count()) + " ms");
    }
    if (ec) {
      if (reused && attempt == 0 && !parser.got_some()) continue;
      return Status(StatusCode::kAborted, "the connection to " + where_ +
                                              " broke before a whole response: " + ec.message());
    }
    if (parser.keep_alive()) Release(std::move(connection));
    return out;
  }
}

}  // namespace hearth::http
