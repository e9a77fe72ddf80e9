#include "runtime/training_contract.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/ids.h"
#include "common/wait.h"
#include "storage/local_object_store.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using storage::S3Location;

std::string Pattern(std::size_t size, unsigned seed) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed * 7 + i * 131 + (i >> 9));
  return out;
}

// gzip of `data`, written by libarchive's raw format.
std::string Gzip(const std::string& data) {
  std::string out(data.size() + 1024, '\0');
  size_t used = 0;
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

struct TarEntry {
  bool is_dir = false;
  std::string data;
};

// Unpacks a .tar.gz in memory, in archive order.
std::vector<std::pair<std::string, TarEntry>> Untar(const std::string& tgz) {
  std::vector<std::pair<std::string, TarEntry>> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tgz.data(), tgz.size()), ARCHIVE_OK);
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    TarEntry t;
    t.is_dir = archive_entry_filetype(e) == AE_IFDIR;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) t.data.append(buf, n);
    EXPECT_GE(n, 0);
    out.emplace_back(archive_entry_pathname(e), std::move(t));
  }
  EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(a);
  archive_read_free(a);
  return out;
}

std::string ReadAllFromFifo(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // blocks until the feeder opens it
  if (fd < 0) return "<open failed>";
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

ChannelSpec Channel(std::string name, std::string uri) {
  ChannelSpec c;
  c.name = std::move(name);
  c.s3_uri = std::move(uri);
  return c;
}

bool IsFifo(const fs::path& p) {
  std::error_code ec;
  return fs::is_fifo(fs::symlink_status(p, ec));
}

class TrainingContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("hearth-contract-test-" + NewUuid());
    auto store = storage::OpenLocalObjectStore({.root = root_ / "store"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->CreateBucket("data").ok());
    ml_ = root_ / "ml";
    fs::create_directories(ml_);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void Put(const std::string& key, const std::string& data) {
    auto r = store_->PutObject("data", key, data);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::vector<std::string> Keys(const std::vector<S3Location>& objs) {
    std::vector<std::string> keys;
    for (const S3Location& o : objs) keys.push_back(o.bucket + "/" + o.key);
    return keys;
  }

  // Every regular file under `dir`, relative path → contents.
  std::map<std::string, std::string> Files(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) out[e.path().lexically_relative(dir).string()] = *ReadFile(e.path());
    }
    return out;
  }

  fs::path root_, ml_;
  std::unique_ptr<storage::ObjectStore> store_;
};

TEST_F(TrainingContractTest, HostLayoutWritesTheConfigFilesSageMakerWrites) {
  HostLayout layout;
  layout.ml_dir = ml_;
  layout.current_host = "algo-2";
  layout.hosts = {"algo-1", "algo-2"};
  layout.instance_type = "ml.m5.xlarge";
  layout.hyperparameters = {{"epochs", "10"}, {"lr", "0.1"}};
  ChannelSpec train = Channel("train", "s3://data/train/");
  train.content_type = "text/csv";
  ChannelSpec eval = Channel("validation", "s3://data/val/");
  eval.distribution = "ShardedByS3Key";
  eval.input_mode = "Pipe";
  eval.record_wrapper = "RecordIO";
  layout.channels = {train, eval};
  ASSERT_TRUE(WriteHostLayout(layout).ok());

  auto json = [&](const char* name) {
    return nlohmann::json::parse(*ReadFile(ml_ / "input/config" / name));
  };
  EXPECT_EQ(json("hyperparameters.json"), nlohmann::json({{"epochs", "10"}, {"lr", "0.1"}}));
  EXPECT_EQ(json("inputdataconfig.json"), nlohmann::json::parse(R"({
    "train": {"ContentType": "text/csv", "TrainingInputMode": "File",
              "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
    "validation": {"TrainingInputMode": "Pipe", "S3DistributionType": "ShardedByS3Key",
                   "RecordWrapperType": "RecordIO"}})"));
  EXPECT_EQ(json("resourceconfig.json"), nlohmann::json::parse(R"({
    "current_host": "algo-2", "current_instance_type": "ml.m5.xlarge",
    "current_group_name": "homogeneousCluster", "hosts": ["algo-1", "algo-2"],
    "instance_groups": [{"instance_group_name": "homogeneousCluster",
                         "instance_type": "ml.m5.xlarge", "hosts": ["algo-1", "algo-2"]}],
    "network_interface_name": "eth0"})"));
  for (const char* dir : {"model", "output/data", "checkpoints", "input/data/train"}) {
    EXPECT_TRUE(fs::is_directory(ml_ / dir)) << dir;
  }
  EXPECT_FALSE(fs::exists(ml_ / "input/data/validation")) << "Pipe channels get FIFOs instead";
}

TEST_F(TrainingContractTest, HostLayoutRejectsAChannelNameThatCouldEscape) {
  HostLayout layout;
  layout.ml_dir = ml_;
  layout.current_host = "algo-1";
  layout.hosts = {"algo-1"};
  layout.channels = {Channel("../evil", "s3://data/x")};
  EXPECT_EQ(WriteHostLayout(layout).code(), StatusCode::kInvalidArgument);
  layout.channels.clear();
  layout.current_host = "algo-9";
  EXPECT_EQ(WriteHostLayout(layout).code(), StatusCode::kInvalidArgument);
}

TEST_F(TrainingContractTest, S3PrefixStagesNestedKeysRelativeToThePrefix) {
  Put("train/a/x.csv", "1,2\n");
  Put("train/b.csv", "3,4\n");
  Put("train/sub/", "");  // a console-made "folder"
  Put("other/y.csv", "no");
  ChannelSpec ch = Channel("train", "s3://data/train/");
  auto objects = ResolveChannelObjects(*store_, ch);
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  EXPECT_EQ(Keys(*objects), (std::vector<std::string>{"data/train/a/x.csv", "data/train/b.csv"}));
  ASSERT_TRUE(StageFileChannel(*store_, ch, *objects, ml_).ok());
  EXPECT_EQ(Files(ml_ / "input/data/train"),
            (std::map<std::string, std::string>{{"a/x.csv", "1,2\n"}, {"b.csv", "3,4\n"}}));
}

TEST_F(TrainingContractTest, AUriNamingOneObjectStagesJustThatFile) {
  Put("train/x.csv", "x");
  Put("train/x.csv.bak", "old");
  ChannelSpec ch = Channel("train", "s3://data/train/x.csv");
  auto objects = ResolveChannelObjects(*store_, ch);
  ASSERT_TRUE(objects.ok());
  // S3Prefix semantics: a prefix, so x.csv.bak matches too, as on SageMaker.
  EXPECT_EQ(objects->size(), 2u);
  std::vector<S3Location> one{{"data", "train/x.csv"}};
  ASSERT_TRUE(StageFileChannel(*store_, ch, one, ml_).ok());
  EXPECT_EQ(Files(ml_ / "input/data/train"), (std::map<std::string, std::string>{{"x.csv", "x"}}));
}

TEST_F(TrainingContractTest, ResolveNamesTheChannelWhenNothingMatches) {
  ChannelSpec ch = Channel("train", "s3://data/nothing/");
  auto r = ResolveChannelObjects(*store_, ch);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'train'"), std::string::npos) << r.status().message();
  ch.s3_uri = "s3://no-such-bucket/x/";
  EXPECT_EQ(ResolveChannelObjects(*store_, ch).status().code(), StatusCode::kNotFound);
  ch.s3_uri = "http://data/x";
  EXPECT_EQ(ResolveChannelObjects(*store_, ch).status().code(), StatusCode::kInvalidArgument);
  ch.s3_uri = "s3://data/x";
  ch.s3_data_type = "AugmentedManifestFile";
  EXPECT_EQ(ResolveChannelObjects(*store_, ch).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TrainingContractTest, ManifestFileListsItsEntriesUnderItsPrefix) {
  Put("images/cat/1.jpg", "meow");
  Put("images/dog/2.jpg", "woof");
  Put("images/dog/3.jpg", "not listed");
  Put("manifests/m.json", R"([{"prefix": "s3://data/images/"}, "dog/2.jpg", "cat/1.jpg"])");
  ChannelSpec ch = Channel("train", "s3://data/manifests/m.json");
  ch.s3_data_type = "ManifestFile";
  auto objects = ResolveChannelObjects(*store_, ch);
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  EXPECT_EQ(Keys(*objects),
            (std::vector<std::string>{"data/images/dog/2.jpg", "data/images/cat/1.jpg"}));
  ASSERT_TRUE(StageFileChannel(*store_, ch, *objects, ml_).ok());
  EXPECT_EQ(Files(ml_ / "input/data/train"),
            (std::map<std::string, std::string>{{"cat/1.jpg", "meow"}, {"dog/2.jpg", "woof"}}));

  Put("manifests/bad.json", R"({"prefix": "s3://data/images/"})");
  ch.s3_uri = "s3://data/manifests/bad.json";
  EXPECT_EQ(ResolveChannelObjects(*store_, ch).status().code(), StatusCode::kInvalidArgument);
  ch.s3_uri = "s3://data/manifests/missing.json";
  EXPECT_EQ(ResolveChannelObjects(*store_, ch).status().code(), StatusCode::kNotFound);
}

TEST_F(TrainingContractTest, ShardedByS3KeyGivesHostsDisjointSharesCoveringAllKeys) {
  std::vector<S3Location> all;
  for (int i = 0; i < 7; ++i) all.push_back({"data", "train/part-" + std::to_string(i)});
  ChannelSpec sharded = Channel("train", "");
  sharded.distribution = "ShardedByS3Key";
  auto a = ShareForHost(all, sharded, 0, 2);
  auto b = ShareForHost(all, sharded, 1, 2);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(b.size(), 3u);
  std::set<std::string> seen;
  for (const auto& o : a) seen.insert(o.key);
  for (const auto& o : b) EXPECT_TRUE(seen.insert(o.key).second) << o.key << " in both shares";
  EXPECT_EQ(seen.size(), all.size());
  ChannelSpec replicated = Channel("train", "");
  EXPECT_EQ(ShareForHost(all, replicated, 1, 2).size(), all.size());
}

TEST_F(TrainingContractTest, GzipChannelIsDecompressedAndDropsTheSuffix) {
  std::string big = Pattern(3 << 20, 1);
  Put("train/a.csv.gz", Gzip("1,2\n3,4\n"));
  Put("train/big.bin.gz", Gzip(big));
  Put("train/empty.gz", Gzip(""));
  ChannelSpec ch = Channel("train", "s3://data/train/");
  ch.compression = "Gzip";
  auto objects = ResolveChannelObjects(*store_, ch);
  ASSERT_TRUE(objects.ok());
  Status s = StageFileChannel(*store_, ch, *objects, ml_);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto files = Files(ml_ / "input/data/train");
  EXPECT_EQ(files.size(), 3u);
  EXPECT_EQ(files["a.csv"], "1,2\n3,4\n");
  EXPECT_EQ(files["empty"], "");
  EXPECT_TRUE(files["big.bin"] == big) << "decompressed bytes differ";

  Put("plain/x.csv", "not gzip");
  ChannelSpec plain = Channel("p", "s3://data/plain/");
  plain.compression = "Gzip";
  EXPECT_EQ(StageFileChannel(*store_, plain, {{"data", "plain/x.csv"}}, ml_).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(TrainingContractTest, StagingRejectsKeysThatClimbOutOfTheChannel) {
  Put("train/../../escape", "x");
  ChannelSpec ch = Channel("train", "s3://data/train/");
  EXPECT_EQ(StageFileChannel(*store_, ch, {{"data", "train/../../escape"}}, ml_).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(ml_ / "escape"));
  EXPECT_FALSE(fs::exists(ml_ / "input/escape"));
}

TEST_F(TrainingContractTest, PipeModeStreamsEveryEpochThroughItsOwnFifo) {
  Put("train/1", "abc");
  Put("train/2", Gzip("def"));
  ChannelSpec plain = Channel("train", "s3://data/train/");
  plain.input_mode = "Pipe";
  PipeFeeder feeder(*store_, plain, {{"data", "train/1"}}, ml_, /*max_epochs=*/2);
  ASSERT_TRUE(feeder.Start().ok());
  fs::path fifo0 = ml_ / "input/data/train_0", fifo1 = ml_ / "input/data/train_1";
  EXPECT_TRUE(IsFifo(fifo0));
  std::string epoch0, epoch1;
  std::thread reader([&] {
    epoch0 = ReadAllFromFifo(fifo0);
    // The next FIFO is in place by the time the previous one reports EOF.
    epoch1 = IsFifo(fifo1) ? ReadAllFromFifo(fifo1) : "<no train_1>";
  });
  reader.join();
  EXPECT_EQ(epoch0, "abc");
  EXPECT_EQ(epoch1, "abc");
  EXPECT_TRUE(WaitFor([&] { return !fs::exists(fifo1); }));
  EXPECT_FALSE(fs::exists(ml_ / "input/data/train_2")) << "max_epochs is 2";
  feeder.Stop();
  EXPECT_TRUE(feeder.error().ok());

  ChannelSpec gz = Channel("gz", "s3://data/train/");
  gz.compression = "Gzip";
  gz.input_mode = "Pipe";
  PipeFeeder gz_feeder(*store_, gz, {{"data", "train/2"}, {"data", "train/2"}}, ml_, 1);
  ASSERT_TRUE(gz_feeder.Start().ok());
  EXPECT_EQ(ReadAllFromFifo(ml_ / "input/data/gz_0"), "defdef");
}

TEST_F(TrainingContractTest, PipeReaderMayCloseEarlyAndMoveOn) {
  Put("train/big", Pattern(4 << 20, 2));
  ChannelSpec ch = Channel("train", "s3://data/train/");
  ch.input_mode = "Pipe";
  PipeFeeder feeder(*store_, ch, {{"data", "train/big"}}, ml_, 3);
  ASSERT_TRUE(feeder.Start().ok());
  int fd = ::open((ml_ / "input/data/train_0").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char buf[10];
  ASSERT_EQ(::read(fd, buf, sizeof(buf)), 10);
  ::close(fd);  // the feeder's next write gets EPIPE, which must not kill this process
  ASSERT_TRUE(WaitFor([&] { return IsFifo(ml_ / "input/data/train_1"); }));
  EXPECT_EQ(ReadAllFromFifo(ml_ / "input/data/train_1"), Pattern(4 << 20, 2));
  EXPECT_TRUE(feeder.error().ok());
}

TEST_F(TrainingContractTest, StopEndsAFeederThatNoOneReads) {
  Put("train/1", "abc");
  ChannelSpec ch = Channel("train", "s3://data/train/");
  ch.input_mode = "Pipe";
  PipeFeeder feeder(*store_, ch, {{"data", "train/1"}}, ml_);
  ASSERT_TRUE(feeder.Start().ok());
  auto start = std::chrono::steady_clock::now();
  feeder.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(TrainingContractTest, PipeFeederReportsAnObjectItCannotRead) {
  ChannelSpec ch = Channel("train", "s3://data/train/");
  ch.input_mode = "Pipe";
  PipeFeeder feeder(*store_, ch, {{"data", "train/missing"}}, ml_);
  ASSERT_TRUE(feeder.Start().ok());
  int fd = ::open((ml_ / "input/data/train_0").c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(WaitFor([&] { return !feeder.error().ok(); }));
  EXPECT_EQ(feeder.error().code(), StatusCode::kNotFound);
  ::close(fd);
  feeder.Stop();
}

TEST_F(TrainingContractTest, PackedDirectoryUnpacksToTheSameTree) {
  fs::path model = root_ / "model";
  fs::create_directories(model / "sub" / "deeper");
  fs::create_directories(model / "empty");
  std::ofstream(model / "model.json") << "{\"w\": [1, 2]}";
  std::string big = Pattern(3 << 20, 3);
  std::ofstream(model / "sub" / "deeper" / "weights.bin", std::ios::binary) << big;
  fs::create_symlink("/etc/passwd", model / "leak");
  S3Location dest{"data", "out/job/output/model.tar.gz"};
  Status s = PackDirectoryToObject(model, *store_, dest);
  ASSERT_TRUE(s.ok()) << s.ToString();

  auto entries = Untar(*store_->GetObject(dest.bucket, dest.key));
  std::vector<std::string> names;
  for (const auto& [name, e] : entries) names.push_back(name);
  // Relative names, path order; directories carry tar's trailing '/'; the symlink is left out.
  EXPECT_EQ(names, (std::vector<std::string>{"empty/", "model.json", "sub/", "sub/deeper/",
                                             "sub/deeper/weights.bin"}));
  std::map<std::string, TarEntry> by_name(entries.begin(), entries.end());
  EXPECT_TRUE(by_name["empty/"].is_dir);
  EXPECT_EQ(by_name["model.json"].data, "{\"w\": [1, 2]}");
  EXPECT_TRUE(by_name["sub/deeper/weights.bin"].data == big);
}

TEST_F(TrainingContractTest, EmptyDirectoryPacksToAValidEmptyArchive) {
  fs::path model = root_ / "model";
  fs::create_directories(model);
  S3Location dest{"data", "model.tar.gz"};
  ASSERT_TRUE(PackDirectoryToObject(model, *store_, dest).ok());
  EXPECT_TRUE(Untar(*store_->GetObject(dest.bucket, dest.key)).empty());
  EXPECT_EQ(PackDirectoryToObject(root_ / "nope", *store_, dest).code(), StatusCode::kNotFound);
}

TEST_F(TrainingContractTest, CheckpointsRoundTripThroughAPrefix) {
  fs::path ckpt = root_ / "ckpt";
  fs::create_directories(ckpt / "d");
  std::ofstream(ckpt / "x") << "step 1";
  std::ofstream(ckpt / "d" / "y") << "step 2";
  ASSERT_TRUE(UploadDirectory(ckpt, *store_, {"data", "jobs/j/ckpt"}).ok());
  Put("jobs/j/ckpt2/z", "another job");
  storage::ListOptions options;
  options.prefix = "jobs/";
  auto listed = store_->List("data", options);
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> keys;
  for (const auto& o : listed->objects) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"jobs/j/ckpt/d/y", "jobs/j/ckpt/x", "jobs/j/ckpt2/z"}));

  fs::path restored = root_ / "restored";
  ASSERT_TRUE(DownloadPrefix(*store_, {"data", "jobs/j/ckpt"}, restored).ok());
  EXPECT_EQ(Files(restored),
            (std::map<std::string, std::string>{{"d/y", "step 2"}, {"x", "step 1"}}));
  EXPECT_TRUE(DownloadPrefix(*store_, {"data", "jobs/none/"}, root_ / "none").ok());
  EXPECT_TRUE(UploadDirectory(root_ / "missing", *store_, {"data", "x/"}).ok());
}

}  // namespace
}  // namespace hearth::runtime
