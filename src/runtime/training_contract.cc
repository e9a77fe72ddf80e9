#include "runtime/training_contract.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <system_error>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace hearth::runtime {

namespace fs = std::filesystem;
using storage::ObjectReader;
using storage::ObjectStore;
using storage::ObjectWriter;
using storage::S3Location;

namespace {

constexpr std::size_t kChunkBytes = 1 << 20;
constexpr char kGroupName[] = "homogeneousCluster";

Status ErrnoStatus(const std::string& what, const fs::path& path) {
  return Internal(what + " " + path.string() + ": " + std::strerror(errno));
}

Status MakeDirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("mkdir " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

// SageMaker's ChannelName pattern, which also keeps channel names from escaping input/data.
bool ValidChannelName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// A key suffix as a relative path; rejects "." and ".." components so that no key can write
// outside the directory it is staged into. Empty components ("a//b") are dropped.
Result<fs::path> SafeRelativePath(std::string_view rel, std::string_view key) {
  fs::path out;
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t slash = rel.find('/', start);
    std::string_view part =
        rel.substr(start, slash == std::string_view::npos ? rel.npos : slash - start);
    if (part == "." || part == "..") {
      return InvalidArgument("object key '" + std::string(key) + "' has a '.' or '..' component");
    }
    if (!part.empty()) out /= std::string(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (out.empty()) return InvalidArgument("object key '" + std::string(key) + "' names no file");
  return out;
}

// The key prefix up to and including its last '/': what staged paths are relative to.
std::string DirectoryOf(std::string_view key) {
  std::size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash + 1));
}

// Every key under `prefix`, following pagination; directory markers ("a/") left out.
Result<std::vector<std::string>> ListAllKeys(ObjectStore& store, const std::string& bucket,
                                             const std::string& prefix) {
  std::vector<std::string> keys;
  storage::ListOptions options;
  options.prefix = prefix;
  while (true) {
    ASSIGN_OR_RETURN(storage::ListResult page, store.List(bucket, options));
    for (const storage::ObjectInfo& o : page.objects) {
      if (!o.key.empty() && o.key.back() != '/') keys.push_back(o.key);
    }
    if (!page.truncated || page.last_returned.empty()) break;
    options.start_after = page.last_returned;
  }
  return keys;
}

struct Manifest {
  S3Location prefix;
  std::vector<std::string> entries;  // keys relative to prefix.key
};

// [{"prefix": "s3://bucket/p/"}, "rel/key1", "rel/key2", ...]
Result<Manifest> ReadManifest(ObjectStore& store, const ChannelSpec& channel,
                              const S3Location& where) {
  Result<std::string> text = store.GetObject(where.bucket, where.key);
  if (!text.ok()) {
    return Status(text.status().code(),
                  "channel '" + channel.name + "': cannot read manifest " + channel.s3_uri + ": " +
                      text.status().message(),
                  text.status().reason());
  }
  auto bad = [&](const std::string& why) {
    return InvalidArgument("channel '" + channel.name + "': manifest " + channel.s3_uri + " " +
                           why);
  };
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty()) return bad("is not a non-empty JSON array");
  if (!j[0].is_object() || !j[0].contains("prefix") || !j[0]["prefix"].is_string()) {
    return bad("must start with {\"prefix\": \"s3://bucket/prefix/\"}");
  }
  Result<S3Location> prefix = storage::ParseS3Uri(j[0]["prefix"].get<std::string>());
  if (!prefix.ok()) return bad("has a bad prefix: " + prefix.status().message());
  Manifest m{*prefix, {}};
  for (std::size_t i = 1; i < j.size(); ++i) {
    if (!j[i].is_string()) return bad("entry " + std::to_string(i) + " is not a string");
    m.entries.push_back(j[i].get<std::string>());
  }
  return m;
}

// Where staged paths of `channel` are relative to: the S3 prefix's directory, or for a manifest
// its "prefix"'s directory.
Result<std::string> StagingBase(ObjectStore& store, const ChannelSpec& channel) {
  ASSIGN_OR_RETURN(S3Location loc, storage::ParseS3Uri(channel.s3_uri));
  if (channel.s3_data_type == "ManifestFile") {
    ASSIGN_OR_RETURN(Manifest m, ReadManifest(store, channel, loc));
    return DirectoryOf(m.prefix.key);
  }
  return DirectoryOf(loc.key);
}

// An object's bytes in chunks; with `gunzip`, its gzip-decompressed bytes (libarchive's raw
// format behind its gzip filter, fed straight from the reader).
class ObjectStream {
 public:
  static Result<std::unique_ptr<ObjectStream>> Open(ObjectStore& store, const S3Location& loc,
                                                    bool gunzip) {
    ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, store.OpenForRead(loc.bucket, loc.key));
    std::unique_ptr<ObjectStream> s(new ObjectStream(std::move(reader), loc));
    if (gunzip) RETURN_IF_ERROR(s->OpenGunzip());
    return s;
  }

  ~ObjectStream() {
    if (archive_) archive_read_free(archive_);
  }

  // Replaces *out with the next chunk; an empty chunk means the end.
  Status Next(std::string* out) {
    out->clear();
    if (eof_) return Status::Ok();
    if (!archive_) {
      RETURN_IF_ERROR(reader_->ReadAt(offset_, kChunkBytes, out));
      offset_ += out->size();
      eof_ = out->empty();
      return Status::Ok();
    }
    out->resize(kChunkBytes);
    la_ssize_t n = archive_read_data(archive_, out->data(), out->size());
    if (n < 0) return ArchiveError("decompress");
    out->resize(static_cast<std::size_t>(n));
    eof_ = n == 0;
    return Status::Ok();
  }

  const S3Location& location() const { return loc_; }

 private:
  ObjectStream(std::unique_ptr<ObjectReader> reader, S3Location loc)
      : reader_(std::move(reader)), loc_(std::move(loc)) {}

  Status OpenGunzip() {
    archive_ = archive_read_new();
    if (!archive_) return Internal("archive_read_new failed");
    archive_read_support_filter_gzip(archive_);
    archive_read_support_format_raw(archive_);
    archive_read_support_format_empty(archive_);
    if (archive_read_open(archive_, this, nullptr, &ObjectStream::ReadCallback, nullptr) !=
        ARCHIVE_OK) {
      return ArchiveError("open");
    }
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(archive_, &entry);
    if (rc == ARCHIVE_EOF) {
      eof_ = true;
    } else if (rc != ARCHIVE_OK) {
      return ArchiveError("read");
    }
    // Only the gzip filter is enabled, so any filter besides the implicit "none" is gzip.
    if (archive_filter_count(archive_) < 2) {
      return InvalidArgument("object s3://" + loc_.bucket + "/" + loc_.key +
                             " is not gzip data, but its channel says CompressionType Gzip");
    }
    return Status::Ok();
  }

  static la_ssize_t ReadCallback(struct archive* a, void* self_ptr, const void** buffer) {
    auto* self = static_cast<ObjectStream*>(self_ptr);
    Status s = self->reader_->ReadAt(self->offset_, kChunkBytes, &self->raw_);
    if (!s.ok()) {
      self->read_error_ = s;
      archive_set_error(a, EIO, "%s", s.message().c_str());
      return -1;
    }
    self->offset_ += self->raw_.size();
    *buffer = self->raw_.data();
    return static_cast<la_ssize_t>(self->raw_.size());
  }

  Status ArchiveError(const std::string& what) {
    if (!read_error_.ok()) return read_error_;
    const char* msg = archive_ ? archive_error_string(archive_) : nullptr;
    return InvalidArgument("cannot " + what + " gzip object s3://" + loc_.bucket + "/" + loc_.key +
                           ": " + (msg ? msg : "unknown error"));
  }

  std::unique_ptr<ObjectReader> reader_;
  S3Location loc_;
  std::uint64_t offset_ = 0;
  std::string raw_;
  struct archive* archive_ = nullptr;
  bool eof_ = false;
  Status read_error_;
};

Status CopyStreamToFile(ObjectStream& in, const fs::path& dest) {
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", dest);
  std::string chunk;
  while (true) {
    Status s = in.Next(&chunk);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
    if (chunk.empty()) break;
    if (!WriteAllToFd(fd, chunk)) {
      Status w = ErrnoStatus("write", dest);
      ::close(fd);
      return w;
    }
  }
  if (::close(fd) != 0) return ErrnoStatus("close", dest);
  return Status::Ok();
}

// Regular files and directories under `dir`, relative, in path order. Symlinks and special
// files are left out: `dir` was written by the training process, and following a link would
// let it read any host file with the server's rights.
Result<std::vector<fs::path>> ListTree(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> out;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return NotFound("cannot read directory " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Internal("cannot walk " + dir.string() + ": " + ec.message());
    fs::file_status st = it->symlink_status(ec);
    if (ec) continue;  // vanished meanwhile
    if (fs::is_regular_file(st) || fs::is_directory(st)) {
      out.push_back(it->path().lexically_relative(dir));
    }
  }
  if (ec) return Internal("cannot walk " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return a.generic_string() < b.generic_string();
  });
  return out;
}

// A regular file opened without following a symlink at its last component.
int OpenRegularNoFollow(const fs::path& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  if (::fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

// The archive's output sink: every block libarchive produces goes straight to the writer.
struct ArchiveSink {
  ObjectWriter* writer;
  Status error;
};

la_ssize_t ArchiveWriteCallback(struct archive* a, void* sink_ptr, const void* buffer,
                                size_t length) {
  auto* sink = static_cast<ArchiveSink*>(sink_ptr);
  Status s = sink->writer->Append(std::string_view(static_cast<const char*>(buffer), length));
  if (!s.ok()) {
    sink->error = s;
    archive_set_error(a, EIO, "%s", s.message().c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(length);
}

Status AddToArchive(struct archive* a, const fs::path& root, const fs::path& rel) {
  fs::path full = root / rel;
  struct stat st {};
  if (::lstat(full.c_str(), &st) != 0) return ErrnoStatus("stat", full);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, rel.generic_string().c_str());
  archive_entry_set_perm(entry, st.st_mode & 07777);
  archive_entry_set_mtime(entry, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  Status result;
  if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(entry, AE_IFDIR);
    if (archive_write_header(a, entry) != ARCHIVE_OK) {
      result = Internal(std::string("tar header: ") + archive_error_string(a));
    }
    archive_entry_free(entry);
    return result;
  }
  int fd = OpenRegularNoFollow(full, &st);
  if (fd < 0) {
    archive_entry_free(entry);
    return ErrnoStatus("open", full);
  }
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_size(entry, st.st_size);
  if (archive_write_header(a, entry) != ARCHIVE_OK) {
    result = Internal(std::string("tar header: ") + archive_error_string(a));
  }
  archive_entry_free(entry);
  std::string buf(kChunkBytes, '\0');
  // Exactly the size in the header: a file that grows meanwhile is cut, one that shrinks is
  // zero-padded by libarchive.
  off_t left = st.st_size;
  while (result.ok() && left > 0) {
    ssize_t n = ::read(fd, buf.data(), std::min<off_t>(left, static_cast<off_t>(buf.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ErrnoStatus("read", full);
      break;
    }
    if (n == 0) break;
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) < 0) {
      result = Internal(std::string("tar data: ") + archive_error_string(a));
    }
    left -= n;
  }
  ::close(fd);
  if (result.ok() && archive_write_finish_entry(a) != ARCHIVE_OK) {
    result = Internal(std::string("tar entry: ") + archive_error_string(a));
  }
  return result;
}

Status UploadFile(const fs::path& path, ObjectStore& store, const S3Location& dest) {
  struct stat st {};
  int fd = OpenRegularNoFollow(path, &st);
  if (fd < 0) return ErrnoStatus("open", path);
  Result<std::unique_ptr<ObjectWriter>> writer = store.OpenForWrite(dest.bucket, dest.key, {});
  if (!writer.ok()) {
    ::close(fd);
    return writer.status();
  }
  std::string buf(kChunkBytes, '\0');
  Status result;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ErrnoStatus("read", path);
      break;
    }
    if (n == 0) break;
    result = (*writer)->Append(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    if (!result.ok()) break;
  }
  ::close(fd);
  RETURN_IF_ERROR(result);
  return (*writer)->Commit().status();
}

}  // namespace

Status WriteHostLayout(const HostLayout& layout) {
  if (layout.hosts.empty() || std::find(layout.hosts.begin(), layout.hosts.end(),
                                        layout.current_host) == layout.hosts.end()) {
    return InvalidArgument("current host '" + layout.current_host + "' is not among the hosts");
  }
  nlohmann::json data_config = nlohmann::json::object();
  for (const ChannelSpec& c : layout.channels) {
    if (!ValidChannelName(c.name)) {
      return InvalidArgument("Value '" + c.name +
                             "' at 'channelName' failed to satisfy constraint: Member must "
                             "satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+");
    }
    if (data_config.contains(c.name)) {
      return InvalidArgument("channel name '" + c.name + "' is used more than once");
    }
    nlohmann::json entry = nlohmann::json::object();
    if (!c.content_type.empty()) entry["ContentType"] = c.content_type;
    entry["TrainingInputMode"] = c.input_mode;
    entry["S3DistributionType"] = c.distribution;
    entry["RecordWrapperType"] = c.record_wrapper;
    data_config[c.name] = std::move(entry);
  }
  nlohmann::json hyperparameters = nlohmann::json::object();
  for (const auto& [k, v] : layout.hyperparameters) hyperparameters[k] = v;
  nlohmann::json resource_config = {
      {"current_host", layout.current_host},
      {"current_instance_type", layout.instance_type},
      {"current_group_name", kGroupName},
      {"hosts", layout.hosts},
      {"instance_groups", nlohmann::json::array({{{"instance_group_name", kGroupName},
                                                  {"instance_type", layout.instance_type},
                                                  {"hosts", layout.hosts}}})},
      {"network_interface_name", "eth0"}};

  const fs::path& ml = layout.ml_dir;
  for (const char* sub : {"input/config", "input/data", "model", "output/data", "checkpoints"}) {
    RETURN_IF_ERROR(MakeDirs(ml / sub));
  }
  for (const ChannelSpec& c : layout.channels) {
    if (c.input_mode != "Pipe") RETURN_IF_ERROR(MakeDirs(ml / "input/data" / c.name));
  }
  std::string hp_text, dc_text, rc_text;
  try {
    hp_text = hyperparameters.dump();
    dc_text = data_config.dump();
    rc_text = resource_config.dump();
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument("hyperparameters and channel settings must be valid UTF-8");
  }
  // A restarted server writes these again before the job launches, so they need only survive
  // a process crash: no fsync on the job start path.
  constexpr Durability kVolatile = Durability::kSurvivesProcessCrash;
  RETURN_IF_ERROR(WriteFileAtomic(ml / "input/config/hyperparameters.json", hp_text, kVolatile));
  RETURN_IF_ERROR(WriteFileAtomic(ml / "input/config/inputdataconfig.json", dc_text, kVolatile));
  return WriteFileAtomic(ml / "input/config/resourceconfig.json", rc_text, kVolatile);
}

Result<std::vector<S3Location>> ResolveChannelObjects(ObjectStore& store,
                                                      const ChannelSpec& channel) {
  Result<S3Location> where = storage::ParseS3Uri(channel.s3_uri);
  if (!where.ok()) {
    return InvalidArgument("channel '" + channel.name + "': " + where.status().message());
  }
  std::vector<S3Location> out;
  if (channel.s3_data_type == "S3Prefix") {
    Result<std::vector<std::string>> keys = ListAllKeys(store, where->bucket, where->key);
    if (!keys.ok()) {
      return Status(keys.status().code(),
                    "channel '" + channel.name + "': cannot list " + channel.s3_uri + ": " +
                        keys.status().message(),
                    keys.status().reason());
    }
    for (std::string& k : *keys) out.push_back({where->bucket, std::move(k)});
  } else if (channel.s3_data_type == "ManifestFile") {
    ASSIGN_OR_RETURN(Manifest m, ReadManifest(store, channel, *where));
    for (const std::string& e : m.entries) out.push_back({m.prefix.bucket, m.prefix.key + e});
  } else {
    return InvalidArgument("channel '" + channel.name + "': S3DataType '" + channel.s3_data_type +
                           "' is not supported (S3Prefix, ManifestFile)");
  }
  if (out.empty()) {
    return NotFound("channel '" + channel.name + "': no S3 objects found under " + channel.s3_uri);
  }
  return out;
}

std::vector<S3Location> ShareForHost(const std::vector<S3Location>& objects,
                                     const ChannelSpec& channel, int host_index, int host_count) {
  if (channel.distribution != "ShardedByS3Key" || host_count <= 1) return objects;
  std::vector<S3Location> share;
  for (std::size_t i = static_cast<std::size_t>(std::max(host_index, 0)); i < objects.size();
       i += static_cast<std::size_t>(host_count)) {
    share.push_back(objects[i]);
  }
  return share;
}

Status StageFileChannel(ObjectStore& store, const ChannelSpec& channel,
                        const std::vector<S3Location>& objects, const fs::path& ml_dir) {
  if (!ValidChannelName(channel.name)) {
    return InvalidArgument("invalid channel name '" + channel.name + "'");
  }
  fs::path channel_dir = ml_dir / "input" / "data" / channel.name;
  RETURN_IF_ERROR(MakeDirs(channel_dir));
  ASSIGN_OR_RETURN(std::string base, StagingBase(store, channel));
  bool gzip = channel.compression == "Gzip";
  for (const S3Location& obj : objects) {
    std::string_view rel(obj.key);
    if (rel.starts_with(base)) rel.remove_prefix(base.size());
    ASSIGN_OR_RETURN(fs::path rel_path, SafeRelativePath(rel, obj.key));
    if (gzip && rel_path.extension() == ".gz") rel_path.replace_extension();
    fs::path dest = channel_dir / rel_path;
    RETURN_IF_ERROR(MakeDirs(dest.parent_path()));
    auto in_channel = [&](const Status& s) {
      return Status(
          s.code(),
          "channel '" + channel.name + "': s3://" + obj.bucket + "/" + obj.key + ": " + s.message(),
          s.reason());
    };
    if (gzip) {
      Result<std::unique_ptr<ObjectStream>> in = ObjectStream::Open(store, obj, true);
      if (!in.ok()) return in_channel(in.status());
      Status s = CopyStreamToFile(**in, dest);
      if (!s.ok()) return in_channel(s);
    } else {
      Result<std::unique_ptr<ObjectReader>> reader = store.OpenForRead(obj.bucket, obj.key);
      if (!reader.ok()) return in_channel(reader.status());
      Status s = (*reader)->CopyTo(dest);
      if (!s.ok()) return in_channel(s);
    }
  }
  return Status::Ok();
}

PipeFeeder::PipeFeeder(ObjectStore& store, ChannelSpec channel, std::vector<S3Location> objects,
                       fs::path ml_dir, int max_epochs)
    : store_(store),
      channel_(std::move(channel)),
      objects_(std::move(objects)),
      ml_dir_(std::move(ml_dir)),
      max_epochs_(max_epochs) {}

PipeFeeder::~PipeFeeder() { Stop(); }

fs::path PipeFeeder::FifoPath(int epoch) const {
  return ml_dir_ / "input" / "data" / (channel_.name + "_" + std::to_string(epoch));
}

Status PipeFeeder::MakeFifo(int epoch) const {
  fs::path path = FifoPath(epoch);
  ::unlink(path.c_str());  // a stale FIFO or file from an earlier attempt
  if (::mkfifo(path.c_str(), 0666) != 0) return ErrnoStatus("mkfifo", path);
  return Status::Ok();
}

Status PipeFeeder::Start() {
  if (!ValidChannelName(channel_.name)) {
    return InvalidArgument("invalid channel name '" + channel_.name + "'");
  }
  if (thread_.joinable()) return FailedPrecondition("PipeFeeder already started");
  if (max_epochs_ <= 0) return Status::Ok();
  RETURN_IF_ERROR(MakeDirs(ml_dir_ / "input" / "data"));
  RETURN_IF_ERROR(MakeFifo(0));
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void PipeFeeder::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Status PipeFeeder::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void PipeFeeder::Fail(const Status& s) {
  spdlog::warn("pipe channel '{}': {}", channel_.name, s.ToString());
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = s;
}

namespace {

enum class FeedResult { kDone, kReaderGone, kStopped, kFailed };

// Waits for `fd` to be writable, waking every 100 ms to look at `stop`.
bool WaitWritable(int fd, const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{fd, POLLOUT, 0};
    int rc = ::poll(&p, 1, 100);
    if (rc > 0) return true;  // POLLERR (reader gone) also ends the wait; write() reports it
    if (rc < 0 && errno != EINTR) return false;
  }
  return false;
}

}  // namespace

void PipeFeeder::Run() {
  // A reader that closes early must not kill the server: block SIGPIPE in this thread and take
  // EPIPE from write() instead. The pending SIGPIPE is consumed below.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  auto drain_sigpipe = [&] {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  };
  bool gzip = channel_.compression == "Gzip";

  for (int epoch = 0; epoch < max_epochs_ && !stop_; ++epoch) {
    fs::path path = FifoPath(epoch);
    // Opening a FIFO for writing without a reader fails with ENXIO when non-blocking: poll it,
    // so that Stop() is honoured while no one reads.
    int fd = -1;
    while (!stop_) {
      fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0 || errno != ENXIO) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      Fail(ErrnoStatus("open", path));
      return;
    }

    FeedResult result = FeedResult::kDone;
    std::string chunk;
    for (const S3Location& obj : objects_) {
      Result<std::unique_ptr<ObjectStream>> in = ObjectStream::Open(store_, obj, gzip);
      if (!in.ok()) {
        Fail(in.status());
        result = FeedResult::kFailed;
        break;
      }
      while (result == FeedResult::kDone) {
        Status s = (*in)->Next(&chunk);
        if (!s.ok()) {
          Fail(s);
          result = FeedResult::kFailed;
          break;
        }
        if (chunk.empty()) break;
        std::string_view left(chunk);
        while (!left.empty()) {
          ssize_t n = ::write(fd, left.data(), left.size());
          if (n >= 0) {
            left.remove_prefix(static_cast<std::size_t>(n));
          } else if (errno == EAGAIN) {
            if (!WaitWritable(fd, stop_)) {
              result = FeedResult::kStopped;
              break;
            }
          } else if (errno == EPIPE) {
            drain_sigpipe();
            result = FeedResult::kReaderGone;  // closed early: allowed, the epoch ends
            break;
          } else if (errno != EINTR) {
            Fail(ErrnoStatus("write", path));
            result = FeedResult::kFailed;
            break;
          }
        }
      }
      if (result != FeedResult::kDone) break;
    }
    if (result == FeedResult::kStopped || result == FeedResult::kFailed) {
      // The reader must not take a cut-short stream for a whole epoch: the FIFO stays open
      // until Stop(), and error() says why.
      while (result == FeedResult::kFailed && !stop_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      ::close(fd);
      return;
    }
    // The next epoch's FIFO exists before this one reports EOF, so a reader moving on at once
    // finds it.
    if (epoch + 1 < max_epochs_) {
      Status s = MakeFifo(epoch + 1);
      if (!s.ok()) {
        Fail(s);
        ::close(fd);
        return;
      }
    }
    ::close(fd);
    ::unlink(path.c_str());
  }
}

Status PackDirectoryToObject(const fs::path& dir, ObjectStore& store, const S3Location& dest) {
  ASSIGN_OR_RETURN(std::vector<fs::path> entries, ListTree(dir));
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer,
                   store.OpenForWrite(dest.bucket, dest.key, {}));
  ArchiveSink sink{writer.get(), Status::Ok()};
  struct archive* a = archive_write_new();
  if (!a) return Internal("archive_write_new failed");
  auto fail = [&](const std::string& what) {
    Status s = sink.error.ok()
                   ? Internal(what + ": " +
                              (archive_error_string(a) ? archive_error_string(a) : "unknown error"))
                   : sink.error;
    archive_write_free(a);
    return s;
  };
  if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
    return fail("configure tar.gz writer");
  }
  if (archive_write_open(a, &sink, nullptr, &ArchiveWriteCallback, nullptr) != ARCHIVE_OK) {
    return fail("open tar.gz writer");
  }
  for (const fs::path& rel : entries) {
    Status s = AddToArchive(a, dir, rel);
    if (!s.ok()) {
      archive_write_free(a);
      return sink.error.ok() ? s : sink.error;
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK) return fail("finish tar.gz");
  archive_write_free(a);
  return writer->Commit().status();
}

Status DownloadPrefix(ObjectStore& store, const S3Location& src, const fs::path& dir) {
  // A prefix names a directory: "s3://b/ckpt" must not pick up "ckpt2/...".
  std::string prefix = src.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  ASSIGN_OR_RETURN(std::vector<std::string> keys, ListAllKeys(store, src.bucket, prefix));
  RETURN_IF_ERROR(MakeDirs(dir));
  for (const std::string& key : keys) {
    ASSIGN_OR_RETURN(fs::path rel,
                     SafeRelativePath(std::string_view(key).substr(prefix.size()), key));
    fs::path dest = dir / rel;
    RETURN_IF_ERROR(MakeDirs(dest.parent_path()));
    ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, store.OpenForRead(src.bucket, key));
    RETURN_IF_ERROR(reader->CopyTo(dest));
  }
  return Status::Ok();
}

Status UploadDirectory(const fs::path& dir, ObjectStore& store, const S3Location& dest,
                       UploadedFiles* uploaded) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<fs::path> entries, ListTree(dir));
  std::string prefix = dest.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  for (const fs::path& rel : entries) {
    fs::path full = dir / rel;
    if (!fs::is_regular_file(fs::symlink_status(full, ec))) continue;
    std::pair<std::uintmax_t, std::int64_t> stamp{
        fs::file_size(full, ec),
        static_cast<std::int64_t>(fs::last_write_time(full, ec).time_since_epoch().count())};
    if (ec) continue;  // removed while we looked: the next sync sees the directory as it is
    if (uploaded != nullptr) {
      auto it = uploaded->files.find(rel.generic_string());
      if (it != uploaded->files.end() && it->second == stamp) continue;
    }
    RETURN_IF_ERROR(UploadFile(full, store, {dest.bucket, prefix + rel.generic_string()}));
    if (uploaded != nullptr) uploaded->files[rel.generic_string()] = stamp;
  }
  return Status::Ok();
}

}  // namespace hearth::runtime
