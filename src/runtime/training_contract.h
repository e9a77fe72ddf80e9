// The SageMaker training container contract, laid out on the local filesystem.
//
// For each host the runtime builds the directory that the process sees as /opt/ml:
//   input/config/hyperparameters.json   all values strings
//   input/config/inputdataconfig.json   {"<channel>": {"ContentType", "TrainingInputMode",
//                                        "S3DistributionType", "RecordWrapperType"}}
//   input/config/resourceconfig.json    {"current_host","hosts","network_interface_name",
//                                        "current_instance_type", "current_group_name",
//                                        "instance_groups"}
//   input/data/<channel>/...            File mode: the channel's objects, keys relative to
//                                        the S3 prefix (ShardedByS3Key: this host's share;
//                                        Gzip: decompressed)
//   input/data/<channel>_<epoch>        Pipe mode: FIFOs fed by PipeFeeder, one per epoch
//   model/  output/  output/data/  output/failure  checkpoints/
//
// Thread safety: free functions; PipeFeeder is thread safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "storage/object_store.h"

namespace hearth::runtime {

struct ChannelSpec {
  std::string name;
  std::string s3_uri;
  std::string s3_data_type = "S3Prefix";         // S3Prefix | ManifestFile
  std::string distribution = "FullyReplicated";  // FullyReplicated | ShardedByS3Key
  std::string compression = "None";              // None | Gzip
  std::string input_mode = "File";               // File | Pipe
  std::string content_type;
  std::string record_wrapper = "None";
};

struct HostLayout {
  std::filesystem::path ml_dir;
  std::string current_host;        // "algo-1"
  std::vector<std::string> hosts;  // "algo-1".."algo-N"
  std::string instance_type;
  std::map<std::string, std::string> hyperparameters;
  std::vector<ChannelSpec> channels;
};

// Creates the directory tree and writes the three config files.
Status WriteHostLayout(const HostLayout& layout);

// Resolves a channel to its object keys: an S3Prefix listing in key order (directory markers,
// keys ending in '/', left out), or a ManifestFile's "prefix" plus each entry, in manifest order
// ([{"prefix": "s3://bucket/p/"}, "rel/key1", ...]). NotFound (bucket, manifest or objects
// missing) or InvalidArgument (bad URI, manifest or S3DataType), with a message naming the
// channel.
Result<std::vector<storage::S3Location>> ResolveChannelObjects(storage::ObjectStore& store,
                                                               const ChannelSpec& channel);

// The share of `objects` host `host_index` (0-based) of `host_count` gets: all for
// FullyReplicated; every host_count-th object starting at host_index for ShardedByS3Key.
std::vector<storage::S3Location> ShareForHost(const std::vector<storage::S3Location>& objects,
                                              const ChannelSpec& channel, int host_index,
                                              int host_count);

// File mode: copies `objects` into input/data/<channel>/. A file's path is its key minus the
// channel's S3 prefix up to the prefix's last '/' ("s3://b/train/" or "s3://b/train/x.csv" with
// key train/a/x.csv gives a/x.csv; for a manifest, its "prefix" counts). Gzip: decompressed,
// ".gz" dropped from the name. Keys with "." or ".." components are rejected.
// RecordWrapperType is passed on in inputdataconfig.json but not applied to the data.
Status StageFileChannel(storage::ObjectStore& store, const ChannelSpec& channel,
                        const std::vector<storage::S3Location>& objects,
                        const std::filesystem::path& ml_dir);

// Pipe mode: creates input/data/<channel>_0 and streams the objects into it when the process
// opens it (gunzipped when Gzip); creates <channel>_1 and then closes _0 (EOF) and removes it,
// and so on, as SageMaker does per epoch. A reader may close an epoch early. Stops when Stop()
// is called or after `max_epochs`. If reading an object fails, the FIFO is held open (so the
// reader never takes a cut-short stream for a whole epoch) until Stop(), and error() says why:
// the caller should fail the job.
// `store` is not owned and must outlive this object.
class PipeFeeder {
 public:
  PipeFeeder(storage::ObjectStore& store, ChannelSpec channel,
             std::vector<storage::S3Location> objects, std::filesystem::path ml_dir,
             int max_epochs = 1000);
  ~PipeFeeder();   // stops and joins
  Status Start();  // creates the first FIFO and starts the feeding thread
  void Stop();
  Status error() const;  // the first error of the feeding thread; OK while none

 private:
  void Run();
  std::filesystem::path FifoPath(int epoch) const;
  Status MakeFifo(int epoch) const;
  void Fail(const Status& s);
  storage::ObjectStore& store_;
  ChannelSpec channel_;
  std::vector<storage::S3Location> objects_;
  std::filesystem::path ml_dir_;
  int max_epochs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  Status error_;  // GUARDED_BY(mu_)
};

// Packs the contents of `dir` (relative paths, no leading "./") into a gzip'd tar and stores it
// at `dest`, streaming. An empty dir gives a valid empty archive. Only regular files and
// directories are packed, in path order: the training process wrote `dir`, and following its
// symlinks would let it read any host file.
Status PackDirectoryToObject(const std::filesystem::path& dir, storage::ObjectStore& store,
                             const storage::S3Location& dest);

// Checkpoint sync. DownloadPrefix copies every object under `src` (a directory: src.key + "/"
// unless it ends in '/') into `dir`, keys relative to it; nothing there is not an error.
// UploadDirectory copies every regular file under `dir` to `dest` + "/" + its relative path; a
// missing `dir` uploads nothing. Symlinks are not followed.
Status DownloadPrefix(storage::ObjectStore& store, const storage::S3Location& src,
                      const std::filesystem::path& dir);
// What UploadDirectory has already copied: relative path -> (size, mtime). Passing the same
// record to successive calls uploads only files that changed since, so a training job's
// checkpoints can be synced every few seconds without copying them again.
struct UploadedFiles {
  std::map<std::string, std::pair<std::uintmax_t, std::int64_t>> files;
};
Status UploadDirectory(const std::filesystem::path& dir, storage::ObjectStore& store,
                       const storage::S3Location& dest, UploadedFiles* uploaded = nullptr);

}  // namespace hearth::runtime
