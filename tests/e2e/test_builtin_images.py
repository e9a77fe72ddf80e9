"""What every built-in algorithm image shares: the names it answers to (hearth/<algo> and the
ECR URIs of sagemaker.image_uris.retrieve), the MetricDefinitions it carries, SageMaker's
failure contract for bad hyperparameters, and File and Pipe mode reading the same data."""
import subprocess

import numpy as np
import pytest

from builtin_algorithms import (ServedModel, csv_bytes, fetch_model, final_metrics,
                                recordio_protobuf_bytes, train)
from conftest import HEARTH

ALGORITHMS = ["kmeans", "linear-learner", "pca", "xgboost"]

# What sagemaker.image_uris.retrieve(<algo>, "us-east-1") returns (reference §7.3).
ECR_URIS = {
    "kmeans": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
    "linear-learner": "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1",
    "pca": "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1",
    "xgboost": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
}

# The smallest valid hyperparameters of each, and one required hyperparameter to leave out.
MINIMAL = {
    "kmeans": ({"k": 2, "feature_dim": 2, "mini_batch_size": 10}, "k"),
    "linear-learner": ({"predictor_type": "binary_classifier"}, "predictor_type"),
    "pca": ({"feature_dim": 2, "num_components": 1, "mini_batch_size": 10}, "num_components"),
    "xgboost": ({"num_round": 3, "objective": "binary:logistic"}, "num_round"),
}


def two_blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.float32)
    X = rng.normal(size=(n, 2)).astype(np.float32) + 4 * y[:, None]
    return X, y


def channel_data(algorithm, X, y):
    if algorithm in ("kmeans", "pca"):
        return csv_bytes(X), "text/csv;label_size=0"
    return csv_bytes(X, y), "text/csv"


def test_hearth_algo_list_names_every_builtin():
    out = subprocess.run([HEARTH, "algo", "list"], capture_output=True, text=True, check=True)
    assert sorted(out.stdout.split()) == ALGORITHMS


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ecr_uri_runs_the_builtin_and_carries_its_metric_definitions(sm, s3, algorithm):
    X, y = two_blobs()
    body, ctype = channel_data(algorithm, X, y)
    hps, _ = MINIMAL[algorithm]
    doc = train(sm, s3, algorithm, hps, {"train": body}, content_type=ctype,
                image=ECR_URIS[algorithm])
    assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
    assert doc["AlgorithmSpecification"]["TrainingImage"] == ECR_URIS[algorithm]
    names = {d["Name"] for d in doc["AlgorithmSpecification"].get("MetricDefinitions", [])}
    expected = {"kmeans": "test:msd", "linear-learner": "validation:objective_loss",
                "xgboost": "validation:auc"}.get(algorithm)
    if expected:
        assert expected in names, names
    assert doc["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_missing_required_hyperparameter_fails_at_once_naming_it(sm, s3, algorithm):
    X, y = two_blobs()
    body, ctype = channel_data(algorithm, X, y)
    hps, required = MINIMAL[algorithm]
    hps = {k: v for k, v in hps.items() if k != required}
    doc = train(sm, s3, algorithm, hps, {"train": body}, content_type=ctype)
    assert doc["TrainingJobStatus"] == "Failed"
    reason = doc["FailureReason"]
    assert reason.startswith("ClientError: "), reason
    assert f"'{required}'" in reason, reason


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unknown_hyperparameter_fails_naming_it(sm, s3, algorithm):
    X, y = two_blobs()
    body, ctype = channel_data(algorithm, X, y)
    hps = dict(MINIMAL[algorithm][0], no_such_knob="1")
    doc = train(sm, s3, algorithm, hps, {"train": body}, content_type=ctype)
    assert doc["TrainingJobStatus"] == "Failed"
    assert "'no_such_knob'" in doc["FailureReason"], doc["FailureReason"]


def test_unsupported_content_type_fails_naming_the_channel(sm, s3):
    X, y = two_blobs()
    doc = train(sm, s3, "linear-learner", MINIMAL["linear-learner"][0],
                {"train": csv_bytes(X, y)}, content_type="image/png")
    assert doc["TrainingJobStatus"] == "Failed"
    assert "channel 'train'" in doc["FailureReason"], doc["FailureReason"]


def test_pipe_mode_trains_the_same_model_as_file_mode(sm, s3, tmp_path):
    X, y = two_blobs(n=500)
    hps = {"predictor_type": "binary_classifier", "epochs": 3, "num_models": 1}
    data = recordio_protobuf_bytes(X, y)
    ctype = "application/x-recordio-protobuf"
    answers = []
    for mode in ("File", "Pipe"):
        doc = train(sm, s3, "linear-learner", hps, {"train": data}, content_type=ctype,
                    input_mode=mode)
        assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
        model = fetch_model(s3, doc, tmp_path / mode)
        with ServedModel("linear-learner", model) as served:
            status, _, body = served.invoke(csv_bytes(X[:20]), "text/csv", "application/json")
            assert status == 200, body
            answers.append(body)
    assert answers[0] == answers[1]
