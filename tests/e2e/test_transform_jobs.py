"""Batch transform end to end: a built-in XGBoost model trained through boto3 transforms CSV,
gzip'd CSV and RecordIO-protobuf objects with every SplitType / BatchStrategy / AssembleWith a
user combines, and the developer guide's DataProcessing examples (CSV and JSON); outputs land at
<S3OutputPath>/<key relative to the input>.out and match open-source XGBoost's predictions.
TFRecord objects split by record (and a corrupt one failing its job).
A bring-your-own model that answers 500 fails its job with a reason and leaves no output;
StopTransformJob stops one; the AWS CLI creates, waits for, describes and lists one; a job
survives a kill -9 of the server.

Run by Debian's /usr/bin/python3 (numpy and python3-xgboost for the reference predictions).
"""
import glob
import gzip
import io
import json
import os
import stat
import tarfile
import textwrap
import uuid

import numpy as np
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError, WaiterError

from builtin_algorithms import csv_bytes, recordio_protobuf_bytes, train
from conftest import HearthServer, kill_processes_mentioning, wait_for

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:000000000000"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
FAST = {"Delay": 1, "MaxAttempts": 180}
TERMINAL = ("Completed", "Failed", "Stopped")


# --- fixtures and helpers ------------------------------------------------------------------


class Trained:
    """A small binary XGBoost model: its model.tar.gz bytes and the same model loaded by
    open-source XGBoost, for reference predictions."""

    def __init__(self, tarball, booster):
        self.tarball = tarball
        self.booster = booster

    def predict(self, X):
        return self.booster.predict(xgb.DMatrix(np.asarray(X, dtype=np.float32)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained once per module on a server of its own; each test uploads the artifact."""
    root = tmp_path_factory.mktemp("train")
    server = HearthServer(str(root / "data")).start()
    try:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        rng = np.random.default_rng(11)
        X = rng.normal(size=(400, 4)).astype(np.float32)
        y = (X[:, 0] - 0.7 * X[:, 2] > 0).astype(np.float32)
        job = train(sm, s3, "xgboost", {"objective": "binary:logistic", "num_round": "12",
                                        "max_depth": "3"}, {"train": csv_bytes(X, y)})
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][len("s3://"):].split("/", 1)
        tarball = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        server.stop()
        kill_processes_mentioning(str(root))
    model_dir = root / "model"
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        tar.extractall(model_dir)
    return Trained(tarball, xgb.Booster(model_file=str(model_dir / "xgboost-model")))


def rows(n, seed):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def xgb_model(sm, s3, trained, name):
    """CreateModel of hearth/xgboost with the trained artifact uploaded to this server."""
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="xgb/model.tar.gz", Body=trained.tarball)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "hearth/xgboost",
                                      "ModelDataUrl": f"s3://{bucket}/xgb/model.tar.gz"})
    return name


def byo_image(server, tmp_path, name, serve_body):
    """Registers a bring-your-own image whose `serve` is `serve_body` (a /bin/sh script)."""
    d = tmp_path / "images" / name
    d.mkdir(parents=True)
    serve = d / "serve"
    serve.write_text("#!/bin/sh\n" + textwrap.dedent(serve_body))
    serve.chmod(serve.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    server.register_image(name, str(d))
    return name


# A model server in a few lines of Debian's python3. POST /invocations answers the body upper-
# cased; MODE=fail answers 500 instead; a body holding "hang" is never answered, one holding
# "slow" after SLOW_SECONDS. It prints what it got, so the job's log shows every request.
ECHO_SERVE = """\
exec /usr/bin/python3 -c '
import http.server, os, time
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
mode = os.environ.get("MODE", "upper")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print("got %r" % body, flush=True)
        if mode == "fail":
            return self.answer(500, b"model exploded on purpose")
        if b"hang" in body:
            time.sleep(600)
        if b"slow" in body:
            time.sleep(float(os.environ.get("SLOW_SECONDS", "1")))
        self.answer(200, body.upper())
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'
"""


def echo_model(server, sm, tmp_path, name, env=None):
    image = byo_image(server, tmp_path, f"echo-{name}", ECHO_SERVE)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": image, "Environment": env or {}})
    return name


def transform_request(name, model, input_uri, output_uri, split="Line", content_type="text/csv",
                      **extra):
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": input_uri}},
                           "ContentType": content_type, "SplitType": split},
        "TransformOutput": {"S3OutputPath": output_uri, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def wait_done(sm, name, timeout=180):
    return wait_for(
        lambda: (lambda d: d if d["TransformJobStatus"] in TERMINAL else None)(
            sm.describe_transform_job(TransformJobName=name)),
        timeout=timeout, interval=0.1, what=f"transform job {name}")


def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3, bucket, prefix):
    out = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in out.get("Contents", []))


def floats(body):
    return np.array([float(line) for line in body.decode().splitlines() if line.strip()])


def log_lines(logs, job):
    """{stream: [messages]} of the job's streams in /aws/sagemaker/TransformJobs."""
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP,
                                        logStreamNamePrefix=job + "/")["logStreams"]
    out = {}
    for s in streams:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=s["logStreamName"],
                                     startFromHead=True)["events"]
        out[s["logStreamName"]] = [e["message"] for e in events]
    return out


# --- built-in XGBoost ----------------------------------------------------------------------


def test_xgboost_transforms_csv_objects_with_every_split_and_strategy(server, sm, s3, logs,
                                                                      trained):
    model = xgb_model(sm, s3, trained, "xgb-batch")
    bucket = "batch"
    s3.create_bucket(Bucket=bucket)
    parts = {"in/part-0.csv": rows(25, 1), "in/nested/part-1.csv": rows(30, 2),
             "in/nested/deeper/part-2.csv": rows(15, 3)}
    for key, X in parts.items():
        s3.put_object(Bucket=bucket, Key=key, Body=csv_bytes(X))
        s3.put_object(Bucket=bucket, Key="gz/" + key.split("/")[-1] + ".gz",
                      Body=gzip.compress(csv_bytes(X)))
    s3.put_object(Bucket=bucket, Key="in/nested/", Body=b"")  # a folder marker, not an input

    jobs = {
        # Line + MultiRecord on two instances; the prefix names a folder without its '/'.
        "lines": transform_request("lines", model, f"s3://{bucket}/in", f"s3://{bucket}/out-lines",
                                   BatchStrategy="MultiRecord",
                                   TransformOutput={"Accept": "text/csv"},
                                   TransformResources={"InstanceCount": 2}),
        # One record per request, two in flight.
        "single": transform_request("single", model, f"s3://{bucket}/in/nested/",
                                    f"s3://{bucket}/out-single/", BatchStrategy="SingleRecord",
                                    MaxConcurrentTransforms=2),
        # Each object whole, bytes concatenated as the model answered; a partial key prefix.
        "whole": transform_request("whole", model, f"s3://{bucket}/in/part",
                                   f"s3://{bucket}/out-whole",
                                   split="None", TransformOutput={"AssembleWith": "None"}),
        "gzip": transform_request("gzip", model, f"s3://{bucket}/gz/", f"s3://{bucket}/out-gz",
                                  TransformInput={"CompressionType": "Gzip"}),
    }
    for request in jobs.values():
        arn = sm.create_transform_job(**request)["TransformJobArn"]
        assert arn == f"{ARN_PREFIX}:transform-job/{request['TransformJobName']}"
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="lines",
                                                              WaiterConfig=FAST)
    done = {name: wait_done(sm, name) for name in jobs}
    for name, d in done.items():
        assert d["TransformJobStatus"] == "Completed", (name, d.get("FailureReason"))

    def check(key, X):
        np.testing.assert_allclose(floats(get(s3, bucket, key)), trained.predict(X), rtol=1e-5,
                                   atol=1e-6, err_msg=key)

    assert keys(s3, bucket, "out-lines/") == [
        "out-lines/nested/deeper/part-2.csv.out", "out-lines/nested/part-1.csv.out",
        "out-lines/part-0.csv.out"]
    for key, X in parts.items():
        check("out-lines/" + key[len("in/"):] + ".out", X)
    assert keys(s3, bucket, "out-single/") == ["out-single/deeper/part-2.csv.out",
                                               "out-single/part-1.csv.out"]
    check("out-single/part-1.csv.out", parts["in/nested/part-1.csv"])
    check("out-single/deeper/part-2.csv.out", parts["in/nested/deeper/part-2.csv"])
    assert keys(s3, bucket, "out-whole/") == ["out-whole/part-0.csv.out"]
    check("out-whole/part-0.csv.out", parts["in/part-0.csv"])
    assert keys(s3, bucket, "out-gz/") == ["out-gz/part-0.csv.gz.out", "out-gz/part-1.csv.gz.out",
                                           "out-gz/part-2.csv.gz.out"]
    check("out-gz/part-1.csv.gz.out", parts["in/nested/part-1.csv"])

    # Describe: the request with SageMaker's defaults, the settings in effect (the built-in's
    # /execution-parameters where the request was silent), the times.
    d = done["lines"]
    assert d["TransformJobName"] == "lines" and d["ModelName"] == model
    assert d["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/in"}},
        "ContentType": "text/csv", "CompressionType": "None", "SplitType": "Line"}
    assert d["TransformOutput"] == {"S3OutputPath": f"s3://{bucket}/out-lines",
                                    "Accept": "text/csv", "AssembleWith": "Line"}
    assert d["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 2}
    assert d["BatchStrategy"] == "MultiRecord" and d["MaxPayloadInMB"] == 6
    assert d["MaxConcurrentTransforms"] == os.cpu_count()
    assert d["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": 600,
                                      "InvocationsMaxRetries": 3}
    assert d["DataProcessing"] == {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
    assert d["CreationTime"] <= d["TransformStartTime"] <= d["TransformEndTime"]
    assert "FailureReason" not in d
    assert done["single"]["BatchStrategy"] == "SingleRecord"
    assert done["single"]["MaxConcurrentTransforms"] == 2

    # Two instances, each with its output stream and a data log of the settings.
    streams = log_lines(logs, "lines")
    instance_streams = [s for s in streams if not s.endswith("/data-log")]
    assert len(instance_streams) == 2, streams.keys()
    for s in instance_streams:
        assert s.startswith("lines/i-")
        data_log = streams[s + "/data-log"]
        assert any("[sagemaker logs]: MaxConcurrentTransforms=" in m and
                   "MaxPayloadInMB=6, BatchStrategy=MULTI_RECORD" in m for m in data_log), data_log

    # List: newest first by default, filters and pages.
    listed = sm.list_transform_jobs(StatusEquals="Completed", SortBy="Name",
                                    SortOrder="Ascending", MaxResults=2)
    assert [j["TransformJobName"] for j in listed["TransformJobSummaries"]] == ["gzip", "lines"]
    rest = sm.list_transform_jobs(StatusEquals="Completed", SortBy="Name", SortOrder="Ascending",
                                  NextToken=listed["NextToken"])
    assert [j["TransformJobName"] for j in rest["TransformJobSummaries"]] == ["single", "whole"]
    paginated = [j["TransformJobName"] for page in
                 sm.get_paginator("list_transform_jobs").paginate(NameContains="l",
                                                                   PaginationConfig={"PageSize": 1})
                 for j in page["TransformJobSummaries"]]
    assert sorted(paginated) == ["lines", "single", "whole"]


def test_xgboost_transforms_recordio_protobuf_split_by_record(server, sm, s3, trained):
    model = xgb_model(sm, s3, trained, "xgb-recordio")
    s3.create_bucket(Bucket="rio")
    X = rows(40, 4)
    s3.put_object(Bucket="rio", Key="in/rows.rec", Body=recordio_protobuf_bytes(X))
    # MultiRecord: as many whole frames as fit in 1 MB per request, framing kept. SingleRecord:
    # each record's bytes without their RecordIO header and padding, one per request.
    for name, strategy in (("rio-multi", "MultiRecord"), ("rio-single", "SingleRecord")):
        sm.create_transform_job(**transform_request(
            name, model, "s3://rio/in/", f"s3://rio/{name}", split="RecordIO",
            content_type="application/x-recordio-protobuf", BatchStrategy=strategy,
            MaxPayloadInMB=1, TransformOutput={"Accept": "text/csv", "AssembleWith": "Line"}))
    for name in ("rio-multi", "rio-single"):
        d = wait_done(sm, name)
        assert d["TransformJobStatus"] == "Completed", d.get("FailureReason")
        np.testing.assert_allclose(floats(get(s3, "rio", f"{name}/rows.rec.out")),
                                   trained.predict(X), rtol=1e-5, atol=1e-6)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data):
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data):
    length = len(data).to_bytes(8, "little")
    return (length + masked_crc32c(length).to_bytes(4, "little") + data +
            masked_crc32c(data).to_bytes(4, "little"))


def test_tfrecord_objects_split_by_record(server, sm, s3, tmp_path):
    model = echo_model(server, sm, tmp_path, "tfr")
    s3.create_bucket(Bucket="tfr")
    records = [b"first record", b"", b"x" * 3000, b"last, with a comma"]
    framed = [tfrecord_frame(r) for r in records]
    s3.put_object(Bucket="tfr", Key="in/a.tfrecord", Body=b"".join(framed))
    # SingleRecord: each request is one record's data, framing removed, so the echo model's
    # answers are the records themselves. MultiRecord (1 MB): one request with every frame as
    # it is in the object.
    for name, strategy in (("tfr-single", "SingleRecord"), ("tfr-multi", "MultiRecord")):
        sm.create_transform_job(**transform_request(
            name, model, "s3://tfr/in/", f"s3://tfr/{name}", split="TFRecord",
            content_type="application/x-tfrecord", BatchStrategy=strategy, MaxPayloadInMB=1))
    for name in ("tfr-single", "tfr-multi"):
        d = wait_done(sm, name)
        assert d["TransformJobStatus"] == "Completed", d.get("FailureReason")
    assert get(s3, "tfr", "tfr-single/a.tfrecord.out") == b"".join(
        r.upper() + b"\n" for r in records)
    assert get(s3, "tfr", "tfr-multi/a.tfrecord.out") == b"".join(framed).upper() + b"\n"

    # A flipped byte in the third record's data: the job fails naming the object and record.
    broken = bytearray(b"".join(framed))
    broken[len(framed[0]) + len(framed[1]) + 12 + 100] ^= 0x01
    s3.put_object(Bucket="tfr", Key="bad/b.tfrecord", Body=bytes(broken))
    sm.create_transform_job(**transform_request(
        "tfr-bad", model, "s3://tfr/bad/", "s3://tfr/tfr-bad", split="TFRecord",
        content_type="application/x-tfrecord", BatchStrategy="SingleRecord"))
    d = wait_done(sm, "tfr-bad")
    assert d["TransformJobStatus"] == "Failed"
    assert "object 's3://tfr/bad/b.tfrecord' has a bad TFRecord data checksum in record 3 " \
           "(offset 44)" in d["FailureReason"], \
        d["FailureReason"]
    assert keys(s3, "tfr", "tfr-bad") == []


def test_data_processing_examples_of_the_developer_guide(server, sm, s3, trained):
    """"Associate Prediction Results with Input Records": the ID column (CSV) or attribute
    (JSON) is kept from the model and put back beside its prediction."""
    model = xgb_model(sm, s3, trained, "xgb-join")
    s3.create_bucket(Bucket="dproc")
    X = rows(12, 5)
    ids = list(range(1000, 1000 + len(X)))
    csv = "".join(f"{i}," + ",".join(repr(float(v)) for v in row) + "\n" for i, row in zip(ids, X))
    s3.put_object(Bucket="dproc", Key="csv/data.csv", Body=csv.encode())
    jsonl = "".join(json.dumps({"id": i, "features": [float(v) for v in row]}) + "\n"
                    for i, row in zip(ids, X))
    s3.put_object(Bucket="dproc", Key="json/data.jsonl", Body=jsonl.encode())

    sm.create_transform_job(**transform_request(
        "join-id", model, "s3://dproc/csv/", "s3://dproc/join-id",
        TransformOutput={"Accept": "text/csv"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}))
    sm.create_transform_job(**transform_request(
        "join-all", model, "s3://dproc/csv/", "s3://dproc/join-all",
        TransformOutput={"Accept": "text/csv"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$"}))
    sm.create_transform_job(**transform_request(
        "join-json", model, "s3://dproc/json/", "s3://dproc/join-json",
        content_type="application/jsonlines", TransformOutput={"Accept": "application/jsonlines"},
        DataProcessing={"InputFilter": "$.features", "JoinSource": "Input",
                        "OutputFilter": "$['id','SageMakerOutput']"}))
    expected = trained.predict(X)
    for name in ("join-id", "join-all", "join-json"):
        d = wait_done(sm, name)
        assert d["TransformJobStatus"] == "Completed", (name, d.get("FailureReason"))

    id_rows = [line.split(",")
               for line in get(s3, "dproc", "join-id/data.csv.out").decode().splitlines()]
    assert [int(r[0]) for r in id_rows] == ids
    np.testing.assert_allclose([float(r[1]) for r in id_rows], expected, rtol=1e-5, atol=1e-6)

    all_rows = get(s3, "dproc", "join-all/data.csv.out").decode().splitlines()
    for line, original, p in zip(all_rows, csv.splitlines(), expected):
        assert line.startswith(original + ",")  # the input row as it was, then the output
        assert abs(float(line.rsplit(",", 1)[1]) - p) < 1e-5
    assert len(all_rows) == len(X)

    joined = [json.loads(line)
              for line in get(s3, "dproc", "join-json/data.jsonl.out").decode().splitlines()]
    assert [list(j) for j in joined] == [["id", "SageMakerOutput"]] * len(X)
    assert [j["id"] for j in joined] == ids
    np.testing.assert_allclose([j["SageMakerOutput"]["score"] for j in joined], expected,
                               rtol=1e-5, atol=1e-6)
    assert sm.describe_transform_job(TransformJobName="join-json")["DataProcessing"] == {
        "InputFilter": "$.features", "JoinSource": "Input",
        "OutputFilter": "$['id','SageMakerOutput']"}


# --- bring-your-own models -----------------------------------------------------------------


def test_a_failing_model_fails_the_job_with_a_reason_and_no_output(server, sm, s3, logs, tmp_path):
    model = echo_model(server, sm, tmp_path, "broken", env={"MODE": "fail"})
    s3.create_bucket(Bucket="fail")
    s3.put_object(Bucket="fail", Key="in/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket="fail", Key="in/b.csv", Body=b"3,4\n")
    sm.create_transform_job(**transform_request("fails", model, "s3://fail/in/", "s3://fail/out",
                                                ModelClientConfig={"InvocationsMaxRetries": 1}))
    with pytest.raises(WaiterError) as failed:
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="fails",
                                                                  WaiterConfig=FAST)
    assert "Failed" in str(failed.value)
    d = sm.describe_transform_job(TransformJobName="fails")
    assert d["TransformJobStatus"] == "Failed"
    reason = d["FailureReason"]
    assert reason.startswith("ClientError: See job logs for more information. s3://fail/in/a.csv: "
                             "the model answered HTTP 500 to record 1 after 2 attempts: model "
                             "exploded on purpose"), reason
    assert "1 more object failed too" in reason
    assert keys(s3, "fail", "out") == []
    assert d["CreationTime"] <= d["TransformEndTime"]
    # The model's answers are in the data log, as SageMaker's "[sagemaker logs]" lines.
    streams = log_lines(logs, "fails")
    data = [m for s, ms in streams.items() if s.endswith("/data-log") for m in ms]
    assert any("fail/in/a.csv: ClientError: 500" in m for m in data), data
    assert any("fail/in/a.csv: model exploded on purpose" in m for m in data), data
    listed = sm.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == ["fails"]
    assert listed[0]["FailureReason"] == reason


def test_stop_transform_job_keeps_no_output_of_unfinished_objects(server, sm, s3, tmp_path):
    model = echo_model(server, sm, tmp_path, "hangs")
    s3.create_bucket(Bucket="stop")
    s3.put_object(Bucket="stop", Key="in/a.csv", Body=b"done quickly\n")
    s3.put_object(Bucket="stop", Key="in/b.csv", Body=b"hang here\n")
    sm.create_transform_job(**transform_request("stopped", model, "s3://stop/in/", "s3://stop/out"))
    wait_for(lambda: keys(s3, "stop", "out/") == ["out/a.csv.out"], timeout=60,
             what="a.csv.out")
    d = sm.describe_transform_job(TransformJobName="stopped")
    assert d["TransformJobStatus"] == "InProgress"
    sm.stop_transform_job(TransformJobName="stopped")
    assert sm.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] in (
        "Stopping", "Stopped")
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="stopped",
                                                              WaiterConfig=FAST)
    d = sm.describe_transform_job(TransformJobName="stopped")
    assert d["TransformJobStatus"] == "Stopped" and "FailureReason" not in d
    assert keys(s3, "stop", "out/") == ["out/a.csv.out"]
    assert get(s3, "stop", "out/a.csv.out") == b"DONE QUICKLY\n"
    with pytest.raises(ClientError) as again:
        sm.stop_transform_job(TransformJobName="stopped")
    assert again.value.response["Error"]["Code"] == "ValidationException"
    assert "status Stopped" in again.value.response["Error"]["Message"]


def test_create_errors_are_sagemakers(server, sm, s3, tmp_path):
    s3.create_bucket(Bucket="errs")
    s3.put_object(Bucket="errs", Key="in/a.csv", Body=b"x\n")
    with pytest.raises(ClientError) as missing:
        sm.create_transform_job(**transform_request("e1", "nope", "s3://errs/in/", "s3://errs/out"))
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert missing.value.response["Error"]["Message"] == \
        f'Could not find model "{ARN_PREFIX}:model/nope".'
    model = echo_model(server, sm, tmp_path, "errs")
    with pytest.raises(ClientError) as empty:
        sm.create_transform_job(**transform_request("e1", model, "s3://errs/none/",
                                                    "s3://errs/out"))
    assert empty.value.response["Error"]["Message"].startswith(
        'No S3 objects found under S3 URL "s3://errs/none/"')
    with pytest.raises(ClientError) as too_big:
        sm.create_transform_job(**transform_request("e1", model, "s3://errs/in/", "s3://errs/out",
                                                    MaxConcurrentTransforms=10, MaxPayloadInMB=20))
    assert "exceeds the limit of 100 MB" in too_big.value.response["Error"]["Message"]
    sm.create_transform_job(**transform_request("Dup", model, "s3://errs/in/", "s3://errs/out"))
    with pytest.raises(ClientError) as dup:
        sm.create_transform_job(**transform_request("dup", model, "s3://errs/in/", "s3://errs/out"))
    assert dup.value.response["Error"]["Code"] == "ValidationException"
    assert dup.value.response["Error"]["Message"] == (
        "Job name must be unique within an AWS account and region, and a job with this name "
        f"already exists ({ARN_PREFIX}:transform-job/dup)")
    with pytest.raises(ClientError) as unknown:
        sm.describe_transform_job(TransformJobName="ghost")
    assert unknown.value.response["Error"]["Code"] == "ValidationException"
    assert wait_done(sm, "Dup")["TransformJobStatus"] == "Completed"


def test_aws_cli_creates_waits_describes_and_lists(server, sm, s3, tmp_path):
    model = echo_model(server, sm, tmp_path, "cli")
    s3.create_bucket(Bucket="cli")
    s3.put_object(Bucket="cli", Key="in/words.txt", Body=b"alpha\nbeta\n")
    request = transform_request("cli-job", model, "s3://cli/in/", "s3://cli/out",
                                BatchStrategy="SingleRecord", Environment={"GREETING": "hi"})
    created = server.cli("sagemaker", "create-transform-job", "--cli-input-json",
                         json.dumps(request))
    assert created["TransformJobArn"] == f"{ARN_PREFIX}:transform-job/cli-job"
    server.cli("sagemaker", "wait", "transform-job-completed-or-stopped",
               "--transform-job-name", "cli-job")
    described = server.cli("sagemaker", "describe-transform-job", "--transform-job-name", "cli-job")
    assert described["TransformJobStatus"] == "Completed"
    assert described["Environment"] == {"GREETING": "hi"}
    assert described["BatchStrategy"] == "SingleRecord"
    listed = server.cli("sagemaker", "list-transform-jobs", "--name-contains", "cli",
                        "--status-equals", "Completed")
    assert [j["TransformJobName"] for j in listed["TransformJobSummaries"]] == ["cli-job"]
    assert get(s3, "cli", "out/words.txt.out") == b"ALPHA\nBETA\n"


def test_a_large_object_streams_through_bounded_memory(server, sm, s3, tmp_path):
    """128 MB in and out, 2 MB per request: the server holds a few payloads, never the object."""
    model = echo_model(server, sm, tmp_path, "large")
    s3.create_bucket(Bucket="large")
    line = b"abcdefghij" * 10 + b"\n"
    body = line * (128 * 1024 * 1024 // len(line))
    s3.put_object(Bucket="large", Key="in/big.txt", Body=body)

    def peak_rss_kb():
        with open(f"/proc/{server.proc.pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    before = peak_rss_kb()
    sm.create_transform_job(**transform_request("large", model, "s3://large/in/",
                                                "s3://large/out", MaxPayloadInMB=2))
    d = wait_done(sm, "large", timeout=600)
    assert d["TransformJobStatus"] == "Completed", d.get("FailureReason")
    assert s3.head_object(Bucket="large", Key="out/big.txt.out")["ContentLength"] == len(body)
    out = s3.get_object(Bucket="large", Key="out/big.txt.out", Range="bytes=0-201")["Body"].read()
    assert out == line.upper() * 2
    grown_mb = (peak_rss_kb() - before) / 1024
    assert grown_mb < 48, f"the server's peak memory grew by {grown_mb:.0f} MB"


# --- restart -------------------------------------------------------------------------------


def test_a_job_survives_a_kill_9_of_the_server(tmp_path):
    data_dir = tmp_path / "data"
    server = HearthServer(str(data_dir)).start()
    try:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        model = echo_model(server, sm, tmp_path, "slow", env={"SLOW_SECONDS": "1"})
        s3.create_bucket(Bucket="restart-data")
        for i in range(6):
            s3.put_object(Bucket="restart-data", Key=f"in/obj-{i}.txt", Body=f"slow {i}\n".encode())
        sm.create_transform_job(**transform_request("survivor", model, "s3://restart-data/in/",
                                                    "s3://restart-data/out"))
        wait_for(lambda: len(keys(s3, "restart-data", "out/")) >= 2, timeout=90, what="two outputs")
        supervisors = glob.glob(str(data_dir / "transforms" / "survivor-*" / "i-*" / "state" /
                                    "supervisor.json"))
        assert len(supervisors) == 1
        old_pid = json.load(open(supervisors[0]))["pid"]
        server.kill9()
        # The old instance runs on under its supervisor until the new server kills it.
        os.kill(old_pid, 0)

        server = HearthServer(str(data_dir), port=server.port).start()
        sm, s3, logs = server.client("sagemaker"), server.client("s3"), server.client("logs")

        def gone():
            try:
                os.kill(old_pid, 0)
                with open(f"/proc/{old_pid}/stat") as f:
                    return f.read().split()[2] == "Z"  # a zombie has ended
            except (ProcessLookupError, FileNotFoundError):
                return True
        wait_for(gone, timeout=30, what="the old instance to be killed")
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="survivor",
                                                                  WaiterConfig=FAST)
        d = sm.describe_transform_job(TransformJobName="survivor")
        assert d["TransformJobStatus"] == "Completed", d.get("FailureReason")
        for i in range(6):
            assert get(s3, "restart-data", f"out/obj-{i}.txt.out") == f"SLOW {i}\n".encode()
        # obj-0 was done and recorded well before the kill: it was not sent again.
        got = [m for ms in log_lines(logs, "survivor").values() for m in ms if m.startswith("got ")]
        assert sum("slow 0" in m for m in got) == 1, got
        assert "resuming transform job survivor" in open(server.log_path).read()
    finally:
        server.stop()
