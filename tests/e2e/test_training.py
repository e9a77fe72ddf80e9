"""Training jobs end to end: a real `hearth server`, real clients (the AWS CLI v2 and boto3), and
bring-your-own images run in the sandbox.

Most jobs run tests/e2e/images/probe/train, whose `mode` hyperparameter picks what it does; it
reports what it saw inside the sandbox as a `PROBE <json>` line in its log. The README's worked
example runs examples/sklearn-byo/.
"""
import datetime
import hashlib
import io
import json
import os
import pickle
import random
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import HEARTH, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROBE_DIR = os.path.join(HERE, "images", "probe")
SKLEARN_DIR = os.path.join(REPO, "examples", "sklearn-byo")
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"Completed", "Failed", "Stopped"}
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
FAST = {"Delay": 0.2, "MaxAttempts": 300}  # boto3 waiter: poll often, give up after ~60 s


def error_of(excinfo):
    err = excinfo.value.response["Error"]
    return err["Code"], err.get("Message", "")


def probe_job(name, mode, channels=(), bucket="data", hps=None, **extra):
    """A CreateTrainingJob request for the probe image."""
    request = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "probe", "TrainingInputMode": "File"},
        "HyperParameters": {"mode": mode, **(hps or {})},
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    if channels:
        request["InputDataConfig"] = list(channels)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def s3_channel(name, uri, **fields):
    source = {"S3DataType": "S3Prefix", "S3Uri": uri}
    source.update({k: fields.pop(k) for k in list(fields) if k.startswith("S3")})
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, **fields}


def wait_terminal(sm, name, timeout=60):
    """Polls DescribeTrainingJob until the job is Completed, Failed or Stopped."""
    return wait_for(lambda: (lambda d: d if d["TrainingJobStatus"] in TERMINAL else None)(
        sm.describe_training_job(TrainingJobName=name)), timeout=timeout, interval=0.1,
        what=f"training job {name} to finish")


def job_streams(logs, job):
    try:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP,
                                            logStreamNamePrefix=job + "/")["logStreams"]
    except ClientError as e:  # no job has logged yet: the group does not exist
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return []
    return sorted(s["logStreamName"] for s in streams)


def stream_messages(logs, stream):
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                                 startFromHead=True)["events"]
    return [e["message"] for e in events]


def probe_reports(messages):
    return [json.loads(m[len("PROBE "):]) for m in messages if m.startswith("PROBE ")]


def single_report(logs, job):
    streams = job_streams(logs, job)
    assert len(streams) == 1, streams
    reports = probe_reports(stream_messages(logs, streams[0]))
    assert len(reports) == 1, reports
    return reports[0]


def transitions(doc):
    return [t["Status"] for t in doc["SecondaryStatusTransitions"]]


def check_transition_times(doc):
    """Each transition ends where the next starts, and the last one is closed."""
    ts = doc["SecondaryStatusTransitions"]
    for earlier, later in zip(ts, ts[1:]):
        assert earlier["StartTime"] <= earlier["EndTime"] == later["StartTime"], ts
    assert ts[-1]["StartTime"] <= ts[-1]["EndTime"], ts


def job_count(sm):
    return len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])


def raw_sagemaker_call(server, target, body):
    """POSTs `body` (bytes) to the SageMaker JSON endpoint, SigV4-signed as botocore would;
    returns (HTTP status, parsed JSON reply)."""
    url = server.url + "/"
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=url, data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    creds = botocore.credentials.Credentials("hearth", "hearth-secret")
    botocore.auth.SigV4Auth(creds, "sagemaker", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(url, data=body, method="POST",
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def probe(server, s3):
    server.register_image("probe", PROBE_DIR)
    s3.create_bucket(Bucket="data")
    return server


@pytest.fixture
def fast_cli_waiters(tmp_path, monkeypatch):
    """The CLI's training waiter polls every 120 s. This gives the CLI (through AWS_DATA_PATH,
    which it searches before its own models) the same waiter polling every second, so that
    `aws sagemaker wait` runs its real acceptors quickly."""
    loader = botocore.session.get_session().get_component("data_loader")
    waiters = loader.load_service_model("sagemaker", "waiters-2", "2017-07-24")
    waiters["waiters"]["TrainingJobCompletedOrStopped"]["delay"] = 1
    path = tmp_path / "models" / "sagemaker" / "2017-07-24"
    path.mkdir(parents=True)
    (path / "waiters-2.json").write_text(json.dumps(waiters))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "models"))


# --- 1. The README sequence, AWS CLI only -------------------------------------------------------

def cli_time(value):
    """The CLI prints timestamps as ISO 8601; returns epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.datetime.fromisoformat(value).timestamp()


def test_readme_sequence_with_the_aws_cli(server, workdir, fast_cli_waiters):
    server.register_image("sklearn-logreg", SKLEARN_DIR)
    rng = random.Random(7)
    rows = []
    for _ in range(80):
        x1, x2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        label = 1 if x1 + 2 * x2 > 0.5 else 0
        rows.append((label, x1, x2))
    (workdir / "train.csv").write_text(
        "".join(f"{label},{x1:.5f},{x2:.5f}\n" for label, x1, x2 in rows))

    server.cli("s3", "mb", "s3://data")
    server.cli("s3", "cp", str(workdir / "train.csv"), "s3://data/train/")
    created = server.cli("sagemaker", "create-training-job", "--cli-input-json",
                         "file://" + os.path.join(SKLEARN_DIR, "job.json"))
    assert created["TrainingJobArn"].endswith(":training-job/j1")
    server.cli("sagemaker", "wait", "training-job-completed-or-stopped",
               "--training-job-name", "j1")

    job = server.cli("sagemaker", "describe-training-job", "--training-job-name", "j1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == "s3://data/output/j1/output/model.tar.gz"
    assert transitions(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    for t in job["SecondaryStatusTransitions"]:
        t["StartTime"], t["EndTime"] = cli_time(t["StartTime"]), cli_time(t["EndTime"])
    check_transition_times(job)
    start, end = cli_time(job["TrainingStartTime"]), cli_time(job["TrainingEndTime"])
    assert cli_time(job["CreationTime"]) <= start <= end
    assert job["TrainingTimeInSeconds"] >= 1
    assert job["TrainingTimeInSeconds"] == pytest.approx(end - start, abs=1.0)
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert set(metrics) == {"train:accuracy"}
    assert 0.9 <= metrics["train:accuracy"] <= 1.0
    assert job["HyperParameters"] == {"C": "1.0", "max_iter": "200"}

    listing = server.cli("s3", "ls", "s3://data/output/j1/output/")
    assert "model.tar.gz" in listing
    server.cli("s3", "cp", "s3://data/output/j1/output/model.tar.gz", str(workdir / "m.tar.gz"))
    with tarfile.open(workdir / "m.tar.gz", "r:gz") as tar:
        assert "model.pkl" in [m.name.lstrip("./") for m in tar.getmembers()]
        member = next(m for m in tar.getmembers() if m.name.lstrip("./") == "model.pkl")
        model = pickle.loads(tar.extractfile(member).read())
    assert type(model).__name__ == "LogisticRegression"
    predictions = model.predict([[x1, x2] for _, x1, x2 in rows])
    correct = sum(int(p) == label for p, (label, _, _) in zip(predictions, rows))
    assert correct / len(rows) >= 0.9
    assert correct / len(rows) == pytest.approx(metrics["train:accuracy"], abs=1e-3)


# --- 2. Failures ----------------------------------------------------------------------------------

def test_failure_file_becomes_failure_reason(probe, sm):
    reason = "CustomerError: column 'label' missing from train.csv (line 3)"
    sm.create_training_job(**probe_job("fails-with-file", "fail-file", hps={"reason": reason}))
    with pytest.raises(WaiterError) as e:
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="fails-with-file", WaiterConfig=FAST)
    assert e.value.last_response["TrainingJobStatus"] == "Failed"
    job = sm.describe_training_job(TrainingJobName="fails-with-file")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"] == reason
    assert transitions(job) == ["Starting", "Training", "Failed"]
    check_transition_times(job)
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]


def test_exit_code_without_failure_file(probe, sm, logs):
    sm.create_training_job(**probe_job("exits-3", "exit", hps={"code": "3"}))
    job = wait_terminal(sm, "exits-3")
    assert job["TrainingJobStatus"] == "Failed"
    assert "ExitCode 3" in job["FailureReason"] or "exit code 3" in job["FailureReason"].lower()
    # What it printed before failing is in its log.
    (stream,) = job_streams(logs, "exits-3")
    assert "about to exit with 3" in stream_messages(logs, stream)


def test_one_failing_host_fails_the_job_with_its_reason(probe, sm):
    reason = "HostError: algo-2 ran out of patience"
    sm.create_training_job(**probe_job("one-host-fails", "fail-host",
                                       hps={"host": "algo-2", "reason": reason},
                                       ResourceConfig={"InstanceCount": 2}))
    job = wait_terminal(sm, "one-host-fails", timeout=30)
    assert job["TrainingJobStatus"] == "Failed"
    # The reason is the failing host's, not that of algo-1, which the platform then stopped.
    assert job["FailureReason"] == reason
    # algo-1 was stopped, not left to train for its 120 s.
    assert (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds() < 20


# --- 3. Stop --------------------------------------------------------------------------------------

def test_stop_sends_sigterm_and_keeps_the_model(probe, sm, logs, s3):
    sm.create_training_job(**probe_job("stop-me", "sigterm", hps={"linger": "1.5"}))
    # The handler is installed before the script prints "ready".
    wait_for(lambda: job_streams(logs, "stop-me") and
             "ready" in stream_messages(logs, job_streams(logs, "stop-me")[0]),
             timeout=30, what="the job to install its SIGTERM handler")
    assert sm.describe_training_job(TrainingJobName="stop-me")["TrainingJobStatus"] == \
        "InProgress"

    sm.stop_training_job(TrainingJobName="stop-me")
    # The handler lingers 1.5 s before it exits, so the job is still stopping.
    stopping = sm.describe_training_job(TrainingJobName="stop-me")
    assert stopping["TrainingJobStatus"] == "Stopping"
    assert stopping["SecondaryStatus"] == "Stopping"
    # Stopping twice is accepted while it stops.
    sm.stop_training_job(TrainingJobName="stop-me")

    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName="stop-me", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="stop-me")
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "Stopped"
    assert transitions(job) == ["Starting", "Training", "Stopping", "Stopped"]
    check_transition_times(job)
    assert "FailureReason" not in job
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]

    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://data/output/stop-me/output/model.tar.gz"
    body = s3.get_object(Bucket="data", Key="output/stop-me/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        assert set(members) == {"stopped.txt"}
        assert tar.extractfile(members["stopped.txt"]).read() == b"signal 15"
    (stream,) = job_streams(logs, "stop-me")
    assert "got SIGTERM" in stream_messages(logs, stream)

    with pytest.raises(ClientError) as e:
        sm.stop_training_job(TrainingJobName="stop-me")
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "Stopped" in message
    with pytest.raises(ClientError) as e:
        sm.stop_training_job(TrainingJobName="never-created")
    assert error_of(e)[0] == "ResourceNotFound"


def test_stop_at_any_moment_never_goes_back_to_in_progress(probe, sm, s3):
    """A stop can land while the job is Starting, Downloading or launching its hosts. Whenever
    it lands, the job ends Stopped and its SecondaryStatus never leaves Stopping for an
    InProgress one (Downloading, Training)."""
    s3.put_object(Bucket="data", Key="early/a.csv", Body=b"1\n")
    names = [f"early-stop-{i}" for i in range(6)]
    for i, name in enumerate(names):
        sm.create_training_job(**probe_job(
            name, "sleep", channels=[s3_channel("train", "s3://data/early/")]))
        # Not a wait for anything: it moves each stop a little later into the job's start-up,
        # so that the six jobs are stopped at different points. The checks hold for any.
        time.sleep(0.015 * i)
        sm.stop_training_job(TrainingJobName=name)
    for name in names:
        job = wait_terminal(sm, name)
        assert job["TrainingJobStatus"] == "Stopped", (name, job.get("FailureReason"))
        assert job["SecondaryStatus"] == "Stopped"
        statuses = transitions(job)
        assert statuses[0] == "Starting"
        assert statuses[statuses.index("Stopping"):] == ["Stopping", "Stopped"], (name, statuses)
        check_transition_times(job)


def test_max_runtime_stops_the_job(probe, sm, logs):
    sm.create_training_job(**probe_job("too-slow", "sleep",
                                       StoppingCondition={"MaxRuntimeInSeconds": 2}))
    job = wait_terminal(sm, "too-slow", timeout=30)
    assert job["TrainingJobStatus"] == "Stopped", job.get("FailureReason")
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert transitions(job)[-2:] == ["Stopping", "MaxRuntimeExceeded"]
    check_transition_times(job)
    # It ran for its allowed 2 s, and was not left to sleep its full 120 s.
    assert 2 <= job["TrainingTimeInSeconds"] <= 20
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/too-slow/output/model.tar.gz")
    (stream,) = job_streams(logs, "too-slow")
    assert "sleeping" in stream_messages(logs, stream)


# --- 5. Several hosts, sharded input --------------------------------------------------------------

def test_two_hosts_share_a_sharded_channel(probe, sm, s3, logs):
    keys = [f"shards/part-{i}.csv" for i in range(4)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket="data", Key=key, Body=f"object {i}\n".encode())
    sm.create_training_job(**probe_job(
        "two-hosts", "shards",
        channels=[s3_channel("shard", "s3://data/shards/",
                             S3DataDistributionType="ShardedByS3Key"),
                  s3_channel("full", "s3://data/shards/")],
        ResourceConfig={"InstanceCount": 2}))
    job = wait_terminal(sm, "two-hosts")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    streams = job_streams(logs, "two-hosts")
    assert len(streams) == 2, streams
    assert streams[0].startswith("two-hosts/algo-1-")
    assert streams[1].startswith("two-hosts/algo-2-")
    seen = {}
    for host, stream in zip(["algo-1", "algo-2"], streams):
        (report,) = probe_reports(stream_messages(logs, stream))
        assert report["current_host"] == host
        assert report["resourceconfig"]["current_host"] == host
        assert report["resourceconfig"]["hosts"] == ["algo-1", "algo-2"]
        # Hosts reach each other by name, as on SageMaker (all are loopback here).
        assert report["peers"] == {"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}
        # FullyReplicated: every host gets every object.
        assert report["full"] == {f"part-{i}.csv": f"object {i}\n" for i in range(4)}
        seen[host] = report["shard"]
    one, two = set(seen["algo-1"]), set(seen["algo-2"])
    assert not one & two, seen
    assert one | two == {f"part-{i}.csv" for i in range(4)}
    assert len(one) == len(two) == 2
    for share in seen.values():
        for name, content in share.items():
            assert content == f"object {name[5]}\n"


# --- 6. Pipe mode ---------------------------------------------------------------------------------

def test_pipe_mode_streams_the_objects_in_order(probe, sm, s3, logs):
    rng = random.Random(11)
    bodies = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (70000, 1, 0, 200001)]
    for i, body in enumerate(bodies):
        s3.put_object(Bucket="data", Key=f"pipe/obj-{i}", Body=body)
    whole = b"".join(bodies)
    request = probe_job("piped", "pipe", channels=[s3_channel("train", "s3://data/pipe/")])
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    sm.create_training_job(**request)
    job = wait_terminal(sm, "piped")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    # Nothing is downloaded in Pipe mode.
    assert "Downloading" not in transitions(job)

    report = single_report(logs, "piped")
    assert report["fifo"] is True
    assert report["bytes"] == len(whole)
    assert report["md5"] == hashlib.md5(whole).hexdigest()
    assert report["inputdataconfig"]["train"]["TrainingInputMode"] == "Pipe"


# --- 7. Logs and metrics --------------------------------------------------------------------------

def test_logs_and_metric_definitions(probe, sm, logs):
    request = probe_job("with-metrics", "metrics")
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "train:epoch", "Regex": r"epoch=(\d+)"},
        {"Name": "never:printed", "Regex": r"accuracy=([0-9.]+)"},
    ]
    sm.create_training_job(**request)
    job = wait_terminal(sm, "with-metrics")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    finals = {m["MetricName"]: m for m in job["FinalMetricDataList"]}
    assert set(finals) == {"train:loss", "train:epoch"}
    assert finals["train:loss"]["Value"] == pytest.approx(0.25)
    assert finals["train:epoch"]["Value"] == pytest.approx(3)
    created = job["CreationTime"].timestamp()
    ended = job["TrainingEndTime"].timestamp()
    for m in finals.values():
        assert created - 1 <= m["Timestamp"].timestamp() <= ended + 1

    # The AWS CLI reads the stream back in order, stdout and stderr both.
    streams = probe.cli("logs", "describe-log-streams", "--log-group-name", LOG_GROUP,
                        "--log-stream-name-prefix", "with-metrics/")["logStreams"]
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]
    assert stream.startswith("with-metrics/algo-1-")
    events = probe.cli("logs", "get-log-events", "--log-group-name", LOG_GROUP,
                       "--log-stream-name", stream, "--start-from-head")["events"]
    messages = [e["message"] for e in events]
    stdout_lines = [m for m in messages if not m.startswith("warning")]
    assert stdout_lines == ["epoch=1 loss=0.9", "epoch=2 loss=0.5", "epoch=3 loss=0.25", "done"]
    assert "warning: this line goes to stderr" in messages
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)

    # FilterLogEvents (boto3) across the job's streams, with a term.
    filtered = logs.filter_log_events(logGroupName=LOG_GROUP,
                                      logStreamNamePrefix="with-metrics/",
                                      filterPattern="loss")
    assert [e["message"] for e in filtered["events"]] == stdout_lines[:3]
    assert {e["logStreamName"] for e in filtered["events"]} == {stream}
    everything = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNames=[stream])
    assert len(everything["events"]) == len(messages)


# --- 8. The environment contract ------------------------------------------------------------------

def test_environment_contract_and_network_isolation(probe, sm, s3, logs):
    s3.put_object(Bucket="data", Key="env/in.csv", Body=b"1,2,3\n")
    hps = {"mode": "env", "learning_rate": "0.1", "epochs": "3", "note": "two words"}
    request = probe_job("env-check", "env",
                        channels=[s3_channel("train", "s3://data/env/", ContentType="text/csv")],
                        hps=hps,
                        Environment={"MY_FLAG": "on", "SM_LOG_LEVEL": "20"},
                        EnableNetworkIsolation=True)
    sm.create_training_job(**request)
    job = wait_terminal(sm, "env-check")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["EnableNetworkIsolation"] is True
    assert job["Environment"] == {"MY_FLAG": "on", "SM_LOG_LEVEL": "20"}

    report = single_report(logs, "env-check")
    env = report["env"]
    assert env["SM_MODEL_DIR"] == "/opt/ml/model"
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert {k: str(v) for k, v in json.loads(env["SM_HPS"]).items()} == hps
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["TRAINING_JOB_NAME"] == "env-check"
    assert env["TRAINING_JOB_ARN"] == job["TrainingJobArn"]
    assert env["SM_HP_LEARNING_RATE"] == "0.1"
    assert env["MY_FLAG"] == "on"
    assert env["SM_LOG_LEVEL"] == "20"

    assert report["hyperparameters"] == hps
    assert all(isinstance(v, str) for v in report["hyperparameters"].values())
    assert report["inputdataconfig"] == {
        "train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                  "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}
    assert report["resourceconfig"]["current_host"] == "algo-1"
    assert report["resourceconfig"]["hosts"] == ["algo-1"]
    assert report["train"] == {"in.csv": "1,2,3\n"}

    # /opt/ml/model and /opt/ml/output/data come back as model.tar.gz and output.tar.gz.
    for key, expected in [("model.tar.gz", {"model.txt": b"model of env-check"}),
                          ("output.tar.gz", {"report.txt": b"report of env-check"})]:
        body = s3.get_object(Bucket="data", Key="output/env-check/output/" + key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            files = {m.name.lstrip("./"): tar.extractfile(m).read()
                     for m in tar.getmembers() if m.isfile()}
        assert files == expected, key

    # EnableNetworkIsolation: the process has no network interface but loopback.
    assert report["if_nameindex"] == ["lo"]
    assert report["proc_net_dev"] == ["lo"]


@pytest.mark.xfail(strict=True, reason="src/runtime/sandbox.cc read-only binds the host's /sys, "
                   "so /sys/class/net lists the host's interfaces in an isolated network")
def test_network_isolation_shows_only_loopback_in_sys(probe, sm, logs):
    sm.create_training_job(**probe_job("isolated", "env", EnableNetworkIsolation=True))
    job = wait_terminal(sm, "isolated")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert single_report(logs, "isolated")["sys_class_net"] == ["lo"]


# --- 9. Bad input changes nothing -----------------------------------------------------------------

def test_bad_requests_are_rejected_and_store_nothing(probe, sm, s3, workdir):
    sm.create_training_job(**probe_job("first", "ok"))
    before = job_count(sm)
    assert before == 1

    status, body = raw_sagemaker_call(probe, "SageMaker.CreateTrainingJob",
                                      b'{"TrainingJobName": "half-a-request", ')
    assert status == 400
    assert body["__type"].split("#")[-1] == "SerializationException"

    status, body = raw_sagemaker_call(probe, "SageMaker.CreateTrainingJobs", b"{}")
    assert status == 400
    assert body["__type"].split("#")[-1] == "UnknownOperationException"

    with pytest.raises(ClientError) as e:
        sm.create_training_job(**probe_job("bad_name!", "ok"))
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "trainingJobName" in message
    assert NAME_PATTERN in message

    request = probe_job("bad-mode", "ok")
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**request)
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "trainingInputMode" in message and "Stream" in message

    with pytest.raises(ClientError) as e:
        sm.create_training_job(**probe_job("first", "ok"))
    assert error_of(e)[0] == "ResourceInUse"

    with pytest.raises(ClientError) as e:
        sm.create_training_job(**probe_job(
            "missing-bucket", "ok", channels=[s3_channel("train", "s3://no-such-bucket/x/")]))
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "no-such-bucket" in message

    s3.put_object(Bucket="data", Key="elsewhere/a.csv", Body=b"1\n")
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**probe_job(
            "empty-prefix", "ok", channels=[s3_channel("train", "s3://data/nothing-here/")]))
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "s3://data/nothing-here/" in message

    request = probe_job("unknown-image", "ok")
    request["AlgorithmSpecification"]["TrainingImage"] = "no-such-image:v2"
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**request)
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "no-such-image:v2" in message

    # An image directory without an executable `train` or `serve` is refused at registration.
    (workdir / "not-an-image").mkdir()
    (workdir / "not-an-image" / "train").write_text("#!/bin/sh\n")  # not executable
    proc = subprocess.run([HEARTH, "image", "register", "not-an-image",
                           str(workdir / "not-an-image"), "--data-dir", probe.data_dir],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "train" in proc.stderr
    request = probe_job("unregistered", "ok")
    request["AlgorithmSpecification"]["TrainingImage"] = "not-an-image"
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**request)
    assert error_of(e)[0] == "ValidationException"

    assert job_count(sm) == before
    for name in ["half-a-request", "bad-mode", "missing-bucket", "empty-prefix",
                 "unknown-image", "unregistered"]:
        with pytest.raises(ClientError) as e:
            sm.describe_training_job(TrainingJobName=name)
        assert error_of(e) == ("ValidationException", "Requested resource not found.")
    # The duplicate did not replace the first job's request.
    first = wait_terminal(sm, "first")
    assert first["TrainingJobStatus"] == "Completed", first.get("FailureReason")
    assert len([t for t in transitions(first) if t == "Starting"]) == 1

    # The waiter takes "not found" as a terminal failure, not as something to wait out.
    with pytest.raises(WaiterError) as e:
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="never-created", WaiterConfig={"Delay": 5, "MaxAttempts": 5})
    assert "terminal failure" in str(e.value)
    assert e.value.last_response["Error"]["Code"] == "ValidationException"


# --- 10. ListTrainingJobs -------------------------------------------------------------------------

def test_list_training_jobs_filters_sorts_and_pages(probe, sm):
    names = ["lst-a", "lst-b", "other", "lst-c"]
    for name in names:
        mode = "exit" if name == "lst-b" else "ok"
        sm.create_training_job(**probe_job(name, mode, hps={"code": "1"}))
    for name in names:
        wait_terminal(sm, name)

    def listed(**kwargs):
        return [s["TrainingJobName"]
                for s in sm.list_training_jobs(**kwargs)["TrainingJobSummaries"]]

    assert listed() == names  # default: CreationTime ascending
    assert listed(NameContains="lst") == ["lst-a", "lst-b", "lst-c"]
    assert listed(StatusEquals="Failed") == ["lst-b"]
    assert listed(StatusEquals="Completed", NameContains="lst") == ["lst-a", "lst-c"]
    assert listed(StatusEquals="InProgress") == []
    assert listed(NameContains="lst", SortBy="Name", SortOrder="Descending") == \
        ["lst-c", "lst-b", "lst-a"]
    assert listed(SortBy="Name") == sorted(names)
    assert listed(SortBy="CreationTime", SortOrder="Descending") == names[::-1]

    # Read off the wire: Debian's botocore predates TrainingJobSummary.SecondaryStatus.
    status, body = raw_sagemaker_call(probe, "SageMaker.ListTrainingJobs",
                                      json.dumps({"NameContains": "lst-b"}).encode())
    assert status == 200
    (summary,) = body["TrainingJobSummaries"]
    assert summary["TrainingJobStatus"] == "Failed"
    assert summary["SecondaryStatus"] == "Failed"
    assert summary["TrainingJobArn"].endswith(":training-job/lst-b")
    assert summary["TrainingEndTime"] >= summary["CreationTime"]

    pages, token = [], None
    while True:
        kwargs = {"NameContains": "lst", "MaxResults": 1}
        if token:
            kwargs["NextToken"] = token
        page = sm.list_training_jobs(**kwargs)
        pages.append([s["TrainingJobName"] for s in page["TrainingJobSummaries"]])
        token = page.get("NextToken")
        if not token:
            break
        assert len(pages) <= 3, pages
    assert pages == [["lst-a"], ["lst-b"], ["lst-c"]]

    paginated = sm.get_paginator("list_training_jobs").paginate(
        SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 1})
    assert [s["TrainingJobName"] for p in paginated for s in p["TrainingJobSummaries"]] == \
        sorted(names, reverse=True)

    with pytest.raises(ClientError) as e:
        sm.list_training_jobs(NextToken="not-a-token", MaxResults=1)
    assert error_of(e)[0] == "ValidationException"


# --- Checkpoints ----------------------------------------------------------------------------------

def test_checkpoints_sync_while_training_and_seed_the_next_job(probe, sm, s3, logs):
    """CheckpointConfig: checkpoints/ is copied to S3 while the job runs (not only at the end),
    survives a failed job, and a later job with the same S3Uri starts with them in place."""
    ckpt = {"CheckpointConfig": {"S3Uri": "s3://data/checkpoints/run-1"}}
    sm.create_training_job(**probe_job("ckpt-a", "checkpoint", **ckpt))

    def synced():
        listing = s3.list_objects_v2(Bucket="data", Prefix="checkpoints/run-1/")
        return [o["Key"] for o in listing.get("Contents", [])]
    assert wait_for(synced, timeout=30, what="the checkpoint in S3") == [
        "checkpoints/run-1/step-1.ckpt"]
    assert sm.describe_training_job(TrainingJobName="ckpt-a")["TrainingJobStatus"] == "InProgress"
    sm.stop_training_job(TrainingJobName="ckpt-a")
    assert wait_terminal(sm, "ckpt-a")["TrainingJobStatus"] == "Stopped"

    sm.create_training_job(**probe_job("ckpt-b", "checkpoint", hps={"then": "fail"}, **ckpt))
    job = wait_terminal(sm, "ckpt-b")
    assert job["TrainingJobStatus"] == "Failed"
    (report,) = probe_reports(stream_messages(logs, job_streams(logs, "ckpt-b")[0]))
    assert report["found"] == ["step-1.ckpt"]
    assert synced() == ["checkpoints/run-1/step-1.ckpt", "checkpoints/run-1/step-2.ckpt"]
    body = s3.get_object(Bucket="data", Key="checkpoints/run-1/step-2.ckpt")["Body"].read()
    assert body == b"state after 2 runs"
