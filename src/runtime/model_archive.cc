#include "runtime/model_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace hearth::runtime {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kChunkBytes = 1 << 20;

struct ReadState {
  storage::ObjectReader* reader = nullptr;
  std::uint64_t offset = 0;
  std::string buffer;
  Status error;
};

la_ssize_t ReadCallback(struct archive* a, void* state_ptr, const void** out) {
  auto* state = static_cast<ReadState*>(state_ptr);
  Status s = state->reader->ReadAt(state->offset, kChunkBytes, &state->buffer);
  if (!s.ok()) {
    state->error = s;
    archive_set_error(a, EIO, "%s", s.message().c_str());
    return -1;
  }
  state->offset += state->buffer.size();
  *out = state->buffer.data();
  return static_cast<la_ssize_t>(state->buffer.size());
}

// The entry's path made relative and checked: no absolute path, no ".." component. "./a" and
// "a/" are fine ("." components are dropped). Empty result: the archive's root itself.
Result<fs::path> SafeRelativePath(const std::string& name) {
  fs::path p(name);
  if (p.is_absolute()) return InvalidArgument("absolute path '" + name + "'");
  fs::path out;
  for (const auto& part : p) {
    if (part == "..") return InvalidArgument("path '" + name + "' has a '..' component");
    if (part == "." || part.empty()) continue;
    out /= part;
  }
  return out;
}

// A symlink target is safe when it is relative and has no ".." component: it then points at
// or below its own directory, and so does any chain of such links. (A lexical check that allowed
// ".." could be fooled by an earlier link: "d" -> "." then "e" -> "d/..".)
bool DownwardTarget(const std::string& target) {
  fs::path t(target);
  if (target.empty() || t.is_absolute()) return false;
  for (const auto& part : t) {
    if (part == "..") return false;
  }
  return true;
}

Status WriteEntryData(struct archive* a, const fs::path& dest, mode_t mode) {
  // O_NOFOLLOW: an earlier entry may have left a symlink at this path.
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                  (mode & 0777) | 0600);
  if (fd < 0) return Internal("cannot create " + dest.string() + ": " + std::strerror(errno));
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  Status result;
  for (;;) {
    int rc = archive_read_data_block(a, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      result = InvalidArgument(std::string("cannot read the archive: ") + archive_error_string(a));
      break;
    }
    const char* p = static_cast<const char*>(block);
    std::size_t left = size;
    off_t at = static_cast<off_t>(offset);
    while (left > 0) {
      ssize_t n = ::pwrite(fd, p, left, at);
      if (n < 0) {
        if (errno == EINTR) continue;
        result = Internal("cannot write " + dest.string() + ": " + std::strerror(errno));
        break;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      at += n;
    }
    if (!result.ok()) break;
  }
  // A sparse file's trailing hole: the size is what the header says.
  ::close(fd);
  return result;
}

}  // namespace

Status ExtractArchiveObject(storage::ObjectStore& store, const storage::S3Location& src,
                            const fs::path& dest) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::ObjectReader> reader,
                   store.OpenForRead(src.bucket, src.key));
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return Internal("cannot create " + dest.string() + ": " + ec.message());
  const std::string where = "s3://" + src.bucket + "/" + src.key;

  ReadState state;
  state.reader = reader.get();
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  if (!a) return Internal("archive_read_new failed");
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open(a.get(), &state, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    if (!state.error.ok()) return state.error;
    return InvalidArgument("model data " + where + " is not a tar archive: " +
                           archive_error_string(a.get()));
  }
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      if (!state.error.ok()) return state.error;
      return InvalidArgument("model data " + where + " is not a readable tar archive: " +
                             archive_error_string(a.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    const std::string name = raw_name ? raw_name : "";
    auto refuse = [&](const std::string& why) {
      return InvalidArgument("model data " + where + " has an unsafe entry: " + why);
    };
    auto rel = SafeRelativePath(name);
    if (!rel.ok()) return refuse(rel.status().message());
    if (rel->empty()) continue;
    const fs::path out = dest / *rel;
    fs::create_directories(out.parent_path(), ec);
    if (ec) return Internal("cannot create " + out.parent_path().string() + ": " + ec.message());
    if (const char* hard = archive_entry_hardlink(entry)) {
      auto target = SafeRelativePath(hard);
      if (!target.ok() || target->empty()) return refuse("hard link '" + name + "' -> '" + hard + "'");
      fs::remove(out, ec);
      if (::link((dest / *target).c_str(), out.c_str()) != 0) {
        return InvalidArgument("model data " + where + ": hard link '" + name + "' -> '" + hard +
                               "' names no earlier entry");
      }
      continue;
    }
    const mode_t type = archive_entry_filetype(entry);
    const mode_t perm = archive_entry_perm(entry);
    if (type == AE_IFDIR) {
      fs::create_directories(out, ec);
      if (ec) return Internal("cannot create " + out.string() + ": " + ec.message());
      ::chmod(out.c_str(), (perm & 0777) | 0700);
    } else if (type == AE_IFREG) {
      RETURN_IF_ERROR(WriteEntryData(a.get(), out, perm));
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (!target || !DownwardTarget(target)) {
        return refuse("symlink '" + name + "' -> '" + (target ? target : "") +
                      "' may leave the model directory (targets must be relative, without '..')");
      }
      fs::remove(out, ec);
      if (::symlink(target, out.c_str()) != 0) {
        return Internal("cannot create symlink " + out.string() + ": " + std::strerror(errno));
      }
    } else {
      return refuse("'" + name + "' is not a file, directory or link");
    }
  }
  return Status::Ok();
}

}  // namespace hearth::runtime
