"""Session: the boto3 clients for one service endpoint, data upload, and waiting on jobs.

Every call goes through `Session.call`, which turns botocore's exceptions into `HearthError`s.
Nothing here is specific to Hearth beyond the defaults: with `endpoint_url=hearth.AWS` the
same code talks to SageMaker itself.
"""
from __future__ import annotations

import datetime
import io
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
import botocore.config

from hearth import logs as logs_mod
from hearth.exceptions import (EndpointFailed, HearthError, ResourceInUse, ResourceNotFound,
                               TrainingJobFailed, TransformJobFailed, translated)
from hearth.images import timestamp
from hearth.inputs import TrainingInput
from hearth.recordio import CONTENT_TYPE as RECORDIO_CONTENT_TYPE
from hearth.recordio import write_numpy_to_dense_tensor

try:
    import numpy as np
except ImportError:
    np = None

DEFAULT_ENDPOINT_URL = "http://127.0.0.1:7070"
DEFAULT_REGION = "us-east-1"
# Pass as endpoint_url to use boto3's own endpoints (Amazon SageMaker itself).
AWS = "aws"
# The account Hearth's ARNs carry; used where the account cannot be asked for.
LOCAL_ACCOUNT = "000000000000"
# Hearth takes any credentials; these are used when none are configured.
PLACEHOLDER_CREDENTIALS = ("hearth", "hearth-secret")

TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")
_ENDPOINT_TRANSIENT = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    """("bucket", "key/prefix") of "s3://bucket/key/prefix"."""
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def _folder(key: str) -> str:
    return key if not key or key.endswith("/") else key + "/"


def _shards(array: Any, num_shards: int) -> List[Any]:
    """`array` cut into `num_shards` row ranges, as the sagemaker SDK shards a RecordSet."""
    if num_shards < 1:
        raise ValueError("num_shards must be at least 1")
    size = int(array.shape[0] / num_shards)
    if size == 0:
        raise ValueError("Array length is less than num shards")
    out = [array[i * size:(i + 1) * size] for i in range(num_shards - 1)]
    out.append(array[(num_shards - 1) * size:])
    return out


def _csv_bytes(X: Any, y: Any = None) -> bytes:
    """Rows as the built-ins read text/csv: no header, the label (if any) first; every number
    in its shortest exact form."""
    cells = _text_cells(X)
    if y is not None:
        cells = np.concatenate([_text_cells(np.asarray(y).reshape(-1, 1)), cells], axis=1)
    lines = [",".join(row) for row in cells.tolist()]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _text_cells(array: Any) -> Any:
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"CSV for the built-in algorithms holds numbers; got dtype {array.dtype}")
    return array.astype(str)


def _numpy() -> Any:
    if np is None:
        raise ImportError("this needs numpy (Debian: python3-numpy)")
    return np


class Session:
    """The way to one SageMaker-compatible service.

    `endpoint_url` defaults to $HEARTH_ENDPOINT_URL, then $AWS_ENDPOINT_URL, then
    http://127.0.0.1:7070; `hearth.AWS` means boto3's own endpoints. Credentials and region
    come from the usual boto3 places (environment, ~/.aws); when none are configured a Hearth
    endpoint gets placeholder credentials (Hearth accepts any) and region us-east-1.

    `role` is the RoleArn jobs and models are created with (SageMaker requires one; Hearth
    records it). `default_bucket` is where outputs go when no path is given (created on first
    use). `poll_interval` caps the seconds between status polls while waiting."""

    def __init__(self, endpoint_url: Optional[str] = None, *, region: Optional[str] = None,
                 boto_session: Optional[boto3.Session] = None, role: Optional[str] = None,
                 default_bucket: Optional[str] = None, poll_interval: float = 1.0):
        url = (endpoint_url or os.environ.get("HEARTH_ENDPOINT_URL")
               or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT_URL)
        self.endpoint_url: Optional[str] = None if url == AWS else url.rstrip("/")
        session = boto_session or boto3.Session(region_name=region)
        self.region: str = region or session.region_name or DEFAULT_REGION
        if session.get_credentials() is None:
            if self.endpoint_url is None:
                raise HearthError("no AWS credentials are configured (environment or ~/.aws)")
            session = boto3.Session(aws_access_key_id=PLACEHOLDER_CREDENTIALS[0],
                                    aws_secret_access_key=PLACEHOLDER_CREDENTIALS[1],
                                    region_name=self.region)
        self.boto_session = session
        self._role = role
        self._default_bucket = default_bucket
        self._default_bucket_ready = False
        self.poll_interval = poll_interval
        self._clients: Dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Session({self.endpoint_url or 'aws'!r}, region={self.region!r})"

    # --- clients and calls ---------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """The boto3 client of `service` ("sagemaker", "sagemaker-runtime", "s3", "logs")."""
        if service not in self._clients:
            kwargs: Dict[str, Any] = {"region_name": self.region}
            if self.endpoint_url is not None:
                kwargs["endpoint_url"] = self.endpoint_url
                kwargs["config"] = botocore.config.Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2, "mode": "standard"})
            self._clients[service] = self.boto_session.client(service, **kwargs)
        return self._clients[service]

    @property
    def sagemaker_client(self) -> Any:
        return self.client("sagemaker")

    @property
    def sagemaker_runtime_client(self) -> Any:
        return self.client("sagemaker-runtime")

    @property
    def s3_client(self) -> Any:
        return self.client("s3")

    @property
    def logs_client(self) -> Any:
        return self.client("logs")

    @property
    def boto_region_name(self) -> str:
        return self.region

    def call(self, service: str, operation: str, **kwargs: Any) -> Any:
        """`client(service).<operation>(**kwargs)`, with failures raised as HearthError."""
        with translated(self.endpoint_url):
            return getattr(self.client(service), operation)(**kwargs)

    # --- identity ------------------------------------------------------------------------------

    def account_id(self) -> str:
        """The caller's account (STS on AWS; Hearth's fixed account elsewhere)."""
        if self.endpoint_url is not None:
            return LOCAL_ACCOUNT
        return self.call("sts", "get_caller_identity")["Account"]

    @property
    def role(self) -> str:
        """The RoleArn used when none is given."""
        if self._role:
            return self._role
        if self.endpoint_url is None:
            raise HearthError("SageMaker needs an execution role: pass role= to the Session, "
                              "Estimator or Model")
        return f"arn:aws:iam::{LOCAL_ACCOUNT}:role/hearth"

    # --- S3 ------------------------------------------------------------------------------------

    def default_bucket(self) -> str:
        """The bucket outputs go to when no path is given: sagemaker-<region>-<account>, as
        the sagemaker SDK names it; created if missing."""
        if not self._default_bucket:
            self._default_bucket = f"sagemaker-{self.region}-{self.account_id()}"
        if not self._default_bucket_ready:
            self.ensure_bucket(self._default_bucket)
            self._default_bucket_ready = True
        return self._default_bucket

    def ensure_bucket(self, bucket: str) -> None:
        """Creates `bucket` unless it exists."""
        try:
            self.call("s3", "head_bucket", Bucket=bucket)
            return
        except ResourceNotFound:
            pass
        args: Dict[str, Any] = {"Bucket": bucket}
        if self.endpoint_url is None and self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.call("s3", "create_bucket", **args)
        except ResourceInUse:
            pass  # created meanwhile
        except HearthError as e:
            if e.code != "BucketAlreadyOwnedByYou":
                raise

    def _put(self, bucket: str, key: str, body: bytes) -> None:
        self.call("s3", "put_object", Bucket=bucket, Key=key, Body=body)

    def _data_prefix(self, s3_uri: Optional[str], kind: str) -> Tuple[str, str]:
        if s3_uri is None:
            return self.default_bucket(), f"hearth-data/{kind}-{timestamp()}/"
        bucket, key = parse_s3_uri(s3_uri)
        self.ensure_bucket(bucket)
        return bucket, _folder(key)

    def upload_numpy(self, X: Any, y: Any = None, s3_uri: Optional[str] = None, *,
                     format: str = "recordio-protobuf", num_shards: int = 1,
                     distribution: Optional[str] = None) -> TrainingInput:
        """Writes the rows of `X` (labels `y`, optional) under the prefix `s3_uri` and returns
        the channel to train on.

        format="recordio-protobuf": objects matrix_<i>.pbr, byte for byte what the sagemaker
        SDK's record_set / write_numpy_to_dense_tensor writes (float32, float64 and int arrays
        keep their tensor type; other dtypes are written as float32).
        format="csv": objects data_<i>.csv, the label first, no header; without labels the
        channel's type is "text/csv;label_size=0", as the built-ins expect.
        `num_shards` splits the rows into that many objects (for ShardedByS3Key)."""
        np_ = _numpy()
        X = np_.asarray(X)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (rows x features), got shape {X.shape}")
        if y is not None:
            y = np_.asarray(y).reshape(-1)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {y.shape[0]} labels for {X.shape[0]} rows")
        fmt = format.lower()
        if fmt in ("recordio-protobuf", "recordio", RECORDIO_CONTENT_TYPE):
            X, y = _recordio_dtype(X), (None if y is None else _recordio_dtype(y))
            name, content_type = "matrix_{}.pbr", RECORDIO_CONTENT_TYPE
        elif fmt in ("csv", "text/csv"):
            name = "data_{}.csv"
            content_type = "text/csv" if y is not None else "text/csv;label_size=0"
        else:
            raise ValueError(f"format must be 'recordio-protobuf' or 'csv', got {format!r}")
        bucket, prefix = self._data_prefix(s3_uri, "numpy")
        label_shards = _shards(y, num_shards) if y is not None else [None] * num_shards
        digits = len(str(num_shards))
        for i, (rows, labels) in enumerate(zip(_shards(X, num_shards), label_shards)):
            if content_type == RECORDIO_CONTENT_TYPE:
                buf = io.BytesIO()
                write_numpy_to_dense_tensor(buf, rows, labels)
                body = buf.getvalue()
            else:
                body = _csv_bytes(rows, labels)
            self._put(bucket, prefix + name.format(str(i).zfill(digits)), body)
        return TrainingInput(f"s3://{bucket}/{prefix}", distribution=distribution,
                             content_type=content_type)

    def upload_dataframe(self, df: Any, s3_uri: Optional[str] = None, *,
                         label: Optional[str] = None, num_shards: int = 1,
                         distribution: Optional[str] = None) -> TrainingInput:
        """Writes a pandas DataFrame as CSV the built-ins read (the `label` column first, no
        header, no index) under the prefix `s3_uri`; returns the channel to train on.
        Every column must be numeric (or boolean)."""
        if label is not None and label not in df.columns:
            raise ValueError(f"no column {label!r} in the DataFrame")
        columns = ([label] if label is not None else []) + [c for c in df.columns if c != label]
        df = df[columns]
        from pandas.api.types import is_bool_dtype, is_numeric_dtype
        bad = [str(c) for c in columns if not is_numeric_dtype(df[c].dtype)]
        if bad:
            raise ValueError("the built-in algorithms read numbers only; non-numeric columns: "
                             + ", ".join(bad) + " (encode them first)")
        df = df.astype({c: "uint8" for c in columns if is_bool_dtype(df[c].dtype)})
        bucket, prefix = self._data_prefix(s3_uri, "dataframe")
        digits = len(str(num_shards))
        for i, part in enumerate(_shards(df, num_shards)):
            body = part.to_csv(header=False, index=False).encode()
            self._put(bucket, prefix + f"data_{str(i).zfill(digits)}.csv", body)
        content_type = "text/csv" if label is not None else "text/csv;label_size=0"
        return TrainingInput(f"s3://{bucket}/{prefix}", distribution=distribution,
                             content_type=content_type)

    def upload_data(self, path: str, bucket: Optional[str] = None,
                    key_prefix: str = "data") -> str:
        """Uploads a local file or directory tree (as the sagemaker SDK's upload_data); returns
        the S3 URI of the file, or of the prefix holding the directory's files."""
        bucket = bucket or self.default_bucket()
        if bucket != self._default_bucket:
            self.ensure_bucket(bucket)
        key_prefix = key_prefix.strip("/")
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                for n in sorted(names):
                    local = os.path.join(root, n)
                    rel = os.path.relpath(local, path).replace(os.sep, "/")
                    with open(local, "rb") as f:
                        self._put(bucket, f"{key_prefix}/{rel}", f.read())
            return f"s3://{bucket}/{key_prefix}"
        key = f"{key_prefix}/{os.path.basename(path)}"
        with open(path, "rb") as f:
            self._put(bucket, key, f.read())
        return f"s3://{bucket}/{key}"

    def upload_string_as_file_body(self, body: Any, bucket: str, key: str) -> str:
        """Writes `body` (str or bytes) to s3://bucket/key; returns that URI."""
        self._put(bucket, key, body.encode() if isinstance(body, str) else body)
        return f"s3://{bucket}/{key}"

    def read_s3_file(self, bucket: str, key_prefix: str) -> str:
        """The object's content as text."""
        return self.read_s3_bytes(bucket, key_prefix).decode()

    def read_s3_bytes(self, bucket: str, key: str) -> bytes:
        """The object's content."""
        return self.call("s3", "get_object", Bucket=bucket, Key=key)["Body"].read()

    def download_data(self, path: str, bucket: str, key_prefix: str = "") -> List[str]:
        """Downloads every object under `key_prefix` into the local directory `path`, keeping
        the keys' folders below the prefix (as the sagemaker SDK's download_data); a prefix
        that is one object's whole key lands as that file's name. Returns the local paths."""
        keys = [k for k in self.list_s3_files(bucket, key_prefix) if not k.endswith("/")]
        folder = key_prefix[:key_prefix.rfind("/") + 1]
        written = []
        for key in keys:
            local = os.path.join(path, *key[len(folder):].split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(self.read_s3_bytes(bucket, key))
            written.append(local)
        return written

    def list_s3_files(self, bucket: str, key_prefix: str) -> List[str]:
        """The keys under `key_prefix`, in order."""
        keys, token = [], None
        while True:
            args = {"Bucket": bucket, "Prefix": key_prefix}
            if token:
                args["ContinuationToken"] = token
            page = self.call("s3", "list_objects_v2", **args)
            keys += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(keys)

    # --- waiting -------------------------------------------------------------------------------

    def _wait_job(self, describe: Callable[[], dict], status_key: str, group: str, name: str,
                  logs: Any, progress: Callable[[dict], List[Tuple[float, str]]]) -> dict:
        """Polls `describe` until the job is terminal. Each round, the job's new log lines and
        the new status lines from `progress` ((timestamp in ms, text); status lines are
        placed among log lines by time) go to the sinks `logs` names."""
        log_sink, progress_sink = logs_mod.sinks(logs)
        follower = logs_mod.LogFollower(self.call, group, name) if log_sink else None
        backoff = logs_mod.Backoff(self.poll_interval)
        while True:
            desc = describe()
            done = desc[status_key] in TERMINAL_JOB_STATES
            # Read after the status: a finished job's lines are all stored by then.
            arrived = follower.poll() if follower else []
            timeline = [(t, 1, log_sink, line) for t, line in arrived]
            timeline += [(t, 0, progress_sink, line) for t, line in progress(desc)]
            for _, _, sink, line in sorted(timeline, key=lambda item: (item[0], item[1])):
                sink(line)
            if done:
                return desc
            if arrived:
                backoff.reset()
            backoff.sleep()

    def wait_for_training_job(self, job_name: str, logs: Any = True) -> dict:
        """Waits for the training job to end, streaming its log lines (logs=True, or a
        callable per line) and a line per status change; returns its final description.
        Raises TrainingJobFailed (carrying FailureReason) if it Failed."""
        shown = [0]

        def progress(desc: dict) -> List[Tuple[float, str]]:
            lines = []
            transitions = desc.get("SecondaryStatusTransitions", [])
            for t in transitions[shown[0]:]:
                text = f"{_local_time(t.get('StartTime'))} {job_name} {t['Status']}"
                if t.get("StatusMessage"):
                    text += f" - {t['StatusMessage']}"
                lines.append((_millis(t.get("StartTime")), text))
            shown[0] = len(transitions)
            if desc["TrainingJobStatus"] in TERMINAL_JOB_STATES:
                last = float("inf")
                reason = desc.get("FailureReason")
                told = transitions and reason and reason in transitions[-1].get("StatusMessage", "")
                if desc["TrainingJobStatus"] == "Failed" and reason and not told:
                    lines.append((last, f"Failure reason: {reason}"))
                if desc.get("TrainingTimeInSeconds") is not None:
                    lines.append((last, f"Training seconds: {desc['TrainingTimeInSeconds']}"))
                if desc.get("BillableTimeInSeconds") is not None:
                    lines.append((last, f"Billable seconds: {desc['BillableTimeInSeconds']}"))
            return lines

        desc = self._wait_job(
            lambda: self.call("sagemaker", "describe_training_job", TrainingJobName=job_name),
            "TrainingJobStatus", logs_mod.TRAINING_LOG_GROUP, job_name, logs, progress)
        if desc["TrainingJobStatus"] == "Failed":
            raise TrainingJobFailed(job_name, "Failed", desc.get("FailureReason"))
        return desc

    def wait_for_transform_job(self, job_name: str, logs: Any = True) -> dict:
        """Waits for the transform job to end (logs as in wait_for_training_job); returns its
        final description. Raises TransformJobFailed if it Failed."""
        last = [None]

        def progress(desc: dict) -> List[Tuple[float, str]]:
            status = desc["TransformJobStatus"]
            if status == last[0]:
                return []
            last[0] = status
            when = desc.get("TransformEndTime") if status in TERMINAL_JOB_STATES else (
                desc.get("TransformStartTime") or desc.get("CreationTime"))
            text = f"{_local_time(when)} {job_name} {status}"
            if status == "Failed" and desc.get("FailureReason"):
                text += f" - {desc['FailureReason']}"
            return [(_millis(when) if status not in TERMINAL_JOB_STATES else float("inf"), text)]

        desc = self._wait_job(
            lambda: self.call("sagemaker", "describe_transform_job", TransformJobName=job_name),
            "TransformJobStatus", logs_mod.TRANSFORM_LOG_GROUP, job_name, logs, progress)
        if desc["TransformJobStatus"] == "Failed":
            raise TransformJobFailed(job_name, "Failed", desc.get("FailureReason"))
        return desc

    def wait_for_endpoint(self, endpoint_name: str) -> dict:
        """Waits while the endpoint is Creating/Updating; returns its description once
        InService. Raises EndpointFailed otherwise."""
        backoff = logs_mod.Backoff(self.poll_interval)
        while True:
            desc = self.call("sagemaker", "describe_endpoint", EndpointName=endpoint_name)
            status = desc["EndpointStatus"]
            if status == "InService":
                return desc
            if status not in _ENDPOINT_TRANSIENT:
                raise EndpointFailed(endpoint_name, status, desc.get("FailureReason"))
            backoff.sleep()


def _recordio_dtype(array: Any) -> Any:
    """Arrays the sagemaker SDK's writer takes as they are; anything else as float32."""
    if array.dtype in (np.dtype("float32"), np.dtype(float), np.dtype(int)):
        return array
    return array.astype(np.float32)


def _millis(value: Any) -> float:
    """Milliseconds since the epoch of a botocore timestamp (now when there is none)."""
    if isinstance(value, datetime.datetime):
        return value.timestamp() * 1000.0
    return datetime.datetime.now().timestamp() * 1000.0


def _local_time(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
