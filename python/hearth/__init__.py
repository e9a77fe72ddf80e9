"""Hearth's Python SDK: train, deploy and batch-transform with SageMaker's API.

A thin layer over boto3 whose names follow the sagemaker Python SDK:

    import hearth
    sess = hearth.Session("http://127.0.0.1:7070")
    train = sess.upload_numpy(X, y, "s3://data/train/")
    est = hearth.Estimator("linear-learner", instance_count=1, instance_type="ml.m5.large",
                           hyperparameters={"predictor_type": "binary_classifier"}, session=sess)
    est.fit({"train": train})
    pred = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    pred.predict(X[:5])
    tuner = hearth.HyperparameterTuner(est, "validation:binary_classification_accuracy",
                                       {"learning_rate": hearth.ContinuousParameter(
                                           1e-4, 1e-1, "Logarithmic")}, max_jobs=20)
    tuner.fit({"train": train, "validation": val})
    tuner.analytics().dataframe()
    pred.delete_endpoint()

Every call is a plain SageMaker, SageMaker Runtime, S3 or CloudWatch Logs API call, so the same
code runs against Amazon SageMaker (Session(hearth.AWS, role=...)).
"""
from hearth import deserializers, recordio, serializers
from hearth.estimator import Estimator, TrainingJob
from hearth.exceptions import (EndpointFailed, HearthError, ModelError, ResourceInUse,
                               ResourceLimitExceeded, ResourceNotFound, ServiceConnectionError,
                               TrainingJobFailed, TransformJobFailed, TuningJobFailed,
                               UnexpectedStatus, ValidationError)
from hearth.inputs import TrainingInput
from hearth.logs import MetricPoint
from hearth.model import Model
from hearth.predictor import Predictor
from hearth.session import AWS, DEFAULT_ENDPOINT_URL, Session
from hearth.transformer import Transformer
from hearth.tuner import (CategoricalParameter, ContinuousParameter,
                          HyperparameterTuner, HyperparameterTuningJobAnalytics,
                          IntegerParameter, WarmStartConfig)

__version__ = "0.1.0"

__all__ = [
    "AWS", "CategoricalParameter", "ContinuousParameter", "DEFAULT_ENDPOINT_URL",
    "EndpointFailed", "Estimator", "HearthError", "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics", "IntegerParameter", "MetricPoint", "Model",
    "ModelError", "Predictor", "ResourceInUse", "ResourceLimitExceeded", "ResourceNotFound",
    "ServiceConnectionError", "Session", "TrainingInput", "TrainingJob", "TrainingJobFailed",
    "TransformJobFailed", "Transformer", "TuningJobFailed", "UnexpectedStatus",
    "ValidationError", "WarmStartConfig", "deserializers", "recordio", "serializers",
]
