"""Real-time endpoints end to end: a built-in XGBoost model trained through boto3, deployed with
CreateModel / CreateEndpointConfig / CreateEndpoint on two instances, waited for with boto3's
and the AWS CLI's waiters, described, invoked through `sagemaker-runtime`, and deleted; a
bring-your-own `serve` that dies fails the endpoint with a reason; an endpoint survives a
kill -9 of the server; an instance killed while InService is replaced without failing requests;
UpdateEndpoint moves steady traffic to a new fleet without a failed request, and rolls back an
update whose fleet cannot start.

Run by Debian's /usr/bin/python3 (numpy for the training data).
"""
import os
import signal
import stat
import textwrap
import threading
import uuid

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from builtin_algorithms import ServedModel, csv_bytes, fetch_model, train
from conftest import wait_for

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:000000000000"
FAST = {"Delay": 1, "MaxAttempts": 120}


def deploy(sm, name, image, model_data=None, count=1, env=None):
    """CreateModel + CreateEndpointConfig + CreateEndpoint, all named `name`."""
    container = {"Image": image, "Environment": env or {}}
    if model_data:
        container["ModelDataUrl"] = model_data
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                             "InitialInstanceCount": count, "InstanceType": "ml.m5.large"}])
    return sm.create_endpoint(EndpointName=name, EndpointConfigName=name,
                              Tags=[{"Key": "team", "Value": "ml"}])


def byo_image(server, tmp_path, name, serve_body):
    """Registers a bring-your-own image whose `serve` is `serve_body` (a /bin/sh script)."""
    d = tmp_path / "images" / name
    d.mkdir(parents=True)
    serve = d / "serve"
    serve.write_text("#!/bin/sh\n" + textwrap.dedent(serve_body))
    serve.chmod(serve.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    server.register_image(name, str(d))
    return name


# An inference server in a few lines of Debian's python3: GET /ping, and POST /invocations
# answering "<instance port>:<body reversed>" so a test can tell which instance answered.
ECHO_SERVE = """\
exec /usr/bin/python3 -c '
import http.server, os
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = b"%d:" % port + body[::-1]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'
"""


@pytest.fixture
def xgb_model(sm, s3):
    """A small binary XGBoost model trained on hearth/xgboost; returns (describe, X_test)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float32)
    job = train(sm, s3, "xgboost", {"objective": "binary:logistic", "num_round": "10",
                                    "max_depth": "3"}, {"train": csv_bytes(X, y)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job, X[:20]


def test_xgboost_endpoint_serves_what_the_model_server_serves(server, sm, s3, logs, xgb_model,
                                                              tmp_path):
    job, X_test = xgb_model
    name = "xgb-" + uuid.uuid4().hex[:8]
    arn = f"{ARN_PREFIX}:endpoint/{name}"
    out = deploy(sm, name, "hearth/xgboost", job["ModelArtifacts"]["S3ModelArtifacts"], count=2)
    assert out["EndpointArn"] == arn
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"

    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    d = sm.describe_endpoint(EndpointName=name)
    assert d["EndpointName"] == name
    assert d["EndpointArn"] == arn
    assert d["EndpointConfigName"] == name
    assert d["EndpointStatus"] == "InService"
    assert "FailureReason" not in d
    assert d["CreationTime"] <= d["LastModifiedTime"]
    [v] = d["ProductionVariants"]
    assert v["VariantName"] == "AllTraffic"
    assert v["CurrentInstanceCount"] == 2 and v["DesiredInstanceCount"] == 2
    assert v["CurrentWeight"] == 1.0 and v["DesiredWeight"] == 1.0
    [image] = v["DeployedImages"]
    assert image["SpecifiedImage"] == "hearth/xgboost"
    assert image["ResolvedImage"] and image["ResolutionTime"].year >= 2024

    # The AWS CLI's waiter and describe agree.
    server.cli("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", name)
    described = server.cli("sagemaker", "describe-endpoint", "--endpoint-name", name)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    listed = sm.list_endpoints(NameContains=name)["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [(name, "InService")]
    assert sm.list_endpoints(StatusEquals="Failed", NameContains=name)["Endpoints"] == []

    # Each instance logs to its own stream under the endpoint's log group.
    group = f"/aws/sagemaker/Endpoints/{name}"
    streams = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(
        logs.describe_log_streams(logGroupName=group)["logStreams"]), what="two log streams")
    assert all(s["logStreamName"].startswith("AllTraffic/i-") for s in streams)

    # InvokeEndpoint answers what `hearth algo xgboost serve` answers on the same model.
    payload = csv_bytes(X_test)
    model_dir = fetch_model(s3, job, tmp_path / "model")
    with ServedModel("xgboost", model_dir) as served:
        status, _, expected = served.invoke(payload, "text/csv")
        assert status == 200
    runtime = server.client("sagemaker-runtime")
    for _ in range(4):
        r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=payload)
        assert r["Body"].read() == expected
        assert r["InvokedProductionVariant"] == "AllTraffic"

    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST)
    with pytest.raises(ClientError) as e:
        sm.describe_endpoint(EndpointName=name)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Error"]["Message"] == f'Could not find endpoint "{arn}".'
    # The instances are gone: nothing answers InvokeEndpoint any more.
    with pytest.raises(ClientError):
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=payload)


def test_create_endpoint_errors(server, sm):
    with pytest.raises(ClientError) as e:
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="missing")
    err = e.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert err["Message"] == \
        f'Could not find endpoint configuration "{ARN_PREFIX}:endpoint-config/missing".'
    with pytest.raises(ClientError) as e:
        sm.delete_endpoint(EndpointName="ghost")
    assert e.value.response["Error"]["Message"] == \
        f'Could not find endpoint "{ARN_PREFIX}:endpoint/ghost".'


def test_serve_that_exits_fails_the_endpoint(server, sm, tmp_path):
    image = byo_image(server, tmp_path, "broken-serve", """\
        echo "loading the model"
        echo "ImportError: no module named torch" >&2
        exit 1
        """)
    deploy(sm, "broken", image)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="broken", WaiterConfig=FAST)
    d = sm.describe_endpoint(EndpointName="broken")
    assert d["EndpointStatus"] == "Failed"
    reason = d["FailureReason"]
    assert "production variant AllTraffic" in reason
    assert "exited with code 1" in reason
    assert "no module named torch" in reason
    # Duplicate names are refused even for a failed endpoint; a failed endpoint can be deleted.
    with pytest.raises(ClientError) as e:
        sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken")
    assert e.value.response["Error"]["Message"] == \
        f'Cannot create already existing endpoint "{ARN_PREFIX}:endpoint/broken".'
    sm.delete_endpoint(EndpointName="broken")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="broken", WaiterConfig=FAST)


def test_endpoint_survives_kill9_of_the_server(server, sm, tmp_path):
    image = byo_image(server, tmp_path, "echo-serve", ECHO_SERVE)
    deploy(sm, "durable", image, count=2)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="durable", WaiterConfig=FAST)
    runtime = server.client("sagemaker-runtime")
    before = runtime.invoke_endpoint(EndpointName="durable", ContentType="text/plain",
                                     Body=b"abc")["Body"].read()
    assert before.endswith(b":cba")

    server.kill9()
    server.start()
    sm = server.client("sagemaker")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="durable", WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName="durable")["ProductionVariants"][0][
        "CurrentInstanceCount"] == 2
    runtime = server.client("sagemaker-runtime")
    ports = set()
    for _ in range(6):
        body = wait_for(lambda: _try_invoke(runtime, "durable", b"xyz"), what="an answer")
        assert body.endswith(b":zyx")
        ports.add(body.split(b":")[0])
    # The instances that served before the crash were re-adopted, not replaced.
    assert before.split(b":")[0] in ports
    assert len(ports) == 2

    sm.delete_endpoint(EndpointName="durable")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="durable", WaiterConfig=FAST)


def _serve_pid(endpoint, port):
    """The pid of the instance of `endpoint` serving on `port` (the python3 `serve` execs)."""
    wanted = {f"SAGEMAKER_ENDPOINT_NAME={endpoint}".encode(),
              f"SAGEMAKER_BIND_TO_PORT={port}".encode()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = set(f.read().split(b"\0"))
        except OSError:
            continue
        if argv and argv[0].endswith(b"python3") and wanted <= env:
            return int(entry)
    return None


def test_killed_instance_is_replaced_while_in_service(server, sm, logs, tmp_path):
    image = byo_image(server, tmp_path, "echo-serve", ECHO_SERVE)
    deploy(sm, "repaired", image, count=2)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="repaired", WaiterConfig=FAST)
    runtime = server.client("sagemaker-runtime")
    ports = {runtime.invoke_endpoint(EndpointName="repaired", ContentType="text/plain",
                                     Body=b"abc")["Body"].read().split(b":")[0]
             for _ in range(6)}
    assert len(ports) == 2
    victim, survivor = sorted(int(p) for p in ports)
    pid = _serve_pid("repaired", victim)
    assert pid is not None, "the serve process of the instance on port %d" % victim

    # One client invoking steadily while the instance dies: it has one request in flight at a
    # time, so at most the one in flight at the kill may fail (the instance may have read it
    # before dying, and a delivered request is never retried). Every other request is either
    # refused by the dead instance and retried on the live one by the router, or sent to a
    # live instance.
    stop = threading.Event()
    answers, failures = [], []

    def invoke_loop():
        client = server.client("sagemaker-runtime")
        while not stop.is_set():
            try:
                body = client.invoke_endpoint(EndpointName="repaired", ContentType="text/plain",
                                              Body=b"xyz")["Body"].read()
                answers.append(body)
            except ClientError as e:
                failures.append(e.response["Error"])

    loop = threading.Thread(target=invoke_loop)
    loop.start()
    try:
        wait_for(lambda: len(answers) >= 5, what="invocations before the kill")
        os.kill(pid, signal.SIGKILL)
        statuses = set()

        def replaced():
            d = sm.describe_endpoint(EndpointName="repaired")
            statuses.add(d["EndpointStatus"])
            [v] = d["ProductionVariants"]
            assert v["DesiredInstanceCount"] == 2
            if v["CurrentInstanceCount"] != 2:
                return None
            served = {b.split(b":")[0] for b in answers[-20:]}
            return served if len(served) == 2 and str(victim).encode() not in served else None

        served = wait_for(replaced, what="a replacement instance taking traffic")
        answered_at_replacement = len(answers)
        wait_for(lambda: len(answers) >= answered_at_replacement + 10, what="more answers")
    finally:
        stop.set()
        loop.join()
    assert statuses == {"InService"}
    assert len(failures) <= 1, failures
    assert all(b.endswith(b":zyx") for b in answers)
    assert str(survivor).encode() in served
    assert _serve_pid("repaired", victim) is None

    # The replacement is logged: the killed instance's stream says why it was replaced.
    group = "/aws/sagemaker/Endpoints/repaired"
    events = wait_for(lambda: [e for e in logs.filter_log_events(logGroupName=group)["events"]
                               if "is replaced" in e["message"]], what="the replacement's log")
    assert any("killed by signal 9" in e["message"] for e in events), events

    sm.delete_endpoint(EndpointName="repaired")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="repaired", WaiterConfig=FAST)


# ECHO_SERVE that answers "green-<port>:..." and starts only once the file "go" appears in its
# image directory, so that the test sees the update Updating while the old fleet serves.
GREEN_SERVE = ('while [ ! -e "$(dirname "$0")/go" ]; do sleep 0.02; done\n' +
               ECHO_SERVE.replace('b"%d:" % port', 'b"green-%d:" % port'))


def test_update_endpoint_blue_green_under_load(server, sm, tmp_path):
    blue = byo_image(server, tmp_path, "blue-serve", ECHO_SERVE)
    green = byo_image(server, tmp_path, "green-serve", GREEN_SERVE)
    broken = byo_image(server, tmp_path, "broken-green", "echo 'bad weights' >&2\nexit 2\n")
    deploy(sm, "bg", blue, count=2)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=FAST)
    for name, image in (("bg-green", green), ("bg-broken", broken)):
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}])

    # Steady load from 4 clients for the whole update: every request must succeed.
    stop = threading.Event()
    answers, failures = [], []

    def invoke_loop():
        client = server.client("sagemaker-runtime")
        while not stop.is_set():
            try:
                answers.append(client.invoke_endpoint(EndpointName="bg", ContentType="text/plain",
                                                      Body=b"xyz")["Body"].read())
            except ClientError as e:
                failures.append(e.response["Error"])

    loops = [threading.Thread(target=invoke_loop) for _ in range(4)]
    for loop in loops:
        loop.start()
    try:
        wait_for(lambda: len(answers) >= 20, what="invocations before the update")
        out = server.cli("sagemaker", "update-endpoint", "--endpoint-name", "bg",
                         "--endpoint-config-name", "bg-green")
        assert out["EndpointArn"] == f"{ARN_PREFIX}:endpoint/bg"
        d = sm.describe_endpoint(EndpointName="bg")
        assert d["EndpointStatus"] == "Updating"
        assert d["EndpointConfigName"] == "bg"
        assert d["PendingDeploymentSummary"]["EndpointConfigName"] == "bg-green"
        with pytest.raises(ClientError) as e:
            sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-green")
        assert e.value.response["Error"]["Message"] == \
            f'Cannot update in-progress endpoint "{ARN_PREFIX}:endpoint/bg".'
        (tmp_path / "images" / "green-serve" / "go").write_text("")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=FAST)
        switched = len(answers)
        wait_for(lambda: len(answers) >= switched + 40, what="invocations after the update")
    finally:
        stop.set()
        for loop in loops:
            loop.join()
    assert failures == [], failures[:3]
    assert all(b.endswith(b":zyx") for b in answers)
    assert not answers[0].startswith(b"green-")
    # After the switch only the green fleet answers.
    assert all(b.startswith(b"green-") for b in answers[switched + 8:])
    d = sm.describe_endpoint(EndpointName="bg")
    assert d["EndpointConfigName"] == "bg-green"
    assert "PendingDeploymentSummary" not in d and "FailureReason" not in d
    assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    # An update whose fleet cannot start rolls back: InService on the green fleet, with a reason.
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-broken")
    d = wait_for(lambda: (lambda d: d if d["EndpointStatus"] != "Updating" else None)(
        sm.describe_endpoint(EndpointName="bg")), what="the failed update to end")
    assert d["EndpointStatus"] == "InService"
    assert d["EndpointConfigName"] == "bg-green"
    assert "exited with code 2" in d["FailureReason"] and "bad weights" in d["FailureReason"]
    runtime = server.client("sagemaker-runtime")
    assert runtime.invoke_endpoint(EndpointName="bg", ContentType="text/plain",
                                   Body=b"abc")["Body"].read().startswith(b"green-")

    sm.delete_endpoint(EndpointName="bg")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="bg", WaiterConfig=FAST)


def _try_invoke(runtime, name, body):
    try:
        return runtime.invoke_endpoint(EndpointName=name, ContentType="text/plain",
                                       Body=body)["Body"].read()
    except ClientError:
        return None
