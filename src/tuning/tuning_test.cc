#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tuning/acquisition.h"
#include "tuning/bayesian.h"
#include "tuning/early_stopping.h"
#include "tuning/gp.h"
#include "tuning/hyperband.h"
#include "tuning/lbfgs.h"
#include "tuning/random.h"
#include "tuning/search_space.h"
#include "tuning/strategy.h"
#include "tuning/target_warping.h"

namespace hearth::tuning {
namespace {

using nlohmann::json;

// A stream no strategy draws from.
constexpr RngStream kTestStream = static_cast<RngStream>(99);
using HyperParameters = std::map<std::string, std::string>;

ParameterRange Continuous(std::string name, double lo, double hi,
                          ScalingType scaling = ScalingType::kLinear) {
  ParameterRange r;
  r.name = std::move(name);
  r.type = ParameterType::kContinuous;
  r.scaling = scaling;
  r.min_value = lo;
  r.max_value = hi;
  return r;
}

ParameterRange Integer(std::string name, double lo, double hi,
                       ScalingType scaling = ScalingType::kLinear) {
  ParameterRange r = Continuous(std::move(name), lo, hi, scaling);
  r.type = ParameterType::kInteger;
  return r;
}

ParameterRange Categorical(std::string name, std::vector<std::string> values) {
  ParameterRange r;
  r.name = std::move(name);
  r.type = ParameterType::kCategorical;
  r.values = std::move(values);
  return r;
}

SearchSpace MustCreate(std::vector<ParameterRange> ranges) {
  Result<SearchSpace> space = SearchSpace::Create(std::move(ranges));
  EXPECT_TRUE(space.ok()) << space.status().ToString();
  return space.ok() ? *space : SearchSpace();
}

std::string ErrorOf(const json& ranges) {
  Result<SearchSpace> space = SearchSpace::FromJson(ranges);
  return space.ok() ? "OK" : space.status().message();
}

// ---------------------------------------------------------------------------------------------
// Search space: parsing and validation.

TEST(SearchSpace, ParsesTheThreeKindsOfRangeInOrder) {
  const json ranges = json::parse(R"({
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "10",
                                "ScalingType": "Logarithmic"}],
    "ContinuousParameterRanges": [{"Name": "momentum", "MinValue": "0.5", "MaxValue": "0.999",
                                   "ScalingType": "ReverseLogarithmic"}],
    "CategoricalParameterRanges": [{"Name": "tree_method", "Values": ["auto", "exact", "hist"]}]
  })");
  Result<SearchSpace> space = SearchSpace::FromJson(ranges);
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  ASSERT_EQ(space->num_parameters(), 3);
  EXPECT_EQ(space->parameters()[0].type, ParameterType::kInteger);
  EXPECT_EQ(space->parameters()[0].scaling, ScalingType::kLogarithmic);
  EXPECT_EQ(space->parameters()[1].max_value, 0.999);
  EXPECT_EQ(space->parameters()[2].values.size(), 3u);
  EXPECT_EQ(space->encoded_dim(), 5);  // one coordinate each, a one-hot block of three
  EXPECT_EQ(space->encoded_owner(), (std::vector<int>{0, 1, 2, 2, 2}));
  EXPECT_EQ(space->NumCombinations(), std::nullopt);
}

TEST(SearchSpace, MinAboveMaxNamesTheFieldAndTheRule) {
  EXPECT_EQ(ErrorOf(json::parse(R"({"IntegerParameterRanges":
                [{"Name": "k", "MinValue": "5", "MaxValue": "1"}]})")),
            "1 validation error detected: Value '5' at "
            "'parameterRanges.integerParameterRanges.1.member.minValue' failed to satisfy "
            "constraint: Member must be less than or equal to MaxValue '1'");
}

TEST(SearchSpace, LogarithmicScalingNeedsPositiveValues) {
  EXPECT_EQ(ErrorOf(json::parse(R"({"ContinuousParameterRanges": [
                {"Name": "a", "MinValue": "0.1", "MaxValue": "1"},
                {"Name": "eta", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]})")),
            "1 validation error detected: Value '0' at "
            "'parameterRanges.continuousParameterRanges.2.member.minValue' failed to satisfy "
            "constraint: Member must be greater than 0 when ScalingType is Logarithmic");
}

TEST(SearchSpace, ReverseLogarithmicIsContinuousOnlyAndBelowOne) {
  EXPECT_EQ(ErrorOf(json::parse(R"({"IntegerParameterRanges": [{"Name": "n", "MinValue": "0",
                "MaxValue": "5", "ScalingType": "ReverseLogarithmic"}]})")),
            "1 validation error detected: Value 'ReverseLogarithmic' at "
            "'parameterRanges.integerParameterRanges.1.member.scalingType' failed to satisfy "
            "constraint: ReverseLogarithmic scaling is supported only for continuous parameter "
            "ranges");
  EXPECT_EQ(ErrorOf(json::parse(R"({"ContinuousParameterRanges": [{"Name": "b", "MinValue": "-0.1",
                "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}]})")),
            "2 validation errors detected: Value '-0.1' at "
            "'parameterRanges.continuousParameterRanges.1.member.minValue' failed to satisfy "
            "constraint: Member must be greater than or equal to 0 when ScalingType is "
            "ReverseLogarithmic; Value '1' at "
            "'parameterRanges.continuousParameterRanges.1.member.maxValue' failed to satisfy "
            "constraint: Member must be less than 1 when ScalingType is ReverseLogarithmic");
}

TEST(SearchSpace, MalformedMembersAreReportedWithTheirPaths) {
  EXPECT_EQ(
      ErrorOf(json::parse(R"({"IntegerParameterRanges": [{"MinValue": "1.5", "MaxValue": "3"}]})")),
      "2 validation errors detected: Value null at "
      "'parameterRanges.integerParameterRanges.1.member.name' failed to satisfy constraint: "
      "Member must not be null; Value '1.5' at "
      "'parameterRanges.integerParameterRanges.1.member.minValue' failed to satisfy "
      "constraint: Member must be an integer");
  EXPECT_EQ(ErrorOf(json::parse(R"({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "a",
                "MaxValue": "1", "ScalingType": "Exponential"}]})")),
            "2 validation errors detected: Value 'a' at "
            "'parameterRanges.continuousParameterRanges.1.member.minValue' failed to satisfy "
            "constraint: Member must be a finite number; Value 'Exponential' at "
            "'parameterRanges.continuousParameterRanges.1.member.scalingType' failed to satisfy "
            "constraint: Member must satisfy enum value set: [Auto, Linear, Logarithmic, "
            "ReverseLogarithmic]");
}

TEST(SearchSpace, CategoricalValuesAreOneToThirtyDistinctStrings) {
  json many = json::array();
  for (int i = 0; i < 31; ++i) many.push_back(std::to_string(i));
  const std::string too_many =
      ErrorOf(json{{"CategoricalParameterRanges", {{{"Name", "c"}, {"Values", many}}}}});
  EXPECT_NE(too_many.find("at 'parameterRanges.categoricalParameterRanges.1.member.values' "
                          "failed to satisfy constraint: Member must have length less than or "
                          "equal to 30"),
            std::string::npos)
      << too_many;
  EXPECT_EQ(ErrorOf(json::parse(
                R"({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "a"]}]})")),
            "1 validation error detected: Value [a, a] at "
            "'parameterRanges.categoricalParameterRanges.1.member.values' failed to satisfy "
            "constraint: Member must contain distinct values");
}

TEST(SearchSpace, AtMostThirtyTunableParametersAndUniqueNames) {
  json ints = json::array();
  json conts = json::array();
  for (int i = 0; i < 16; ++i) {
    const std::string suffix = std::to_string(i);
    ints.push_back(
        {{"Name", std::string("i").append(suffix)}, {"MinValue", "0"}, {"MaxValue", "9"}});
    conts.push_back(
        {{"Name", std::string("c").append(suffix)}, {"MinValue", "0"}, {"MaxValue", "1"}});
  }
  EXPECT_EQ(ErrorOf(json{{"IntegerParameterRanges", ints}, {"ContinuousParameterRanges", conts}}),
            "1 validation error detected: Value '32' at 'parameterRanges' failed to satisfy "
            "constraint: The number of hyperparameters to tune must be less than or equal to 30");
  EXPECT_EQ(ErrorOf(json::parse(
                R"({"IntegerParameterRanges": [{"Name": "a", "MinValue": "0", "MaxValue": "1"}],
                "CategoricalParameterRanges": [{"Name": "a", "Values": ["x"]}]})")),
            "1 validation error detected: Value 'a' at "
            "'parameterRanges.categoricalParameterRanges.1.member.name' failed to satisfy "
            "constraint: Member must be unique across all parameter ranges");
}

TEST(SearchSpace, AutoParametersAreNotSupported) {
  Result<SearchSpace> space = SearchSpace::FromJson(
      json::parse(R"({"AutoParameters": [{"Name": "eta", "ValueHint": "0.1"}]})"));
  ASSERT_FALSE(space.ok());
  EXPECT_EQ(space.status().code(), StatusCode::kUnimplemented);
}

// ---------------------------------------------------------------------------------------------
// Search space: warping, decoding and hyperparameter strings.

TEST(SearchSpace, WarpingPutsTheWarpedMidpointAtOneHalf) {
  const SearchSpace space =
      MustCreate({Continuous("lin", 2, 4, ScalingType::kAuto),
                  Continuous("log", 1e-4, 1, ScalingType::kLogarithmic),
                  Continuous("rev", 0.9, 0.9999, ScalingType::kReverseLogarithmic)});
  // Auto reads as Linear; log's midpoint is the geometric mean; reverse-log's is the value
  // whose distance to 1 is the geometric mean of the distances.
  const std::vector<double> mid = space.Encode({{3.0, 1e-2, 1 - std::sqrt(0.1 * 0.0001)}});
  EXPECT_NEAR(mid[0], 0.5, 1e-12);
  EXPECT_NEAR(mid[1], 0.5, 1e-12);
  EXPECT_NEAR(mid[2], 0.5, 1e-9);
  const std::vector<double> low = space.Encode({{2.0, 1e-4, 0.9}});
  const std::vector<double> high = space.Encode({{4.0, 1.0, 0.9999}});
  for (int d = 0; d < 3; ++d) {
    EXPECT_NEAR(low[d], 0.0, 1e-12);
    EXPECT_NEAR(high[d], 1.0, 1e-12);
  }
  // Decoding clamps to the range, whatever the rounding of exp/log at the ends.
  const Configuration ends = space.Decode(std::vector<double>{-0.5, 1.5, 1.0});
  EXPECT_EQ(ends.values, (std::vector<double>{2.0, 1.0, 0.9999}));
  // An end is the bound as given, not its exp(log()) round trip (0.49999999999990874).
  const SearchSpace eta = MustCreate({Continuous("eta", 0.01, 0.5, ScalingType::kLogarithmic)});
  EXPECT_EQ(eta.Decode(std::vector<double>{1.0}).values[0], 0.5);
  EXPECT_EQ(eta.Decode(std::vector<double>{1 - 1e-12}).values[0], 0.5);
  EXPECT_EQ(eta.Decode(std::vector<double>{1e-12}).values[0], 0.01);
}

TEST(SearchSpace, EncodeDecodeRoundTripsAndStaysInRange) {
  const SearchSpace space =
      MustCreate({Continuous("lr", 1e-5, 0.3, ScalingType::kLogarithmic), Integer("depth", 2, 12),
                  Integer("trees", 1, 1000, ScalingType::kLogarithmic),
                  Continuous("beta", 0.5, 0.999, ScalingType::kReverseLogarithmic),
                  Categorical("opt", {"sgd", "adam", "rmsprop"})});
  for (int i = 0; i < 500; ++i) {
    Rng rng(7, kTestStream, i);
    const Configuration c = space.Sample(rng);
    const std::vector<double> u = space.Encode(c);
    for (double v : u) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
    const Configuration back = space.Decode(u);
    EXPECT_EQ(back.values[1], c.values[1]);
    EXPECT_EQ(back.values[2], c.values[2]);
    EXPECT_EQ(back.values[4], c.values[4]);
    EXPECT_NEAR(back.values[0], c.values[0], 1e-12 * c.values[0]);
    EXPECT_NEAR(back.values[3], c.values[3], 1e-12);
    for (int p = 0; p < 4; ++p) {
      EXPECT_GE(back.values[p], space.parameters()[p].min_value);
      EXPECT_LE(back.values[p], space.parameters()[p].max_value);
    }
    EXPECT_EQ(space.Snap(u), space.Encode(back));
  }
}

TEST(SearchSpace, IntegersDecodeByRoundingAndGetEqualShares) {
  const SearchSpace space = MustCreate({Integer("k", 1, 4)});
  // [0.5, 4.5] is cut into four cells of equal width.
  EXPECT_EQ(space.Decode(std::vector<double>{0.0}).values[0], 1);
  EXPECT_EQ(space.Decode(std::vector<double>{0.24}).values[0], 1);
  EXPECT_EQ(space.Decode(std::vector<double>{0.26}).values[0], 2);
  EXPECT_EQ(space.Decode(std::vector<double>{1.0}).values[0], 4);
  std::map<double, int> counts;
  for (int i = 0; i < 4000; ++i) {
    Rng rng(1, kTestStream, i);
    ++counts[space.Sample(rng).values[0]];
  }
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [value, count] : counts) EXPECT_NEAR(count, 1000, 100) << value;

  // Logarithmic integers: every value survives the round trip exactly.
  const SearchSpace log_space = MustCreate({Integer("n", 1, 1000, ScalingType::kLogarithmic)});
  for (int v = 1; v <= 1000; ++v) {
    EXPECT_EQ(log_space.Decode(log_space.Encode({{double(v)}})).values[0], v);
  }
}

TEST(SearchSpace, CategoricalsDecodeToTheLargestCoordinate) {
  const SearchSpace space = MustCreate({Categorical("c", {"a", "b", "c"})});
  EXPECT_EQ(space.Encode({{1.0}}), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(space.Decode(std::vector<double>{0.2, 0.1, 0.7}).values[0], 2);
  EXPECT_EQ(space.Decode(std::vector<double>{0.5, 0.5, 0.0}).values[0], 0);  // first on ties
}

TEST(SearchSpace, HyperParameterStringsRoundTripExactly) {
  const SearchSpace space =
      MustCreate({Continuous("lr", 1e-6, 1, ScalingType::kLogarithmic), Integer("depth", -3, 30),
                  Categorical("booster", {"gbtree", "dart"})});
  const HyperParameters fixed = space.ToHyperParameters({{0.1, -2.0, 1.0}});
  EXPECT_EQ(fixed, (HyperParameters{{"lr", "0.1"}, {"depth", "-2"}, {"booster", "dart"}}));
  for (int i = 0; i < 300; ++i) {
    Rng rng(3, kTestStream, i);
    const Configuration c = space.Sample(rng);
    const HyperParameters hps = space.ToHyperParameters(c);
    Result<Configuration> back = space.FromHyperParameters(hps);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, c);  // bitwise: the shortest form parses back to the same double
  }
  EXPECT_EQ(FormatDouble(1e-05), "1e-05");
  EXPECT_EQ(FormatDouble(3.0), "3");
}

TEST(SearchSpace, RecordedHyperParametersAreChecked) {
  const SearchSpace space = MustCreate({Continuous("lr", 0.01, 1, ScalingType::kLogarithmic),
                                        Integer("depth", 1, 10), Categorical("c", {"x", "y"})});
  EXPECT_EQ(space.FromHyperParameters({{"lr", "0.1"}, {"c", "x"}}).status().message(),
            "Hyperparameter 'depth' is missing");
  EXPECT_EQ(
      space.FromHyperParameters({{"lr", "0.1"}, {"depth", "2.5"}, {"c", "x"}}).status().message(),
      "Value '2.5' of hyperparameter 'depth' is not an integer");
  EXPECT_EQ(
      space.FromHyperParameters({{"lr", "0.1"}, {"depth", "2"}, {"c", "z"}}).status().message(),
      "Value 'z' of hyperparameter 'c' is not one of [x, y]");
  const HyperParameters outside = {{"lr", "2"}, {"depth", "12"}, {"c", "y"}, {"static", "1"}};
  EXPECT_EQ(space.FromHyperParameters(outside).status().message(),
            "Value '2' of hyperparameter 'lr' is outside its range [0.01, 1]");
  // A TransferLearning parent may have searched wider ranges: kept while the warp is defined.
  Result<Configuration> wide = space.FromHyperParameters(outside, /*allow_out_of_range=*/true);
  ASSERT_TRUE(wide.ok());
  EXPECT_GT(space.Encode(*wide)[0], 1.0);
  EXPECT_FALSE(space.FromHyperParameters({{"lr", "-1"}, {"depth", "2"}, {"c", "x"}}, true).ok());
}

TEST(SearchSpace, GridPointsEnumerateTheProductLastParameterFastest) {
  const SearchSpace space = MustCreate({Categorical("a", {"x", "y"}), Integer("b", 3, 5)});
  ASSERT_EQ(space.NumCombinations(), 6);
  std::vector<std::vector<double>> points;
  for (int i = 0; i < 6; ++i) points.push_back(space.GridPoint(i).values);
  EXPECT_EQ(points,
            (std::vector<std::vector<double>>{{0, 3}, {0, 4}, {0, 5}, {1, 3}, {1, 4}, {1, 5}}));
}

// ---------------------------------------------------------------------------------------------
// Gaussian process.

GpParams Params(std::vector<double> log_lengthscales, double log_signal, double log_noise) {
  GpParams p;
  p.log_lengthscales = Eigen::Map<Eigen::VectorXd>(
      log_lengthscales.data(), static_cast<Eigen::Index>(log_lengthscales.size()));
  p.log_signal_variance = log_signal;
  p.log_noise_variance = log_noise;
  return p;
}

TEST(GaussianProcess, MaternKernelHasItsClosedFormValues) {
  EXPECT_DOUBLE_EQ(Matern52(0), 1.0);
  const double s5 = std::sqrt(5.0);
  EXPECT_NEAR(Matern52(1.0), (1 + s5 + 5.0 / 3.0) * std::exp(-s5), 1e-15);
  EXPECT_NEAR(Matern52(0.3), (1 + 0.3 * s5 + 5.0 / 3.0 * 0.09) * std::exp(-0.3 * s5), 1e-15);
  // Lengthscale 0.5 and signal variance 2 between (0, 0) and (0.3, 0.4): r = 0.5 / 0.5 = 1.
  Eigen::MatrixXd x(1, 2);
  x << 0, 0;
  auto gp = GaussianProcess::Create(x, Eigen::VectorXd::Zero(1), {0, 0},
                                    Params({std::log(0.5)}, std::log(2.0), -20));
  ASSERT_TRUE(gp.ok());
  EXPECT_NEAR(gp->Kernel(Eigen::Vector2d(0, 0), Eigen::Vector2d(0.3, 0.4)), 2 * Matern52(1.0),
              1e-14);
}

TEST(GaussianProcess, OnePointPosteriorMatchesTheClosedForm) {
  Eigen::MatrixXd x(1, 1);
  x << 0.2;
  Eigen::VectorXd y(1);
  y << 1.5;
  const double s2 = 1.3;
  const double noise = 0.1;
  const double l = 0.4;
  auto gp =
      GaussianProcess::Create(x, y, {0}, Params({std::log(l)}, std::log(s2), std::log(noise)));
  ASSERT_TRUE(gp.ok());
  Eigen::MatrixXd xs(2, 1);
  xs << 0.5, 0.2;
  Eigen::VectorXd mean;
  Eigen::VectorXd var;
  gp->Predict(xs, &mean, &var);
  const double k = s2 * Matern52(0.3 / l);
  EXPECT_NEAR(mean[0], k / (s2 + noise) * 1.5, 1e-12);
  EXPECT_NEAR(var[0], s2 - k * k / (s2 + noise), 1e-12);
  EXPECT_NEAR(mean[1], s2 / (s2 + noise) * 1.5, 1e-12);
  EXPECT_NEAR(var[1], s2 - s2 * s2 / (s2 + noise), 1e-12);
  // log N(1.5; 0, s² + σ²).
  EXPECT_NEAR(gp->LogMarginalLikelihood(),
              -0.5 * 1.5 * 1.5 / (s2 + noise) - 0.5 * std::log(2 * std::numbers::pi * (s2 + noise)),
              1e-12);
}

TEST(GaussianProcess, TwoPointPosteriorMatchesTheClosedForm) {
  Eigen::MatrixXd x(2, 1);
  x << 0.1, 0.6;
  Eigen::VectorXd y(2);
  y << -1.0, 2.0;
  const double s2 = 0.8;
  const double noise = 0.05;
  const double l = 0.3;
  auto gp =
      GaussianProcess::Create(x, y, {0}, Params({std::log(l)}, std::log(s2), std::log(noise)));
  ASSERT_TRUE(gp.ok());
  const double t = 0.35;
  const double k12 = s2 * Matern52(0.5 / l);
  const double a = s2 + noise;
  const double det = a * a - k12 * k12;
  // K⁻¹ = [a, -k12; -k12, a] / det.
  const double k1 = s2 * Matern52(std::abs(t - 0.1) / l);
  const double k2 = s2 * Matern52(std::abs(t - 0.6) / l);
  const double alpha1 = (a * y[0] - k12 * y[1]) / det;
  const double alpha2 = (-k12 * y[0] + a * y[1]) / det;
  const double quad = (a * k1 * k1 - 2 * k12 * k1 * k2 + a * k2 * k2) / det;
  Eigen::MatrixXd xs(1, 1);
  xs << t;
  Eigen::VectorXd mean;
  Eigen::VectorXd var;
  gp->Predict(xs, &mean, &var);
  EXPECT_NEAR(mean[0], k1 * alpha1 + k2 * alpha2, 1e-12);
  EXPECT_NEAR(var[0], s2 - quad, 1e-12);
}

TEST(GaussianProcess, NoiseFreeModelInterpolatesItsData) {
  Eigen::MatrixXd x(5, 2);
  x << 0.1, 0.9, 0.4, 0.4, 0.8, 0.2, 0.3, 0.7, 0.95, 0.95;
  Eigen::VectorXd y(5);
  y << 0.3, -1.2, 0.8, 2.0, -0.4;
  auto gp = GaussianProcess::Create(x, y, {0, 1},
                                    Params({std::log(0.3), std::log(0.5)}, 0, std::log(1e-9)));
  ASSERT_TRUE(gp.ok());
  Eigen::VectorXd mean;
  Eigen::VectorXd var;
  gp->Predict(x, &mean, &var);
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(mean[i], y[i], 1e-6);
    EXPECT_LT(var[i], 1e-7);
  }
  EXPECT_LT((gp->FittedMean() - y).cwiseAbs().maxCoeff(), 1e-6);
  // Far from the data the prior comes back: mean 0, variance s².
  Eigen::MatrixXd far(1, 2);
  far << 30, -30;
  gp->Predict(far, &mean, &var);
  EXPECT_NEAR(mean[0], 0, 1e-9);
  EXPECT_NEAR(var[0], 1, 1e-9);
}

TEST(GaussianProcess, LikelihoodGradientMatchesFiniteDifferences) {
  // Three coordinates, the last two sharing a lengthscale (a categorical's one-hot block).
  const std::vector<int> groups = {0, 1, 1};
  Eigen::MatrixXd x(12, 3);
  Eigen::VectorXd y(12);
  for (int i = 0; i < 12; ++i) {
    Rng rng(11, kTestStream, i);
    x(i, 0) = rng.Uniform();
    const bool first = rng.Uniform() < 0.5;
    x(i, 1) = first ? 1 : 0;
    x(i, 2) = first ? 0 : 1;
    y[i] = std::sin(6 * x(i, 0)) + (first ? 0.5 : -0.5) + 0.1 * rng.Normal();
  }
  for (const Eigen::Vector4d& theta :
       {Eigen::Vector4d(std::log(0.3), std::log(2.0), 0.2, std::log(0.01)),
        Eigen::Vector4d(std::log(0.05), std::log(0.4), -0.7, std::log(0.3))}) {
    Eigen::VectorXd gradient;
    GpLogMarginalLikelihood(x, y, groups, theta, &gradient);
    ASSERT_EQ(gradient.size(), 4);
    for (int j = 0; j < 4; ++j) {
      const double h = 1e-6;
      Eigen::VectorXd plus = theta;
      Eigen::VectorXd minus = theta;
      plus[j] += h;
      minus[j] -= h;
      const double numeric = (GpLogMarginalLikelihood(x, y, groups, plus, nullptr) -
                              GpLogMarginalLikelihood(x, y, groups, minus, nullptr)) /
                             (2 * h);
      EXPECT_NEAR(gradient[j], numeric, 1e-5 * (1 + std::abs(numeric))) << "parameter " << j;
    }
  }
}

TEST(GaussianProcess, PredictionGradientMatchesFiniteDifferences) {
  Eigen::MatrixXd x(8, 2);
  Eigen::VectorXd y(8);
  for (int i = 0; i < 8; ++i) {
    Rng rng(5, kTestStream, i);
    x(i, 0) = rng.Uniform();
    x(i, 1) = rng.Uniform();
    y[i] = x(i, 0) * x(i, 0) - x(i, 1);
  }
  auto gp = GaussianProcess::Create(x, y, {0, 1},
                                    Params({std::log(0.4), std::log(0.7)}, 0.1, std::log(1e-4)));
  ASSERT_TRUE(gp.ok());
  const Eigen::Vector2d point(0.37, 0.61);
  double mean = 0;
  double var = 0;
  Eigen::VectorXd dmean;
  Eigen::VectorXd dvar;
  gp->PredictWithGradient(point, &mean, &var, &dmean, &dvar);
  Eigen::VectorXd batch_mean;
  Eigen::VectorXd batch_var;
  gp->Predict(point.transpose(), &batch_mean, &batch_var);
  EXPECT_NEAR(mean, batch_mean[0], 1e-12);
  EXPECT_NEAR(var, batch_var[0], 1e-12);
  for (int d = 0; d < 2; ++d) {
    const double h = 1e-6;
    Eigen::Vector2d plus = point;
    Eigen::Vector2d minus = point;
    plus[d] += h;
    minus[d] -= h;
    double mp, vp, mm, vm;
    Eigen::VectorXd unused1, unused2;
    gp->PredictWithGradient(plus, &mp, &vp, &unused1, &unused2);
    gp->PredictWithGradient(minus, &mm, &vm, &unused1, &unused2);
    EXPECT_NEAR(dmean[d], (mp - mm) / (2 * h), 1e-6);
    EXPECT_NEAR(dvar[d], (vp - vm) / (2 * h), 1e-6);
  }
}

TEST(GaussianProcess, BelieverPointsKeepTheMeanAndShrinkTheVariance) {
  Eigen::MatrixXd x(4, 1);
  x << 0.1, 0.3, 0.7, 0.9;
  Eigen::VectorXd y(4);
  y << 1, -1, 0.5, 2;
  auto gp = GaussianProcess::Create(x, y, {0}, Params({std::log(0.2)}, 0, std::log(1e-6)));
  ASSERT_TRUE(gp.ok());
  Eigen::MatrixXd pending(1, 1);
  pending << 0.5;
  Eigen::VectorXd believed;
  Eigen::VectorXd var_before;
  gp->Predict(pending, &believed, &var_before);
  auto with = gp->WithExtraData(pending, believed);
  ASSERT_TRUE(with.ok());
  Eigen::MatrixXd probe(3, 1);
  probe << 0.5, 0.55, 0.2;
  Eigen::VectorXd mean_a, var_a, mean_b, var_b;
  gp->Predict(probe, &mean_a, &var_a);
  with->Predict(probe, &mean_b, &var_b);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(mean_a[i], mean_b[i], 1e-8);
  EXPECT_GT(var_a[0], 1e-2);
  EXPECT_LT(var_b[0], 1e-5);
  EXPECT_LT(var_b[1], var_a[1]);
}

TEST(GaussianProcess, FittedLengthscalesFollowRelevance) {
  // y depends on the first coordinate only: its lengthscale must come out far shorter.
  Eigen::MatrixXd x(30, 2);
  Eigen::VectorXd y(30);
  for (int i = 0; i < 30; ++i) {
    Rng rng(9, kTestStream, i);
    x(i, 0) = rng.Uniform();
    x(i, 1) = rng.Uniform();
    y[i] = std::sin(8 * x(i, 0));
  }
  y = (y.array() - y.mean()) / std::sqrt((y.array() - y.mean()).square().mean());
  Rng rng(1, RngStream::kModelFit, 30);
  const GpParams p = FitGpParams(x, y, {0, 1}, 2, rng);
  EXPECT_LT(std::exp(p.log_lengthscales[0]), 1.0);
  EXPECT_GT(std::exp(p.log_lengthscales[1]), 8 * std::exp(p.log_lengthscales[0]));
  EXPECT_LT(std::exp(p.log_noise_variance), 1e-3);
}

TEST(GaussianProcess, LargeFitsStartFromASubsampleAndStayCloseToTheFullFit) {
  // 80 points (above the subsample threshold): y varies fast in x0, slowly in x1, not in x2.
  const int n = 80;
  Eigen::MatrixXd x(n, 3);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    Rng rng(4, kTestStream, i);
    for (int d = 0; d < 3; ++d) x(i, d) = rng.Uniform();
    y[i] = std::sin(6 * x(i, 0)) + 0.5 * x(i, 1) * x(i, 1);
  }
  y = (y.array() - y.mean()) / std::sqrt((y.array() - y.mean()).square().mean());
  const std::vector<int> groups = {0, 1, 2};
  Rng rng_sub(1, RngStream::kModelFit, n);
  Rng rng_full(1, RngStream::kModelFit, n);
  GpFitOptions full;
  full.subsample_above = 0;
  const GpParams sub = FitGpParams(x, y, groups, 3, rng_sub);
  const GpParams all = FitGpParams(x, y, groups, 3, rng_full, full);
  for (const GpParams& p : {sub, all}) {
    EXPECT_LT(p.log_lengthscales[0], p.log_lengthscales[1]);
    EXPECT_LT(p.log_lengthscales[1], p.log_lengthscales[2]);
  }
  EXPECT_NEAR(sub.log_lengthscales[0], all.log_lengthscales[0], std::log(1.5));
  EXPECT_NEAR(sub.log_lengthscales[1], all.log_lengthscales[1], std::log(1.5));
}

TEST(GaussianProcess, LeaveOneOutDensityMatchesRefittingWithoutEachPoint) {
  Eigen::MatrixXd x(9, 2);
  Eigen::VectorXd y(9);
  for (int i = 0; i < 9; ++i) {
    Rng rng(8, kTestStream, i);
    x(i, 0) = rng.Uniform();
    x(i, 1) = rng.Uniform();
    y[i] = std::cos(4 * x(i, 0)) - x(i, 1) + 0.1 * rng.Normal();
  }
  const double noise = 0.02;
  const GpParams params = Params({std::log(0.4), std::log(0.7)}, std::log(1.5), std::log(noise));
  auto gp = GaussianProcess::Create(x, y, {0, 1}, params);
  ASSERT_TRUE(gp.ok());
  double expected = 0;
  for (int i = 0; i < 9; ++i) {
    Eigen::MatrixXd rest(8, 2);
    Eigen::VectorXd rest_y(8);
    for (int j = 0, k = 0; j < 9; ++j) {
      if (j == i) continue;
      rest.row(k) = x.row(j);
      rest_y[k++] = y[j];
    }
    auto without = GaussianProcess::Create(rest, rest_y, {0, 1}, params);
    ASSERT_TRUE(without.ok());
    Eigen::VectorXd mean;
    Eigen::VectorXd var;
    without->Predict(x.row(i), &mean, &var);
    const double v = var[0] + noise;
    expected += -0.5 * std::log(2 * std::numbers::pi * v) - 0.5 * std::pow(y[i] - mean[0], 2) / v;
  }
  EXPECT_NEAR(gp->LeaveOneOutLogDensity(), expected, 1e-9 * (1 + std::abs(expected)));
}

// ---------------------------------------------------------------------------------------------
// Target warping.

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

TEST(TargetWarping, NormalQuantileInvertsTheNormalCdf) {
  EXPECT_EQ(NormalQuantile(0.5), 0.0);
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963984540054, 1e-14);
  EXPECT_NEAR(NormalQuantile(0.001), -3.090232306167814, 1e-13);
  EXPECT_NEAR(NormalQuantile(1e-10), -6.361340902404056, 1e-12);
  // Across the central region and both tails (the approximation switches at 0.02425).
  for (double p : {1e-20, 1e-5, 0.01, 0.0242, 0.0243, 0.1, 0.3, 0.49, 0.7, 0.9, 0.99}) {
    const double x = NormalQuantile(p);
    EXPECT_NEAR(NormalCdf(x), p, 1e-14 * p) << p;
    if (p >= 1e-5) {
      EXPECT_NEAR(NormalQuantile(1 - p), -x, 1e-9 * (1 + std::abs(x))) << p;
    }
  }
}

TEST(TargetWarping, HalfRankKeepsTheBetterHalfAndRanksTheWorse) {
  // Median 4, observed; the better half {1, 2, 3, 4} has spread sqrt(14 / 4) around it.
  Eigen::VectorXd y(7);
  y << 3, 1, 1000, 4, 2, 6, 5;
  const WarpedTargets w = HalfRankWarp(y);
  const double spread = std::sqrt((9.0 + 4.0 + 1.0 + 0.0) / 4.0);
  // Worst first: 1000, 6, 5 at quantiles 0.5/7, 1.5/7, 2.5/7 (three above the median, plus a
  // half for the median itself).
  auto image = [&](double q) { return 4 - spread * NormalQuantile(q); };
  const double g1000 = image(0.5 / 7);
  const double g6 = image(1.5 / 7);
  const double g5 = image(2.5 / 7);
  Eigen::VectorXd expected(7);
  expected << 3, 1, g1000, 4, 2, g6, g5;
  EXPECT_LT((w.values - expected).cwiseAbs().maxCoeff(), 1e-12);
  // Strictly increasing, and the outlier ends up a couple of spreads above the median.
  EXPECT_LT(4, g5);
  EXPECT_LT(g5, g6);
  EXPECT_LT(g6, g1000);
  EXPECT_LT(g1000, 4 + 2.5 * spread);
  // log g' is 0 on the better half and the slope between neighbours above the median.
  for (int i : {0, 1, 3, 4}) EXPECT_EQ(w.log_slope[i], 0.0) << i;
  EXPECT_NEAR(w.log_slope[6], std::log((g6 - 4) / (6 - 4)), 1e-12);
  EXPECT_NEAR(w.log_slope[5], std::log((g1000 - g5) / (1000 - 5)), 1e-12);
  EXPECT_NEAR(w.log_slope[2], std::log((g1000 - g6) / (1000 - 6)), 1e-12);

  // Ties share an image. The median of an even count (2.5 here) need not be a value, and then
  // adds no half rank: the distinct values above it, 9 and 3, sit at quantiles 0.5/4 and 1.5/4.
  Eigen::VectorXd tied(6);
  tied << 0, 1, 9, 9, 2, 3;
  const WarpedTargets t = HalfRankWarp(tied);
  EXPECT_EQ(t.values[2], t.values[3]);
  const double tied_spread = std::sqrt((2.5 * 2.5 + 1.5 * 1.5 + 0.5 * 0.5) / 3);
  EXPECT_NEAR(t.values[2], 2.5 - tied_spread * NormalQuantile(0.5 / 4), 1e-12);
  EXPECT_NEAR(t.values[5], 2.5 - tied_spread * NormalQuantile(1.5 / 4), 1e-12);
  EXPECT_EQ(t.values[4], 2.0);

  const Eigen::VectorXd flat = Eigen::VectorXd::Constant(5, 0.25);
  EXPECT_EQ(HalfRankWarp(flat).values, flat);
  EXPECT_EQ(HalfRankWarp(flat).log_slope, Eigen::VectorXd::Zero(5));
}

// Twenty points of the unit square, a smooth bowl on them, and the same bowl where a corner
// region breaks down to a far worse value (as a validation AUC does for a diverging model).
struct BowlData {
  Eigen::MatrixXd x{20, 2};
  Eigen::VectorXd smooth{20};
  Eigen::VectorXd cliff{20};
};
BowlData MakeBowlData() {
  BowlData d;
  for (int i = 0; i < 20; ++i) {
    Rng rng(6, kTestStream, i);
    d.x(i, 0) = rng.Uniform();
    d.x(i, 1) = rng.Uniform();
    const double bowl = std::pow(d.x(i, 0) - 0.3, 2) + std::pow(d.x(i, 1) - 0.4, 2);
    d.smooth[i] = bowl;
    d.cliff[i] = d.x(i, 0) + d.x(i, 1) > 1.3 ? 50.0 : bowl;
  }
  return d;
}

TEST(TargetWarping, SmoothTargetsStayPlainAndACliffIsWarped) {
  const BowlData d = MakeBowlData();
  ASSERT_GE((d.cliff.array() == 50.0).count(), 2);
  const std::vector<int> groups = {0, 1};
  const GpFitter fit = [&](const Eigen::MatrixXd& x, const Eigen::VectorXd& y) {
    Rng rng(3, RngStream::kModelFit, static_cast<std::uint64_t>(y.size()));
    return FitGpParams(x, y, groups, 2, rng);
  };
  Result<TargetModel> smooth = FitTargetModel(d.x, d.smooth, groups, fit);
  ASSERT_TRUE(smooth.ok());
  EXPECT_EQ(smooth->warping, TargetWarping::kNone);
  Result<TargetModel> cliff = FitTargetModel(d.x, d.cliff, groups, fit);
  ASSERT_TRUE(cliff.ok());
  EXPECT_EQ(cliff->warping, TargetWarping::kHalfRank);

  // The chosen model is fitted to the standardised transform, and its score is the held-out
  // density on the original scale.
  EXPECT_NEAR(cliff->standardised.mean(), 0, 1e-12);
  EXPECT_NEAR(cliff->standardised.squaredNorm() / 20, 1, 1e-12);
  const WarpedTargets warped = HalfRankWarp(d.cliff);
  const double mean = warped.values.mean();
  const double sd = std::sqrt((warped.values.array() - mean).square().mean());
  EXPECT_LT(
      (cliff->standardised - (warped.values.array() - mean).matrix() / sd).cwiseAbs().maxCoeff(),
      1e-12);
  EXPECT_NEAR(cliff->score,
              cliff->gp.LeaveOneOutLogDensity() + warped.log_slope.sum() - 20 * std::log(sd), 1e-9);
  // Two points are too few to rank: the plain targets.
  Result<TargetModel> two = FitTargetModel(d.x.topRows(2), d.cliff.head(2), groups, fit);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->warping, TargetWarping::kNone);
}

// ---------------------------------------------------------------------------------------------
// Expected improvement.

double Phi(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi); }
double Cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

TEST(ExpectedImprovement, MatchesTheClosedFormAtKnownPoints) {
  // mean == best: EI = sigma φ(0).
  EXPECT_NEAR(LogExpectedImprovement(1.0, 2.0, 1.0).value, std::log(2.0 * Phi(0)), 1e-12);
  // z = 1: EI = φ(1) + Φ(1) = 1.0833154705876864.
  EXPECT_NEAR(std::exp(LogExpectedImprovement(0.0, 1.0, 1.0).value), 1.0833154705876864, 1e-12);
  // z = -2.5 (mean above the best).
  const double z = -2.5;
  EXPECT_NEAR(LogExpectedImprovement(2.5, 1.0, 0.0).value, std::log(Phi(z) + z * Cdf(z)), 1e-9);
}

TEST(ExpectedImprovement, StaysFiniteAndMonotoneFarInTheTail) {
  double previous = -std::numeric_limits<double>::infinity();
  for (double z = -1e9; z < -1; z /= 1.7) {
    const double log_h = LogH(z);
    ASSERT_TRUE(std::isfinite(log_h)) << z;
    EXPECT_GT(log_h, previous) << z;
    previous = log_h;
    // Asymptotically h(z) = φ(z) / z² (1 - 3/z² + ...).
    if (z < -30) {
      EXPECT_NEAR(log_h, -0.5 * z * z - 0.5 * std::log(2 * std::numbers::pi) - 2 * std::log(-z),
                  4.0 / (z * z))
          << z;
    }
  }
  EXPECT_TRUE(std::isfinite(LogExpectedImprovement(45.0, 1.0, 0.0).value));  // EI ~ 1e-444
  // Reference values from scipy.special.erfcx, on both sides of the switch to the series (26).
  EXPECT_NEAR(Erfcx(30.0), 0.018795888861416754, 1e-15);
  EXPECT_NEAR(Erfcx(10.0), 0.05614099274382259, 1e-15);
  EXPECT_NEAR(Erfcx(25.99), 0.021691915596284174, 1e-15);
  EXPECT_NEAR(Erfcx(26.0), 0.02168358485056291, 1e-15);
  EXPECT_NEAR(Erfcx(3.0), 0.17900115118138998, 1e-15);
}

TEST(ExpectedImprovement, DerivativesMatchFiniteDifferences) {
  for (const auto& [mean, sigma] :
       {std::pair{0.3, 0.7}, std::pair{4.0, 0.5}, std::pair{-1.0, 2.0}}) {
    const LogEi ei = LogExpectedImprovement(mean, sigma, 0.2);
    const double h = 1e-6;
    EXPECT_NEAR(ei.d_mean,
                (LogExpectedImprovement(mean + h, sigma, 0.2).value -
                 LogExpectedImprovement(mean - h, sigma, 0.2).value) /
                    (2 * h),
                1e-5 * (1 + std::abs(ei.d_mean)));
    EXPECT_NEAR(ei.d_sigma,
                (LogExpectedImprovement(mean, sigma + h, 0.2).value -
                 LogExpectedImprovement(mean, sigma - h, 0.2).value) /
                    (2 * h),
                1e-5 * (1 + std::abs(ei.d_sigma)));
  }
}

// ---------------------------------------------------------------------------------------------
// Numerical helpers.

TEST(Rng, SameKeySameNumbersDifferentKeyDifferentNumbers) {
  Rng a(42, RngStream::kCandidates, 7);
  Rng b(42, RngStream::kCandidates, 7);
  Rng c(42, RngStream::kCandidates, 8);
  Rng d(42, RngStream::kModelFit, 7);
  const std::uint64_t first = a.NextU64();
  EXPECT_EQ(first, b.NextU64());
  EXPECT_NE(first, c.NextU64());
  EXPECT_NE(first, d.NextU64());
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = a.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ASSERT_LT(a.Below(3), 3u);
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
}

TEST(Lbfgs, MinimisesTheRosenbrockFunction) {
  const Objective rosenbrock = [](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    const double a = 1 - x[0];
    const double b = x[1] - x[0] * x[0];
    if (g) {
      g->resize(2);
      (*g)[0] = -2 * a - 400 * x[0] * b;
      (*g)[1] = 200 * b;
    }
    return a * a + 100 * b * b;
  };
  Eigen::VectorXd x(2);
  x << -1.2, 1.0;
  LbfgsOptions options;
  options.max_iterations = 200;
  options.relative_improvement = 0;
  EXPECT_LT(MinimizeLbfgs(rosenbrock, &x, options), 1e-10);
  EXPECT_NEAR(x[0], 1.0, 1e-5);
  EXPECT_NEAR(x[1], 1.0, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Strategies.

std::unique_ptr<Strategy> MustStrategy(StrategyOptions options) {
  auto s = CreateStrategy(std::move(options));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

StrategyOptions BayesianOn(SearchSpace space, std::uint64_t seed) {
  StrategyOptions o;
  o.type = StrategyType::kBayesian;
  o.space = std::move(space);
  o.random_seed = seed;
  return o;
}

double Bowl(const Configuration& c) {
  return (c.values[0] - 0.3) * (c.values[0] - 0.3) + (c.values[1] - 0.7) * (c.values[1] - 0.7);
}

SearchSpace UnitSquare() { return MustCreate({Continuous("x", 0, 1), Continuous("y", 0, 1)}); }

TEST(RandomStrategy, IsReproducibleBySeedAndStaysInRange) {
  const SearchSpace space = MustCreate({Continuous("lr", 1e-4, 1, ScalingType::kLogarithmic),
                                        Integer("n", 1, 5), Categorical("c", {"a", "b"})});
  StrategyOptions o;
  o.type = StrategyType::kRandom;
  o.space = space;
  o.random_seed = 5;
  auto a = MustStrategy(o);
  auto b = MustStrategy(o);
  o.random_seed = 6;
  auto c = MustStrategy(o);
  auto sa = a->Suggest(20);
  auto sb = b->Suggest(20);
  auto sc = c->Suggest(20);
  ASSERT_TRUE(sa.ok() && sb.ok() && sc.ok());
  int same_as_other_seed = 0;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ((*sa)[i].trial, i);
    EXPECT_EQ((*sa)[i].config, (*sb)[i].config);
    EXPECT_EQ((*sa)[i].hyperparameters, space.ToHyperParameters((*sa)[i].config));
    same_as_other_seed += (*sa)[i].config == (*sc)[i].config;
    EXPECT_GE((*sa)[i].config.values[0], 1e-4);
    EXPECT_LE((*sa)[i].config.values[0], 1.0);
  }
  EXPECT_EQ(same_as_other_seed, 0);
}

TEST(GridStrategy, EnumeratesEveryCombinationOnceInOrder) {
  StrategyOptions o;
  o.type = StrategyType::kGrid;
  o.space = MustCreate({Categorical("a", {"x", "y"}), Categorical("b", {"1", "2", "3"})});
  o.random_seed = 0;
  auto grid = MustStrategy(o);
  auto first = grid->Suggest(4);
  auto rest = grid->Suggest(10);
  ASSERT_TRUE(first.ok() && rest.ok());
  ASSERT_EQ(first->size(), 4u);
  ASSERT_EQ(rest->size(), 2u);  // six combinations in all
  std::vector<std::string> seen;
  for (const auto& list : {*first, *rest}) {
    for (const Suggestion& s : list) {
      seen.push_back(s.hyperparameters.at("a") + s.hyperparameters.at("b"));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"x1", "x2", "x3", "y1", "y2", "y3"}));
  EXPECT_TRUE(grid->Suggest(1)->empty());

  o.space = MustCreate({Categorical("a", {"x"}), Continuous("c", 0, 1)});
  auto rejected = CreateStrategy(o);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().message(),
            "The Grid strategy requires every parameter range to be categorical");
}

TEST(BayesianStrategy, FindsTheMinimumOfASmoothFunction) {
  auto s = MustStrategy(BayesianOn(UnitSquare(), 3));
  double best = 1e9;
  for (int i = 0; i < 25; ++i) {
    auto got = s->Suggest(1);
    ASSERT_TRUE(got.ok());
    const double v = Bowl((*got)[0].config);
    best = std::min(best, v);
    ASSERT_TRUE(s->Complete((*got)[0].trial, v).ok());
  }
  EXPECT_LT(best, 1e-4);
  EXPECT_EQ(s->state(*s->BestTrial()), TrialState::kCompleted);
}

TEST(BayesianStrategy, StartsWithALatinHypercube) {
  const SearchSpace space = MustCreate(
      {Continuous("a", 0, 1), Continuous("b", 0, 1), Continuous("c", 0, 1), Continuous("d", 0, 1)});
  auto s = MustStrategy(BayesianOn(space, 8));
  ASSERT_EQ(DefaultInitialRandom(4), 5);
  auto got = s->Suggest(5);
  ASSERT_TRUE(got.ok());
  // Each coordinate visits each fifth of [0, 1] exactly once.
  for (int d = 0; d < 4; ++d) {
    std::set<int> strata;
    for (const Suggestion& g : *got) strata.insert(static_cast<int>(g.config.values[d] * 5));
    EXPECT_EQ(strata.size(), 5u) << d;
  }
}

// Drives a strategy with an asynchronous pattern: `parallel` trials pending, the oldest
// completing first, and returns every configuration in creation order.
std::vector<Configuration> Drive(Strategy& s, int trials, int parallel,
                                 double (*f)(const Configuration&)) {
  std::vector<Suggestion> running;
  std::vector<Configuration> all;
  auto more = [&](int n) {
    auto got = s.Suggest(n);
    EXPECT_TRUE(got.ok());
    for (auto& g : *got) {
      all.push_back(g.config);
      running.push_back(g);
    }
  };
  more(parallel);
  while (static_cast<int>(all.size()) < trials) {
    const Suggestion done = running.front();
    running.erase(running.begin());
    EXPECT_TRUE(s.Complete(done.trial, f(done.config)).ok());
    more(1);
  }
  return all;
}

TEST(BayesianStrategy, SameSeedAndHistoryGiveTheSameSuggestions) {
  auto a = MustStrategy(BayesianOn(UnitSquare(), 21));
  auto b = MustStrategy(BayesianOn(UnitSquare(), 21));
  auto c = MustStrategy(BayesianOn(UnitSquare(), 22));
  const auto ra = Drive(*a, 14, 3, Bowl);
  const auto rb = Drive(*b, 14, 3, Bowl);
  const auto rc = Drive(*c, 14, 3, Bowl);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
}

TEST(BayesianStrategy, RebuiltFromHistoryEqualsIncremental) {
  const SearchSpace space =
      MustCreate({Continuous("x", 0, 1), Integer("n", 1, 20), Categorical("c", {"p", "q", "r"})});
  auto f = [](const Configuration& c) {
    return (c.values[0] - 0.6) * (c.values[0] - 0.6) + 0.01 * std::abs(c.values[1] - 7) +
           (c.values[2] == 1 ? 0 : 0.5);
  };
  StrategyOptions o = BayesianOn(space, 77);
  auto original = MustStrategy(o);
  ASSERT_TRUE(original->AddPriorObservation({{"x", "0.2"}, {"n", "3"}, {"c", "r"}}, 0.7).ok());
  struct Event {
    TrialId trial;
    double value;
  };
  std::vector<HyperParameters> recorded;
  std::vector<Event> completions;
  // Two rounds of three parallel trials, completed out of order, two still pending.
  for (int round = 0; round < 3; ++round) {
    auto got = original->Suggest(3);
    ASSERT_TRUE(got.ok());
    for (const Suggestion& s : *got) recorded.push_back(s.hyperparameters);
    if (round == 2) break;
    for (int k : {2, 0, 1}) {
      const Suggestion& s = (*got)[k];
      completions.push_back({s.trial, f(s.config)});
      ASSERT_TRUE(original->Complete(s.trial, completions.back().value).ok());
    }
  }
  ASSERT_TRUE(original->Fail(6).ok());

  auto rebuilt = MustStrategy(o);
  ASSERT_TRUE(rebuilt->AddPriorObservation({{"x", "0.2"}, {"n", "3"}, {"c", "r"}}, 0.7).ok());
  for (size_t i = 0; i < recorded.size(); ++i) {
    ASSERT_TRUE(rebuilt->RestoreTrial(static_cast<TrialId>(i), recorded[i]).ok());
  }
  for (const Event& e : completions) ASSERT_TRUE(rebuilt->Complete(e.trial, e.value).ok());
  ASSERT_TRUE(rebuilt->Fail(6).ok());
  EXPECT_EQ(rebuilt->num_pending(), original->num_pending());

  auto next_original = original->Suggest(2);
  auto next_rebuilt = rebuilt->Suggest(2);
  ASSERT_TRUE(next_original.ok() && next_rebuilt.ok());
  ASSERT_EQ(next_original->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*next_original)[i].trial, (*next_rebuilt)[i].trial);
    EXPECT_EQ((*next_original)[i].hyperparameters, (*next_rebuilt)[i].hyperparameters);
  }
}

TEST(BayesianStrategy, OneCallForFourEqualsFourCalls) {
  auto a = MustStrategy(BayesianOn(UnitSquare(), 4));
  auto b = MustStrategy(BayesianOn(UnitSquare(), 4));
  Drive(*a, 8, 1, Bowl);
  Drive(*b, 8, 1, Bowl);
  auto together = a->Suggest(4);
  ASSERT_TRUE(together.ok());
  for (int i = 0; i < 4; ++i) {
    auto one = b->Suggest(1);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ((*one)[0].config, (*together)[i].config) << i;
  }
}

// Early on (five observations), a batch of four covers different regions instead of four
// copies of the expected-improvement maximum.
TEST(BayesianStrategy, ParallelSuggestionsSpreadOut) {
  auto s = MustStrategy(BayesianOn(UnitSquare(), 12));
  Drive(*s, 6, 1, Bowl);
  auto batch = s->Suggest(4);
  ASSERT_TRUE(batch.ok());
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < i; ++j) {
      const double dx = (*batch)[i].config.values[0] - (*batch)[j].config.values[0];
      const double dy = (*batch)[i].config.values[1] - (*batch)[j].config.values[1];
      EXPECT_GT(std::hypot(dx, dy), 0.05) << i << " " << j;
    }
  }
}

TEST(BayesianStrategy, MaximizeIsMinimizeOfTheNegation) {
  StrategyOptions min_options = BayesianOn(UnitSquare(), 9);
  StrategyOptions max_options = min_options;
  max_options.objective = ObjectiveType::kMaximize;
  auto lo = MustStrategy(min_options);
  auto hi = MustStrategy(max_options);
  const auto a = Drive(*lo, 10, 1, Bowl);
  const auto b = Drive(*hi, 10, 1, [](const Configuration& c) { return -Bowl(c); });
  EXPECT_EQ(a, b);
  EXPECT_EQ(lo->BestTrial(), hi->BestTrial());
}

TEST(BayesianStrategy, WarmStartObservationsReplaceTheRandomStart) {
  StrategyOptions o = BayesianOn(UnitSquare(), 31);
  auto warm = MustStrategy(o);
  // Twelve parent observations around the bowl: enough to skip the initial design.
  for (int i = 0; i < 12; ++i) {
    Rng rng(2, kTestStream, i);
    const Configuration c{{rng.Uniform(), rng.Uniform()}};
    ASSERT_TRUE(warm->AddPriorObservation(o.space.ToHyperParameters(c), Bowl(c)).ok());
  }
  auto first = warm->Suggest(1);
  ASSERT_TRUE(first.ok());
  EXPECT_LT(Bowl((*first)[0].config), 0.02);
  EXPECT_EQ(warm->AddPriorObservation({{"x", "0.5"}, {"y", "0.5"}}, 1.0).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(warm->AddPriorObservation({{"x", "0.5"}}, 1.0).code(), StatusCode::kFailedPrecondition);
  auto cold = MustStrategy(o);
  EXPECT_EQ(cold->AddPriorObservation({{"x", "0.5"}}, 1.0).code(), StatusCode::kInvalidArgument);
}

TEST(BayesianStrategy, DiscreteSpacesAreCoveredWithoutRepeats) {
  StrategyOptions o = BayesianOn(MustCreate({Integer("n", 1, 3), Categorical("c", {"a", "b"})}), 5);
  auto s = MustStrategy(o);
  std::set<HyperParameters> seen;
  for (int i = 0; i < 6; ++i) {
    auto got = s->Suggest(1);
    ASSERT_TRUE(got.ok());
    const Suggestion& g = (*got)[0];
    EXPECT_TRUE(seen.insert(g.hyperparameters).second) << "repeat at trial " << i;
    ASSERT_TRUE(s->Complete(g.trial, g.config.values[0] + g.config.values[1]).ok());
  }
  EXPECT_EQ(seen.size(), 6u);
}

TEST(BayesianStrategy, LearnsWhichCategoryIsBest) {
  StrategyOptions o =
      BayesianOn(MustCreate({Continuous("x", 0, 1), Categorical("c", {"a", "b", "c", "d"})}), 13);
  auto s = MustStrategy(o);
  auto f = [](const Configuration& c) {
    return (c.values[0] - 0.5) * (c.values[0] - 0.5) + (c.values[1] == 2 ? 0.0 : 1.0);
  };
  int best_category_late = 0;
  double best = 1e9;
  for (int i = 0; i < 25; ++i) {
    auto got = s->Suggest(1);
    ASSERT_TRUE(got.ok());
    if (i >= 15) best_category_late += (*got)[0].config.values[1] == 2;
    best = std::min(best, f((*got)[0].config));
    ASSERT_TRUE(s->Complete((*got)[0].trial, f((*got)[0].config)).ok());
  }
  // The optimum is pinned down in the right category, and most late trials stay there (a
  // uniform choice would put 2.5 of 10 there). With the worse half of the values half-rank
  // warped (target_warping.h), the other categories look only somewhat worse, so once nothing
  // is left to gain in the best one (x within 1e-4 of 0.5) a few late trials try them.
  EXPECT_LT(best, 1e-8);
  EXPECT_GE(best_category_late, 6);
}

TEST(Strategy, TrialLifecycleErrors) {
  auto s = MustStrategy(BayesianOn(UnitSquare(), 1));
  EXPECT_EQ(s->Complete(0, 1.0).code(), StatusCode::kNotFound);
  auto got = s->Suggest(2);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(s->num_pending(), 2);
  EXPECT_EQ(s->Complete(0, std::nan("")).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->Complete(0, 1.0).ok());
  EXPECT_EQ(s->Complete(0, 2.0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->Fail(0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->ReportIntermediate(1, 0, 1.0).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->ReportIntermediate(1, 3, 1.0).ok());
  EXPECT_EQ(s->ReportIntermediate(1, 2, 1.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->RestoreTrial(5, {{"x", "0.1"}, {"y", "0.2"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Suggest(-1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->num_pending(), 1);

  StrategyOptions no_seed = BayesianOn(UnitSquare(), 0);
  no_seed.random_seed.reset();
  EXPECT_EQ(CreateStrategy(no_seed).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Hyperband and early stopping.

TEST(Hyperband, ScheduleHasHyperbandsRungsAndBracketProportions) {
  const HyperbandSchedule s = MakeHyperbandSchedule(1, 81);
  EXPECT_EQ(s.rungs, (std::vector<std::int64_t>{1, 3, 9, 27}));
  ASSERT_EQ(s.num_brackets(), 5);
  // n_s = 5/(s+1) 3^s for s = 4..0 rungs: 81, 33.75, 15, 7.5, 5.
  const double total = 81 + 33.75 + 15 + 7.5 + 5;
  const double expected[] = {81 / total, 33.75 / total, 15 / total, 7.5 / total, 5 / total};
  for (int b = 0; b < 5; ++b) EXPECT_NEAR(s.bracket_probability[b], expected[b], 1e-12);
  EXPECT_EQ(s.RungsOf(2), (std::vector<std::int64_t>{9, 27}));
  EXPECT_TRUE(s.RungsOf(4).empty());
  const HyperbandSchedule other = MakeHyperbandSchedule(2, 20);
  EXPECT_EQ(other.rungs, (std::vector<std::int64_t>{2, 6, 18}));
  EXPECT_EQ(MakeHyperbandSchedule(5, 5).num_brackets(), 1);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 1.0 / 3.0), 2.0);
}

TEST(Hyperband, StopsTrialsOutsideTheBestThirdOfTheirRung) {
  StrategyOptions o;
  o.type = StrategyType::kHyperband;
  o.space = UnitSquare();
  o.random_seed = 17;
  o.hyperband = {1, 27};  // rungs 1, 3, 9; brackets 0..3
  auto s = MustStrategy(o);
  auto got = s->Suggest(60);
  ASSERT_TRUE(got.ok());
  std::vector<TrialId> bracket0;
  std::vector<TrialId> bracket3;
  std::map<int, int> counts;
  for (const Suggestion& g : *got) {
    ++counts[g.bracket];
    if (g.bracket == 0) bracket0.push_back(g.trial);
    if (g.bracket == 3) bracket3.push_back(g.trial);
  }
  EXPECT_GT(counts[0], counts[3]);  // the aggressive bracket is the common one
  ASSERT_GE(bracket0.size(), 4u);
  ASSERT_GE(bracket3.size(), 1u);
  auto report = [&](TrialId t, std::int64_t epoch, double v) {
    auto d = s->ReportIntermediate(t, epoch, v);
    EXPECT_TRUE(d.ok());
    return d.ok() ? d->action : TrialAction::kStop;
  };
  EXPECT_EQ(report(bracket0[0], 1, 0.5), TrialAction::kContinue);  // first at the rung
  EXPECT_EQ(report(bracket0[1], 1, 0.9), TrialAction::kStop);      // behind the first
  EXPECT_EQ(report(bracket0[2], 1, 0.2), TrialAction::kContinue);  // ahead of both
  // Values {0.5, 0.9, 0.2}: the best third ends at 0.4.
  EXPECT_EQ(report(bracket0[3], 1, 0.45), TrialAction::kStop);
  EXPECT_EQ(report(bracket0[0], 2, 0.4), TrialAction::kContinue);  // between rungs
  EXPECT_EQ(report(bracket0[0], 3, 0.3), TrialAction::kContinue);  // first at rung 3
  auto at_max = s->ReportIntermediate(bracket0[0], 27, 0.1);
  ASSERT_TRUE(at_max.ok());
  EXPECT_EQ(at_max->action, TrialAction::kStop);
  EXPECT_EQ(at_max->reason, "Reached MaxResource (27 epochs)");
  // The last bracket has no rungs: however bad, it trains to MaxResource.
  for (std::int64_t e = 1; e < 27; ++e)
    EXPECT_EQ(report(bracket3[0], e, 100.0 + e), TrialAction::kContinue);
}

TEST(MedianStoppingRule, StopsAJobWorseThanTheMedianOfRunningAverages) {
  MedianStoppingRule rule({ObjectiveType::kMinimize, 3});
  // Three earlier jobs; running averages at epoch 2: 1.5, 2.5, 10.
  for (auto [trial, v1, v2] :
       {std::tuple{0, 1.0, 2.0}, std::tuple{1, 3.0, 2.0}, std::tuple{2, 10.0, 10.0}}) {
    rule.Report(trial, 1, v1);
    rule.Report(trial, 2, v2);
  }
  EXPECT_EQ(rule.Report(3, 1, 100.0).action, TrialAction::kStop);  // median at epoch 1 is 3
  MedianStoppingRule fresh({ObjectiveType::kMinimize, 3});
  for (auto [trial, v1, v2] :
       {std::tuple{0, 1.0, 2.0}, std::tuple{1, 3.0, 2.0}, std::tuple{2, 10.0, 10.0}}) {
    fresh.Report(trial, 1, v1);
    fresh.Report(trial, 2, v2);
  }
  EXPECT_EQ(fresh.Report(3, 2, 2.4).action, TrialAction::kContinue);
  const TrialDecision stop = fresh.Report(4, 2, 2.6);
  EXPECT_EQ(stop.action, TrialAction::kStop);
  EXPECT_NE(stop.reason.find("median"), std::string::npos);
  // Later jobs are not peers of earlier ones, and too few peers decide nothing.
  EXPECT_EQ(fresh.Report(1, 3, 50.0).action, TrialAction::kContinue);

  MedianStoppingRule maximize({ObjectiveType::kMaximize, 1});
  maximize.Report(0, 1, 0.8);
  EXPECT_EQ(maximize.Report(1, 1, 0.7).action, TrialAction::kStop);
  EXPECT_EQ(maximize.Report(2, 1, 0.9).action, TrialAction::kContinue);
}

TEST(Strategy, EarlyStoppingAutoAppliesTheMedianRule) {
  StrategyOptions o;
  o.type = StrategyType::kRandom;
  o.space = UnitSquare();
  o.random_seed = 2;
  o.early_stopping_auto = true;
  o.median_rule.min_peers = 2;
  auto s = MustStrategy(o);
  ASSERT_TRUE(s->Suggest(3).ok());
  ASSERT_EQ(s->ReportIntermediate(0, 1, 1.0)->action, TrialAction::kContinue);
  ASSERT_EQ(s->ReportIntermediate(1, 1, 2.0)->action, TrialAction::kContinue);
  EXPECT_EQ(s->ReportIntermediate(2, 1, 5.0)->action, TrialAction::kStop);
  o.early_stopping_auto = false;
  auto off = MustStrategy(o);
  ASSERT_TRUE(off->Suggest(3).ok());
  off->ReportIntermediate(0, 1, 1.0).status().IgnoreError();
  off->ReportIntermediate(1, 1, 2.0).status().IgnoreError();
  EXPECT_EQ(off->ReportIntermediate(2, 1, 5.0)->action, TrialAction::kContinue);
}

// ---------------------------------------------------------------------------------------------
// The tuning job's configuration.

TEST(StrategyOptionsFromJson, ReadsAHyperbandJobAndInfersMaxResource) {
  const json config = json::parse(R"({
    "Strategy": "Hyperband",
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01",
                                                       "MaxValue": "0.5"}]},
    "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 2}},
    "RandomSeed": 123
  })");
  Result<StrategyOptions> o = StrategyOptionsFromJson(config, {{"num_epochs", "40"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->type, StrategyType::kHyperband);
  EXPECT_EQ(o->objective, ObjectiveType::kMaximize);
  EXPECT_EQ(o->random_seed, 123u);
  EXPECT_EQ(o->hyperband.min_resource, 2);
  EXPECT_EQ(o->hyperband.max_resource, 40);
  EXPECT_EQ(o->space.num_parameters(), 1);
  EXPECT_TRUE(CreateStrategy(*o).ok());

  EXPECT_EQ(StrategyOptionsFromJson(config).status().message(),
            "1 validation error detected: Value null at "
            "'hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig.maxResource' "
            "failed to satisfy constraint: MaxResource must be given, or inferable from one of "
            "the static hyperparameters epochs, numepochs, n-epochs, n_epochs, num_epochs");
}

TEST(StrategyOptionsFromJson, RejectsCombinationsSageMakerRejects) {
  const json hyperband_auto = json::parse(R"({"Strategy": "Hyperband",
      "TrainingJobEarlyStoppingType": "Auto",
      "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 30000}}})");
  EXPECT_EQ(StrategyOptionsFromJson(hyperband_auto).status().message(),
            "2 validation errors detected: Value 'Auto' at "
            "'hyperParameterTuningJobConfig.trainingJobEarlyStoppingType' failed to satisfy "
            "constraint: Member must be Off when Strategy is Hyperband; Value '30000' at "
            "'hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig.maxResource' "
            "failed to satisfy constraint: Member must have value less than or equal to 20000");
  const json bayes_with_hyperband = json::parse(R"({"Strategy": "Bayesian",
      "StrategyConfig": {"HyperbandStrategyConfig": {"MaxResource": 10}}})");
  EXPECT_NE(StrategyOptionsFromJson(bayes_with_hyperband)
                .status()
                .message()
                .find("HyperbandStrategyConfig is supported only when Strategy is Hyperband"),
            std::string::npos);
  const json grid_continuous = json::parse(R"({"Strategy": "Grid", "ParameterRanges":
      {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}})");
  EXPECT_NE(StrategyOptionsFromJson(grid_continuous)
                .status()
                .message()
                .find("The Grid strategy supports only CategoricalParameterRanges"),
            std::string::npos);
  const json bad_range = json::parse(R"({"Strategy": "Random", "ParameterRanges":
      {"IntegerParameterRanges": [{"Name": "k", "MinValue": "9", "MaxValue": "1"}]}})");
  EXPECT_NE(StrategyOptionsFromJson(bad_range).status().message().find(
                "'hyperParameterTuningJobConfig.parameterRanges.integerParameterRanges.1.member."
                "minValue'"),
            std::string::npos);
  Result<StrategyOptions> no_seed =
      StrategyOptionsFromJson(json::parse(R"({"Strategy": "Random"})"));
  ASSERT_TRUE(no_seed.ok());
  EXPECT_FALSE(no_seed->random_seed.has_value());
}

}  // namespace
}  // namespace hearth::tuning
