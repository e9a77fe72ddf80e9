#include "control/image_registry.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata/sqlite_metadata_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;

constexpr char kField[] = "algorithmSpecification.trainingImage";

class ImageRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-images-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto store = metadata::OpenSqliteMetadataStore({.path = ":memory:"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    registry_ = std::make_unique<ImageRegistry>(
        *store_, std::map<std::string, BuiltinImage>{
                     {"kmeans", {.repositories = {"kmeans"},
                                 .metric_definitions = {{"test:msd", "msd=(\\S+)"}}}},
                     {"xgboost", {.repositories = {"sagemaker-xgboost", "xgboost"}}}});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // A directory holding `entry` (mode `mode`) with a shell script body.
  fs::path MakeImageDir(const std::string& name, const std::string& entry = "train",
                        mode_t mode = 0755) {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    if (!entry.empty()) {
      std::ofstream(dir / entry) << "#!/bin/sh\nexit 0\n";
      chmod((dir / entry).c_str(), mode);
    }
    return dir;
  }

  void ExpectUnknown(const std::string& image) {
    Result<ResolvedImage> r = registry_->Resolve(image, kField);
    ASSERT_FALSE(r.ok()) << image << " resolved";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().reason(), "ValidationException");
    EXPECT_NE(r.status().message().find(kField), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(image), std::string::npos) << r.status().message();
  }

  fs::path root_;
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<ImageRegistry> registry_;
};

TEST_F(ImageRegistryTest, HearthNameOfARegisteredBuiltinResolves) {
  for (const std::string image : {"hearth/kmeans", "hearth/kmeans:1", "hearth/kmeans:latest"}) {
    Result<ResolvedImage> r = registry_->Resolve(image, kField);
    ASSERT_TRUE(r.ok()) << image << ": " << r.status().ToString();
    EXPECT_TRUE(r->builtin);
    EXPECT_EQ(r->algorithm, "kmeans");
    EXPECT_EQ(r->name, image);
    EXPECT_TRUE(r->program_dir.empty());
    ASSERT_EQ(r->metric_definitions.size(), 1u);
    EXPECT_EQ(r->metric_definitions[0].name, "test:msd");
  }
}

TEST_F(ImageRegistryTest, EcrUriResolvesWithAnyAccountRegionAndTag) {
  const std::pair<std::string, std::string> cases[] = {
      {"382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1", "kmeans"},
      {"174872318107.dkr.ecr.us-west-2.amazonaws.com/kmeans:latest", "kmeans"},
      {"664544806723.dkr.ecr.eu-central-1.amazonaws.com/kmeans", "kmeans"},
      {"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"},
      {"257758044811.dkr.ecr.us-east-2.amazonaws.com/xgboost:1", "xgboost"},
      {"683313688378.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost@sha256:0123abcd",
       "xgboost"},
  };
  for (const auto& [image, algorithm] : cases) {
    Result<ResolvedImage> r = registry_->Resolve(image, kField);
    ASSERT_TRUE(r.ok()) << image << ": " << r.status().ToString();
    EXPECT_TRUE(r->builtin) << image;
    EXPECT_EQ(r->algorithm, algorithm) << image;
  }
}

TEST_F(ImageRegistryTest, BuiltinNamesAreUnknownWhenNotRegisteredAsBuiltins) {
  ImageRegistry bare(*store_, {});
  for (const std::string image :
       {"hearth/kmeans", "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"}) {
    Result<ResolvedImage> r = bare.Resolve(image, kField);
    ASSERT_FALSE(r.ok()) << image;
    EXPECT_EQ(r.status().reason(), "ValidationException");
  }
}

TEST_F(ImageRegistryTest, UnknownImageIsValidationExceptionNamingTheField) {
  ExpectUnknown("hearth/no-such-algo");
  ExpectUnknown("382416733822.dkr.ecr.us-east-1.amazonaws.com/no-such-algo:1");
  ExpectUnknown("my-image");
  // Not ECR: a built-in's repository name under another registry is not the built-in.
  ExpectUnknown("registry.example.com/kmeans:1");
}

TEST_F(ImageRegistryTest, UnknownImageMessageListsTheBuiltins) {
  Result<ResolvedImage> r = registry_->Resolve("nope", kField);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hearth/kmeans"), std::string::npos);
  EXPECT_NE(r.status().message().find("hearth/xgboost"), std::string::npos);
}

TEST_F(ImageRegistryTest, RegisteredDirectoryResolvesWithAndWithoutLatest) {
  fs::path dir = MakeImageDir("algo");
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo", dir).ok());
  for (const std::string image : {"my-algo", "my-algo:latest"}) {
    Result<ResolvedImage> r = registry_->Resolve(image, kField);
    ASSERT_TRUE(r.ok()) << image << ": " << r.status().ToString();
    EXPECT_FALSE(r->builtin);
    EXPECT_EQ(r->program_dir, fs::absolute(dir));
  }
  ExpectUnknown("my-algo:v2");
}

TEST_F(ImageRegistryTest, RegisteringWithLatestTagAnswersToTheBareName) {
  fs::path dir = MakeImageDir("algo");
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo:latest", dir).ok());
  EXPECT_TRUE(registry_->Resolve("my-algo", kField).ok());
}

TEST_F(ImageRegistryTest, OtherTagsAreDistinctImages) {
  fs::path v1 = MakeImageDir("v1");
  fs::path v2 = MakeImageDir("v2");
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo:1", v1).ok());
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo:2", v2).ok());
  EXPECT_EQ(registry_->Resolve("my-algo:1", kField)->program_dir, fs::absolute(v1));
  EXPECT_EQ(registry_->Resolve("my-algo:2", kField)->program_dir, fs::absolute(v2));
  ExpectUnknown("my-algo");
}

TEST_F(ImageRegistryTest, RegistryPortIsNotMistakenForATag) {
  fs::path dir = MakeImageDir("algo");
  ASSERT_TRUE(registry_->RegisterDirectory("localhost:5000/team/algo", dir).ok());
  EXPECT_TRUE(registry_->Resolve("localhost:5000/team/algo", kField).ok());
  EXPECT_TRUE(registry_->Resolve("localhost:5000/team/algo:latest", kField).ok());
}

TEST_F(ImageRegistryTest, ReRegisteringRepointsTheName) {
  fs::path first = MakeImageDir("first");
  fs::path second = MakeImageDir("second", "serve");
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo", first).ok());
  ASSERT_TRUE(registry_->RegisterDirectory("my-algo", second).ok());
  EXPECT_EQ(registry_->Resolve("my-algo", kField)->program_dir, fs::absolute(second));
  Result<std::vector<std::pair<std::string, std::string>>> listed = registry_->ListRegistered();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].first, "my-algo:latest");
  EXPECT_EQ((*listed)[0].second, fs::absolute(second).string());
}

TEST_F(ImageRegistryTest, RefusesDirectoryWithoutTrainOrServe) {
  fs::path dir = MakeImageDir("empty", "");
  std::ofstream(dir / "README") << "no entry point here\n";
  Status s = registry_->RegisterDirectory("empty", dir);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("train"), std::string::npos) << s.message();
  ExpectUnknown("empty");
}

TEST_F(ImageRegistryTest, RefusesNonExecutableTrain) {
  fs::path dir = MakeImageDir("noexec", "train", 0644);
  EXPECT_EQ(registry_->RegisterDirectory("noexec", dir).code(), StatusCode::kInvalidArgument);
  ExpectUnknown("noexec");
}

TEST_F(ImageRegistryTest, RefusesMissingDirectory) {
  EXPECT_EQ(registry_->RegisterDirectory("ghost", root_ / "does-not-exist").code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(registry_->ListRegistered()->empty());
}

TEST_F(ImageRegistryTest, RegisteredImagesAreSeenByAnotherRegistryOverTheSameStore) {
  fs::path dir = MakeImageDir("algo");
  ASSERT_TRUE(registry_->RegisterDirectory("shared", dir).ok());
  ImageRegistry other(*store_, {});
  Result<ResolvedImage> r = other.Resolve("shared", kField);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->program_dir, fs::absolute(dir));
}

}  // namespace
}  // namespace hearth::control
