"""Shared steps of the built-in algorithm tests: encode a dataset the ways SageMaker users do
(CSV with the label first, libsvm, RecordIO-protobuf exactly as the sagemaker SDK writes it),
run a training job on a built-in image through boto3 and wait for it, fetch and unpack its
model.tar.gz, and serve that model with `hearth algo <name> serve` as an endpoint instance would.
"""
import functools
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid

from conftest import HEARTH, free_port, wait_for

REPO_ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
RECORD_PROTO = os.path.join(REPO_ROOT, "src", "data", "proto", "record.proto")


# --- encodings -----------------------------------------------------------------------------


def _number(v):
    return repr(float(v))


def csv_bytes(X, y=None):
    """Rows as SageMaker's built-ins read text/csv: no header, the label (if any) first."""
    lines = []
    for i, row in enumerate(X):
        cells = ([_number(y[i])] if y is not None else []) + [_number(v) for v in row]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def libsvm_bytes(X, y):
    """text/libsvm with 0-based feature indices, zeros left out."""
    lines = []
    for i, row in enumerate(X):
        cells = [_number(y[i])] + [f"{j}:{_number(v)}" for j, v in enumerate(row) if v != 0]
        lines.append(" ".join(cells))
    return ("\n".join(lines) + "\n").encode()


@functools.lru_cache(maxsize=None)
def record_pb2():
    """The aialgs.data protobuf module, generated from Hearth's record.proto by protoc (the
    sagemaker SDK ships the same messages as sagemaker.amazon.record_pb2)."""
    out = tempfile.mkdtemp(prefix="hearth-record-pb2-")
    proto_dir = os.path.dirname(os.path.abspath(RECORD_PROTO))
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
                    os.path.abspath(RECORD_PROTO)], check=True)
    sys.path.insert(0, out)
    import record_pb2 as module  # noqa: E402 (generated above)
    return module


def recordio_protobuf_bytes(X, y=None):
    """What sagemaker.amazon.common.write_numpy_to_dense_tensor writes: one Record per row,
    features["values"] a dense Float32Tensor, label["values"] the scalar label, each framed
    by _write_recordio (magic 0xCED7230A, length, payload, zero padding to 4 bytes)."""
    pb = record_pb2()
    buf = io.BytesIO()
    for i, row in enumerate(X):
        record = pb.Record()
        record.features["values"].float32_tensor.values.extend([float(v) for v in row])
        if y is not None:
            record.label["values"].float32_tensor.values.extend([float(y[i])])
        payload = record.SerializeToString()
        buf.write(struct.pack("I", 0xCED7230A))
        buf.write(struct.pack("I", len(payload)))
        buf.write(payload)
        buf.write(b"\x00" * ((4 - len(payload) % 4) % 4))
    return buf.getvalue()


def parse_recordio_protobuf(data):
    """Records of an application/x-recordio-protobuf body (responses)."""
    pb = record_pb2()
    records, offset = [], 0
    while offset < len(data):
        magic, length = struct.unpack_from("II", data, offset)
        assert magic == 0xCED7230A, f"bad magic at {offset}"
        offset += 8
        record = pb.Record()
        record.ParseFromString(data[offset:offset + length])
        records.append(record)
        offset += (length + 3) // 4 * 4
    return records


# --- training ------------------------------------------------------------------------------


def train(sm, s3, algorithm, hyperparameters, channels, content_type="text/csv",
          input_mode="File", image=None, name=None, timeout=180, bucket=None):
    """Runs a training job of `hearth/<algorithm>` (or `image`) and returns its final
    DescribeTrainingJob. `channels` maps a channel name to bytes or to a list of bytes (one
    S3 object each); `content_type` is one type for all channels or a dict per channel."""
    name = name or f"{algorithm}-{uuid.uuid4().hex[:10]}"
    bucket = bucket or f"data-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    input_config = []
    for channel, parts in channels.items():
        if isinstance(parts, (bytes, bytearray)):
            parts = [parts]
        for i, part in enumerate(parts):
            s3.put_object(Bucket=bucket, Key=f"{name}/{channel}/part-{i:03d}", Body=part)
        ctype = content_type[channel] if isinstance(content_type, dict) else content_type
        config = {
            "ChannelName": channel,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/{name}/{channel}/",
                "S3DataDistributionType": "FullyReplicated"}},
        }
        if ctype:
            config["ContentType"] = ctype
        input_config.append(config)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image or f"hearth/{algorithm}",
                                "TrainingInputMode": input_mode},
        RoleArn="arn:aws:iam::000000000000:role/hearth",
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        InputDataConfig=input_config,
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": timeout},
    )
    return wait_for(
        lambda: (lambda d: d if d["TrainingJobStatus"] in ("Completed", "Failed", "Stopped")
                 else None)(sm.describe_training_job(TrainingJobName=name)),
        timeout=timeout, interval=0.1, what=f"training job {name}")


def final_metrics(describe):
    return {m["MetricName"]: m["Value"] for m in describe.get("FinalMetricDataList", [])}


def job_log(logs, describe):
    """Everything the job's hosts printed."""
    name = describe["TrainingJobName"]
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=name + "/")["logStreams"]
    lines = []
    for stream in streams:
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                     logStreamName=stream["logStreamName"], startFromHead=True)
        lines += [e["message"] for e in events["events"]]
    return lines


def fetch_model(s3, describe, dest):
    """Downloads and unpacks the job's model.tar.gz into `dest`; returns `dest`."""
    uri = describe["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(dest)
    return str(dest)


# --- serving -------------------------------------------------------------------------------


class ServedModel:
    """`hearth algo <algorithm> serve` on a free loopback port, over `model_dir`, as an
    endpoint instance runs it. Use as a context manager."""

    def __init__(self, algorithm, model_dir, env=None):
        self.algorithm = algorithm
        self.model_dir = str(model_dir)
        self.port = free_port()
        self.env = env or {}
        self.proc = None

    def __enter__(self):
        env = dict(os.environ, SM_MODEL_DIR=self.model_dir,
                   SAGEMAKER_BIND_TO_PORT=str(self.port), **self.env)
        self.proc = subprocess.Popen([HEARTH, "algo", self.algorithm, "serve"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(self._healthy, timeout=30, what=f"{self.algorithm} serve /ping")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}: "
                                 f"{self.proc.stdout.read().decode(errors='replace')}")
        try:
            status, _, _ = self.request("GET", "/ping")
            return status == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers.get("Content-Type"), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read()

    def invoke(self, body, content_type, accept=None):
        """POST /invocations; returns (status, content type, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers)
