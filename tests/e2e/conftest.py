"""Fixtures for the end-to-end tests: a real `hearth server` on a free port with its own data
directory, and real clients (boto3, the AWS CLI) pointed at it.

Run by Debian's /usr/bin/python3 (python3-boto3, python3-pytest), as `make e2e` does.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import tempfile
import time

import boto3
import botocore.config
import pytest

BUILD_DIR = os.environ.get(
    "HEARTH_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
HEARTH = os.path.join(BUILD_DIR, "src", "server", "hearth")
# AWS CLI v2 from Debian. The image's pyenv `aws` (v1, newest botocore) is tried too where noted.
AWS_CLI = "/usr/bin/aws"

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "hearth",
    "AWS_SECRET_ACCESS_KEY": "hearth-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HearthServer:
    """One `hearth server` process. start()/kill()/restart() keep the same data dir and port."""

    def __init__(self, data_dir, port=None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [HEARTH, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline()
        assert "serving on" in line, f"server did not start: {line!r}; see {self.log_path}"
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, service, **kwargs):
        cfg = botocore.config.Config(retries={"max_attempts": 1},
                                     s3={"addressing_style": "path"}, **kwargs)
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="hearth", aws_secret_access_key="hearth-secret",
                            config=cfg)

    def cli(self, *args, check=True, aws=AWS_CLI, input=None):
        """Runs the AWS CLI against this server; returns parsed JSON output (or text)."""
        env = dict(os.environ, **CREDENTIALS, AWS_PAGER="")
        env.pop("AWS_PROFILE", None)
        proc = subprocess.run([aws, "--endpoint-url", self.url, "--output", "json", *args],
                              capture_output=True, text=True, env=env, input=input, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        if not check:
            return proc
        out = proc.stdout.strip()
        try:
            return json.loads(out) if out else None
        except json.JSONDecodeError:
            return out

    def register_image(self, name, directory):
        subprocess.run([HEARTH, "image", "register", name, directory, "--data-dir",
                        self.data_dir], check=True, capture_output=True)


class LoggedServer(HearthServer):
    """HearthServer whose stdout (where the server logs, e.g. "resuming training job ...",
    possibly before "serving on") is drained into server.log for as long as it runs, so that
    start() finds the "serving on" line wherever it is and the pipe never fills up. For tests
    that restart a server with work in flight."""

    def start(self, timeout=30):
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [HEARTH, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             self.data_dir], stdout=subprocess.PIPE, stderr=log, text=True)
        serving = threading.Event()

        def drain(out):
            for line in out:
                log.write(line)
                log.flush()
                if "serving on" in line:
                    serving.set()
            log.close()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        wait_for(lambda: serving.is_set() or self.proc.poll() is not None, timeout=timeout,
                 what="the server to start")
        assert serving.is_set(), f"server did not start; see {self.log_path}"
        return self


def kill_processes_mentioning(text):
    """SIGKILLs every process whose command line mentions `text` (a test's tmp dir). Training
    hosts outlive the server by design (a restarted server re-adopts them), so a test that
    ends with jobs still running must not leave them behind."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(autouse=True)
def no_leftover_jobs(tmp_path):
    yield
    kill_processes_mentioning(str(tmp_path))


@pytest.fixture
def server(tmp_path):
    s = HearthServer(str(tmp_path / "data")).start()
    yield s
    s.stop()


@pytest.fixture
def s3(server):
    return server.client("s3")


@pytest.fixture
def sm(server):
    return server.client("sagemaker")


@pytest.fixture
def logs(server):
    return server.client("logs")


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d
