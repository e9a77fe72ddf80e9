// Unpacking model artifacts: the reverse of PackDirectoryToObject (training_contract.h), for
// endpoints, which serve a model from the directory its model.tar.gz unpacks into
// (/opt/ml/model inside the instance).
//
// The archive comes from a user's bucket, so it is untrusted: an entry whose path is absolute
// or has a ".." component, a symlink whose target is absolute or has a ".." component (so a
// chain of links cannot climb out either), a hard link to anything but an earlier entry, and
// any entry that is not a regular file, directory or such a link (devices, FIFOs) are refused
// with InvalidArgument naming the entry; nothing is written outside `dest`. Gzip'd or plain tar
// is accepted (the format is sniffed, not taken from the key's suffix).
//
// Thread safety: free functions.
#pragma once

#include <filesystem>

#include "common/status.h"
#include "storage/object_store.h"

namespace hearth::runtime {

// Extracts the tar(.gz) object at `src` into `dest`, which is created if missing. NotFound if
// the object is missing; InvalidArgument if it is not a tar archive or holds an unsafe entry.
// On error, what was extracted so far stays in `dest`: the caller owns the directory and
// removes it.
Status ExtractArchiveObject(storage::ObjectStore& store, const storage::S3Location& src,
                            const std::filesystem::path& dest);

}  // namespace hearth::runtime
