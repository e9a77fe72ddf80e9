// SQLite implementations of MetadataStore and LogStore: the embedded default.
// One database file in WAL mode, schema migrations applied at Open (schema_version table),
// one transaction per state transition.
//
// Thread safety: thread safe (a connection per store guarded by a mutex; WAL lets readers of
// other connections proceed).
#pragma once

#include <filesystem>
#include <memory>

#include "metadata/log_store.h"
#include "metadata/metadata_store.h"

namespace hearth::metadata {

struct SqliteOptions {
  std::filesystem::path path;  // ":memory:" for tests
};

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const SqliteOptions& options);
Result<std::unique_ptr<LogStore>> OpenSqliteLogStore(const SqliteOptions& options);

}  // namespace hearth::metadata
