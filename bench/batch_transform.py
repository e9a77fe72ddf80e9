#!/usr/bin/python3
"""Batch transform throughput: Hearth's CreateTransformJob against pandas + xgboost.

Starts its own `hearth server` (temporary data dir, free port), trains `hearth/xgboost` (100
trees, depth 6, binary:logistic) through boto3 on 100k synthetic rows of 28 features, and then,
side by side in one run, for --repeat rounds in alternating order:

  hearth   CreateTransformJob over one 1M-row, 28-column CSV object (no label): SplitType Line,
           BatchStrategy MultiRecord, MaxPayloadInMB 6, MaxConcurrentTransforms 2, one
           instance, Accept text/csv, AssembleWith Line. Timed from the CreateTransformJob call
           to Completed as a client polling DescribeTransformJob every 20 ms sees it; the
           TransformStartTime/TransformEndTime the server recorded are kept too. Job start to
           first record: the first request's log line in the job's log stream, against the
           job's CreationTime.
  pandas   what users write by hand, end to end on the same file and the same model file
           (`xgboost-model` from the job's model.tar.gz): pandas.read_csv -> Booster.
           inplace_predict -> DataFrame.to_csv.

Both outputs are compared (largest absolute difference of the probabilities). CSV parsing speed
is measured apart by hearth_data_test's throughput test (CSV rows parsed per CPU-second, the
parser the model server uses), when that binary is built.

Results go to bench/results/batch_transform.{json,md}.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/batch_transform.py [--rows 1000000] [--repeat 3]
"""
import argparse
import datetime
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

from hearth_server import BUILD_DIR, REPO, Server  # noqa: E402

RESULTS_DIR = os.path.join(REPO, "bench", "results")
ROLE = "arn:aws:iam::000000000000:role/bench"
COLS = 28
TRAIN_ROWS = 100_000
POLL_S = 0.02


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def hidden_label(X):
    """A nonlinear rule the trees can learn: the data is synthetic, the work is real."""
    return ((X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + 0.5 * X[:, 3:8].sum(axis=1)) > 0).astype(
        np.float32)


def write_csv(path, X, y=None):
    """numpy's "%.6g" CSV, what np.savetxt and most exports write."""
    with open(path, "w") as f:
        step = 50_000
        for start in range(0, len(X), step):
            block = X[start:start + step]
            if y is not None:
                block = np.column_stack([y[start:start + step], block])
            np.savetxt(f, block, fmt="%.6g", delimiter=",")


def input_file(cache_dir, rows):
    """The 1M-row transform input, generated once per row count (it takes a minute)."""
    path = os.path.join(cache_dir, f"transform-input-{rows}x{COLS}.csv")
    if not os.path.exists(path):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((rows, COLS)).astype(np.float32)
        write_csv(path + ".tmp", X)
        os.rename(path + ".tmp", path)
    return path


def train_model(sm, s3, work):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((TRAIN_ROWS, COLS)).astype(np.float32)
    train_csv = os.path.join(work, "train.csv")
    write_csv(train_csv, X, hidden_label(X))
    s3.upload_file(train_csv, "bench", "xgb/train/part-000.csv")
    sm.create_training_job(
        TrainingJobName="xgb-transform-bench",
        AlgorithmSpecification={"TrainingImage": "hearth/xgboost", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={"objective": "binary:logistic", "num_round": "100", "max_depth": "6",
                         "eta": "0.3", "tree_method": "hist"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv",
                          "DataSource": {"S3DataSource": {
                              "S3DataType": "S3Prefix", "S3Uri": "s3://bench/xgb/train/",
                              "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bench/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    d = wait_until(lambda: (lambda d: d if d["TrainingJobStatus"] in
                            ("Completed", "Failed", "Stopped") else None)(
        sm.describe_training_job(TrainingJobName="xgb-transform-bench")), 600, "training", 0.2)
    if d["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"training ended {d['TrainingJobStatus']}: {d.get('FailureReason')}")
    uri = d["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[len("s3://"):].split("/", 1)
    blob = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(os.path.join(work, "model"))
    return uri, os.path.join(work, "model", "xgboost-model")


def run_hearth(sm, s3, logs, name):
    t0 = time.perf_counter()
    sm.create_transform_job(
        TransformJobName=name, ModelName="xgb-bench",
        MaxConcurrentTransforms=2, MaxPayloadInMB=6, BatchStrategy="MultiRecord",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": "s3://bench/transform/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://bench/transform/{name}/",
                         "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1})
    while True:
        d = sm.describe_transform_job(TransformJobName=name)
        if d["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(POLL_S)
    seconds = time.perf_counter() - t0
    if d["TransformJobStatus"] != "Completed":
        raise SystemExit(f"transform {name} ended {d['TransformJobStatus']}: "
                         f"{d.get('FailureReason')}")
    first_record_ms = first_record_latency(logs, name, d)
    body = s3.get_object(Bucket="bench", Key=f"transform/{name}/input.csv.out")["Body"].read()
    return {"seconds": seconds, "first_record_ms": first_record_ms,
            "server_seconds": (d["TransformEndTime"] - d["CreationTime"]).total_seconds(),
            "output": body}


def first_record_latency(logs, name, described):
    """ms from CreationTime to the job's first request, from Hearth's own log line in the
    job's streams (None when the server does not log one)."""
    group = "/aws/sagemaker/TransformJobs"
    try:
        events = logs.filter_log_events(logGroupName=group, logStreamNamePrefix=name,
                                        filterPattern="first request")["events"]
    except Exception:  # noqa: BLE001 - an older server without the group
        return None
    if not events:
        return None
    created_ms = described["CreationTime"].timestamp() * 1000.0
    return min(e["timestamp"] for e in events) - created_ms


def run_pandas(model_path, input_path, out_path):
    import pandas as pd
    import xgboost as xgb
    booster = xgb.Booster(model_file=model_path)
    t0 = time.perf_counter()
    df = pd.read_csv(input_path, header=None, dtype=np.float32)
    preds = booster.inplace_predict(df.values)
    pd.DataFrame(preds).to_csv(out_path, header=False, index=False)
    return {"seconds": time.perf_counter() - t0, "preds": preds}


def csv_parse_rate():
    """hearth_data_test's CSV throughput: MB parsed per CPU-second (None if not built)."""
    binary = os.path.join(BUILD_DIR, "src", "data", "hearth_data_test")
    if not os.path.exists(binary):
        return None
    out = subprocess.run([binary, "--gtest_also_run_disabled_tests",
                          "--gtest_filter=*Throughput*"], capture_output=True, text=True,
                         env=dict(os.environ, HEARTH_BENCH_ROWS="1000000"), timeout=600).stdout
    m = re.search(r"CSV: .*?= (\d+) MB/s.*?= (\d+) MB/s per CPU-second", out)
    return {"wall_mb_s": int(m.group(1)), "cpu_mb_s": int(m.group(2)), "line": m.group(0)} \
        if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "hearth-bench"))
    ap.add_argument("--out", default=RESULTS_DIR)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.cache_dir, exist_ok=True)
    load_start = os.getloadavg()
    input_path = input_file(args.cache_dir, args.rows)
    input_bytes = os.path.getsize(input_path)

    work = tempfile.mkdtemp(prefix="hearth-bench-transform-")
    server = Server(os.path.join(work, "data"))
    os.makedirs(server.data_dir)
    server.start()
    try:
        sm, s3, logs = server.client("sagemaker"), server.client("s3"), server.client("logs")
        s3.create_bucket(Bucket="bench")
        model_uri, model_path = train_model(sm, s3, work)
        sm.create_model(ModelName="xgb-bench", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "hearth/xgboost", "ModelDataUrl": model_uri})
        s3.upload_file(input_path, "bench", "transform/in/input.csv")

        hearth, peer = [], []
        for round_ in range(args.repeat):
            order = ("hearth", "pandas") if round_ % 2 == 0 else ("pandas", "hearth")
            for who in order:
                if who == "hearth":
                    hearth.append(run_hearth(sm, s3, logs, f"xgb-transform-{round_}"))
                else:
                    peer.append(run_pandas(model_path, input_path,
                                           os.path.join(work, "pandas.out.csv")))
                print(f"round {round_} {who}: "
                      f"{(hearth if who == 'hearth' else peer)[-1]['seconds']:.2f} s",
                      file=sys.stderr)

        served = np.loadtxt(io.StringIO(hearth[-1]["output"].decode()), dtype=np.float64)
        max_diff = float(np.max(np.abs(served - peer[-1]["preds"]))) \
            if served.shape == peer[-1]["preds"].shape else None
        rows_out = int(served.shape[0])
    finally:
        server.kill()
    parse = csv_parse_rate()

    h = statistics.median(r["seconds"] for r in hearth)
    p = statistics.median(r["seconds"] for r in peer)
    first = [r["first_record_ms"] for r in hearth if r["first_record_ms"] is not None]
    summary = {
        "hearth_seconds": h, "pandas_seconds": p, "speedup": p / h,
        "hearth_gb_s": input_bytes / h / 1e9, "pandas_gb_s": input_bytes / p / 1e9,
        "first_record_ms": statistics.median(first) if first else None,
        "max_abs_diff": max_diff, "rows_out": rows_out, "csv_parse": parse,
    }
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    machine = {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
               "kernel": platform.release(), "load_start": load_start,
               "load_end": os.getloadavg(), "commit": commit}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "batch_transform.json"), "w") as f:
        json.dump({"when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "rows": args.rows, "cols": COLS, "input_bytes": input_bytes,
                   "machine": machine, "summary": summary,
                   "hearth": [{k: v for k, v in r.items() if k != "output"} for r in hearth],
                   "pandas": [{"seconds": r["seconds"]} for r in peer]}, f, indent=1)
    first_text = f"{summary['first_record_ms']:.0f} ms" if first else "not logged"
    parse_text = (f"{parse['cpu_mb_s']} MB per CPU-second ({parse['wall_mb_s']} MB/s wall)"
                  if parse else "hearth_data_test not built")
    md = f"""# Batch transform: 1M-row CSV through XGBoost

{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at the start and {machine['load_end'][0]:.2f} at the end, hearth {commit}. Input: {args.rows:,} rows x {COLS} float columns, "%.6g" CSV, {input_bytes / 1e6:.0f} MB, one object. Model: hearth/xgboost, 100 trees, depth 6. Medians of {args.repeat} rounds, alternating order.

| | seconds (median) | rounds | GB/s of CSV in |
|---|---|---|---|
| Hearth CreateTransformJob → Completed (Line, MultiRecord 6 MB, 2 concurrent, 1 instance) | {h:.2f} | {', '.join(f"{r['seconds']:.2f}" for r in hearth)} | {summary['hearth_gb_s']:.3f} |
| pandas.read_csv + inplace_predict + to_csv | {p:.2f} | {', '.join(f"{r['seconds']:.2f}" for r in peer)} | {summary['pandas_gb_s']:.3f} |

* Hearth / pandas speed: **{summary['speedup']:.2f}x** (goal ≥ 5x)
* Job start to first record: {first_text} (goal ≤ 50 ms)
* CSV parsing (hearth_data_test, 1M rows x 100 columns, the model server's parser): {parse_text} (goal ≥ 500 MB/s per core)
* Outputs agree: {rows_out:,} rows, largest difference of the probabilities {max_diff}
"""
    with open(os.path.join(args.out, "batch_transform.md"), "w") as f:
        f.write(md)
    print(md)
    if not args.keep:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
