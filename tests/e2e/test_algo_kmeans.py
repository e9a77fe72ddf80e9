"""The k-means built-in end to end: boto3 training jobs on `hearth/kmeans` (and the SageMaker
ECR URI), the model_algo-1 artifact read back as MXNet's NDArray file, metrics in
FinalMetricDataList, and the trained model served as an endpoint instance serves it.

Quality is checked against scikit-learn's KMeans on the same data: the job's centers must reach
an inertia within a stated tolerance of scikit-learn's best of 10 k-means++ runs (the job itself
refines each of its 10 local_lloyd trials on the full data). The tolerances leave room for
local_lloyd_tol = 0.0001 stopping Lloyd a little before scikit-learn's tol does.
"""
import json
import struct

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, load_iris, make_blobs

from builtin_algorithms import (ServedModel, csv_bytes, fetch_model, final_metrics,
                                parse_recordio_protobuf, recordio_protobuf_bytes, train)

CSV_NO_LABEL = "text/csv;label_size=0"


def read_centers(path):
    """The centers from model_algo-1, parsed as MXNet's NDArray list file (what
    mx.nd.load('model_algo-1') reads): one dense float32 (k, feature_dim) array, no names."""
    with open(path, "rb") as f:
        data = f.read()
    list_magic, _reserved, count = struct.unpack_from("<QQQ", data, 0)
    assert (list_magic, count) == (0x112, 1)
    array_magic, storage, ndim = struct.unpack_from("<IiI", data, 24)
    assert (array_magic, storage, ndim) == (0xF993FAC9, 0, 2)
    k, dim = struct.unpack_from("<qq", data, 36)
    device_type, device_id, dtype = struct.unpack_from("<iii", data, 52)
    assert (device_type, device_id, dtype) == (1, 0, 0)
    centers = np.frombuffer(data, dtype="<f4", count=k * dim, offset=64).reshape(k, dim)
    (names,) = struct.unpack_from("<Q", data, 64 + 4 * k * dim)
    assert names == 0 and len(data) == 64 + 4 * k * dim + 8
    return centers


def inertia(X, centers):
    X = np.asarray(X, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    d = (X ** 2).sum(1)[:, None] - 2 * X @ c.T + (c ** 2).sum(1)[None, :]
    return float(np.maximum(d, 0).min(1).sum())


def sklearn_best_inertia(X, k):
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).inertia_


def trained_centers(s3, describe, tmp_path):
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    model_dir = fetch_model(s3, describe, tmp_path / "model")
    return read_centers(f"{model_dir}/model_algo-1"), model_dir


def test_iris_reaches_sklearns_optimum(sm, s3, tmp_path):
    X = load_iris().data.astype(np.float32)
    describe = train(sm, s3, "kmeans",
                     {"feature_dim": 4, "k": 3, "init_method": "kmeans++", "mini_batch_size": 50},
                     {"train": csv_bytes(X)}, content_type=CSV_NO_LABEL)
    centers, _ = trained_centers(s3, describe, tmp_path)
    assert centers.shape == (3, 4)
    # Iris with k = 3: scikit-learn's optimum is 78.851; measured 78.856 (ratio 1.00005).
    assert inertia(X, centers) <= sklearn_best_inertia(X, 3) * 1.001
    train_msd = final_metrics(describe)["train:msd"]
    assert train_msd == pytest.approx(inertia(X, centers) / len(X), rel=1e-4)


def test_digits_from_recordio_protobuf_reports_test_msd_and_ssd(sm, s3, tmp_path):
    X = load_digits().data.astype(np.float32)
    train_X, test_X = X[:1500], X[1500:]
    # No ContentType on the channels: k-means then reads RecordIO-protobuf, as SageMaker's
    # does for the sagemaker SDK's record_set() channels. Labels in the records are ignored.
    describe = train(sm, s3, "kmeans",
                     {"feature_dim": 64, "k": 10, "eval_metrics": '["msd", "ssd"]',
                      "force_dense": "True"},
                     {"train": recordio_protobuf_bytes(train_X, np.zeros(len(train_X))),
                      "test": recordio_protobuf_bytes(test_X)},
                     content_type=None,
                     image="382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1")
    centers, _ = trained_centers(s3, describe, tmp_path)
    assert centers.shape == (10, 64)
    # Digits with k = 10 has many local optima (one k-means++ run can end 1% higher); measured
    # ratio 1.00003.
    assert inertia(train_X, centers) <= sklearn_best_inertia(train_X, 10) * 1.005
    metrics = final_metrics(describe)
    ssd = inertia(test_X, centers)
    assert metrics["test:ssd"] == pytest.approx(ssd, rel=1e-4)
    assert metrics["test:msd"] == pytest.approx(ssd / len(test_X), rel=1e-4)


def test_blobs_model_serves_closest_cluster_and_distance(sm, s3, tmp_path):
    X, _ = make_blobs(n_samples=3000, centers=5, n_features=8, cluster_std=1.0, random_state=3)
    X = X.astype(np.float32)
    describe = train(sm, s3, "kmeans",
                     {"feature_dim": 8, "k": 5, "epochs": 2, "mini_batch_size": 500},
                     {"train": [csv_bytes(X[:1500]), csv_bytes(X[1500:])]},
                     content_type=CSV_NO_LABEL)
    centers, model_dir = trained_centers(s3, describe, tmp_path)
    assert inertia(X, centers) <= sklearn_best_inertia(X, 5) * 1.001

    rows = X[:20]
    d = ((rows[:, None, :].astype(np.float64) - centers[None, :, :]) ** 2).sum(-1)
    expected_cluster, expected_distance = d.argmin(1), np.sqrt(d.min(1))
    with ServedModel("kmeans", model_dir) as served:
        status, ctype, body = served.invoke(csv_bytes(rows), "text/csv", "application/json")
        assert status == 200, body
        assert ctype.startswith("application/json")
        predictions = json.loads(body)["predictions"]
        assert [p["closest_cluster"] for p in predictions] == expected_cluster.tolist()
        assert all(isinstance(p["closest_cluster"], int) for p in predictions)
        assert [p["distance_to_cluster"] for p in predictions] == \
            pytest.approx(expected_distance.tolist(), rel=1e-5)

        instances = {"instances": [{"features": row.tolist()} for row in rows[:3]]}
        status, _, body = served.invoke(json.dumps(instances), "application/json")
        assert status == 200, body
        assert [p["closest_cluster"] for p in json.loads(body)["predictions"]] == \
            expected_cluster[:3].tolist()

        status, _, body = served.invoke(recordio_protobuf_bytes(rows[:2]),
                                        "application/x-recordio-protobuf",
                                        "application/x-recordio-protobuf")
        assert status == 200, body
        records = parse_recordio_protobuf(body)
        assert [r.label["closest_cluster"].float32_tensor.values[0] for r in records] == \
            expected_cluster[:2].tolist()
        assert records[0].label["distance_to_cluster"].float32_tensor.values[0] == \
            pytest.approx(expected_distance[0], rel=1e-5)

        status, _, body = served.invoke(csv_bytes(X[:1, :7]), "text/csv")
        assert status == 400
        assert b"feature_dim is 8" in body


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": 4, "k": 0}, "Hyperparameter 'k'"),
    ({"feature_dim": 4, "k": 3, "init_method": "kmeans||"}, "Hyperparameter 'init_method'"),
    ({"feature_dim": 4, "k": 3, "local_lloyd_tol": 2}, "Hyperparameter 'local_lloyd_tol'"),
    ({"feature_dim": 4, "k": 3, "eval_metrics": '["rmse"]'}, "Hyperparameter 'eval_metrics'"),
    ({"k": 3}, "'feature_dim'"),
])
def test_bad_hyperparameter_fails_the_job_naming_it(sm, s3, hyperparameters, reason):
    X = load_iris().data
    describe = train(sm, s3, "kmeans", hyperparameters, {"train": csv_bytes(X)},
                     content_type=CSV_NO_LABEL)
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith("ClientError: ")
    assert reason in describe["FailureReason"]


def test_plain_csv_reads_a_label_column_as_sagemaker_does(sm, s3):
    X = load_iris().data
    describe = train(sm, s3, "kmeans", {"feature_dim": 4, "k": 3}, {"train": csv_bytes(X)},
                     content_type="text/csv")
    assert describe["TrainingJobStatus"] == "Failed"
    assert "records have 3 features but feature_dim is 4" in describe["FailureReason"]
    assert "text/csv;label_size=0" in describe["FailureReason"]
