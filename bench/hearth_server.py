"""The Hearth server as the benchmarks run it: its own data dir, a free loopback port, the
log kept in the data dir, boto3 clients pointed at it. Shared by bench/*.py."""
import os
import socket
import subprocess
import threading
import time

import boto3
import botocore.config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_DIR = os.path.abspath(os.environ.get("HEARTH_BUILD_DIR", os.path.join(REPO, "build")))
HEARTH = os.path.join(BUILD_DIR, "src", "server", "hearth")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = os.path.join(data_dir, "server.log")
        self.proc = None

    def start(self, timeout=30):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [HEARTH, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE, stderr=log, text=True)
        serving = threading.Event()

        def drain():
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if "serving on" in line:
                    serving.set()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not serving.is_set():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hearth server did not start; see {self.log_path}")
            time.sleep(0.01)

    def kill(self):
        # SIGKILL: quickest, and the server is built to survive it.
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self, service):
        cfg = botocore.config.Config(retries={"max_attempts": 1},
                                     s3={"addressing_style": "path"})
        return boto3.client(service, endpoint_url=f"http://127.0.0.1:{self.port}",
                            region_name="us-east-1", aws_access_key_id="hearth",
                            aws_secret_access_key="hearth-secret", config=cfg)
