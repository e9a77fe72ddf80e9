#include "runtime/model_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/ids.h"
#include "runtime/training_contract.h"
#include "storage/local_object_store.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;
using storage::S3Location;

// One entry of a hand-made archive: a file (data), a directory (dir), a symlink or a hard link.
struct Entry {
  std::string name;
  std::string data;
  enum Kind { kFile, kDir, kSymlink, kHardlink, kFifo } kind = kFile;
  std::string target;
};

// A tar archive of `entries`, gzip'd unless `gzip` is false.
std::string MakeTar(const std::vector<Entry>& entries, bool gzip = true) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  std::vector<char> buffer(1 << 20);
  size_t used = 0;
  archive_write_open_memory(a, buffer.data(), buffer.size(), &used);
  for (const Entry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_perm(entry, 0644);
    switch (e.kind) {
      case Entry::kFile:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
        break;
      case Entry::kDir:
        archive_entry_set_filetype(entry, AE_IFDIR);
        archive_entry_set_perm(entry, 0755);
        break;
      case Entry::kSymlink:
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_symlink(entry, e.target.c_str());
        break;
      case Entry::kHardlink:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_hardlink(entry, e.target.c_str());
        break;
      case Entry::kFifo:
        archive_entry_set_filetype(entry, AE_IFIFO);
        break;
    }
    archive_write_header(a, entry);
    if (e.kind == Entry::kFile && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buffer.data(), used);
}

class ModelArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("hearth-model-archive-test-" + NewUuid());
    auto store = storage::OpenLocalObjectStore({.root = root_ / "store"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->CreateBucket("models").ok());
    dest_ = root_ / "out" / "model";
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  Status ExtractBytes(const std::string& bytes) {
    auto put = store_->PutObject("models", "m/model.tar.gz", bytes);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return ExtractArchiveObject(*store_, {"models", "m/model.tar.gz"}, dest_);
  }

  std::map<std::string, std::string> Files(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) out[e.path().lexically_relative(dir).string()] = *ReadFile(e.path());
    }
    return out;
  }

  // Nothing was written beside the destination (an escape would land in out/ or root_).
  void ExpectNothingOutside() {
    std::vector<std::string> beside;
    for (const auto& e : fs::directory_iterator(root_ / "out")) {
      if (e.path() != dest_) beside.push_back(e.path().filename().string());
    }
    EXPECT_TRUE(beside.empty()) << beside.front();
    EXPECT_FALSE(fs::exists(root_ / "escaped"));
  }

  fs::path root_, dest_;
  std::unique_ptr<storage::ObjectStore> store_;
};

TEST_F(ModelArchiveTest, UnpacksWhatTrainingPacked) {
  fs::path model = root_ / "trained";
  fs::create_directories(model / "sub" / "deeper");
  fs::create_directories(model / "empty");
  std::ofstream(model / "xgboost-model") << "booster bytes";
  std::string big(3 << 20, 'w');
  std::ofstream(model / "sub" / "deeper" / "weights.bin", std::ios::binary) << big;
  ASSERT_TRUE(PackDirectoryToObject(model, *store_, {"models", "job/model.tar.gz"}).ok());

  Status s = ExtractArchiveObject(*store_, {"models", "job/model.tar.gz"}, dest_);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto files = Files(dest_);
  EXPECT_EQ(files.size(), 2u);
  EXPECT_EQ(files["xgboost-model"], "booster bytes");
  EXPECT_TRUE(files["sub/deeper/weights.bin"] == big);
  EXPECT_TRUE(fs::is_directory(dest_ / "empty"));
}

TEST_F(ModelArchiveTest, PlainTarAndDotSlashNamesAreAccepted) {
  Status s = ExtractBytes(MakeTar({{.name = "./", .kind = Entry::kDir},
                                   {.name = "./code/", .kind = Entry::kDir},
                                   {.name = "./code/inference.py", .data = "print(1)\n"}},
                                  /*gzip=*/false));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Files(dest_), (std::map<std::string, std::string>{{"code/inference.py", "print(1)\n"}}));
}

TEST_F(ModelArchiveTest, LinksThatStayInsideAreKept) {
  Status s = ExtractBytes(MakeTar({{.name = "v1/model.bin", .data = "weights"},
                                   {.name = "current", .kind = Entry::kSymlink, .target = "v1"},
                                   {.name = "copy.bin", .kind = Entry::kHardlink,
                                    .target = "v1/model.bin"}}));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(*ReadFile(dest_ / "current" / "model.bin"), "weights");
  EXPECT_EQ(*ReadFile(dest_ / "copy.bin"), "weights");
}

TEST_F(ModelArchiveTest, RefusesEntriesThatWouldEscape) {
  const std::vector<std::pair<std::string, std::vector<Entry>>> cases = {
      {"absolute path", {{.name = (root_ / "escaped").string(), .data = "x"}}},
      {"dot-dot", {{.name = "a/../../escaped", .data = "x"}}},
      {"absolute symlink", {{.name = "l", .kind = Entry::kSymlink, .target = "/etc"}}},
      {"climbing symlink", {{.name = "l", .kind = Entry::kSymlink, .target = "../.."}}},
      // Each link alone stays inside; together "e" would be the parent of the directory.
      {"symlink chain",
       {{.name = "d", .kind = Entry::kSymlink, .target = "."},
        {.name = "e", .kind = Entry::kSymlink, .target = "d/.."}}},
      {"hard link out", {{.name = "h", .kind = Entry::kHardlink, .target = "../escaped"}}},
      {"fifo", {{.name = "p", .kind = Entry::kFifo}}},
  };
  for (const auto& [what, entries] : cases) {
    SCOPED_TRACE(what);
    std::error_code ec;
    fs::remove_all(root_ / "out", ec);
    Status s = ExtractBytes(MakeTar(entries));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find("unsafe entry"), std::string::npos) << s.message();
    ExpectNothingOutside();
  }
}

TEST_F(ModelArchiveTest, AFileCannotBeWrittenThroughAnEarlierSymlink) {
  // "f" is a symlink inside the directory; a later regular file "f" must not follow it.
  std::ofstream(root_ / "target") << "untouched";
  Status s = ExtractBytes(MakeTar({{.name = "t", .data = "inside"},
                                   {.name = "f", .kind = Entry::kSymlink, .target = "t"},
                                   {.name = "f", .data = "overwritten"}}));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(*ReadFile(dest_ / "t"), "inside");
}

TEST_F(ModelArchiveTest, NotAnArchiveAndMissingObjectAreErrors) {
  Status s = ExtractBytes("not a tar file at all, just text\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("s3://models/m/model.tar.gz"), std::string::npos) << s.message();
  EXPECT_EQ(ExtractArchiveObject(*store_, {"models", "nope.tar.gz"}, dest_).code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace hearth::runtime
