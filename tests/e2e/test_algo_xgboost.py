"""The XGBoost built-in end to end: boto3 training jobs on `hearth/xgboost` (and the SageMaker
ECR URI of sagemaker-xgboost) from CSV, libsvm and RecordIO-protobuf, File and Pipe; the
per-round evaluation lines and FinalMetricDataList; the `xgboost-model` artifact read by
open-source XGBoost; the trained model served as an endpoint instance serves it.

Quality is checked against open-source XGBoost itself (Debian's python3-xgboost, the same
1.7.4 as libxgboost): trained with the same parameters on the same rows, it must make the same
predictions, stop at the same round, and report the same metrics.
"""
import json
import math

import numpy as np
import pytest
import xgboost as xgb
from scipy.sparse import csr_matrix
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from builtin_algorithms import (ServedModel, csv_bytes, fetch_model, final_metrics, job_log,
                                libsvm_bytes, recordio_protobuf_bytes, train)

SAGEMAKER_XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def cancer():
    """sklearn's breast cancer set as float32 (what XGBoost trains on either way), split 75/25."""
    data = load_breast_cancer()
    X = data.data.astype(np.float32)
    y = data.target.astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def completed(describe):
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    return describe


def artifact(s3, describe, tmp_path):
    """The job's xgboost-model, loaded by open-source XGBoost."""
    model_dir = fetch_model(s3, completed(describe), tmp_path / "model")
    return xgb.Booster(model_file=f"{model_dir}/xgboost-model"), model_dir


def reference_booster(params, X, y, num_round, X_valid=None, y_valid=None, sparse=False, **kw):
    """Open-source XGBoost trained the way SageMaker's container calls xgb.train."""
    def matrix(A, b):
        return xgb.DMatrix(csr_matrix(A) if sparse else A, label=b)
    dtrain = matrix(X, y)
    evals = [(dtrain, "train")]
    if X_valid is not None:
        evals.append((matrix(X_valid, y_valid), "validation"))
    return xgb.train(params, dtrain, num_boost_round=num_round, evals=evals, verbose_eval=False,
                     **kw)


def eval_lines(logs, describe):
    """The per-round lines "[i]\\ttrain-...:v\\tvalidation-...:v" of the job's log."""
    return [line for line in job_log(logs, describe) if line.startswith("[")
            and ("\ttrain-" in line or "#011train-" in line)]


def metric_on(line, name):
    for item in line.replace("#011", "\t").split("\t")[1:]:
        key, value = item.rsplit(":", 1)
        if key == name:
            return float(value)
    raise AssertionError(f"{name} not on {line!r}")


PARAMS = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "min_child_weight": 2,
          "subsample": 1, "eval_metric": "auc,error"}


def test_breast_cancer_model_is_open_source_xgboosts_model(sm, s3, logs, cancer, tmp_path):
    X_train, X_test, y_train, y_test = cancer
    describe = train(sm, s3, "xgboost", {**PARAMS, "num_round": 40},
                     {"train": csv_bytes(X_train, y_train),
                      "validation": csv_bytes(X_test, y_test)},
                     content_type="text/csv")
    booster, _ = artifact(s3, describe, tmp_path)

    params = {**PARAMS, "eval_metric": ["auc", "error"]}
    history = {}
    reference = reference_booster(params, X_train, y_train, 40, X_test, y_test,
                                  evals_result=history)
    dtest = xgb.DMatrix(X_test)
    ours, theirs = booster.predict(dtest), reference.predict(dtest)
    assert np.abs(ours - theirs).max() <= 1e-6
    assert booster.num_boosted_rounds() == 40
    auc = roc_auc_score(y_test, ours)
    accuracy = accuracy_score(y_test, ours > 0.5)
    assert auc > 0.98 and accuracy > 0.93

    # One evaluation line per round, XGBoost's metrics in the given order per set.
    lines = eval_lines(logs, describe)
    assert len(lines) == 40
    last = lines[-1].replace("#011", "\t")
    assert last.startswith("[39]\ttrain-auc:")
    assert [item.split(":")[0] for item in last.split("\t")[1:]] == \
        ["train-auc", "train-error", "validation-auc", "validation-error"]
    for i, line in enumerate(lines):
        for data_set in ("train", "validation"):
            for metric in ("auc", "error"):
                assert metric_on(line, f"{data_set}-{metric}") == pytest.approx(
                    history[data_set][metric][i], abs=6e-6), (i, data_set, metric)

    # FinalMetricDataList holds the last round's values, from the job's own metric regexes.
    metrics = final_metrics(describe)
    assert metrics["validation:auc"] == pytest.approx(auc, abs=1e-5)
    assert metrics["validation:error"] == pytest.approx(1 - accuracy, abs=1e-5)
    assert metrics["train:auc"] == pytest.approx(metric_on(last, "train-auc"), abs=1e-5)


def test_early_stopping_stops_where_open_source_xgboost_stops(sm, s3, cancer, tmp_path):
    X_train, X_test, y_train, y_test = cancer
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.5,
              "eval_metric": "logloss"}
    describe = train(sm, s3, "xgboost", {**params, "num_round": 300, "early_stopping_rounds": 5},
                     {"train": csv_bytes(X_train, y_train),
                      "validation": csv_bytes(X_test, y_test)},
                     content_type="text/csv")
    booster, _ = artifact(s3, describe, tmp_path)
    reference = reference_booster(params, X_train, y_train, 300, X_test, y_test,
                                  early_stopping_rounds=5)
    assert booster.num_boosted_rounds() < 300
    assert booster.num_boosted_rounds() == reference.num_boosted_rounds()
    assert booster.best_iteration == reference.best_iteration
    assert booster.best_ntree_limit == reference.best_ntree_limit
    assert float(booster.attr("best_score")) == pytest.approx(reference.best_score, rel=1e-9)
    dtest = xgb.DMatrix(X_test)
    assert np.abs(booster.predict(dtest) - reference.predict(dtest)).max() <= 1e-6


def test_libsvm_is_the_default_and_recordio_protobuf_and_pipe_train_the_same_model(
        sm, s3, cancer, tmp_path):
    X_train, X_test, y_train, y_test = cancer
    hps = {"objective": "binary:logistic", "max_depth": 3, "num_round": 15}
    # No ContentType: text/libsvm, as SageMaker's XGBoost assumes. libsvm leaves zeros out,
    # so they are missing values; XGBoost on the same sparse rows agrees.
    libsvm_job = train(sm, s3, "xgboost", hps, {"train": libsvm_bytes(X_train, y_train)},
                       content_type=None, image=SAGEMAKER_XGBOOST_IMAGE)
    booster, _ = artifact(s3, libsvm_job, tmp_path / "libsvm")
    reference = reference_booster({"objective": "binary:logistic", "max_depth": 3},
                                  X_train, y_train, 15, sparse=True)
    dtest = xgb.DMatrix(csr_matrix(X_test))
    assert np.abs(booster.predict(dtest) - reference.predict(dtest)).max() <= 1e-6

    # RecordIO-protobuf (dense records) in Pipe mode, and CSV in File mode: zeros are values.
    protobuf_job = train(sm, s3, "xgboost", hps,
                         {"train": recordio_protobuf_bytes(X_train, y_train)},
                         content_type="application/x-recordio-protobuf", input_mode="Pipe")
    csv_job = train(sm, s3, "xgboost", hps, {"train": csv_bytes(X_train, y_train)},
                    content_type="text/csv")
    from_protobuf, _ = artifact(s3, protobuf_job, tmp_path / "protobuf")
    from_csv, _ = artifact(s3, csv_job, tmp_path / "csv")
    dense = xgb.DMatrix(X_test)
    assert np.array_equal(from_protobuf.predict(dense), from_csv.predict(dense))


def test_multiclass_and_container_metrics(sm, s3, tmp_path):
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=1)
    describe = train(sm, s3, "xgboost",
                     {"objective": "multi:softprob", "num_class": 3, "num_round": 10,
                      "max_depth": 3, "eval_metric": "mlogloss,merror,accuracy,f1"},
                     {"train": csv_bytes(X_train, y_train),
                      "validation": csv_bytes(X_test, y_test)},
                     content_type="text/csv")
    booster, model_dir = artifact(s3, describe, tmp_path)
    probabilities = booster.predict(xgb.DMatrix(X_test))
    assert probabilities.shape == (len(X_test), 3)
    predicted = probabilities.argmax(1)
    metrics = final_metrics(describe)
    # accuracy and f1 are the container's own metrics (XGBoost 1.7 has none by those names).
    assert metrics["validation:accuracy"] == pytest.approx(accuracy_score(y_test, predicted),
                                                           abs=1e-5)
    assert metrics["validation:merror"] == pytest.approx(1 - metrics["validation:accuracy"],
                                                         abs=1e-5)
    assert "validation:f1" in metrics and "train:mlogloss" in metrics

    with ServedModel("xgboost", model_dir) as served:
        status, ctype, body = served.invoke(csv_bytes(X_test[:4]), "text/csv",
                                            "application/json")
        assert status == 200, body
        assert ctype.startswith("application/json")
        scores = [p["score"] for p in json.loads(body)["predictions"]]
        assert np.allclose(scores, probabilities[:4], atol=1e-6)


def test_served_model_answers_csv_on_one_line_and_json(sm, s3, cancer, tmp_path):
    X_train, X_test, y_train, y_test = cancer
    describe = train(sm, s3, "xgboost",
                     {"objective": "binary:logistic", "num_round": 30, "max_depth": 5},
                     {"train": csv_bytes(X_train, y_train)}, content_type="text/csv")
    booster, model_dir = artifact(s3, describe, tmp_path)
    rows = X_test[:25].copy()
    rows[0, 3] = np.nan  # a missing value takes the tree's default direction
    expected = booster.predict(xgb.DMatrix(rows))

    with ServedModel("xgboost", model_dir) as served:
        # No Accept: text/csv, all scores comma-separated on one line, as the container's
        # realtime answer (notebooks read it with np.fromstring(body, sep=',')).
        body_csv = csv_bytes(rows).decode().replace("nan", "")
        status, ctype, body = served.invoke(body_csv, "text/csv")
        assert status == 200, body
        assert ctype.startswith("text/csv")
        assert body.decode().strip().count("\n") == 0
        scores = np.array([float(v) for v in body.decode().strip().split(",")])
        assert np.abs(scores - expected).max() <= 1e-6

        status, _, body = served.invoke(csv_bytes(rows[1:3]), "text/csv", "application/json")
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        assert [p["score"] for p in predictions] == pytest.approx(expected[1:3].tolist(),
                                                                  abs=1e-6)

        status, _, body = served.invoke(libsvm_bytes(rows[1:2], [0]), "text/libsvm")
        assert status == 200, body
        sparse_expected = booster.predict(xgb.DMatrix(csr_matrix(rows[1:2])))
        assert float(body.decode().strip()) == pytest.approx(float(sparse_expected[0]), abs=1e-6)

        status, _, body = served.invoke(csv_bytes(np.zeros((1, 31), np.float32)), "text/csv")
        assert status == 400, body


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"objective": "binary:logistic"}, "'num_round'"),
    ({"num_round": 10, "objective": "binary:logit"}, "'objective'"),
    ({"num_round": 10, "objective": "multi:softprob"}, "'num_class'"),
    ({"num_round": 10, "eta": 2}, "'eta'"),
    ({"num_round": 10, "eval_metric": "auc"}, "'auc'"),
])
def test_bad_hyperparameter_fails_the_job_naming_it(sm, s3, cancer, hyperparameters, reason):
    X_train, _, y_train, _ = cancer
    describe = train(sm, s3, "xgboost", hyperparameters,
                     {"train": csv_bytes(X_train[:50], y_train[:50])}, content_type="text/csv")
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith("ClientError: ")
    assert reason in describe["FailureReason"]


def test_bad_data_fails_the_job_naming_the_channel(sm, s3, cancer):
    X_train, _, y_train, _ = cancer
    describe = train(sm, s3, "xgboost", {"num_round": 5},
                     {"train": csv_bytes(X_train[:50], y_train[:50]),
                      "validation": b"1,2,3\n0,oops,4\n"},
                     content_type="text/csv")
    assert describe["TrainingJobStatus"] == "Failed"
    assert "'validation'" in describe["FailureReason"]
    assert "oops" in describe["FailureReason"]
