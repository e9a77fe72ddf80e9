#include "serving/model_server.h"

#include <gtest/gtest.h>

namespace hearth::serving {
namespace {

namespace fs = std::filesystem;
using algorithms::Algorithm;
using algorithms::HyperparameterSpec;
using algorithms::Hyperparameters;
using algorithms::MetricDefinition;
using algorithms::Model;
using algorithms::TrainingContext;

// Scores each row with the sum of its two features.
class SumModel : public Model {
 public:
  std::size_t feature_dim() const override { return 2; }
  Result<data::Predictions> Predict(const data::Batch& rows) const override {
    data::Batch dense = rows;
    dense.Densify();
    if (dense.cols != 2) {
      return InvalidArgument("expected 2 features per record, got " + std::to_string(dense.cols));
    }
    data::Predictions p;
    p.rows = dense.rows;
    p.columns.push_back({.name = "score"});
    for (std::size_t r = 0; r < dense.rows; ++r) {
      p.columns[0].values.push_back(dense.row(r)[0] + dense.row(r)[1]);
    }
    return p;
  }
};

class SumAlgorithm : public Algorithm {
 public:
  std::string_view name() const override { return "sum"; }
  std::vector<std::string> repositories() const override { return {}; }
  std::vector<MetricDefinition> metric_definitions() const override { return {}; }
  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override {
    static const std::vector<HyperparameterSpec> kNone;
    return kNone;
  }
  Status Train(const TrainingContext&, const Hyperparameters&) const override {
    return Status::Ok();
  }
  Result<std::unique_ptr<Model>> LoadModel(const fs::path&) const override {
    return std::unique_ptr<Model>(std::make_unique<SumModel>());
  }
};

class InvocationHandlerTest : public ::testing::Test {
 protected:
  http::Response Call(std::string method, std::string path, std::string body = "",
                      std::string content_type = "", std::string accept = "") {
    http::Request req;
    req.method = std::move(method);
    req.path = std::move(path);
    req.body = http::RequestBody::InMemory(std::move(body));
    if (!content_type.empty()) req.headers.Add("Content-Type", content_type);
    if (!accept.empty()) req.headers.Add("Accept", accept);
    return handler_.Handle(req);
  }
  static std::string Header(const http::Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  SumAlgorithm algorithm_;
  InvocationHandler handler_{algorithm_, std::make_shared<SumModel>(), 64};
};

TEST_F(InvocationHandlerTest, PingIsHealthyWithAnEmptyBody) {
  http::Response r = Call("GET", "/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(InvocationHandlerTest, CsvRowsAreScoredAndAnsweredInTheAcceptedFormat) {
  http::Response r = Call("POST", "/invocations", "1,2\n3,4\n", "text/csv");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  EXPECT_EQ(r.body, R"({"predictions":[{"score":3},{"score":7}]})");

  r = Call("POST", "/invocations", "1,2\n3,4\n", "text/csv", "text/csv");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "Content-Type"), "text/csv");
  EXPECT_EQ(r.body, "3\n7\n");
}

TEST_F(InvocationHandlerTest, JsonInstancesAreAccepted) {
  http::Response r = Call("POST", "/invocations", R"({"instances":[{"features":[0.5,0.25]}]})",
                          "application/json", "application/jsonlines");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"score\":0.75}\n");
}

TEST_F(InvocationHandlerTest, BadRequestsGetTheStatusSageMakersContainersAnswer) {
  EXPECT_EQ(Call("POST", "/invocations", "1,2", "image/png").status, 415);
  EXPECT_EQ(Call("POST", "/invocations", "1,2", "text/csv", "image/png").status, 406);
  http::Response r = Call("POST", "/invocations", "1,2,3\n", "text/csv");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("expected 2 features"), std::string::npos) << r.body;
  EXPECT_EQ(Call("POST", "/invocations", "1,x\n", "text/csv").status, 400);
  EXPECT_EQ(Call("POST", "/invocations", "{\"instances\":", "application/json").status, 400);
  EXPECT_EQ(Call("POST", "/invocations", "", "text/csv").status, 204);
  EXPECT_EQ(Call("POST", "/invocations", std::string(65, '1'), "text/csv").status, 413);
  EXPECT_EQ(Call("GET", "/invocations").status, 405);
  EXPECT_EQ(Call("GET", "/nope").status, 404);
}

TEST_F(InvocationHandlerTest, ExecutionParametersDescribeMultiRecordBatches) {
  http::Response r = Call("GET", "/execution-parameters");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("BatchStrategy":"MULTI_RECORD")"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace hearth::serving
