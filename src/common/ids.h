// Identifiers: request ids, ARNs and the account/region a server speaks for.
#pragma once

#include <string>
#include <string_view>

namespace hearth {

// The identity a Hearth server presents in ARNs. Fixed per server; set from the command line.
struct AccountContext {
  std::string partition = "aws";
  std::string region = "us-east-1";
  std::string account_id = "000000000000";  // 12 digits, as SageMaker's ARN patterns require
};

// A random RFC 4122 version-4 UUID, lower case: "3b0f…-…".
std::string NewUuid();

// "arn:aws:sagemaker:us-east-1:000000000000:training-job/j1". `resource_type` is SageMaker's
// ARN word ("training-job", "model", "endpoint", …). SageMaker lower-cases names in ARNs.
std::string SageMakerArn(const AccountContext& account, std::string_view resource_type,
                         std::string_view name);

}  // namespace hearth
