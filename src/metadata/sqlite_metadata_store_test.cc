#include "metadata/sqlite_metadata_store.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metadata/sqlite_db.h"

namespace hearth::metadata {
namespace {

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hearth-md-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

Resource MakeJob(const std::string& name, std::int64_t created = 1000) {
  Resource r;
  r.kind = "TrainingJob";
  r.name = name;
  r.arn = "arn:aws:sagemaker:us-east-1:000000000000:training-job/" + name;
  r.status = "InProgress";
  r.created_millis = created;
  r.modified_millis = created;
  r.doc = {{"TrainingJobName", name}, {"TrainingJobStatus", "InProgress"}};
  r.internal = {{"pid", 42}};
  return r;
}

Transition At(std::string status, std::int64_t at, std::string secondary = "Starting") {
  return Transition{.status = std::move(status),
                    .secondary_status = std::move(secondary),
                    .at_millis = at,
                    .message = "m"};
}

// The MetadataStore contract, run against every way of opening a store. A PostgreSQL store
// joins by adding a parameter.
class MetadataStoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SqliteOptions options;
    options.path =
        GetParam() == "memory" ? std::filesystem::path(":memory:") : dir_.path() / "hearth.db";
    auto opened = OpenSqliteMetadataStore(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  TempDir dir_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_P(MetadataStoreContractTest, CreateThenGetReturnsTheRecordAtVersionOne) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1000)).ok());
  auto got = store_->Get("TrainingJob", "j1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->arn, MakeJob("j1").arn);
  EXPECT_EQ(got->status, "InProgress");
  EXPECT_EQ(got->created_millis, 1000);
  EXPECT_EQ(got->doc, MakeJob("j1").doc);
  EXPECT_EQ(got->internal["pid"], 42);
}

TEST_P(MetadataStoreContractTest, CreateRejectsATakenName) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1)).ok());
  Resource again = MakeJob("j1");
  again.status = "Failed";
  Status status = store_->Create(again, At("Failed", 2));
  EXPECT_EQ(status.code(), StatusCode::kAlreadyExists) << status.ToString();
  EXPECT_EQ(store_->Get("TrainingJob", "j1")->status, "InProgress");
  EXPECT_EQ(store_->History("TrainingJob", "j1")->size(), 1u);
}

TEST_P(MetadataStoreContractTest, SameNameUnderAnotherKindIsADifferentResource) {
  ASSERT_TRUE(store_->Create(MakeJob("x"), At("InProgress", 1)).ok());
  Resource model = MakeJob("x");
  model.kind = "Model";
  EXPECT_TRUE(store_->Create(model, At("Created", 1)).ok());
}

TEST_P(MetadataStoreContractTest, GetOfAnUnknownResourceIsNotFound) {
  EXPECT_EQ(store_->Get("TrainingJob", "nope").status().code(), StatusCode::kNotFound);
}

TEST_P(MetadataStoreContractTest, CreateRejectsEmptyNamesAndNonObjectDocuments) {
  Resource r = MakeJob("");
  EXPECT_EQ(store_->Create(r, At("InProgress", 1)).code(), StatusCode::kInvalidArgument);
  r = MakeJob("j");
  r.doc = nlohmann::json::array();
  EXPECT_EQ(store_->Create(r, At("InProgress", 1)).code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreContractTest, ListReturnsOneKindOrderedByCreationThenName) {
  ASSERT_TRUE(store_->Create(MakeJob("b", 200), At("InProgress", 1)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("c", 100), At("InProgress", 1)).ok());
  ASSERT_TRUE(store_->Create(MakeJob("a", 200), At("InProgress", 1)).ok());
  Resource model = MakeJob("m", 1);
  model.kind = "Model";
  ASSERT_TRUE(store_->Create(model, At("Created", 1)).ok());

  auto listed = store_->List("TrainingJob");
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> names;
  for (const auto& r : *listed) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_TRUE(store_->List("Endpoint")->empty());
}

TEST_P(MetadataStoreContractTest, UpdateBumpsTheVersionAndRecordsTheTransition) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1000)).ok());
  Resource r = store_->Get("TrainingJob", "j1").value();
  r.status = "Completed";
  r.modified_millis = 2000;
  r.doc["TrainingJobStatus"] = "Completed";
  r.internal = {{"exit_code", 0}};
  auto version = store_->Update(r, At("Completed", 2000, "Completed"));
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, 2);

  Resource got = store_->Get("TrainingJob", "j1").value();
  EXPECT_EQ(got.version, 2);
  EXPECT_EQ(got.status, "Completed");
  EXPECT_EQ(got.modified_millis, 2000);
  EXPECT_EQ(got.created_millis, 1000);
  EXPECT_EQ(got.doc["TrainingJobStatus"], "Completed");
  EXPECT_FALSE(got.internal.contains("pid"));

  auto history = store_->History("TrainingJob", "j1");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].status, "InProgress");
  EXPECT_EQ((*history)[0].secondary_status, "Starting");
  EXPECT_EQ((*history)[1].status, "Completed");
  EXPECT_EQ((*history)[1].at_millis, 2000);
}

TEST_P(MetadataStoreContractTest, UpdateWithoutATransitionLeavesTheHistoryAlone) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1)).ok());
  Resource r = store_->Get("TrainingJob", "j1").value();
  r.internal["log_offset"] = 99;
  ASSERT_TRUE(store_->Update(r, std::nullopt).ok());
  EXPECT_EQ(store_->History("TrainingJob", "j1")->size(), 1u);
}

TEST_P(MetadataStoreContractTest, UpdateFromAStaleVersionIsAVersionConflictAndChangesNothing) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1)).ok());
  Resource first = store_->Get("TrainingJob", "j1").value();
  Resource second = first;
  first.status = "Stopping";
  ASSERT_TRUE(store_->Update(first, At("Stopping", 2)).ok());

  second.status = "Completed";
  auto lost = store_->Update(second, At("Completed", 3));
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(lost.status().reason(), "VersionConflict");
  EXPECT_EQ(store_->Get("TrainingJob", "j1")->status, "Stopping");
  EXPECT_EQ(store_->History("TrainingJob", "j1")->size(), 2u);
}

TEST_P(MetadataStoreContractTest, UpdateOfAnUnknownResourceIsNotFound) {
  Resource r = MakeJob("ghost");
  r.version = 1;
  EXPECT_EQ(store_->Update(r, std::nullopt).status().code(), StatusCode::kNotFound);
}

TEST_P(MetadataStoreContractTest, DeleteRemovesTheRecordAndItsHistory) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1)).ok());
  Resource r = store_->Get("TrainingJob", "j1").value();
  ASSERT_TRUE(store_->Update(r, At("Failed", 2)).ok());
  ASSERT_TRUE(store_->Delete("TrainingJob", "j1").ok());

  EXPECT_EQ(store_->Get("TrainingJob", "j1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->History("TrainingJob", "j1").status().code(), StatusCode::kNotFound);
  // A new resource under the old name starts a fresh history.
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 3)).ok());
  EXPECT_EQ(store_->History("TrainingJob", "j1")->size(), 1u);
  EXPECT_EQ(store_->Get("TrainingJob", "j1")->version, 1);
}

TEST_P(MetadataStoreContractTest, DeleteOfAnUnknownResourceIsNotFound) {
  EXPECT_EQ(store_->Delete("TrainingJob", "nope").code(), StatusCode::kNotFound);
}

TEST_P(MetadataStoreContractTest, ConcurrentUpdatesFromOneVersionLetExactlyOneWin) {
  ASSERT_TRUE(store_->Create(MakeJob("j1"), At("InProgress", 1)).ok());
  Resource base = store_->Get("TrainingJob", "j1").value();
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Resource mine = base;
      mine.internal["writer"] = i;
      auto result = store_->Update(mine, At("InProgress", 10 + i));
      if (result.ok()) ++wins;
      if (result.status().reason() == "VersionConflict") ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
  EXPECT_EQ(store_->History("TrainingJob", "j1")->size(), 2u);
}

TEST_P(MetadataStoreContractTest, DocumentsKeepUnicodeAndSurviveInvalidUtf8) {
  Resource r = MakeJob("j1");
  r.doc["Tags"] = {{"k", "caf\u00e9 \u2603"}};
  ASSERT_TRUE(store_->Create(r, At("InProgress", 1)).ok());
  EXPECT_EQ(store_->Get("TrainingJob", "j1")->doc["Tags"]["k"], "caf\u00e9 \u2603");

  Resource bad = MakeJob("j2");
  bad.doc["x"] = std::string("\xff\xfe", 2);
  ASSERT_TRUE(store_->Create(bad, At("InProgress", 1)).ok());
  EXPECT_TRUE(store_->Get("TrainingJob", "j2")->doc["x"].is_string());
}

INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreContractTest, ::testing::Values("memory", "file"),
                         [](const auto& info) { return info.param; });

// ---- behaviour that needs a file ----

class SqliteMetadataStoreFileTest : public ::testing::Test {
 protected:
  SqliteOptions Options() const { return SqliteOptions{.path = dir_.path() / "db" / "h.db"}; }
  TempDir dir_;
};

TEST_F(SqliteMetadataStoreFileTest, AReopenedFileHoldsEverythingWritten) {
  {
    auto store = OpenSqliteMetadataStore(Options()).value();
    ASSERT_TRUE(store->Create(MakeJob("a", 1), At("InProgress", 1)).ok());
    ASSERT_TRUE(store->Create(MakeJob("b", 2), At("InProgress", 2)).ok());
    Resource a = store->Get("TrainingJob", "a").value();
    a.status = "Completed";
    ASSERT_TRUE(store->Update(a, At("Completed", 3)).ok());
    ASSERT_TRUE(store->Delete("TrainingJob", "b").ok());
  }
  auto store = OpenSqliteMetadataStore(Options()).value();
  auto listed = store->List("TrainingJob").value();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "a");
  EXPECT_EQ(listed[0].status, "Completed");
  EXPECT_EQ(listed[0].version, 2);
  EXPECT_EQ(store->History("TrainingJob", "a")->size(), 2u);
}

TEST_F(SqliteMetadataStoreFileTest, CommittedWritesSurviveAProcessThatExitsWithoutClosing) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child never closes the database: _exit skips every destructor, as a kill -9 would.
    auto store = OpenSqliteMetadataStore(Options());
    if (!store.ok()) _exit(2);
    if (!(*store)->Create(MakeJob("survivor"), At("InProgress", 1)).ok()) _exit(3);
    Resource r = (*store)->Get("TrainingJob", "survivor").value();
    r.status = "Completed";
    if (!(*store)->Update(r, At("Completed", 2)).ok()) _exit(4);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);

  auto store = OpenSqliteMetadataStore(Options());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto got = (*store)->Get("TrainingJob", "survivor");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, "Completed");
  EXPECT_EQ((*store)->History("TrainingJob", "survivor")->size(), 2u);
}

TEST_F(SqliteMetadataStoreFileTest, AStoreDestroyedWithoutShutdownReopensIntact) {
  auto first = OpenSqliteMetadataStore(Options()).value();
  ASSERT_TRUE(first->Create(MakeJob("j"), At("InProgress", 1)).ok());
  first.reset();
  auto second = OpenSqliteMetadataStore(Options()).value();
  EXPECT_TRUE(second->Get("TrainingJob", "j").ok());
}

TEST_F(SqliteMetadataStoreFileTest, MetadataAndLogStoresShareOneFile) {
  auto metadata = OpenSqliteMetadataStore(Options()).value();
  auto logs = OpenSqliteLogStore(Options()).value();
  ASSERT_TRUE(metadata->Create(MakeJob("j"), At("InProgress", 1)).ok());
  ASSERT_TRUE(logs->Append("/aws/sagemaker/TrainingJobs", "j/algo-1",
                           {{.timestamp_millis = 5, .message = "hi"}})
                  .ok());
  EXPECT_TRUE(metadata->Get("TrainingJob", "j").ok());
  EXPECT_EQ(logs->ListStreams("/aws/sagemaker/TrainingJobs", "")->size(), 1u);
}

TEST_F(SqliteMetadataStoreFileTest, OpeningOneFileFromManyThreadsMigratesItOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      Status st = i % 2 == 0 ? OpenSqliteMetadataStore(Options()).status()
                             : OpenSqliteLogStore(Options()).status();
      if (!st.ok()) {
        ++failures;
        ADD_FAILURE() << st.ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto db = SqliteDb::Open({.path = Options().path}).value();
  auto count = db->Prepare("SELECT COUNT(*), MAX(version) FROM schema_version").value();
  ASSERT_TRUE(count.Step().value());
  EXPECT_EQ(count.ColumnInt64(0), count.ColumnInt64(1));
}

TEST_F(SqliteMetadataStoreFileTest, TheFileIsInWalMode) {
  auto store = OpenSqliteMetadataStore(Options()).value();
  auto db = SqliteDb::Open({.path = Options().path}).value();
  auto mode = db->Prepare("PRAGMA journal_mode").value();
  ASSERT_TRUE(mode.Step().value());
  EXPECT_EQ(mode.ColumnText(0), "wal");
}

TEST_F(SqliteMetadataStoreFileTest, AFileFromANewerSchemaIsRefused) {
  ASSERT_TRUE(OpenSqliteMetadataStore(Options()).ok());
  {
    auto db = SqliteDb::Open({.path = Options().path}).value();
    ASSERT_TRUE(
        db->Exec("INSERT INTO schema_version (version, applied_millis) VALUES (999, 0)").ok());
  }
  auto reopened = OpenSqliteMetadataStore(Options());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition);
}

TEST(SqliteDbTest, MigrationsApplyInOrderAndOnlyOnce) {
  auto db = SqliteDb::Open({.path = ":memory:"}).value();
  std::vector<std::string_view> steps = {"CREATE TABLE t (x BIGINT)",
                                         "INSERT INTO t (x) VALUES (1)"};
  ASSERT_TRUE(db->Migrate(steps).ok());
  ASSERT_TRUE(db->Migrate(steps).ok());
  steps.push_back("INSERT INTO t (x) VALUES (2)");
  ASSERT_TRUE(db->Migrate(steps).ok());
  auto sum = db->Prepare("SELECT COUNT(*), SUM(x) FROM t").value();
  ASSERT_TRUE(sum.Step().value());
  EXPECT_EQ(sum.ColumnInt64(0), 2);
  EXPECT_EQ(sum.ColumnInt64(1), 3);
}

TEST(SqliteDbTest, AFailedMigrationLeavesNothingBehind) {
  auto db = SqliteDb::Open({.path = ":memory:"}).value();
  Status status = db->Migrate({"CREATE TABLE t (x BIGINT)", "THIS IS NOT SQL"});
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_FALSE(db->Prepare("SELECT x FROM t").ok());
}

}  // namespace
}  // namespace hearth::metadata
