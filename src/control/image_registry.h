// ImageRegistry: what a `TrainingImage` (or, later, a model's `Image`) names, and how to run it.
//
// Two kinds of image:
//   - Built-in algorithms answer to `hearth/<algo>` and to the SageMaker ECR URIs the SDK's
//     `image_uris.retrieve` produces ("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
//     ".../sagemaker-xgboost:1.7-1"): any registry host, the algorithm's repository name,
//     any tag. They run as `hearth algo <name> train|serve`. Which algorithms exist is decided
//     by the caller (server/ registers what algorithms/ provides).
//   - Bring-your-own images: a local directory with `train` (and later `serve`) executables,
//     registered under a name with `hearth image register` (stored in the MetadataStore as
//     kind "Image", so a running server sees it at once). Inside the sandbox the directory is
//     mounted read-only at /opt/program, which is first on PATH, as in SageMaker's BYO examples.
//
// An image that resolves to nothing is a ValidationException at create time.
//
// Thread safety: thread safe (built-ins are fixed after construction; BYO lookups read the
// store).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "metadata/metadata_store.h"

namespace hearth::control {

struct MetricDefinition {
  std::string name;
  std::string regex;
};

// What the registry knows of a built-in algorithm.
struct BuiltinImage {
  std::vector<std::string> repositories;  // ECR repository names it answers to
  // The metrics its log lines carry; a job that names no MetricDefinitions gets these, as
  // SageMaker's built-in images carry theirs.
  std::vector<MetricDefinition> metric_definitions;
};

struct ResolvedImage {
  std::string name;  // as the request gave it
  bool builtin = false;
  std::string algorithm;              // built-ins: "linear-learner", ...
  std::vector<MetricDefinition> metric_definitions;  // built-ins
  std::filesystem::path program_dir;  // BYO: the registered directory
};

class ImageRegistry {
 public:
  // `store` is not owned and must outlive this object. `builtin_algorithms` maps an algorithm
  // name ("kmeans") to what it answers to and what it reports.
  ImageRegistry(metadata::MetadataStore& store,
                std::map<std::string, BuiltinImage> builtin_algorithms);

  // InvalidArgument (ValidationException) naming `field` if the image is unknown.
  Result<ResolvedImage> Resolve(std::string_view image, std::string_view field) const;

  // Registers (or re-points) a BYO image. `dir` must contain an executable `train` or `serve`.
  Status RegisterDirectory(std::string_view name, const std::filesystem::path& dir);
  Result<std::vector<std::pair<std::string, std::string>>> ListRegistered() const;

 private:
  metadata::MetadataStore& store_;
  std::map<std::string, BuiltinImage> builtin_algorithms_;
};

}  // namespace hearth::control
