#!/usr/bin/python3
"""Hearth in one minute: train a linear-learner model, deploy it, predict, and batch-transform,
with the Python SDK against a running server. `make run` runs this once the server is up.

    PYTHONPATH=python /usr/bin/python3 examples/quickstart.py [--endpoint-url URL]

Every step is a plain SageMaker API call (see python/README.md), so the same code runs against
Amazon SageMaker with `hearth.Session(hearth.AWS, role=...)`.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import hearth  # noqa: E402


def make_data(rows, features=10, seed=0):
    """Features and 0/1 labels of a noisy linear rule: what a binary classifier should learn."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=features)
    y = ((X @ w + 0.3 * rng.normal(size=rows)) > 0).astype(np.float32)
    return X, y


class Timings:
    def __init__(self):
        self.rows = []

    def step(self, what, seconds):
        self.rows.append((what, seconds))
        print(f"==> {what}: {seconds * 1000:.1f} ms", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", help="the server (default: $HEARTH_ENDPOINT_URL, "
                                               "then http://127.0.0.1:7070)")
    parser.add_argument("--bucket", default="quickstart")
    args = parser.parse_args()

    sess = hearth.Session(args.endpoint_url, poll_interval=0.2)
    timings = Timings()
    X, y = make_data(12_000)
    X_train, y_train = X[:8000], y[:8000]
    X_val, y_val = X[8000:9000], y[8000:9000]
    X_test, y_test = X[9000:], y[9000:]

    start = time.perf_counter()
    train = sess.upload_numpy(X_train, y_train, f"s3://{args.bucket}/train/",
                              format="recordio-protobuf")
    val = sess.upload_numpy(X_val, y_val, f"s3://{args.bucket}/validation/", format="csv")
    timings.step("upload 8,000 training rows (RecordIO-protobuf) and 1,000 validation rows "
                 "(CSV)", time.perf_counter() - start)

    est = hearth.Estimator("linear-learner", instance_count=1, instance_type="ml.m5.large",
                           hyperparameters={"predictor_type": "binary_classifier",
                                            "epochs": 5},
                           session=sess)
    start = time.perf_counter()
    est.fit({"train": train, "validation": val})
    timings.step("train (CreateTrainingJob to Completed, logs streamed)",
                 time.perf_counter() - start)
    metrics = est.final_metrics()
    print(f"    validation accuracy "
          f"{metrics['validation:binary_classification_accuracy']:.3f}, "
          f"model at {est.model_data}")

    start = time.perf_counter()
    pred = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    timings.step(f"deploy endpoint {pred.endpoint_name} (to InService)",
                 time.perf_counter() - start)

    answer = pred.predict(X_test[:5])
    for row, p in enumerate(answer["predictions"]):
        print(f"    row {row}: score {p['score']:.3f} -> label {p['predicted_label']:g} "
              f"(true {y_test[row]:g})")
    latencies = []
    for row in X_test[:200]:
        start = time.perf_counter()
        pred.predict(row.reshape(1, -1))
        latencies.append(time.perf_counter() - start)
    timings.step("one-row prediction through boto3, median of 200",
                 statistics.median(latencies))

    sess.upload_numpy(X_test, None, f"s3://{args.bucket}/batch/", format="csv")
    transformer = est.transformer(1, "ml.m5.large", strategy="MultiRecord",
                                  assemble_with="Line", accept="text/csv")
    start = time.perf_counter()
    transformer.transform(f"s3://{args.bucket}/batch/", content_type="text/csv",
                          split_type="Line", logs=False)
    timings.step(f"batch transform of {len(X_test):,} rows (to Completed)",
                 time.perf_counter() - start)
    [output] = transformer.output_uris()
    bucket, key = hearth.session.parse_s3_uri(output)
    scores = np.loadtxt(sess.read_s3_file(bucket, key).splitlines(), delimiter=",", ndmin=2)
    accuracy = float(np.mean((scores[:, 0] >= 0.5) == (y_test == 1)))
    print(f"    {len(scores):,} scores in {output}; accuracy {accuracy:.3f}")

    pred.delete_endpoint()
    pred.delete_model()
    print("\nQuickstart done:")
    for what, seconds in timings.rows:
        print(f"  {seconds * 1000:8.1f} ms  {what}")
    if accuracy < 0.9:
        sys.exit(f"batch transform accuracy {accuracy:.3f} is below 0.9: something is wrong")


if __name__ == "__main__":
    main()
