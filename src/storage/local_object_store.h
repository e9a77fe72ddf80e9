// LocalObjectStore keeps objects under one directory:
//   <root>/index.db          SQLite (WAL): buckets, objects (key -> blob file, size, etag, ...),
//                            multipart uploads and their parts
//   <root>/blobs/            immutable blob files, one per committed object version or part
//   <root>/staging/          writers' temp files (same filesystem, so commit is a rename)
//   <root>/LOCK              flock'd while a store is open: one open store per directory;
//                            a second Open() fails with kFailedPrecondition
//
// A write streams into staging/, is fsync'd, renamed into blobs/, and then published by one
// SQLite transaction that points the key at the new blob. A crash before the transaction
// leaves an orphan blob that Open() removes; a crash after it leaves the new object. Old blobs
// are unlinked after the transaction; open readers keep their file descriptors.
//
// Thread safety: thread safe.
#pragma once

#include <filesystem>
#include <memory>

#include "storage/object_store.h"

namespace hearth::storage {

struct LocalObjectStoreOptions {
  std::filesystem::path root;
};

class LocalObjectStore;

Result<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const LocalObjectStoreOptions& options);

}  // namespace hearth::storage
