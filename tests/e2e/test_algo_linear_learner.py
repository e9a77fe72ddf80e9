"""linear-learner through the platform: boto3 training jobs on `hearth/linear-learner` with
scikit-learn's datasets, quality beside scikit-learn's own linear models on the same split,
RecordIO-protobuf and CSV training the same model, SageMaker's failure contract, and the
trained model served by `hearth algo linear-learner serve` in SageMaker's response shapes.

Tolerances: the test sets are small (breast_cancer 114 rows, iris 30, diabetes 89), so one
example is about 1 % of accuracy; the SGD models may trail the exact solvers by a couple of
examples (binary 0.02, multiclass 0.035) and by 5 % of RMSE (regression).
"""
import json
import os

import numpy as np
import pytest
from sklearn import datasets
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from builtin_algorithms import (ServedModel, csv_bytes, fetch_model, final_metrics,
                                parse_recordio_protobuf, recordio_protobuf_bytes, train)

RECORDIO = "application/x-recordio-protobuf"
# Small data: many small steps (SageMaker's defaults, 1000-row batches for 15 epochs, take
# one step per epoch on a dataset of a few hundred rows).
SMALL_DATA_HPS = {"mini_batch_size": 10, "epochs": 50}


def split(X, y, stratify=True):
    """train / validation / test, 64 / 16 / 20 %, fixed seed."""
    X = X.astype(np.float32)
    y = y.astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y if stratify else None)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.2, random_state=0, stratify=y_train if stratify else None)
    return {"X_train": X_train, "y_train": y_train, "X_fit": X_fit, "y_fit": y_fit,
            "X_val": X_val, "y_val": y_val, "X_test": X_test, "y_test": y_test}


def train_and_fetch(sm, s3, tmp_path, hps, data, content_type="text/csv", encode=csv_bytes,
                    name=None):
    channels = {"train": encode(data["X_fit"], data["y_fit"]),
                "validation": encode(data["X_val"], data["y_val"]),
                "test": encode(data["X_test"], data["y_test"])}
    doc = train(sm, s3, "linear-learner", hps, channels, content_type=content_type)
    assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
    model_dir = fetch_model(s3, doc, tmp_path / (name or doc["TrainingJobName"]))
    return doc, model_dir


def predict_json(served, X):
    """Scores the rows as text/csv with Accept: application/json."""
    status, ctype, body = served.invoke(csv_bytes(X), "text/csv", accept="application/json")
    assert status == 200, body
    assert ctype.startswith("application/json")
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == len(X)
    return predictions


def load_model_file(model_dir):
    with open(os.path.join(model_dir, "linear_learner_model.json")) as f:
        return json.load(f)


def test_binary_classifier_matches_logistic_regression_on_breast_cancer(sm, s3, tmp_path):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    data = split(X, y)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    reference_accuracy = reference.fit(data["X_train"], data["y_train"]).score(
        data["X_test"], data["y_test"])

    doc, model_dir = train_and_fetch(
        sm, s3, tmp_path, {"predictor_type": "binary_classifier", **SMALL_DATA_HPS}, data)
    metrics = final_metrics(doc)
    for name in ("validation:binary_classification_accuracy", "validation:objective_loss",
                 "test:binary_classification_accuracy", "test:roc_auc_score",
                 "test:precision", "test:recall", "test:binary_f_beta", "train:objective_loss"):
        assert name in metrics, sorted(metrics)

    with ServedModel("linear-learner", model_dir) as served:
        predictions = predict_json(served, data["X_test"])
    labels = np.array([p["predicted_label"] for p in predictions])
    accuracy = float(np.mean(labels == data["y_test"]))
    assert accuracy >= reference_accuracy - 0.02, (accuracy, reference_accuracy)
    # The job's own test metric is the served model's accuracy on the same rows.
    assert metrics["test:binary_classification_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    for p in predictions:
        assert set(p) == {"score", "predicted_label"}
        assert 0.0 <= p["score"] <= 1.0
        assert p["predicted_label"] in (0, 1) and isinstance(p["predicted_label"], int)


def test_regressor_matches_ridge_on_diabetes(sm, s3, tmp_path):
    X, y = datasets.load_diabetes(return_X_y=True)
    data = split(X, y, stratify=False)
    reference = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(data["X_train"],
                                                                     data["y_train"])
    reference_rmse = float(np.sqrt(np.mean((reference.predict(data["X_test"]) -
                                            data["y_test"]) ** 2)))

    doc, model_dir = train_and_fetch(
        sm, s3, tmp_path, {"predictor_type": "regressor", **SMALL_DATA_HPS}, data)
    metrics = final_metrics(doc)
    for name in ("validation:rmse", "validation:mse", "validation:absolute_loss",
                 "test:rmse", "test:mse", "test:absolute_loss", "test:objective_loss"):
        assert name in metrics, sorted(metrics)

    with ServedModel("linear-learner", model_dir) as served:
        predictions = predict_json(served, data["X_test"])
    assert all(set(p) == {"score"} for p in predictions)
    scores = np.array([p["score"] for p in predictions])
    rmse = float(np.sqrt(np.mean((scores - data["y_test"]) ** 2)))
    assert rmse <= 1.05 * reference_rmse, (rmse, reference_rmse)
    assert metrics["test:rmse"] == pytest.approx(rmse, rel=1e-4)


@pytest.mark.parametrize("loader, tolerance", [(datasets.load_iris, 0.035),
                                               (datasets.load_digits, 0.035)])
def test_multiclass_classifier_matches_softmax_regression(sm, s3, tmp_path, loader, tolerance):
    X, y = loader(return_X_y=True)
    data = split(X, y)
    num_classes = int(y.max()) + 1
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    reference_accuracy = reference.fit(data["X_train"], data["y_train"]).score(
        data["X_test"], data["y_test"])

    doc, model_dir = train_and_fetch(
        sm, s3, tmp_path, {"predictor_type": "multiclass_classifier",
                           "num_classes": num_classes, **SMALL_DATA_HPS}, data)
    metrics = final_metrics(doc)
    for name in ("validation:multiclass_accuracy", "test:multiclass_accuracy",
                 "test:multiclass_top_k_accuracy", "test:macro_f_beta", "test:macro_precision",
                 "test:macro_recall"):
        assert name in metrics, sorted(metrics)

    with ServedModel("linear-learner", model_dir) as served:
        predictions = predict_json(served, data["X_test"])
    for p in predictions:
        assert len(p["score"]) == num_classes
        assert sum(p["score"]) == pytest.approx(1.0, abs=1e-4)
        assert p["predicted_label"] == int(np.argmax(p["score"]))
    labels = np.array([p["predicted_label"] for p in predictions])
    accuracy = float(np.mean(labels == data["y_test"]))
    assert accuracy >= reference_accuracy - tolerance, (accuracy, reference_accuracy)


def test_recordio_protobuf_trains_the_same_model_as_csv(sm, s3, tmp_path):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    data = split(X, y)
    hps = {"predictor_type": "binary_classifier", "mini_batch_size": 50, "epochs": 5}
    _, csv_dir = train_and_fetch(sm, s3, tmp_path, hps, data, name="csv")
    _, recordio_dir = train_and_fetch(sm, s3, tmp_path, hps, data, content_type=RECORDIO,
                                      encode=recordio_protobuf_bytes, name="recordio")
    csv_model, recordio_model = load_model_file(csv_dir), load_model_file(recordio_dir)
    assert csv_model["feature_dim"] == recordio_model["feature_dim"] == X.shape[1]
    # The same float32 rows in the same order: the same training, to the last bit.
    assert csv_model["weights"] == recordio_model["weights"]
    assert csv_model["bias"] == recordio_model["bias"]
    assert csv_model["threshold"] == recordio_model["threshold"]


@pytest.mark.parametrize("hps, named", [
    ({"predictor_type": "binary_classifier", "epochs": "0"}, "epochs"),
    ({"predictor_type": "binary_classifier", "loss": "squared_loss"}, "loss"),
    ({"predictor_type": "multiclass_classifier"}, "num_classes"),
    ({"predictor_type": "ranker"}, "predictor_type"),
    ({"predictor_type": "binary_classifier", "positive_example_weight_mult": "heavy"},
     "positive_example_weight_mult"),
])
def test_bad_hyperparameter_fails_the_job_naming_it(sm, s3, hps, named):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    doc = train(sm, s3, "linear-learner", hps, {"train": csv_bytes(X[:50], y[:50])})
    assert doc["TrainingJobStatus"] == "Failed"
    assert named in doc["FailureReason"], doc["FailureReason"]


def test_labels_outside_zero_one_fail_a_binary_job(sm, s3):
    X, y = datasets.load_iris(return_X_y=True)  # labels 0, 1, 2
    doc = train(sm, s3, "linear-learner", {"predictor_type": "binary_classifier"},
                {"train": csv_bytes(X, y)})
    assert doc["TrainingJobStatus"] == "Failed"
    assert "0 or 1" in doc["FailureReason"] and "train" in doc["FailureReason"], \
        doc["FailureReason"]


def test_served_model_answers_in_sagemakers_shapes(sm, s3, tmp_path):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    data = split(X, y)
    _, model_dir = train_and_fetch(
        sm, s3, tmp_path, {"predictor_type": "binary_classifier", "mini_batch_size": 50,
                           "epochs": 5}, data)
    rows = data["X_test"][:3]
    with ServedModel("linear-learner", model_dir) as served:
        reference = predict_json(served, rows)

        # JSON in: SageMaker's two instance shapes.
        body = json.dumps({"instances": [{"features": [float(v) for v in r]} for r in rows]})
        status, _, out = served.invoke(body, "application/json", accept="application/json")
        assert status == 200, out
        assert json.loads(out)["predictions"] == reference
        body = json.dumps({"instances": [{"data": {"features": {"values": [float(v) for v in r]}}}
                                         for r in rows]})
        status, _, out = served.invoke(body, "application/json", accept="application/json")
        assert status == 200, out
        assert json.loads(out)["predictions"] == reference

        # JSON lines out: one object per row.
        status, ctype, out = served.invoke(csv_bytes(rows), "text/csv",
                                           accept="application/jsonlines")
        assert status == 200, out
        lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        assert lines == reference

        # CSV out: score,predicted_label per row.
        status, ctype, out = served.invoke(csv_bytes(rows), "text/csv", accept="text/csv")
        assert status == 200, out
        cells = [line.split(",") for line in out.decode().strip().splitlines()]
        assert [int(c[1]) for c in cells] == [p["predicted_label"] for p in reference]
        assert [float(c[0]) for c in cells] == pytest.approx([p["score"] for p in reference],
                                                              rel=1e-5)

        # RecordIO-protobuf in and out: label keys score and predicted_label.
        status, ctype, out = served.invoke(recordio_protobuf_bytes(rows), RECORDIO,
                                           accept=RECORDIO)
        assert status == 200, out
        records = parse_recordio_protobuf(out)
        assert [r.label["predicted_label"].float32_tensor.values[0] for r in records] == \
            [p["predicted_label"] for p in reference]
        assert [r.label["score"].float32_tensor.values[0] for r in records] == \
            pytest.approx([p["score"] for p in reference], rel=1e-6)

        # A row of the wrong width is the client's error, naming both widths.
        status, _, out = served.invoke(csv_bytes(rows[:, :5]), "text/csv",
                                       accept="application/json")
        assert status == 400
        assert b"30" in out and b"5" in out, out
