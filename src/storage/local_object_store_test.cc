#include "storage/local_object_store.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/crypto.h"
#include "common/ids.h"
#include "storage/object_store.h"

namespace hearth::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMiB = 1 << 20;

std::string RawMd5(std::string_view data) {
  Md5Hasher hasher;
  hasher.Update(data);
  return hasher.FinishRaw();
}

// Deterministic, non-repeating-ish bytes so that misplaced ranges are caught.
std::string Pattern(std::size_t size, char seed) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed + i * 131 + (i >> 11));
  return out;
}

std::size_t CountFiles(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

ListOptions Listing(std::string prefix, std::string delimiter = "", std::string start_after = "",
                    int max_keys = 1000) {
  ListOptions options;
  options.prefix = std::move(prefix);
  options.delimiter = std::move(delimiter);
  options.start_after = std::move(start_after);
  options.max_keys = max_keys;
  return options;
}

std::vector<std::string> Keys(const ListResult& result) {
  std::vector<std::string> keys;
  for (const ObjectInfo& object : result.objects) keys.push_back(object.key);
  return keys;
}

class LocalObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("hearth-storage-test-" + NewUuid());
    Reopen();
    ASSERT_TRUE(store_->CreateBucket("data").ok());
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void Reopen() {
    store_.reset();
    auto opened = OpenLocalObjectStore({.root = root_});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  void Put(std::string_view key, std::string_view data = "x") {
    auto put = store_->PutObject("data", key, data);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }

  // Uploads `bodies` as parts 1..N and returns the upload id and the completed-part list.
  std::pair<std::string, std::vector<CompletedPart>> UploadParts(
      std::string_view key, const std::vector<std::string>& bodies) {
    auto upload = store_->CreateMultipartUpload("data", key, {});
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    std::vector<CompletedPart> parts;
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      int number = static_cast<int>(i + 1);
      auto writer = store_->OpenPartForWrite("data", key, *upload, number, std::nullopt);
      EXPECT_TRUE(writer.ok()) << writer.status().ToString();
      EXPECT_TRUE((*writer)->Append(bodies[i]).ok());
      auto info = (*writer)->Commit();
      EXPECT_TRUE(info.ok()) << info.status().ToString();
      parts.push_back({number, "\"" + info->etag + "\""});
    }
    return {*upload, parts};
  }

  fs::path root_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(LocalObjectStoreTest, PutGetStatRoundTrip) {
  PutOptions options;
  options.content_type = "text/csv";
  options.user_metadata = {{"origin", "unit-test"}, {"rows", "3"}};
  auto put = store_->PutObject("data", "train/a.csv", "a,b\n1,2\n", options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, Md5Hex("a,b\n1,2\n"));
  EXPECT_EQ(put->size, 8u);

  auto body = store_->GetObject("data", "train/a.csv");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "a,b\n1,2\n");

  auto stat = store_->Stat("data", "train/a.csv");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->key, "train/a.csv");
  EXPECT_EQ(stat->size, 8u);
  EXPECT_EQ(stat->etag, Md5Hex("a,b\n1,2\n"));
  EXPECT_EQ(stat->content_type, "text/csv");
  EXPECT_EQ(stat->user_metadata, options.user_metadata);
  EXPECT_GT(stat->last_modified_millis, 0);
}

TEST_F(LocalObjectStoreTest, EmptyObjectRoundTrips) {
  auto put = store_->PutObject("data", "empty", "");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->etag, Md5Hex(""));
  auto body = store_->GetObject("data", "empty");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "");
}

TEST_F(LocalObjectStoreTest, LargeObjectStreamsInChunks) {
  auto writer = store_->OpenForWrite("data", "big", {});
  ASSERT_TRUE(writer.ok());
  Md5Hasher expected;
  std::uint64_t size = 0;
  // Mixed chunk sizes exercise both the gathering buffer and the direct-write path.
  for (int i = 0; i < 40; ++i) {
    std::string chunk = Pattern(i % 3 == 0 ? 3 * kMiB / 2 : 64 * 1024 + i, static_cast<char>(i));
    expected.Update(chunk);
    size += chunk.size();
    ASSERT_TRUE((*writer)->Append(chunk).ok());
  }
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, size);
  EXPECT_EQ(info->etag, HexEncode(expected.FinishRaw()));
  EXPECT_EQ(CountFiles(root_ / "staging"), 0u);

  auto reader = store_->OpenForRead("data", "big");
  ASSERT_TRUE(reader.ok());
  Md5Hasher read_back;
  std::string chunk;
  for (std::uint64_t offset = 0; offset < size; offset += chunk.size()) {
    ASSERT_TRUE((*reader)->ReadAt(offset, 1000 * 1000, &chunk).ok());
    ASSERT_FALSE(chunk.empty());
    read_back.Update(chunk);
  }
  EXPECT_EQ(HexEncode(read_back.FinishRaw()), info->etag);
}

TEST_F(LocalObjectStoreTest, ReadAtIsShortOnlyAtEnd) {
  Put("k", "0123456789");
  auto reader = store_->OpenForRead("data", "k");
  ASSERT_TRUE(reader.ok());
  std::string out;
  ASSERT_TRUE((*reader)->ReadAt(2, 3, &out).ok());
  EXPECT_EQ(out, "234");
  ASSERT_TRUE((*reader)->ReadAt(7, 100, &out).ok());
  EXPECT_EQ(out, "789");
  ASSERT_TRUE((*reader)->ReadAt(10, 5, &out).ok());
  EXPECT_EQ(out, "");
  ASSERT_TRUE((*reader)->ReadAt(50, 5, &out).ok());
  EXPECT_EQ(out, "");
}

TEST_F(LocalObjectStoreTest, CopyToWritesTheWholeObject) {
  std::string body = Pattern(3 * kMiB + 17, 'q');
  Put("k", body);
  auto reader = store_->OpenForRead("data", "k");
  ASSERT_TRUE(reader.ok());
  fs::path dest = root_ / "copy.bin";
  ASSERT_TRUE((*reader)->CopyTo(dest).ok());
  std::ifstream in(dest, std::ios::binary);
  std::string copied((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(copied, body);
}

TEST_F(LocalObjectStoreTest, ReaderKeepsOldBytesAcrossOverwriteAndDelete) {
  Put("k", "old bytes");
  auto reader = store_->OpenForRead("data", "k");
  ASSERT_TRUE(reader.ok());
  Put("k", "new bytes, longer");
  EXPECT_EQ(*store_->GetObject("data", "k"), "new bytes, longer");

  std::string out;
  ASSERT_TRUE((*reader)->ReadAt(0, 100, &out).ok());
  EXPECT_EQ(out, "old bytes");
  EXPECT_EQ((*reader)->info().etag, Md5Hex("old bytes"));

  auto second = store_->OpenForRead("data", "k");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(store_->DeleteObject("data", "k").ok());
  ASSERT_TRUE((*second)->ReadAt(0, 100, &out).ok());
  EXPECT_EQ(out, "new bytes, longer");
  EXPECT_EQ(store_->Stat("data", "k").status().reason(), "NoSuchKey");
  // Both replaced blobs are gone from disk even though readers still hold them.
  EXPECT_EQ(CountFiles(root_ / "blobs"), 0u);
}

TEST_F(LocalObjectStoreTest, DeletingAMissingKeyIsNotAnError) {
  EXPECT_TRUE(store_->DeleteObject("data", "nothing-here").ok());
  EXPECT_EQ(store_->DeleteObject("nobucket", "k").reason(), "NoSuchBucket");
}

TEST_F(LocalObjectStoreTest, UncommittedWriterLeavesNothing) {
  {
    auto writer = store_->OpenForWrite("data", "k", {});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("partial").ok());
    EXPECT_EQ(CountFiles(root_ / "staging"), 1u);
  }
  EXPECT_EQ(CountFiles(root_ / "staging"), 0u);
  EXPECT_EQ(CountFiles(root_ / "blobs"), 0u);
  EXPECT_EQ(store_->Stat("data", "k").status().reason(), "NoSuchKey");
}

TEST_F(LocalObjectStoreTest, WriterRejectsUseAfterCommit) {
  auto writer = store_->OpenForWrite("data", "k", {});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ((*writer)->Append("more").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*writer)->Commit().status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(LocalObjectStoreTest, ContentMd5MismatchIsBadDigestAndStoresNothing) {
  Put("k", "original");
  PutOptions options;
  options.expected_md5 = RawMd5("something else");
  auto put = store_->PutObject("data", "k", "replacement", options);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(put.status().reason(), "BadDigest");
  EXPECT_EQ(*store_->GetObject("data", "k"), "original");
  EXPECT_EQ(CountFiles(root_ / "staging"), 0u);
  EXPECT_EQ(CountFiles(root_ / "blobs"), 1u);

  options.expected_md5 = RawMd5("replacement");
  ASSERT_TRUE(store_->PutObject("data", "k", "replacement", options).ok());
  EXPECT_EQ(*store_->GetObject("data", "k"), "replacement");
}

TEST_F(LocalObjectStoreTest, ListFiltersByPrefixInKeyOrder) {
  for (const char* key : {"b/2", "a/1", "b/1", "ba", "c", "b/sub/3"}) Put(key);
  auto all = store_->List("data", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"a/1", "b/1", "b/2", "b/sub/3", "ba", "c"}));
  EXPECT_FALSE(all->truncated);
  EXPECT_TRUE(all->common_prefixes.empty());

  auto b = store_->List("data", Listing("b/"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Keys(*b), (std::vector<std::string>{"b/1", "b/2", "b/sub/3"}));
  EXPECT_EQ(b->last_returned, "b/sub/3");
}

TEST_F(LocalObjectStoreTest, ListGroupsCommonPrefixesByDelimiter) {
  for (const char* key : {"a/1", "a/2", "b/x/1", "b/y", "top", "z/"}) Put(key);
  auto root = store_->List("data", Listing("", "/"));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(Keys(*root), (std::vector<std::string>{"top"}));
  EXPECT_EQ(root->common_prefixes, (std::vector<std::string>{"a/", "b/", "z/"}));
  EXPECT_EQ(root->last_returned, "z/");

  auto b = store_->List("data", Listing("b/", "/"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Keys(*b), (std::vector<std::string>{"b/y"}));
  EXPECT_EQ(b->common_prefixes, (std::vector<std::string>{"b/x/"}));

  // A multi-character delimiter.
  auto multi = store_->List("data", Listing("", "/1"));
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(Keys(*multi), (std::vector<std::string>{"a/2", "b/y", "top", "z/"}));
  EXPECT_EQ(multi->common_prefixes, (std::vector<std::string>{"a/1", "b/x/1"}));
}

TEST_F(LocalObjectStoreTest, ListStartsAfterTheGivenKey) {
  for (const char* key : {"a", "b", "c", "d/1", "d/2", "e"}) Put(key);
  auto after_b = store_->List("data", Listing("", "", "b"));
  ASSERT_TRUE(after_b.ok());
  EXPECT_EQ(Keys(*after_b), (std::vector<std::string>{"c", "d/1", "d/2", "e"}));

  // start_after inside a common prefix: that prefix was already returned, so it is skipped.
  auto grouped = store_->List("data", Listing("", "/", "d/1"));
  ASSERT_TRUE(grouped.ok());
  EXPECT_EQ(Keys(*grouped), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(grouped->common_prefixes.empty());

  auto past_prefix = store_->List("data", Listing("d/", "", "zzz"));
  ASSERT_TRUE(past_prefix.ok());
  EXPECT_TRUE(past_prefix->objects.empty());
  auto before_prefix = store_->List("data", Listing("d/", "", "a"));
  ASSERT_TRUE(before_prefix.ok());
  EXPECT_EQ(Keys(*before_prefix), (std::vector<std::string>{"d/1", "d/2"}));
}

TEST_F(LocalObjectStoreTest, ListTruncatesAtMaxKeysAndPagesThroughEverything) {
  std::vector<std::string> expected_items;
  for (int dir = 0; dir < 4; ++dir) {
    for (int i = 0; i < 5; ++i) Put("dir" + std::to_string(dir) + "/f" + std::to_string(i));
    expected_items.push_back("dir" + std::to_string(dir) + "/");
  }
  for (int i = 0; i < 7; ++i) {
    Put("file" + std::to_string(i));
    expected_items.push_back("file" + std::to_string(i));
  }

  // Plain listing, three at a time.
  std::vector<std::string> keys;
  ListOptions options = Listing("", "", "", 3);
  while (true) {
    auto page = store_->List("data", options);
    ASSERT_TRUE(page.ok());
    ASSERT_LE(page->objects.size(), 3u);
    for (auto& key : Keys(*page)) keys.push_back(key);
    if (!page->truncated) break;
    ASSERT_EQ(page->objects.size(), 3u);
    options.start_after = page->last_returned;
  }
  EXPECT_EQ(keys.size(), 27u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));

  // Grouped listing, two items (objects + prefixes) at a time.
  std::vector<std::string> items;
  options = Listing("", "/", "", 2);
  int pages = 0;
  while (true) {
    auto page = store_->List("data", options);
    ASSERT_TRUE(page.ok());
    ++pages;
    ASSERT_LE(page->objects.size() + page->common_prefixes.size(), 2u);
    for (auto& prefix : page->common_prefixes) items.push_back(prefix);
    for (auto& key : Keys(*page)) items.push_back(key);
    if (!page->truncated) break;
    options.start_after = page->last_returned;
  }
  std::sort(items.begin(), items.end());
  EXPECT_EQ(items, expected_items);
  EXPECT_EQ(pages, 6);

  // Exactly max_keys items left is not truncated.
  auto exact = store_->List("data", Listing("dir0/", "", "", 5));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->objects.size(), 5u);
  EXPECT_FALSE(exact->truncated);
  auto zero = store_->List("data", Listing("", "", "", 0));
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->objects.empty());
}

TEST_F(LocalObjectStoreTest, ListOrdersKeysByUtf8Bytes) {
  for (const char* key : {"\xc3\xa9", "z", "Z", "a\xff", "a"}) Put(key);
  auto all = store_->List("data", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"Z", "a", "a\xff", "z", "\xc3\xa9"}));
  auto a = store_->List("data", Listing("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Keys(*a), (std::vector<std::string>{"a", "a\xff"}));
}

TEST_F(LocalObjectStoreTest, BucketNamesFollowS3Rules) {
  for (const char* name :
       {"ab", "Upper", "has_underscore", "-start", "end-", "a..b", "192.168.5.4", "xn--abc",
        "name-s3alias", "a-very-long-name-that-goes-on-and-on-past-the-sixty-three-limit-x"}) {
    Status status = store_->CreateBucket(name);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(status.reason(), "InvalidBucketName") << name;
  }
  for (const char* name : {"abc", "my.bucket-1", "1.2.3", "0a0"}) {
    EXPECT_TRUE(store_->CreateBucket(name).ok()) << name;
  }
}

TEST_F(LocalObjectStoreTest, BucketLifecycleAndErrors) {
  Status again = store_->CreateBucket("data");
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.reason(), "BucketAlreadyOwnedByYou");

  ASSERT_TRUE(store_->CreateBucket("another").ok());
  auto buckets = store_->ListBuckets();
  ASSERT_TRUE(buckets.ok());
  ASSERT_EQ(buckets->size(), 2u);
  EXPECT_EQ((*buckets)[0].name, "another");
  EXPECT_EQ((*buckets)[1].name, "data");
  EXPECT_GT((*buckets)[0].creation_millis, 0);

  auto head = store_->HeadBucket("another");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->name, "another");
  ASSERT_TRUE(store_->DeleteBucket("another").ok());
  EXPECT_EQ(store_->HeadBucket("another").status().reason(), "NoSuchBucket");
  EXPECT_EQ(store_->DeleteBucket("another").reason(), "NoSuchBucket");

  EXPECT_EQ(store_->PutObject("nope", "k", "v").status().reason(), "NoSuchBucket");
  EXPECT_EQ(store_->GetObject("nope", "k").status().reason(), "NoSuchBucket");
  EXPECT_EQ(store_->List("nope", {}).status().reason(), "NoSuchBucket");
  EXPECT_EQ(store_->CreateMultipartUpload("nope", "k", {}).status().reason(), "NoSuchBucket");
  auto missing = store_->GetObject("data", "k");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().reason(), "NoSuchKey");
}

TEST_F(LocalObjectStoreTest, KeysLongerThan1024BytesAreRejected) {
  EXPECT_TRUE(store_->PutObject("data", std::string(1024, 'k'), "v").ok());
  auto put = store_->PutObject("data", std::string(1025, 'k'), "v");
  EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(put.status().reason(), "KeyTooLongError");
  EXPECT_EQ(store_->CreateMultipartUpload("data", std::string(1025, 'k'), {}).status().reason(),
            "KeyTooLongError");
}

TEST_F(LocalObjectStoreTest, DeleteBucketRefusesObjectsAndUploads) {
  ASSERT_TRUE(store_->CreateBucket("full").ok());
  ASSERT_TRUE(store_->PutObject("full", "k", "v").ok());
  Status status = store_->DeleteBucket("full");
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.reason(), "BucketNotEmpty");

  ASSERT_TRUE(store_->DeleteObject("full", "k").ok());
  auto upload = store_->CreateMultipartUpload("full", "k", {});
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(store_->DeleteBucket("full").reason(), "BucketNotEmpty");

  ASSERT_TRUE(store_->AbortMultipartUpload("full", "k", *upload).ok());
  EXPECT_TRUE(store_->DeleteBucket("full").ok());
}

TEST_F(LocalObjectStoreTest, MultipartUploadProducesConcatenationAndMultipartEtag) {
  PutOptions options;
  options.content_type = "application/x-parquet";
  options.user_metadata = {{"job", "j1"}};
  auto upload = store_->CreateMultipartUpload("data", "model.tar.gz", options);
  ASSERT_TRUE(upload.ok());

  std::vector<std::string> bodies = {Pattern(5 * kMiB, 'a'), Pattern(5 * kMiB + 3, 'b'),
                                     Pattern(1234, 'c')};
  std::vector<CompletedPart> parts;
  // Upload out of order, and write part 2 twice: the last write wins.
  for (int number : {3, 1, 2, 2}) {
    std::string body = bodies[number - 1];
    auto writer = store_->OpenPartForWrite("data", "model.tar.gz", *upload, number, RawMd5(body));
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Append(body).ok());
    auto info = (*writer)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->etag, Md5Hex(body));
  }
  for (int number = 1; number <= 3; ++number) {
    parts.push_back({number, "\"" + Md5Hex(bodies[number - 1]) + "\""});
  }

  auto listed = store_->ListParts("data", "model.tar.gz", *upload);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].part_number, 1);
  EXPECT_EQ((*listed)[1].size, 5 * kMiB + 3);
  EXPECT_EQ((*listed)[2].etag, Md5Hex(bodies[2]));
  auto uploads = store_->ListMultipartUploads("data");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].upload_id, *upload);
  EXPECT_EQ((*uploads)[0].key, "model.tar.gz");

  auto info = store_->CompleteMultipartUpload("data", "model.tar.gz", *upload, parts);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::string md5s = RawMd5(bodies[0]) + RawMd5(bodies[1]) + RawMd5(bodies[2]);
  EXPECT_EQ(info->etag, Md5Hex(md5s) + "-3");
  EXPECT_EQ(info->size, bodies[0].size() + bodies[1].size() + bodies[2].size());

  auto stat = store_->Stat("data", "model.tar.gz");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->etag, info->etag);
  EXPECT_EQ(stat->content_type, "application/x-parquet");
  EXPECT_EQ(stat->user_metadata, options.user_metadata);
  EXPECT_EQ(*store_->GetObject("data", "model.tar.gz"), bodies[0] + bodies[1] + bodies[2]);

  EXPECT_TRUE(store_->ListMultipartUploads("data")->empty());
  EXPECT_EQ(store_->ListParts("data", "model.tar.gz", *upload).status().reason(), "NoSuchUpload");
  // Only the assembled object's blob is left.
  EXPECT_EQ(CountFiles(root_ / "blobs"), 1u);
  EXPECT_EQ(CountFiles(root_ / "staging"), 0u);
}

TEST_F(LocalObjectStoreTest, CompleteWithUnlistedPartsDiscardsThem) {
  auto [upload, parts] = UploadParts("k", {Pattern(5 * kMiB, 'a'), "tail", "unused"});
  parts.pop_back();
  auto info = store_->CompleteMultipartUpload("data", "k", upload, parts);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 5 * kMiB + 4);
  EXPECT_EQ(CountFiles(root_ / "blobs"), 1u);
}

TEST_F(LocalObjectStoreTest, CompleteRejectsPartsOutOfOrder) {
  auto [upload, parts] = UploadParts("k", {Pattern(5 * kMiB, 'a'), "tail"});
  std::swap(parts[0], parts[1]);
  auto info = store_->CompleteMultipartUpload("data", "k", upload, parts);
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().reason(), "InvalidPartOrder");
  parts = {parts[1], parts[1]};
  EXPECT_EQ(store_->CompleteMultipartUpload("data", "k", upload, parts).status().reason(),
            "InvalidPartOrder");
  // The upload is untouched and can still complete.
  EXPECT_EQ(store_->ListParts("data", "k", upload)->size(), 2u);
}

TEST_F(LocalObjectStoreTest, CompleteRejectsWrongOrMissingParts) {
  auto [upload, parts] = UploadParts("k", {Pattern(5 * kMiB, 'a'), "tail"});
  std::vector<CompletedPart> wrong_etag = parts;
  wrong_etag[1].etag = Md5Hex("not the tail");
  auto info = store_->CompleteMultipartUpload("data", "k", upload, wrong_etag);
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().reason(), "InvalidPart");

  std::vector<CompletedPart> missing = parts;
  missing.push_back({7, Md5Hex("x")});
  EXPECT_EQ(store_->CompleteMultipartUpload("data", "k", upload, missing).status().reason(),
            "InvalidPart");
  EXPECT_EQ(store_->CompleteMultipartUpload("data", "k", upload, {}).status().reason(),
            "InvalidPart");

  EXPECT_EQ(store_->Stat("data", "k").status().reason(), "NoSuchKey");
  // Unquoted, upper-case ETags are accepted too.
  for (auto& part : parts) {
    std::string etag = part.etag.substr(1, part.etag.size() - 2);
    for (char& c : etag) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    part.etag = etag;
  }
  EXPECT_TRUE(store_->CompleteMultipartUpload("data", "k", upload, parts).ok());
}

TEST_F(LocalObjectStoreTest, CompleteRejectsSmallPartsBeforeTheLast) {
  auto [upload, parts] = UploadParts("k", {Pattern(5 * kMiB - 1, 'a'), "tail"});
  auto info = store_->CompleteMultipartUpload("data", "k", upload, parts);
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().reason(), "EntityTooSmall");
  // A single small part is fine: it is the last one.
  parts.pop_back();
  EXPECT_TRUE(store_->CompleteMultipartUpload("data", "k", upload, parts).ok());
}

TEST_F(LocalObjectStoreTest, PartWritesValidateUploadNumberAndDigest) {
  auto upload = store_->CreateMultipartUpload("data", "k", {});
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(
      store_->OpenPartForWrite("data", "k", "no-such-upload", 1, std::nullopt).status().reason(),
      "NoSuchUpload");
  EXPECT_EQ(
      store_->OpenPartForWrite("data", "other-key", *upload, 1, std::nullopt).status().reason(),
      "NoSuchUpload");
  EXPECT_EQ(store_->OpenPartForWrite("data", "k", *upload, 0, std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->OpenPartForWrite("data", "k", *upload, 10001, std::nullopt).status().code(),
            StatusCode::kInvalidArgument);

  auto writer = store_->OpenPartForWrite("data", "k", *upload, 1, RawMd5("expected"));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("actual").ok());
  EXPECT_EQ((*writer)->Commit().status().reason(), "BadDigest");
  EXPECT_TRUE(store_->ListParts("data", "k", *upload)->empty());
}

TEST_F(LocalObjectStoreTest, AbortRemovesTheUploadAndItsParts) {
  auto [upload, parts] = UploadParts("k", {Pattern(kMiB, 'a'), "tail"});
  EXPECT_EQ(CountFiles(root_ / "blobs"), 2u);
  ASSERT_TRUE(store_->AbortMultipartUpload("data", "k", upload).ok());
  EXPECT_EQ(CountFiles(root_ / "blobs"), 0u);
  EXPECT_TRUE(store_->ListMultipartUploads("data")->empty());
  EXPECT_EQ(store_->ListParts("data", "k", upload).status().reason(), "NoSuchUpload");
  EXPECT_EQ(store_->CompleteMultipartUpload("data", "k", upload, parts).status().reason(),
            "NoSuchUpload");
  EXPECT_EQ(store_->AbortMultipartUpload("data", "k", upload).reason(), "NoSuchUpload");
  EXPECT_EQ(store_->AbortMultipartUpload("nope", "k", upload).reason(), "NoSuchBucket");
}

TEST_F(LocalObjectStoreTest, CopyObjectKeepsOrReplacesMetadata) {
  PutOptions options;
  options.content_type = "text/plain";
  options.user_metadata = {{"a", "1"}};
  ASSERT_TRUE(store_->PutObject("data", "src", "payload", options).ok());
  ASSERT_TRUE(store_->CreateBucket("other").ok());

  auto kept = store_->CopyObject("data", "src", "other", "dst", {}, false);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->etag, Md5Hex("payload"));
  EXPECT_EQ(store_->Stat("other", "dst")->content_type, "text/plain");
  EXPECT_EQ(store_->Stat("other", "dst")->user_metadata, options.user_metadata);

  PutOptions replacement;
  replacement.content_type = "application/json";
  auto replaced = store_->CopyObject("data", "src", "data", "src", replacement, true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(store_->Stat("data", "src")->content_type, "application/json");
  EXPECT_TRUE(store_->Stat("data", "src")->user_metadata.empty());
  EXPECT_EQ(*store_->GetObject("data", "src"), "payload");

  // The copy is independent of later changes to the source.
  Put("src", "changed");
  ASSERT_TRUE(store_->DeleteObject("data", "src").ok());
  EXPECT_EQ(*store_->GetObject("other", "dst"), "payload");

  EXPECT_EQ(store_->CopyObject("data", "src", "other", "x", {}, false).status().reason(),
            "NoSuchKey");
  EXPECT_EQ(store_->CopyObject("data", "src", "nope", "x", {}, false).status().reason(),
            "NoSuchKey");
  Put("src2", "v");
  EXPECT_EQ(store_->CopyObject("data", "src2", "nope", "x", {}, false).status().reason(),
            "NoSuchBucket");
}

TEST_F(LocalObjectStoreTest, ReopenAfterCrashRemovesDebrisAndKeepsCommittedData) {
  Put("a", "alpha");
  Put("dir/b", Pattern(2 * kMiB, 'b'));
  auto [upload, parts] = UploadParts("mp", {Pattern(kMiB, 'p')});
  Put("a", "alpha-2");  // the replaced blob is already unlinked; the new one must survive

  // What a crash leaves: a blob renamed into place but never published, and a staging file.
  {
    std::ofstream(root_ / "blobs" / "orphan-blob") << "never committed";
    std::ofstream(root_ / "staging" / "half-written.tmp") << "partial";
  }
  Reopen();

  EXPECT_FALSE(fs::exists(root_ / "blobs" / "orphan-blob"));
  EXPECT_EQ(CountFiles(root_ / "staging"), 0u);
  EXPECT_EQ(CountFiles(root_ / "blobs"), 3u);
  EXPECT_EQ(*store_->GetObject("data", "a"), "alpha-2");
  EXPECT_EQ(*store_->GetObject("data", "dir/b"), Pattern(2 * kMiB, 'b'));
  auto listed = store_->ListParts("data", "mp", upload);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  auto info = store_->CompleteMultipartUpload("data", "mp", upload, parts);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(*store_->GetObject("data", "mp"), Pattern(kMiB, 'p'));
}

TEST_F(LocalObjectStoreTest, SecondOpenOfTheSameRootIsRefused) {
  auto second = OpenLocalObjectStore({.root = root_});
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  store_.reset();
  EXPECT_TRUE(OpenLocalObjectStore({.root = root_}).ok());
}

TEST_F(LocalObjectStoreTest, ConcurrentWritersOfDifferentKeysAllLand) {
  constexpr int kThreads = 8;
  constexpr int kKeysPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeysPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "/k" + std::to_string(i);
        if (!store_->PutObject("data", key, key + "-body").ok()) ++failures;
        auto body = store_->GetObject("data", key);
        if (!body.ok() || *body != key + "-body") ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = store_->List("data", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), static_cast<std::size_t>(kThreads * kKeysPerThread));
}

TEST_F(LocalObjectStoreTest, ConcurrentOverwritesNeverExposePartialObjects) {
  const std::vector<std::string> versions = {Pattern(300 * 1024, 'a'), Pattern(200 * 1024, 'b'),
                                             Pattern(100 * 1024, 'c')};
  Put("hot", versions[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 30; ++i) {
        if (!store_->PutObject("data", "hot", versions[(i + w) % versions.size()]).ok()) {
          ++bad_reads;
        }
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&] {
      while (!stop) {
        auto body = store_->GetObject("data", "hot");
        if (!body.ok() || std::find(versions.begin(), versions.end(), *body) == versions.end()) {
          ++bad_reads;
        }
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  for (std::size_t i = 2; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_EQ(CountFiles(root_ / "blobs"), 1u);
}

TEST(ParseS3Uri, SplitsBucketAndKey) {
  auto full = ParseS3Uri("s3://my-bucket/path/to/data.csv");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->bucket, "my-bucket");
  EXPECT_EQ(full->key, "path/to/data.csv");

  auto bare = ParseS3Uri("s3://my-bucket");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->bucket, "my-bucket");
  EXPECT_EQ(bare->key, "");

  auto slash = ParseS3Uri("s3://my-bucket/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->bucket, "my-bucket");
  EXPECT_EQ(slash->key, "");

  auto prefix = ParseS3Uri("s3://b/dir/");
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->key, "dir/");
}

TEST(ParseS3Uri, RejectsOtherSchemesAndEmptyBuckets) {
  for (const char* uri : {"", "s3://", "s3:///key", "http://bucket/key", "bucket/key",
                          "S3:/bucket/key", "file:///tmp/x"}) {
    EXPECT_EQ(ParseS3Uri(uri).status().code(), StatusCode::kInvalidArgument) << uri;
  }
}

}  // namespace
}  // namespace hearth::storage
