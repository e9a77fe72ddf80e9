"""The PCA built-in end to end: boto3 training jobs on `hearth/pca` (and the SageMaker ECR URI),
the model_algo-1 artifact read back as MXNet's NDArray file (`mean`, `s`, `v`, as
mx.nd.load('model_algo-1') shows them), the explained variance in the job's log, and the model
served as an endpoint instance serves it.

Quality is checked against scikit-learn on the same data: singular values, components (up to
sign), explained variance ratios and projections must match sklearn's PCA (TruncatedSVD without
subtract_mean) to float32 precision.
"""
import json
import re
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA, TruncatedSVD

from builtin_algorithms import (ServedModel, csv_bytes, fetch_model, job_log,
                                parse_recordio_protobuf, recordio_protobuf_bytes, train)

CSV_NO_LABEL = "text/csv;label_size=0"


def read_ndarrays(path):
    """MXNet's NDArray list file (mx.nd.save of a dict): {name: float64 array}."""
    with open(path, "rb") as f:
        data = f.read()
    list_magic, _reserved, count = struct.unpack_from("<QQQ", data, 0)
    assert list_magic == 0x112
    offset, arrays = 24, []
    for _ in range(count):
        array_magic, storage, ndim = struct.unpack_from("<IiI", data, offset)
        assert (array_magic, storage) == (0xF993FAC9, 0)
        shape = struct.unpack_from(f"<{ndim}q", data, offset + 12)
        offset += 12 + 8 * ndim
        device_type, device_id, dtype = struct.unpack_from("<iii", data, offset)
        assert (device_type, device_id, dtype) == (1, 0, 0)
        offset += 12
        size = int(np.prod(shape))
        arrays.append(np.frombuffer(data, "<f4", size, offset).astype(np.float64).reshape(shape))
        offset += 4 * size
    (name_count,) = struct.unpack_from("<Q", data, offset)
    assert name_count == count
    offset += 8
    names = []
    for _ in range(count):
        (length,) = struct.unpack_from("<Q", data, offset)
        names.append(data[offset + 8:offset + 8 + length].decode())
        offset += 8 + length
    assert offset == len(data)
    return dict(zip(names, arrays))


def trained_model(s3, describe, tmp_path):
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    model_dir = fetch_model(s3, describe, tmp_path / "model")
    return read_ndarrays(f"{model_dir}/model_algo-1"), model_dir


def logged_ratios(logs, describe):
    """Per-component explained variance ratios from the job's log, first component first."""
    text = "\n".join(job_log(logs, describe))
    return np.array([float(v) for v in
                     re.findall(r"explained variance ratio ([0-9.]+) \(cumulative", text)]), text


def aligned(components, reference):
    """`components` (one per row) with each row's sign flipped to agree with `reference`."""
    signs = np.sign((components * reference).sum(1))
    return components * signs[:, None]


def test_iris_matches_sklearn_pca(sm, s3, logs, tmp_path):
    X = load_iris().data.astype(np.float32)
    describe = train(sm, s3, "pca", {"feature_dim": 4, "num_components": 3,
                                     "mini_batch_size": 32},
                     {"train": csv_bytes(X)}, content_type=CSV_NO_LABEL)
    model, _ = trained_model(s3, describe, tmp_path)
    reference = PCA(n_components=3, svd_solver="full").fit(X.astype(np.float64))

    assert model["mean"].shape == (1, 4)
    assert model["s"].shape == (3,)
    assert model["v"].shape == (4, 3)
    # SageMaker's order: smallest singular value first, its component in v's first column.
    assert list(model["s"]) == sorted(model["s"])
    np.testing.assert_allclose(model["mean"][0], reference.mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-5)
    components = model["v"][:, ::-1].T
    np.testing.assert_allclose(aligned(components, reference.components_),
                               reference.components_, atol=1e-5)

    ratios, text = logged_ratios(logs, describe)
    np.testing.assert_allclose(ratios, reference.explained_variance_ratio_, atol=1e-6)
    assert "#phase: fit seconds=" in text


def test_digits_randomized_from_recordio_protobuf_with_test_channel(sm, s3, logs, tmp_path):
    X = load_digits().data.astype(np.float32)
    train_X, test_X = X[:1500], X[1500:]
    # No ContentType: RecordIO-protobuf, as for the sagemaker SDK's record_set() channels.
    describe = train(sm, s3, "pca",
                     {"feature_dim": 64, "num_components": 10, "mini_batch_size": 200,
                      "algorithm_mode": "randomized", "extra_components": 10},
                     {"train": recordio_protobuf_bytes(train_X, np.zeros(len(train_X))),
                      "test": recordio_protobuf_bytes(test_X)},
                     content_type=None,
                     image="382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1")
    model, _ = trained_model(s3, describe, tmp_path)
    reference = PCA(n_components=10, svd_solver="full").fit(train_X.astype(np.float64))

    # Three passes of a 20-column block (extra_components 10): approximate, but close.
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-4)
    components = model["v"][:, ::-1].T
    np.testing.assert_allclose(aligned(components, reference.components_)[:4],
                               reference.components_[:4], atol=1e-3)
    ratios, text = logged_ratios(logs, describe)
    np.testing.assert_allclose(ratios, reference.explained_variance_ratio_, atol=1e-5)

    centred = test_X.astype(np.float64) - reference.mean_
    kept = ((centred @ reference.components_.T) ** 2).sum() / (centred ** 2).sum()
    (logged,) = re.findall(r"test: explained variance ratio of 10 components: ([0-9.]+)", text)
    assert float(logged) == pytest.approx(kept, abs=1e-4)


def test_served_model_projects_like_sklearn_transform(sm, s3, tmp_path):
    X = load_digits().data.astype(np.float32)
    describe = train(sm, s3, "pca", {"feature_dim": 64, "num_components": 5,
                                     "mini_batch_size": 500},
                     {"train": csv_bytes(X)}, content_type=CSV_NO_LABEL)
    model, model_dir = trained_model(s3, describe, tmp_path)
    reference = PCA(n_components=5, svd_solver="full").fit(X.astype(np.float64))
    signs = np.sign((model["v"][:, ::-1].T * reference.components_).sum(1))
    rows = X[:20]
    # The endpoint answers in v's order (largest variance last); sklearn's first.
    expected = (reference.transform(rows.astype(np.float64)) * signs)[:, ::-1]

    with ServedModel("pca", model_dir) as served:
        status, ctype, body = served.invoke(csv_bytes(rows), "text/csv", "application/json")
        assert status == 200, body
        assert ctype.startswith("application/json")
        projections = [p["projection"] for p in json.loads(body)["projections"]]
        np.testing.assert_allclose(projections, expected, rtol=1e-4, atol=1e-3)

        instances = {"instances": [{"features": row.tolist()} for row in rows[:3]]}
        status, _, body = served.invoke(json.dumps(instances), "application/json")
        assert status == 200, body
        np.testing.assert_allclose([p["projection"] for p in json.loads(body)["projections"]],
                                   expected[:3], rtol=1e-4, atol=1e-3)

        status, _, body = served.invoke(recordio_protobuf_bytes(rows[:2]),
                                        "application/x-recordio-protobuf",
                                        "application/x-recordio-protobuf")
        assert status == 200, body
        records = parse_recordio_protobuf(body)
        np.testing.assert_allclose(
            [list(r.label["projection"].float32_tensor.values) for r in records],
            expected[:2], rtol=1e-4, atol=1e-3)

        status, _, body = served.invoke(csv_bytes(X[:1, :63]), "text/csv")
        assert status == 400
        assert b"64" in body and b"63" in body


def test_without_subtract_mean_matches_truncated_svd(sm, s3, tmp_path):
    X = load_iris().data.astype(np.float32)
    describe = train(sm, s3, "pca", {"feature_dim": 4, "num_components": 2,
                                     "mini_batch_size": 50, "subtract_mean": "false"},
                     {"train": csv_bytes(X)}, content_type=CSV_NO_LABEL)
    model, model_dir = trained_model(s3, describe, tmp_path)
    assert "mean" not in model
    reference = TruncatedSVD(n_components=2, algorithm="arpack").fit(X.astype(np.float64))
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-5)
    with ServedModel("pca", model_dir) as served:
        status, _, body = served.invoke(csv_bytes(X[:5]), "text/csv", "application/json")
        assert status == 200, body
        projections = np.array([p["projection"] for p in json.loads(body)["projections"]])
    np.testing.assert_allclose(projections, X[:5].astype(np.float64) @ model["v"], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": 4, "num_components": 0, "mini_batch_size": 10},
     "Hyperparameter 'num_components'"),
    ({"feature_dim": 4, "num_components": 5, "mini_batch_size": 10}, "'num_components' (5)"),
    ({"feature_dim": 4, "num_components": 2, "mini_batch_size": 10, "algorithm_mode": "fast"},
     "Hyperparameter 'algorithm_mode'"),
    ({"feature_dim": 4, "num_components": 2, "mini_batch_size": 10, "extra_components": -2},
     "Hyperparameter 'extra_components'"),
    ({"feature_dim": 4, "num_components": 2, "mini_batch_size": 10, "subtract_mean": "maybe"},
     "Hyperparameter 'subtract_mean'"),
    ({"num_components": 2, "mini_batch_size": 10}, "'feature_dim'"),
])
def test_bad_hyperparameter_fails_the_job_naming_it(sm, s3, hyperparameters, reason):
    describe = train(sm, s3, "pca", hyperparameters, {"train": csv_bytes(load_iris().data)},
                     content_type=CSV_NO_LABEL)
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith("ClientError: ")
    assert reason in describe["FailureReason"]


def test_plain_csv_reads_a_label_column_as_sagemaker_does(sm, s3):
    describe = train(sm, s3, "pca", {"feature_dim": 4, "num_components": 2,
                                     "mini_batch_size": 10},
                     {"train": csv_bytes(load_iris().data)}, content_type="text/csv")
    assert describe["TrainingJobStatus"] == "Failed"
    assert "rows have 3 features, but feature_dim is 4" in describe["FailureReason"]
    assert "text/csv;label_size=0" in describe["FailureReason"]
