// XGBoost: SageMaker's XGBoost built-in (the sagemaker-xgboost container, versions 1.x) on
// libxgboost's C API.
//
//   train: channels `train` (required) and `validation`; text/libsvm (the default),
//          text/csv (label first; csv_weights=1: the next column is the instance weight; an
//          empty cell is missing), application/x-recordio-protobuf; File or Pipe. Prints
//          "[<round>]\ttrain-<metric>:<value>\tvalidation-<metric>:<value>" each round and
//          writes `xgboost-model` (XGBoost's binary format) into the model directory.
//   serve: xgboost_model.h.
//
// README.md in this folder lists the hyperparameters and what differs from SageMaker.
//
// Thread safety: the Algorithm is an immutable singleton.
#pragma once

#include "algorithms/algorithm.h"

namespace hearth::algorithms {

const Algorithm& XGBoostAlgorithm();

}  // namespace hearth::algorithms
