"""HyperparameterTuner: the place for automatic model tuning (CreateHyperParameterTuningJob).

Hearth does not serve hyperparameter tuning jobs yet. When it does, this module will hold
`HyperparameterTuner(estimator, objective_metric_name, hyperparameter_ranges, ...)` with
`fit()`, `best_training_job()` and `deploy()`, and the parameter range classes
(`ContinuousParameter`, `IntegerParameter`, `CategoricalParameter`), named as in
sagemaker.tuner, so that tuning code written for the sagemaker SDK reads the same.
"""
from __future__ import annotations

from typing import Any


class HyperparameterTuner:
    """Not available yet: constructing one raises NotImplementedError."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(
            "hyperparameter tuning is not served by Hearth yet; run Estimator.fit once per "
            "hyperparameter setting and compare Estimator.final_metrics() meanwhile")
