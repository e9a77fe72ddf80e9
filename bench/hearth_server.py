"""The Hearth server as the benchmarks run it: its own data dir, a free loopback port, the
log kept in the data dir, boto3 clients pointed at it; and the facts about the machine and
build every result file records. Shared by bench/*.py."""
import datetime
import os
import platform
import socket
import subprocess
import sys
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


def command_output(*argv):
    """What `argv` prints (stdout then stderr: `nginx -v` uses stderr), "" if it cannot run."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_facts(tools=None, modules=()):
    """Date, CPUs, kernel, load, Python, the Hearth commit and build type of a run; `tools`
    ({key: argv}) adds the first line of each tool's version output, `modules` the Python
    modules' versions (None when missing). The caller adds "loadavg_at_end"."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    build_type = ""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            build_type = next((l.split("=", 1)[1].strip() for l in f
                               if l.startswith("CMAKE_BUILD_TYPE:")), "")
    except OSError:
        pass
    facts = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
    }
    for key, argv in (tools or {}).items():
        facts[key] = (command_output(*argv).splitlines() or [""])[0]
    if modules:
        versions = {}
        for module in modules:
            try:
                versions[module] = __import__(module).__version__
            except ImportError:
                versions[module] = None
        facts["versions"] = versions
    facts.update({
        "hearth_commit": command_output("git", "rev-parse", "--short", "HEAD"),
        "hearth_src_modified": bool(command_output("git", "status", "--porcelain", "--", "src")),
        "cmake_build_type": build_type or "(empty: no optimisation flags)",
    })
    return facts
