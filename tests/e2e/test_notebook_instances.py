"""Notebook instances end to end: a real `hearth server` runs Debian's Jupyter for each instance
(control/notebook_instances.h), driven by boto3 (its waiters included) and the AWS CLI, and
used the way a person would: through the presigned URL, Jupyter's REST contents API, and a
kernel over Jupyter's websocket protocol (python3-websocket) running code that calls the
server through the `hearth` SDK and boto3 with the environment the instance presets.
"""
import datetime
import http.client
import json
import os
import urllib.parse
import uuid

import botocore.exceptions
import pytest
import websocket

# boto3's waiters poll every 30 s by default; Jupyter starts in about a second here.
WAIT = {"Delay": 1, "MaxAttempts": 120}
LOG_GROUP = "/aws/sagemaker/NotebookInstances"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


def create(sm, name, **extra):
    return sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium",
                                       RoleArn=ROLE, **extra)


def request(port, method, target, token=None, body=None, headers=None):
    """One HTTP request to Jupyter, redirects not followed: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"token {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, target, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def split_url(authorized_url):
    """(port, token) of "http://127.0.0.1:<port>/?token=<token>"."""
    parsed = urllib.parse.urlsplit(authorized_url)
    assert parsed.scheme == "http" and parsed.hostname == "127.0.0.1", authorized_url
    token = urllib.parse.parse_qs(parsed.query)["token"][0]
    return parsed.port, token


def run_cell(port, token, code, timeout=120):
    """Runs `code` in a new python3 kernel through Jupyter's REST and websocket APIs and returns
    (stdout, error traceback or None). The kernel is shut down afterwards."""
    status, _, body = request(port, "POST", "/api/kernels", token, {"name": "python3"})
    assert status == 201, body
    kernel = json.loads(body)["id"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels",
        header=[f"Authorization: token {token}"], timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": uuid.uuid4().hex, "version": "5.3",
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        out, error, idle, replied = [], None, False, False
        while not (idle and replied):
            msg = json.loads(ws.recv())  # raises on the socket's timeout
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                error = "\n".join(msg["content"]["traceback"])
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        return "".join(out), error
    finally:
        ws.close()
        request(port, "DELETE", f"/api/kernels/{kernel}", token)


def jupyter_log(logs, name):
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=f"{name}/jupyter.log",
                                 startFromHead=True)["events"]
    return "\n".join(e["message"] for e in events)


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]


def test_notebook_lifecycle(server, sm, s3, logs):
    name = "nb-e2e"
    arn = create(sm, name, VolumeSizeInGB=10)["NotebookInstanceArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:notebook-instance/{name}"
    assert sm.describe_notebook_instance(NotebookInstanceName=name)[
        "NotebookInstanceStatus"] == "Pending"
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name,
                                                       WaiterConfig=WAIT)
    desc = sm.describe_notebook_instance(NotebookInstanceName=name)
    assert desc["NotebookInstanceStatus"] == "InService"
    assert desc["InstanceType"] == "ml.t3.medium" and desc["RoleArn"] == ROLE
    assert desc["VolumeSizeInGB"] == 10
    assert "FailureReason" not in desc

    url = sm.create_presigned_notebook_instance_url(NotebookInstanceName=name)["AuthorizedUrl"]
    port, token = split_url(url)
    assert desc["Url"] == f"127.0.0.1:{port}"  # a host without scheme, as SageMaker's

    # The presigned URL logs a browser in: it leads to the notebook tree, which sets the login
    # cookie; the cookie alone then opens the tree.
    status, headers, _ = request(port, "GET", "/?token=" + token)
    assert status == 302
    location = urllib.parse.urlsplit(headers["Location"])
    assert location.path == "/tree"
    status, headers, body = request(port, "GET", f"/tree?{location.query}")
    assert status == 200 and b"Jupyter" in body
    cookie = headers["Set-Cookie"].split(";")[0]
    status, _, body = request(port, "GET", "/tree", headers={"Cookie": cookie})
    assert status == 200 and b"Jupyter" in body
    # Without the token: the API refuses, the pages send to the login page.
    assert request(port, "GET", "/api/status")[0] == 403
    status, headers, _ = request(port, "GET", "/tree")
    assert status == 302 and headers["Location"].startswith("/login")

    # A cell in a new notebook reaches the server with no arguments: the hearth SDK, and boto3
    # through the preset environment.
    out, error = run_cell(port, token, "\n".join([
        "import os, boto3, hearth",
        "session = hearth.Session()",
        "s3 = session.client('s3')",
        "s3.create_bucket(Bucket='from-notebook')",
        "s3.put_object(Bucket='from-notebook', Key='hello.txt', Body=b'written in a notebook')",
        "print('endpoint=' + session.endpoint_url)",
        "plain = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])",
        "print('buckets=' + ','.join(b['Name'] for b in plain.list_buckets()['Buckets']))",
    ]))
    assert error is None, error
    assert f"endpoint={server.url}" in out
    assert "buckets=from-notebook" in out
    assert s3.get_object(Bucket="from-notebook", Key="hello.txt")["Body"].read() == \
        b"written in a notebook"

    # A notebook written through Jupyter's contents API lands in the instance's directory.
    notebook = {"type": "notebook", "content": {
        "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None,
                   "outputs": [], "source": "print(1 + 1)"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    status, _, body = request(port, "PUT", "/api/contents/analysis.ipynb", token, notebook)
    assert status == 201, body
    on_disk = os.path.join(server.data_dir, "notebooks", name, "SageMaker", "analysis.ipynb")
    assert os.path.exists(on_disk)

    # Deleting needs Stopped or Failed, as SageMaker says.
    err = error_of(lambda: sm.delete_notebook_instance(NotebookInstanceName=name))
    assert err["Code"] == "ValidationException"
    assert err["Message"] == ("Status (InService) not in ([Stopped, Failed]). Unable to "
                              f"transition to (Deleting) for Notebook Instance ({arn})")

    # The AWS CLI sees it.
    listed = server.cli("sagemaker", "list-notebook-instances", "--name-contains", "e2e")
    assert [(n["NotebookInstanceName"], n["NotebookInstanceStatus"])
            for n in listed["NotebookInstances"]] == [(name, "InService")]
    described = server.cli("sagemaker", "describe-notebook-instance",
                           "--notebook-instance-name", name)
    assert described["Url"] == f"127.0.0.1:{port}"

    # Stop: Jupyter goes away; the notebook directory stays.
    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=WAIT)
    with pytest.raises(OSError):
        request(port, "GET", "/api/status", token)
    assert os.path.exists(on_disk)

    # Start: a new launch (and token) serving the same files.
    sm.start_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name,
                                                       WaiterConfig=WAIT)
    url = sm.create_presigned_notebook_instance_url(NotebookInstanceName=name)["AuthorizedUrl"]
    port, new_token = split_url(url)
    assert new_token != token
    status, _, body = request(port, "GET", "/api/contents/analysis.ipynb", new_token)
    assert status == 200, body
    assert json.loads(body)["content"]["cells"][0]["source"] == "print(1 + 1)"

    # Jupyter's output is in CloudWatch Logs, one stream across launches.
    text = jupyter_log(logs, name)
    assert "Jupyter Notebook" in text
    assert text.count("Hearth: launched Jupyter") == 2

    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=WAIT)
    sm.delete_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_deleted").wait(NotebookInstanceName=name, WaiterConfig=WAIT)
    err = error_of(lambda: sm.describe_notebook_instance(NotebookInstanceName=name))
    assert (err["Code"], err["Message"]) == ("ValidationException", "RecordNotFound")
    assert not os.path.exists(os.path.join(server.data_dir, "notebooks", name))
    assert sm.list_notebook_instances()["NotebookInstances"] == []


def test_notebook_survives_server_kill(server, sm):
    name = "nb-restart"
    create(sm, name)
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name,
                                                       WaiterConfig=WAIT)
    url = sm.create_presigned_notebook_instance_url(NotebookInstanceName=name)["AuthorizedUrl"]
    port, token = split_url(url)
    status, _, body = request(port, "PUT", "/api/contents/kept.txt", token,
                              {"type": "file", "format": "text", "content": "kept"})
    assert status == 201, body

    server.kill9()
    # Jupyter runs on under its supervisor meanwhile.
    assert request(port, "GET", "/api/status", token)[0] == 200
    server.start()
    sm = server.client("sagemaker")
    assert sm.describe_notebook_instance(NotebookInstanceName=name)[
        "NotebookInstanceStatus"] == "InService"
    assert sm.create_presigned_notebook_instance_url(
        NotebookInstanceName=name)["AuthorizedUrl"] == url
    status, _, body = request(port, "GET", "/api/contents/kept.txt", token)
    assert status == 200 and json.loads(body)["content"] == "kept"

    # The re-adopted instance is driven as before.
    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=WAIT)
    sm.delete_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_deleted").wait(NotebookInstanceName=name, WaiterConfig=WAIT)


def test_notebook_errors(server, sm):
    err = error_of(lambda: sm.describe_notebook_instance(NotebookInstanceName="missing"))
    assert (err["Code"], err["Message"]) == ("ValidationException", "RecordNotFound")
    proc = server.cli("sagemaker", "stop-notebook-instance", "--notebook-instance-name",
                      "missing", check=False)
    assert proc.returncode != 0 and "RecordNotFound" in proc.stderr

    err = error_of(lambda: create(sm, "nb-lc", LifecycleConfigName="setup"))
    assert err["Code"] == "ValidationException"
    assert err["Message"].startswith("LifecycleConfigName is not supported")
    err = error_of(lambda: create(sm, "nb-bad-name!"))
    assert err["Code"] == "ValidationException" and "notebookInstanceName" in err["Message"]
    assert sm.list_notebook_instances()["NotebookInstances"] == []

    create(sm, "nb-dup")
    err = error_of(lambda: create(sm, "NB-Dup"))
    assert err["Message"] == ("Cannot create a duplicate Notebook Instance "
                              "(arn:aws:sagemaker:us-east-1:000000000000:notebook-instance/nb-dup)")
    err = error_of(lambda: sm.start_notebook_instance(NotebookInstanceName="nb-dup"))
    assert "Unable to transition to (Pending)" in err["Message"]
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName="nb-dup",
                                                       WaiterConfig=WAIT)
    sm.stop_notebook_instance(NotebookInstanceName="nb-dup")
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName="nb-dup",
                                                    WaiterConfig=WAIT)
    sm.delete_notebook_instance(NotebookInstanceName="nb-dup")
    sm.get_waiter("notebook_instance_deleted").wait(NotebookInstanceName="nb-dup",
                                                    WaiterConfig=WAIT)
