#!/usr/bin/python3
"""Hearth's built-in algorithms beside their peers, in one run on this machine.

Each work is run by Hearth exactly as a training host runs it: `hearth algo <name> train` in
a directory laid out like /opt/ml (input/config/*.json, input/data/<channel>/, model/,
output/; SM_INPUT_DIR, SM_MODEL_DIR, SM_OUTPUT_DIR), with the data as
application/x-recordio-protobuf. The `#phase: <name> seconds=<s>` lines it prints give the fit
time (comparable to a peer's fit on in-memory arrays); the process gives wall time and peak
RSS (GNU time). Quality is measured the way the peer's is: the test rows go through
`hearth algo <name> serve` (/invocations, RecordIO-protobuf in, JSON out), or the artifact is
read directly (XGBoost's model with python xgboost, k-means centers, PCA singular values).

  work                         peer
  linear-learner binary        LogisticRegression lbfgs, SGDClassifier, liblinear-train
  linear-learner regressor     Ridge, SGDRegressor
  xgboost                      python xgboost hist (+ single-row predict latency)
  kmeans                       sklearn KMeans k-means++
  pca                          sklearn PCA randomized and full SVD

Every timing is the median of --repeat runs (time.perf_counter); the systems of a work take
turns, round after round in rotating order, after one untimed Hearth run (page cache warm),
so that drift on the shared machine hits them alike; liblinear-train runs once. The peers
use numpy on OpenBLAS; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from this process's
environment (it re-executes itself without them) so that OpenBLAS picks its own kernel, and
the report says which kernel it runs. An algorithm that `hearth algo list` does
not show is skipped, and the table says so. Results: bench/results/algorithms.{md,json}.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/algorithms.py   (or `make bench`)
"""
import os
import sys

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in BLAS_ENV):
    # Before numpy is imported: OpenBLAS reads these once, at load time.
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    env["HEARTH_BENCH_UNSET_BLAS_ENV"] = ",".join(
        f"{name}={os.environ[name]}" for name in BLAS_ENV if name in os.environ)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import atexit  # noqa: E402
import datetime  # noqa: E402
import gzip  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_DIR = os.path.abspath(os.environ.get("HEARTH_BUILD_DIR", os.path.join(REPO, "build")))
HEARTH = os.path.join(BUILD_DIR, "src", "server", "hearth")
PREDICT_LATENCY = os.path.join(BUILD_DIR, "bench", "hearth_predict_latency")
KMEANS_CORE = os.path.join(BUILD_DIR, "bench", "hearth_kmeans_core")
MEMORY_BANDWIDTH = os.path.join(BUILD_DIR, "bench", "hearth_memory_bandwidth")
GNU_TIME = "/usr/bin/time"  # Debian's `time` package: peak RSS of one process
RECORD_PROTO = os.path.join(REPO, "src", "data", "proto", "record.proto")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
RESULTS_DIR = os.path.join(REPO, "bench", "results")
RECORDIO_MAGIC = 0xCED7230A
RECORDIO = "application/x-recordio-protobuf"
PAYLOAD_BYTES = 5 << 20  # under serve's 6 MB /invocations limit

WORKS = ("linear-binary", "linear-regressor", "xgboost", "kmeans", "pca")


class BenchError(Exception):
    pass


# --- measuring -----------------------------------------------------------------------------


def timed(fn, repeat):
    """(median seconds, every sample, the last result) of `repeat` calls."""
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples, result


def percentile(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def loop_us(fn, n, warmup=None):
    """Median and p99 µs of `fn()` over `n` calls after a warm-up."""
    for _ in range(warmup if warmup is not None else max(10, n // 10)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return {"median_us": round(statistics.median(samples), 2),
            "p99_us": round(percentile(samples, 99), 2), "n": n}


def load_average():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def cpu_seconds_busy():
    """(busy CPU seconds of the whole machine, of this process and its reaped children)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = (sum(fields[:8]) - idle) / ticks  # guest time is already inside user
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """The share of the machine's CPUs that other processes used between start() and
    stop(): busy time of the whole machine less this process's and its children's."""

    def start(self):
        self.wall = time.perf_counter()
        self.busy, self.own = cpu_seconds_busy()
        return self

    def stop(self):
        busy, own = cpu_seconds_busy()
        wall = time.perf_counter() - self.wall
        others = (busy - self.busy) - (own - self.own)
        return max(0.0, others / (wall * os.cpu_count())) if wall > 0 else 0.0


def wait_for_quiet(max_wait_s, threshold=0.25, window_s=3.0):
    """Waits (at most max_wait_s) until other processes use under `threshold` of the CPUs
    over `window_s`; returns (seconds waited, share other processes used in the last
    window)."""
    start = time.perf_counter()
    while True:
        probe = OtherLoad().start()
        time.sleep(window_s)
        share = probe.stop()
        waited = time.perf_counter() - start
        if share < threshold or waited >= max_wait_s:
            return waited, share


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data ----------------------------------------------------------------------------------


def record_pb2():
    """The aialgs.data protobuf module, generated from Hearth's record.proto by protoc."""
    if "record_pb2" in sys.modules:
        return sys.modules["record_pb2"]
    out = tempfile.mkdtemp(prefix="hearth-bench-pb2-")
    atexit.register(shutil.rmtree, out, True)
    proto_dir = os.path.dirname(RECORD_PROTO)
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}", RECORD_PROTO],
                   check=True)
    sys.path.insert(0, out)
    import record_pb2 as module  # noqa: E402 (generated above)
    return module


class RecordIOEncoder:
    """Dense rows as the sagemaker SDK's write_numpy_to_dense_tensor writes them (one Record
    per row, features["values"] a Float32Tensor, label["values"] the scalar label, RecordIO
    framing), vectorised: for a given width every framed record has the same bytes except the
    floats, so one record is serialised with the protobuf module, the float offsets located,
    and the template tiled and filled with numpy."""

    def __init__(self, dim, labelled):
        pb = record_pb2()
        self.dim, self.labelled = dim, labelled
        features = (np.arange(dim, dtype="<f4") + np.float32(1.25)) * np.float32(3.0)
        label = np.float32(-98765.5)
        record = pb.Record()
        record.features["values"].float32_tensor.values.extend(features.tolist())
        if labelled:
            record.label["values"].float32_tensor.values.extend([float(label)])
        payload = record.SerializeToString()
        framed = (struct.pack("<II", RECORDIO_MAGIC, len(payload)) + payload
                  + b"\x00" * ((4 - len(payload) % 4) % 4))

        def offset_of(needle):
            at = framed.find(needle)
            if at < 0 or framed.find(needle, at + 1) >= 0:
                raise BenchError("cannot locate the floats in the record template")
            return at

        self.feature_offset = offset_of(features.tobytes())
        self.label_offset = offset_of(label.tobytes()) if labelled else None
        self.template = np.frombuffer(framed, dtype=np.uint8)
        self.record_bytes = len(framed)

    def encode(self, X, y=None):
        X = np.ascontiguousarray(X, dtype="<f4")
        n = X.shape[0]
        out = np.empty((n, self.record_bytes), dtype=np.uint8)
        out[:] = self.template
        out[:, self.feature_offset:self.feature_offset + 4 * self.dim] = \
            X.view(np.uint8).reshape(n, 4 * self.dim)
        if self.labelled:
            out[:, self.label_offset:self.label_offset + 4] = \
                np.ascontiguousarray(y, dtype="<f4").view(np.uint8).reshape(n, 4)
        return out

    def write(self, path, X, y=None, chunk=100_000):
        with open(path, "wb") as f:
            for start in range(0, X.shape[0], chunk):
                part = None if y is None else y[start:start + chunk]
                f.write(self.encode(X[start:start + chunk], part).tobytes())
        self.check(path, X, y)
        return os.path.getsize(path)

    def check(self, path, X, y):
        """Parses the first and the last record back with the protobuf module."""
        pb = record_pb2()
        with open(path, "rb") as f:
            for index in (0, X.shape[0] - 1):
                f.seek(index * self.record_bytes)
                magic, length = struct.unpack("<II", f.read(8))
                record = pb.Record()
                record.ParseFromString(f.read(length))
                got = np.array(record.features["values"].float32_tensor.values, dtype=np.float32)
                ok = magic == RECORDIO_MAGIC and np.array_equal(got, X[index])
                if y is not None:
                    ok = ok and record.label["values"].float32_tensor.values[0] == np.float32(
                        y[index])
                if not ok:
                    raise BenchError(f"RecordIO record {index} of {path} does not decode")


def linear_data(rows=1_000_000, test_rows=200_000, dim=100, seed=0):
    """X ~ N(0,1) float32, w ~ N(0,1), margin = X·w + 0.5·N(0,1): binary y = [margin > 0],
    regression y = margin. The last `test_rows` rows are the test set."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows + test_rows, dim), dtype=np.float32)
    w = rng.standard_normal(dim)
    margin = (X @ w.astype(np.float32)).astype(np.float64) + 0.5 * rng.standard_normal(
        rows + test_rows)
    return {"X": X[:rows], "Xt": X[rows:], "y_bin": (margin[:rows] > 0).astype(np.float32),
            "yt_bin": (margin[rows:] > 0).astype(np.float32),
            "y_reg": margin[:rows].astype(np.float32), "yt_reg": margin[rows:].astype(np.float32)}


def xgboost_data():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=1_000_000, n_features=28, n_informative=20,
                               random_state=0)
    X = X.astype(np.float32)
    y = y.astype(np.float32)
    return {"X": X[:900_000], "y": y[:900_000], "Xt": X[900_000:], "yt": y[900_000:]}


def load_idx_images(name):
    with gzip.open(os.path.join(FASHION_MNIST, name), "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return (images / 255.0).astype(np.float32)


def fashion_mnist():
    return {"X": load_idx_images("train-images-idx3-ubyte.gz"),
            "Xt": load_idx_images("t10k-images-idx3-ubyte.gz")}


# --- Hearth as a training host and as an endpoint ------------------------------------------


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update(extra)
    return env


def registered_algorithms():
    if not os.access(HEARTH, os.X_OK):
        return set()
    out = subprocess.run([HEARTH, "algo", "list"], capture_output=True, text=True, timeout=30)
    return set(out.stdout.split()) if out.returncode == 0 else set()


class TrainingHost:
    """One /opt/ml-like directory for `hearth algo <name> train`."""

    def __init__(self, root, algorithm, hyperparameters, channels):
        self.algorithm = algorithm
        self.dir = tempfile.mkdtemp(prefix=f"{algorithm}-", dir=root)
        self.input = os.path.join(self.dir, "input")
        self.model_dir = os.path.join(self.dir, "model")
        self.output = os.path.join(self.dir, "output")
        config = os.path.join(self.input, "config")
        os.makedirs(config)
        with open(os.path.join(config, "hyperparameters.json"), "w") as f:
            json.dump({k: str(v) for k, v in hyperparameters.items()}, f)
        with open(os.path.join(config, "inputdataconfig.json"), "w") as f:
            json.dump({name: {"ContentType": content_type, "TrainingInputMode": "File",
                              "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
                       for name, (_, content_type) in channels.items()}, f)
        with open(os.path.join(config, "resourceconfig.json"), "w") as f:
            json.dump({"current_host": "algo-1", "hosts": ["algo-1"],
                       "network_interface_name": "eth0"}, f)
        for name, (path, _) in channels.items():
            channel_dir = os.path.join(self.input, "data", name)
            os.makedirs(channel_dir)
            target = os.path.join(channel_dir, os.path.basename(path))
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)

    def train(self):
        for d in (self.model_dir, self.output):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        env = clean_env(SM_INPUT_DIR=self.input, SM_MODEL_DIR=self.model_dir,
                        SM_OUTPUT_DIR=self.output)
        log_path = os.path.join(self.dir, "train.log")
        usage_path = os.path.join(self.dir, "usage")
        # Under GNU time: a child of this (large) Python process inherits its peak RSS across
        # exec, so wait4's ru_maxrss would report ours; time's child starts from a small one.
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            # Its own process group, so that an interrupted run takes the training host down.
            proc = subprocess.Popen([GNU_TIME, "-f", "%M %U %S", "-o", usage_path,
                                     HEARTH, "algo", self.algorithm, "train"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait()
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            wall = time.perf_counter() - start
        with open(log_path, errors="replace") as f:
            text = f.read()
        with open(usage_path) as f:
            usage = f.read().split("\n")
        # The last non-empty line holds the numbers (a killed child adds a line before it).
        peak_kb, user_s, sys_s = (float(v) for v in [l for l in usage if l.strip()][-1].split())
        if proc.returncode != 0:
            failure = ""
            failure_path = os.path.join(self.output, "failure")
            if os.path.exists(failure_path):
                with open(failure_path, errors="replace") as f:
                    failure = f.read().strip()
            raise BenchError(f"`hearth algo {self.algorithm} train` exited {proc.returncode}: "
                             f"{failure or text[-500:]}")
        phases = {}
        for name, seconds in re.findall(r"#phase: (\S+) seconds=([-+0-9.eE]+)", text):
            phases[name] = phases.get(name, 0.0) + float(seconds)
        return {"wall_s": wall, "phases": phases, "peak_rss_mb": peak_kb / 1024.0,
                "cpu_s": user_s + sys_s, "log": text}


class Endpoint:
    """`hearth algo <name> serve` over a model dir on a free loopback port, one keep-alive
    connection."""

    def __init__(self, algorithm, model_dir, log_dir):
        self.algorithm, self.model_dir = algorithm, model_dir
        self.log_path = os.path.join(log_dir, "serve.log")
        self.port = free_port()

    def __enter__(self):
        env = clean_env(SM_MODEL_DIR=self.model_dir, SAGEMAKER_BIND_TO_PORT=str(self.port))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HEARTH, "algo", self.algorithm, "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"serve did not answer /ping; see {self.log_path}")
            time.sleep(0.02)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self

    def __exit__(self, *exc):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def invoke(self, body, content_type, accept):
        self.conn.request("POST", "/invocations", body,
                          {"Content-Type": content_type, "Accept": accept})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise BenchError(f"/invocations answered {response.status}: {data[:300]!r}")
        return data

    def predict(self, X):
        """Every row of X through /invocations (RecordIO-protobuf in, JSON out), in batches
        under the payload limit; the list of per-row answers."""
        encoder = RecordIOEncoder(X.shape[1], labelled=False)
        batch = max(1, PAYLOAD_BYTES // encoder.record_bytes)
        answers = []
        for start in range(0, X.shape[0], batch):
            body = encoder.encode(X[start:start + batch]).tobytes()
            reply = json.loads(self.invoke(body, RECORDIO, "application/json"))
            answers += reply.get("predictions", reply.get("projections"))
        return answers


def read_ndarray_list(path):
    """MXNet's NDArray list file (mx.nd.save), as SageMaker's PCA and k-means artifacts are
    written: [(name, float array)], dense float32/float64 only."""
    with open(path, "rb") as f:
        data = f.read()
    magic, _, count = struct.unpack_from("<QQQ", data, 0)
    if magic != 0x112:
        raise BenchError(f"{path} is not an NDArray list")
    offset, arrays = 24, []
    for _ in range(count):
        array_magic, storage = struct.unpack_from("<Ii", data, offset)
        if array_magic not in (0xF993FAC9, 0xF993FACA) or storage != 0:
            raise BenchError(f"{path}: unsupported NDArray (magic {array_magic:#x})")
        (ndim,) = struct.unpack_from("<I", data, offset + 8)
        shape = struct.unpack_from(f"<{ndim}q", data, offset + 12)
        offset += 12 + 8 * ndim + 8  # dims, then dev_type and dev_id
        (type_flag,) = struct.unpack_from("<i", data, offset)
        offset += 4
        dtype = {0: "<f4", 1: "<f8"}[type_flag]
        size = int(np.prod(shape))
        arrays.append(np.frombuffer(data, dtype=dtype, count=size, offset=offset)
                      .astype(np.float64).reshape(shape))
        offset += size * np.dtype(dtype).itemsize
    names = [""] * count
    if offset < len(data):
        (name_count,) = struct.unpack_from("<Q", data, offset)
        offset += 8
        for i in range(name_count):
            (length,) = struct.unpack_from("<Q", data, offset)
            names[i] = data[offset + 8:offset + 8 + length].decode()
            offset += 8 + length
    return list(zip(names, arrays))


def model_file(model_dir, preferred):
    path = os.path.join(model_dir, preferred)
    if os.path.exists(path):
        return path
    files = sorted(f for f in os.listdir(model_dir) if not f.startswith("."))
    if not files:
        raise BenchError(f"{model_dir} is empty")
    return os.path.join(model_dir, files[0])


def predict_latency_in_process(algorithm, model_dir, csv_row, iterations=20000):
    """hearth_predict_latency: Handle() and Model::Predict on one row, no socket."""
    if not os.access(PREDICT_LATENCY, os.X_OK):
        raise BenchError(f"{PREDICT_LATENCY} is not built")
    out = subprocess.run([PREDICT_LATENCY, algorithm, model_dir, csv_row, str(iterations)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise BenchError(f"hearth_predict_latency: {out.stderr.strip()}")
    return json.loads(out.stdout)


def http_single_row_us(endpoint, csv_row, n=2000):
    return loop_us(lambda: endpoint.invoke(csv_row.encode(), "text/csv", "text/csv"), n)


def csv_row(row):
    return ",".join(str(np.float32(v)) for v in row)


# --- report rows ---------------------------------------------------------------------------


class Section:
    """One work: its rows (one per system), goal checks, latencies, notes."""

    def __init__(self, work, description):
        self.work, self.description = work, description
        self.rows, self.goals, self.latency, self.notes = [], [], [], []
        self.details = {}

    def row(self, system, fit_s=None, quality=None, **extra):
        entry = {"system": system, "fit_s": fit_s, "quality": quality or {}}
        entry.update(extra)
        self.rows.append(entry)
        return entry

    def goal(self, text, measured, met):
        self.goals.append({"goal": text, "measured": measured, "met": met})

    def to_json(self):
        return {"work": self.work, "description": self.description, "rows": self.rows,
                "goals": self.goals, "latency": self.latency, "notes": self.notes,
                "details": self.details}


def speedup(peer_s, hearth_s):
    return peer_s / hearth_s if peer_s and hearth_s else None


# --- the works -----------------------------------------------------------------------------


class Bench:
    """The works. Each runs its peers and Hearth in `repeat` interleaved rounds (the order
    rotates every round, so that drift on a shared machine hits every system alike), after
    one untimed Hearth run that warms the page cache and shows a failure early."""

    def __init__(self, args, registered, bandwidth):
        self.args = args
        self.registered = registered
        self.bandwidth = bandwidth  # GB/s by thread count
        self.root = tempfile.mkdtemp(prefix="hearth-bench-algorithms-", dir=args.tmp_root)
        self.repeat = args.repeat
        self.hp_overrides = {}
        for item in args.hp:
            algorithm, _, kv = item.partition(":")
            key, _, value = kv.partition("=")
            self.hp_overrides.setdefault(algorithm, {})[key] = value

    @property
    def bw(self):
        """The best read bandwidth measured (GB/s, any thread count): the floor."""
        return max(self.bandwidth.values()) if self.bandwidth else None

    def work_dir(self, name):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def done(self, name):
        if not self.args.keep:
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def host(self, work, algorithm, hyperparameters, train_path):
        hps = dict(hyperparameters)
        hps.update(self.hp_overrides.get(algorithm, {}))
        return TrainingHost(self.work_dir(work), algorithm, hps, {"train": (train_path, RECORDIO)})

    def run_systems(self, s, algorithm, peers, make_hosts):
        """`peers`: name -> fn() returning a fitted model (timed here). `make_hosts`: fn()
        returning name -> TrainingHost, called only when `algorithm` is registered.
        Returns (name -> {"fit_s", "samples", "model"}, name -> (host, summary))."""
        systems = {}
        for name, fit in peers.items():
            def run(fit=fit):
                start = time.perf_counter()
                model = fit()
                return {"seconds": time.perf_counter() - start, "model": model}
            systems[name] = run
        hosts = {}
        if algorithm not in self.registered:
            s.row(f"Hearth {algorithm}", None, {}, skipped="not registered")
            s.notes.append(f"Hearth `{algorithm}` is not registered in this build "
                           "(`hearth algo list`): skipped.")
        else:
            try:
                for name, host in make_hosts().items():
                    host.train()
                    hosts[name] = host
                    systems["hearth:" + name] = host.train
            except BenchError as e:
                s.row(f"Hearth {algorithm}", None, {}, skipped=f"failed: {e}")
                s.notes.append(f"Hearth `{algorithm}` failed: {e}")
        names = list(systems)
        results = {name: [] for name in names}
        for round_index in range(self.repeat):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(systems[name]())
        peer_out = {}
        for name in peers:
            samples = [r["seconds"] for r in results[name]]
            peer_out[name] = {"fit_s": statistics.median(samples), "samples": samples,
                              "model": results[name][-1]["model"]}
        return peer_out, {name: (host, summarize_runs(results["hearth:" + name]))
                          for name, host in hosts.items()}

    def peer_row(self, s, system, peer, quality, **extra):
        return s.row(system, peer["fit_s"], quality, samples=peer["samples"], **extra)

    def hearth_row(self, s, name, summary, quality, data_bytes):
        phases = summary["phases"]
        extra = {"train_process_s": summary["wall_s"], "phases": phases,
                 "peak_rss_mb": summary["peak_rss_mb"], "cpu_s": summary["cpu_s"],
                 "runs": summary["runs"], "data_bytes": data_bytes}
        if summary["fit_s"] is not None and self.bw:
            extra["passes_at_bandwidth"] = summary["fit_s"] / (data_bytes / (self.bw * 1e9))
        if not phases:
            s.notes.append(f"{name} printed no #phase lines: its fit time is not known, so "
                           "its speed-ups and goals use the whole `train` process time "
                           "(read + fit + write) instead.")
        log = summary["log"]
        s.details[f"{name} log"] = log if len(log) <= 4000 else log[:2000] + "\n...\n" + log[-2000:]
        row = s.row(name, summary["fit_s"], quality, **extra)
        row["compare_s"] = summary["fit_s"] if summary["fit_s"] is not None else summary["wall_s"]
        return row

    # linear-learner, binary ---------------------------------------------------------------

    def linear_binary(self, data):
        from sklearn.linear_model import LogisticRegression, SGDClassifier
        X, y, Xt, yt = data["X"], data["y_bin"], data["Xt"], data["yt_bin"]
        work = "linear-binary"
        s = Section("linear-learner binary",
                    f"dense {X.shape[0]:,}×{X.shape[1]} float32, y = [X·w + 0.5·N(0,1) > 0], "
                    f"{Xt.shape[0]:,} test rows; quality: test accuracy")

        def hosts():
            path = os.path.join(self.work_dir(work), "train.recordio")
            RecordIOEncoder(X.shape[1], labelled=True).write(path, X, y)
            return {"hearth": self.host(work, "linear-learner", {
                "predictor_type": "binary_classifier", "feature_dim": X.shape[1]}, path)}

        peers, hearth = self.run_systems(s, "linear-learner", {
            "lbfgs": lambda: LogisticRegression(solver="lbfgs").fit(X, y),
            "sgd": lambda: SGDClassifier(loss="log_loss", max_iter=5, tol=None,
                                         random_state=0).fit(X, y)}, hosts)
        lbfgs = peers["lbfgs"]["model"]
        rows = [self.peer_row(s, "sklearn LogisticRegression(lbfgs)", peers["lbfgs"],
                              {"accuracy": lbfgs.score(Xt, yt)},
                              iterations=int(lbfgs.n_iter_[0])),
                self.peer_row(s, "sklearn SGDClassifier(log_loss, 5 epochs)", peers["sgd"],
                              {"accuracy": peers["sgd"]["model"].score(Xt, yt)})]
        if self.args.liblinear and shutil.which("liblinear-train"):
            rows.append(self.liblinear(s, work, X, y, Xt, yt))
        best_accuracy = max(r["quality"]["accuracy"] for r in rows)
        if "hearth" in hearth:
            host, summary = hearth["hearth"]
            with Endpoint("linear-learner", host.model_dir, host.dir) as endpoint:
                labels = np.array([a["predicted_label"] for a in endpoint.predict(Xt)],
                                  dtype=np.float32)
            h = self.hearth_row(s, "Hearth linear-learner", summary,
                                {"accuracy": float(np.mean(labels == yt))}, X.nbytes)
            h["passes"] = linear_learner_passes(summary["log"])
            for row in rows:
                row["hearth_speedup"] = speedup(row["fit_s"], h["compare_s"])
            accuracy = h["quality"]["accuracy"]
            s.goal(f"fit ≤ 0.5 s at accuracy ≥ best peer − 0.001 "
                   f"({best_accuracy - 0.001:.4f})",
                   f"{h['compare_s']:.3f} s, accuracy {accuracy:.4f}",
                   h["compare_s"] <= 0.5 and accuracy >= best_accuracy - 0.001)
            s.goal("≥ 5x faster than lbfgs", f"{rows[0]['hearth_speedup']:.1f}x",
                   rows[0]["hearth_speedup"] >= 5)
            self.bandwidth_goal(s, h)
            rss_limit = 1.3 * X.nbytes / 2**20
            s.goal(f"peak RSS ≤ 1.3x the float32 data ({rss_limit:.0f} MiB)",
                   f"{h['peak_rss_mb']:.0f} MiB", h["peak_rss_mb"] <= rss_limit)
            self.linear_latency(s, host, Xt, lbfgs)
        self.done(work)
        return s

    def liblinear(self, s, work, X, y, Xt, yt):
        """liblinear-train -s 0 (L2 logistic regression, primal) at its defaults, -B 1 for the
        intercept; once. Its time includes parsing the libsvm text, estimated from
        liblinear-predict over the test file (which only parses and takes dot products)."""
        train_path = os.path.join(self.work_dir(work), "train.libsvm")
        test_path = os.path.join(self.work_dir(work), "test.libsvm")
        model_path = os.path.join(self.work_dir(work), "model.liblinear")
        train_bytes = write_libsvm(train_path, X, y)
        write_libsvm(test_path, Xt, yt)
        start = time.perf_counter()
        subprocess.run(["liblinear-train", "-s", "0", "-B", "1", "-q", train_path, model_path],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        out = subprocess.run(["liblinear-predict", test_path, model_path, os.devnull],
                             check=True, capture_output=True, text=True)
        predict_s = time.perf_counter() - start
        accuracy = float(re.search(r"Accuracy = ([0-9.]+)%", out.stdout).group(1)) / 100
        parse_estimate = predict_s * X.shape[0] / Xt.shape[0]
        for path in (train_path, test_path):
            os.unlink(path)
        return s.row("liblinear-train -s 0 (1 run, incl. parsing)", wall, {"accuracy": accuracy},
                     libsvm_bytes=train_bytes, parse_estimate_s=parse_estimate,
                     fit_without_parse_estimate_s=max(0.0, wall - parse_estimate))

    def bandwidth_goal(self, s, hearth):
        passes = hearth.get("passes")
        if not passes or hearth["fit_s"] is None or not self.bw:
            s.notes.append("Bandwidth goal not checked: " +
                           ("the log names no pass count" if not passes else "no fit time"))
            return
        floor = passes * hearth["data_bytes"] / (self.bw * 1e9)
        s.goal(f"fit within 1.25x of {passes} passes × data ÷ bandwidth ({floor:.3f} s)",
               f"{hearth['fit_s'] / floor:.2f}x", hearth["fit_s"] <= 1.25 * floor)

    def linear_latency(self, s, host, Xt, peer_model):
        algorithm = "linear-learner"
        row = csv_row(Xt[0])
        row_array = Xt[:1]
        s.latency.append({"path": "sklearn LogisticRegression.predict_proba(row)",
                          **loop_us(lambda: peer_model.predict_proba(row_array), 3000)})
        try:
            inproc = predict_latency_in_process(algorithm, host.model_dir, row)
            s.latency.append({"path": f"Hearth {algorithm} Handle() in process (csv → csv)",
                              **inproc["handle"]})
            s.latency.append({"path": f"Hearth {algorithm} Model::Predict, 1 row",
                              **inproc["predict"]})
        except BenchError as e:
            s.notes.append(str(e))
        with Endpoint(algorithm, host.model_dir, host.dir) as endpoint:
            s.latency.append({"path": f"Hearth {algorithm} serve, HTTP keep-alive round trip",
                              **http_single_row_us(endpoint, row)})

    # linear-learner, regressor ------------------------------------------------------------

    def linear_regressor(self, data):
        from sklearn.linear_model import Ridge, SGDRegressor
        X, y, Xt, yt = data["X"], data["y_reg"], data["Xt"], data["yt_reg"]
        work = "linear-regressor"
        s = Section("linear-learner regressor",
                    f"dense {X.shape[0]:,}×{X.shape[1]} float32, y = X·w + 0.5·N(0,1), "
                    f"{Xt.shape[0]:,} test rows; quality: test RMSE")

        def rmse(pred):
            return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - yt) ** 2)))

        def hosts():
            path = os.path.join(self.work_dir(work), "train.recordio")
            RecordIOEncoder(X.shape[1], labelled=True).write(path, X, y)
            return {"hearth": self.host(work, "linear-learner", {
                "predictor_type": "regressor", "feature_dim": X.shape[1]}, path)}

        peers, hearth = self.run_systems(s, "linear-learner", {
            "ridge": lambda: Ridge(alpha=1.0).fit(X, y),
            "sgd": lambda: SGDRegressor(max_iter=5, tol=None, random_state=0).fit(X, y)}, hosts)
        rows = [self.peer_row(s, "sklearn Ridge", peers["ridge"],
                              {"rmse": rmse(peers["ridge"]["model"].predict(Xt))}),
                self.peer_row(s, "sklearn SGDRegressor(5 epochs)", peers["sgd"],
                              {"rmse": rmse(peers["sgd"]["model"].predict(Xt))})]
        best_rmse = min(r["quality"]["rmse"] for r in rows)
        if "hearth" in hearth:
            host, summary = hearth["hearth"]
            with Endpoint("linear-learner", host.model_dir, host.dir) as endpoint:
                scores = [a["score"] for a in endpoint.predict(Xt)]
            h = self.hearth_row(s, "Hearth linear-learner", summary, {"rmse": rmse(scores)},
                                X.nbytes)
            h["passes"] = linear_learner_passes(summary["log"])
            for row in rows:
                row["hearth_speedup"] = speedup(row["fit_s"], h["compare_s"])
            slowest = min(r["hearth_speedup"] for r in rows)
            s.goal(f"≥ 5x faster than every peer at RMSE within 1 % of the best peer "
                   f"({best_rmse:.4f})",
                   f"{slowest:.1f}x (vs Ridge {rows[0]['hearth_speedup']:.1f}x), "
                   f"RMSE {h['quality']['rmse']:.4f}",
                   slowest >= 5 and h["quality"]["rmse"] <= best_rmse * 1.01)
        self.done(work)
        return s

    # xgboost ------------------------------------------------------------------------------

    def xgboost(self, data):
        import xgboost as xgb
        from sklearn.metrics import roc_auc_score
        X, y, Xt, yt = data["X"], data["y"], data["Xt"], data["yt"]
        work = "xgboost"
        s = Section("xgboost",
                    f"make_classification(1M, 28, n_informative=20, random_state=0), "
                    f"{X.shape[0]:,} train / {Xt.shape[0]:,} test, 100 trees, depth 6, eta 0.3, "
                    f"hist; quality: test AUC")
        threads = os.cpu_count()
        params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6,
                  "eta": 0.3, "nthread": threads}
        dmatrix_s, _, dtrain = timed(lambda: xgb.DMatrix(X, label=y, nthread=threads),
                                     self.repeat)

        def hosts():
            path = os.path.join(self.work_dir(work), "train.recordio")
            RecordIOEncoder(X.shape[1], labelled=True).write(path, X, y)
            return {"hearth": self.host(work, "xgboost", {
                "num_round": 100, "max_depth": 6, "eta": 0.3, "objective": "binary:logistic",
                "tree_method": "hist"}, path)}

        # SageMaker's container (and Hearth) print the train metric every round; the second
        # peer does the same work, the first is the goal's plain xgb.train.
        peers, hearth = self.run_systems(s, "xgboost", {
            "xgboost": lambda: xgb.train(params, dtrain, num_boost_round=100),
            "xgboost_evals": lambda: xgb.train(params, dtrain, num_boost_round=100,
                                               evals=[(dtrain, "train")], verbose_eval=False)},
            hosts)
        dtest = xgb.DMatrix(Xt)
        peer_pred = peers["xgboost"]["model"].predict(dtest)
        peer = self.peer_row(s, f"python xgboost {xgb.__version__} hist, {threads} threads",
                             peers["xgboost"], {"auc": float(roc_auc_score(yt, peer_pred))},
                             dmatrix_s=dmatrix_s)
        peer_evals = self.peer_row(
            s, f"python xgboost {xgb.__version__}, train-logloss printed every round "
            "(what the container runs)", peers["xgboost_evals"],
            {"auc": float(roc_auc_score(yt, peers["xgboost_evals"]["model"].predict(dtest)))},
            dmatrix_s=dmatrix_s)
        if "hearth" in hearth:
            host, summary = hearth["hearth"]
            booster = xgb.Booster(model_file=model_file(host.model_dir, "xgboost-model"))
            hearth_pred = booster.predict(dtest)
            row = csv_row(Xt[0])
            with Endpoint("xgboost", host.model_dir, host.dir) as endpoint:
                served = np.array([a["score"] for a in endpoint.predict(Xt)], dtype=np.float64)
                http_us = http_single_row_us(endpoint, row)
            quality = {"auc": float(roc_auc_score(yt, hearth_pred)),
                       "max_abs_diff_vs_peer": float(np.max(np.abs(hearth_pred - peer_pred))),
                       "served_max_abs_diff": float(np.max(np.abs(served - hearth_pred)))}
            h = self.hearth_row(s, "Hearth xgboost", summary, quality, X.nbytes)
            peer["hearth_speedup"] = speedup(peer["fit_s"], h["compare_s"])
            peer_evals["hearth_speedup"] = speedup(peer_evals["fit_s"], h["compare_s"])
            s.goal("training ≤ 1.1x xgboost's time", f"{h['compare_s'] / peer['fit_s']:.2f}x "
                   f"(with the train metric each round, as the container: "
                   f"{h['compare_s'] / peer_evals['fit_s']:.2f}x)",
                   h["compare_s"] <= 1.1 * peer["fit_s"])
            s.goal("identical predictions (Hearth's model vs xgboost's, test rows)",
                   f"max abs Δp = {quality['max_abs_diff_vs_peer']:.2e}; served vs its own "
                   f"model {quality['served_max_abs_diff']:.2e}",
                   quality["max_abs_diff_vs_peer"] <= 1e-6
                   and quality["served_max_abs_diff"] <= 1e-5)
            self.xgboost_latency(s, host, booster, Xt, row, http_us)
        self.done(work)
        return s

    def xgboost_latency(self, s, host, booster, Xt, row, http_us):
        """Single-row prediction, all on Hearth's model."""
        import xgboost as xgb
        row_array = Xt[:1]
        inplace = loop_us(lambda: booster.inplace_predict(row_array), 3000)
        s.latency.append({"path": "python xgboost booster.inplace_predict(row)", **inplace})
        s.latency.append({"path": "python xgboost DMatrix(row) + predict",
                          **loop_us(lambda: booster.predict(xgb.DMatrix(row_array)), 1000)})
        try:
            inproc = predict_latency_in_process("xgboost", host.model_dir, row)
            s.latency.append({"path": "Hearth xgboost Handle() in process (csv → csv)",
                              **inproc["handle"]})
            s.latency.append({"path": "Hearth xgboost Model::Predict, 1 row", **inproc["predict"]})
            ratio = inplace["median_us"] / inproc["handle"]["median_us"]
            s.goal("single-row /invocations in `serve` (in process) ≥ 5x faster than "
                   "inplace_predict",
                   f"{ratio:.1f}x ({inproc['handle']['median_us']:.2f} µs vs "
                   f"{inplace['median_us']:.2f} µs)", ratio >= 5)
        except BenchError as e:
            s.notes.append(str(e))
        s.latency.append({"path": "Hearth xgboost serve, HTTP keep-alive round trip", **http_us})

    # k-means ------------------------------------------------------------------------------

    def kmeans(self, data):
        from sklearn.cluster import KMeans
        X, Xt = data["X"], data["Xt"]
        work = "kmeans"
        s = Section("kmeans", "Fashion-MNIST 60000×784 / 255, k = 10, k-means++; quality: "
                    "inertia (float64, of each system's centers on the train rows)")

        def hosts():
            path = os.path.join(self.work_dir(work), "train.recordio")
            RecordIOEncoder(X.shape[1], labelled=False).write(path, X)
            return {"hearth": self.host(work, "kmeans", {
                "feature_dim": X.shape[1], "k": 10, "init_method": "kmeans++"}, path)}

        peers, hearth = self.run_systems(s, "kmeans", {
            "sklearn": lambda: KMeans(n_clusters=10, init="k-means++", n_init=1, random_state=0,
                                      algorithm="lloyd").fit(X)}, hosts)
        model = peers["sklearn"]["model"]
        peer_inertia = inertia(X, model.cluster_centers_)
        peer = self.peer_row(s, "sklearn KMeans(k-means++, n_init=1, lloyd)", peers["sklearn"],
                             {"inertia": peer_inertia, "iterations": int(model.n_iter_)})
        if "hearth" in hearth:
            host, summary = hearth["hearth"]
            centers = read_ndarray_list(model_file(host.model_dir, "model_algo-1"))[0][1]
            with Endpoint("kmeans", host.model_dir, host.dir) as endpoint:
                served = np.array([a["closest_cluster"] for a in endpoint.predict(Xt)])
            hearth_inertia = inertia(X, centers)
            # Is Hearth's answer a Lloyd fixed point? sklearn's Lloyd, started from its centers.
            polish = KMeans(n_clusters=10, init=centers.astype(np.float32), n_init=1,
                            algorithm="lloyd").fit(X)
            quality = {"inertia": hearth_inertia,
                       "vs_sklearn": hearth_inertia / peer_inertia - 1,
                       "sklearn_lloyd_iterations_from_these_centers": int(polish.n_iter_),
                       "inertia_after_sklearn_lloyd": inertia(X, polish.cluster_centers_),
                       "served_cluster_agreement": float(np.mean(
                           served == nearest_centers(Xt, centers)))}
            h = self.hearth_row(s, "Hearth kmeans (training job)", summary, quality, X.nbytes)
            peer["hearth_speedup"] = speedup(peer["fit_s"], h["compare_s"])
            s.goal("training job: inertia within 0.1 % of sklearn's (or lower)",
                   f"{100 * quality['vs_sklearn']:+.3f} %", quality["vs_sklearn"] <= 0.001)
            s.notes.append(
                "the training job runs SageMaker's pipeline (a 100-center streaming "
                "pass, 10 reduction trials) and then Lloyd over all rows from every distinct "
                "trial, keeping the best: more work than one k-means++ run, for a lower "
                "inertia. The same-init rows compare the same work.")
        self.kmeans_same_init(s, X)
        self.done(work)
        return s

    def kmeans_same_init(self, s, X):
        """k-means++ seeding + Lloyd to a stable assignment (hearth_kmeans_core), and
        scikit-learn's Lloyd from the very centers Hearth's seeding chose."""
        from sklearn.cluster import KMeans
        if not os.access(KMEANS_CORE, os.X_OK):
            s.notes.append(f"{KMEANS_CORE} is not built: same-init rows skipped.")
            return
        prefix = os.path.join(self.work_dir("kmeans"), "core")
        path = os.path.join(FASHION_MNIST, "train-images-idx3-ubyte.gz")
        runs = []
        for _ in range(self.repeat):
            out = subprocess.run([KMEANS_CORE, path, "10", prefix], capture_output=True,
                                 text=True, timeout=600)
            if out.returncode != 0:
                s.notes.append(f"hearth_kmeans_core failed (exit {out.returncode}): "
                               f"{out.stderr.strip()}")
                return
            runs.append(json.loads(out.stdout))
        init = np.fromfile(prefix + ".init.f32", dtype=np.float32).reshape(10, -1)
        centers = np.fromfile(prefix + ".centers.f32", dtype=np.float32).reshape(10, -1)
        lloyd_s = statistics.median(r["lloyd_s"] for r in runs)
        seeding_s = statistics.median(r["init_s"] for r in runs)
        peer_s, samples, model = timed(
            lambda: KMeans(n_clusters=10, init=init, n_init=1, tol=0, max_iter=300,
                           algorithm="lloyd").fit(X), self.repeat)
        peer_inertia = inertia(X, model.cluster_centers_)
        hearth_inertia = inertia(X, centers)
        s.row("sklearn KMeans Lloyd from Hearth's k-means++ centers (tol=0)", peer_s,
              {"inertia": peer_inertia, "iterations": int(model.n_iter_)}, samples=samples,
              hearth_speedup=speedup(peer_s, lloyd_s))
        s.row("Hearth Lloyd from the same centers (hearth_kmeans_core)", lloyd_s,
              {"inertia": hearth_inertia, "iterations": runs[-1]["iterations"],
               "vs_sklearn": hearth_inertia / peer_inertia - 1},
              notes=f"k-means++ seeding before it {seeding_s:.3f} s")
        ratio = speedup(peer_s, lloyd_s)
        relative = hearth_inertia / peer_inertia - 1
        s.goal("same init: Lloyd ≥ 4x faster than sklearn's, inertia within 0.1 %",
               f"{ratio:.1f}x, inertia {100 * relative:+.4f} %",
               ratio >= 4 and abs(relative) <= 0.001)

    # PCA ----------------------------------------------------------------------------------

    def pca(self, data):
        from sklearn.decomposition import PCA
        X, Xt = data["X"], data["Xt"]
        k = 50
        work = "pca"
        s = Section("pca", f"Fashion-MNIST 60000×784 / 255 → {k} components; quality: "
                    "explained variance ratio (EVR) against full SVD")
        modes = ("regular", "randomized")

        def hosts():
            path = os.path.join(self.work_dir(work), "train.recordio")
            RecordIOEncoder(X.shape[1], labelled=False).write(path, X)
            return {mode: self.host(work, "pca", {
                "feature_dim": X.shape[1], "num_components": k, "mini_batch_size": 1000,
                "algorithm_mode": mode}, path) for mode in modes}

        peers, hearth = self.run_systems(s, "pca", {
            "randomized": lambda: PCA(k, svd_solver="randomized", random_state=0).fit(X),
            "full": lambda: PCA(k, svd_solver="full").fit(X)}, hosts)
        evr_full = peers["full"]["model"].explained_variance_ratio_.astype(np.float64)
        evr_randomized = peers["randomized"]["model"].explained_variance_ratio_
        peer_r = self.peer_row(s, "sklearn PCA(randomized)", peers["randomized"], {
            "evr_sum": float(evr_randomized.sum()),
            "evr_max_abs_diff_vs_full": float(np.max(np.abs(evr_randomized - evr_full)))})
        peer_f = self.peer_row(s, "sklearn PCA(full SVD)", peers["full"],
                               {"evr_sum": float(evr_full.sum())})
        centered_ss = float(((X.astype(np.float64) - X.mean(0, dtype=np.float64)) ** 2).sum())
        for mode, (host, summary) in hearth.items():
            arrays = dict(read_ndarray_list(model_file(host.model_dir, "model_algo-1")))
            with Endpoint("pca", host.model_dir, host.dir) as endpoint:
                served = np.array([a["projection"] for a in endpoint.predict(Xt)])
            # EVR as Hearth logs it (6 decimals), and from the model's singular values.
            evr_model = np.sort(arrays["s"].ravel() ** 2)[::-1] / centered_ss
            evr_log = [float(v) for v in re.findall(
                r"explained variance ratio ([0-9.]+) \(cumulative", summary["log"])]
            evr = np.array(evr_log) if len(evr_log) == k else evr_model
            mean = arrays.get("mean", np.zeros((1, X.shape[1]))).ravel()
            expected = (Xt.astype(np.float64) - mean) @ arrays["v"]
            quality = {"evr_sum": float(evr.sum()),
                       "evr_max_abs_diff_vs_full": float(np.max(np.abs(evr - evr_full))),
                       "evr_from_model_max_abs_diff_vs_full": float(np.max(np.abs(
                           evr_model - evr_full))),
                       "served_projection_max_abs_diff": float(np.max(np.abs(
                           served - expected)))}
            h = self.hearth_row(s, f"Hearth pca ({mode})", summary, quality, X.nbytes)
            h["speedup_vs_randomized"] = speedup(peer_r["fit_s"], h["compare_s"])
            h["speedup_vs_full"] = speedup(peer_f["fit_s"], h["compare_s"])
            s.goal(f"{mode}: ≥ 2x sklearn randomized and ≥ 5x sklearn full",
                   f"{h['speedup_vs_randomized']:.1f}x / {h['speedup_vs_full']:.1f}x",
                   h["speedup_vs_randomized"] >= 2 and h["speedup_vs_full"] >= 5)
            s.goal(f"{mode}: EVR within 1e-4 of full SVD",
                   f"max abs Δ = {quality['evr_max_abs_diff_vs_full']:.1e}",
                   quality["evr_max_abs_diff_vs_full"] <= 1e-4)
        self.done(work)
        return s


def summarize_runs(runs):
    """Medians over repeated `hearth algo <name> train` runs (TrainingHost.train results)."""
    phases = {name: statistics.median(r["phases"].get(name, 0.0) for r in runs)
              for name in runs[-1]["phases"]}
    return {"runs": [{k: v for k, v in r.items() if k != "log"} for r in runs],
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "phases": phases, "fit_s": phases.get("fit"), "log": runs[-1]["log"]}


def inertia(X, centers, chunk=10_000):
    """Sum of squared distances to the nearest center, in float64."""
    C = np.asarray(centers, dtype=np.float64)
    c2 = (C ** 2).sum(1)
    total = 0.0
    for start in range(0, X.shape[0], chunk):
        x = X[start:start + chunk].astype(np.float64)
        d = (x ** 2).sum(1)[:, None] - 2 * x @ C.T + c2[None, :]
        total += float(np.maximum(d.min(1), 0).sum())
    return total


def nearest_centers(X, centers):
    C = np.asarray(centers, dtype=np.float64)
    x = X.astype(np.float64)
    return ((C ** 2).sum(1)[None, :] - 2 * x @ C.T).argmin(1)


def linear_learner_passes(log):
    """Passes over the train data: one per epoch the linear learner logged ("epoch N: train
    objective_loss ...")."""
    epochs = re.findall(r"epoch (\d+): train objective_loss", log)
    return max(int(e) for e in epochs) + 1 if epochs else None


def write_libsvm(path, X, y, chunk=50_000):
    """libsvm text with 1-based indices and every value as a fixed-width "+d.dddd" (|x| < 10,
    4 decimals), built with numpy: text formatting of 100M floats in Python would take
    minutes."""
    n, d = X.shape
    prefixes = [f" {j + 1}:".encode() for j in range(d)]
    width = 1 + sum(len(p) + 7 for p in prefixes) + 1  # label, cells, newline
    template = np.frombuffer(b"0" + b"".join(p + b"+0.0000" for p in prefixes) + b"\n",
                             dtype=np.uint8)
    starts = np.cumsum([0] + [len(p) + 7 for p in prefixes[:-1]]) + 1
    value_at = starts + np.array([len(p) for p in prefixes])  # sign position per column
    with open(path, "wb") as f:
        for r0 in range(0, n, chunk):
            x = X[r0:r0 + chunk]
            m = x.shape[0]
            out = np.empty((m, width), dtype=np.uint8)
            out[:] = template
            out[:, 0] = np.where(y[r0:r0 + chunk] > 0, ord("1"), ord("0"))
            q = np.rint(np.minimum(np.abs(x), 9.9999) * 10_000).astype(np.int32)
            out[:, value_at] = np.where(x < 0, ord("-"), ord("+"))
            out[:, value_at + 1] = ord("0") + q // 10_000
            for place, divisor in enumerate((1000, 100, 10, 1)):
                out[:, value_at + 3 + place] = ord("0") + (q // divisor) % 10
            f.write(out.tobytes())
    return os.path.getsize(path)


# --- machine and report --------------------------------------------------------------------


def memory_bandwidth():
    if not os.access(MEMORY_BANDWIDTH, os.X_OK):
        return None, "hearth_memory_bandwidth is not built"
    out = subprocess.run([MEMORY_BANDWIDTH], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)["threads"], "hearth_memory_bandwidth: AVX2 sum over 1 GiB float32"


def machine_info():
    import sklearn
    import xgboost
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        from threadpoolctl import threadpool_info
        blas = [{k: i.get(k) for k in ("user_api", "internal_api", "version", "architecture",
                                       "threading_layer", "num_threads", "filepath")}
                for i in threadpool_info()]
    except ImportError:
        blas = []
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() != ""
    build_type = ""
    cache = os.path.join(BUILD_DIR, "CMakeCache.txt")
    if os.path.exists(cache):
        with open(cache) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
            build_type = m.group(1) if m else ""
    return {"cpu": cpu, "nproc": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "xgboost": xgboost.__version__, "blas": blas,
            "blas_env_unset": os.environ.get("HEARTH_BENCH_UNSET_BLAS_ENV", ""),
            "hearth_commit": commit + ("+local changes" if dirty else ""),
            "hearth_build_type": build_type, "hearth": HEARTH, "nice": os.nice(0)}


def fmt_s(v):
    return "–" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def fmt_quality(q):
    parts = []
    for key, value in q.items():
        if isinstance(value, dict):
            continue
        if isinstance(value, int):
            parts.append(f"{key.replace('_', ' ')} {value}")
        elif key == "vs_sklearn":
            parts.append(f"{100 * value:+.3f} % vs sklearn")
        elif key.startswith("inertia"):
            parts.append(f"inertia {value:.6g}")
        elif "diff" in key:
            parts.append(f"{key.replace('_', ' ')} {value:.1e}")
        elif key == "served_cluster_agreement":
            parts.append(f"served cluster = nearest {100 * value:.2f} %")
        else:
            parts.append(f"{key.replace('_', ' ')} {value:.4f}")
    return "; ".join(parts)


def render_markdown(report):
    m = report["machine"]
    blas = ", ".join(f"{b['internal_api']} {b.get('version') or ''} "
                     f"({b.get('architecture') or '-'} kernel, {b.get('num_threads')} threads)"
                     for b in m["blas"] if b.get("user_api") == "blas") or "unknown"
    bw = report["bandwidth"]
    lines = [
        "# Built-in algorithms against their peers",
        "",
        f"`bench/algorithms.py`, {report['started']}, {report['duration_s']:.0f} s. "
        f"{m['cpu']}, {m['nproc']} cores, kernel {m['kernel']}; "
        f"load average {report['load_before'][0]:.2f} before, {report['load_after'][0]:.2f} after "
        "(the machine is shared: compare rows of the same run only).",
        f"Peers: numpy {m['numpy']} on {blas}; scikit-learn {m['sklearn']}; "
        f"xgboost {m['xgboost']}; liblinear-tools. Hearth {m['hearth_commit']} "
        f"({m['hearth_build_type'] or 'build type unknown'}, `{m['hearth']}`; registered: "
        f"{', '.join(report['registered']) or 'none'}). "
        + (f"Removed from the environment for this run: {m['blas_env_unset']}. "
           if m["blas_env_unset"] else ""),
        f"Every time is the median of {report['repeat']} runs unless the row says otherwise."
        + (f" Run at nice {m['nice']} (its children too), so that other work on the machine "
           "takes little of its CPU time." if m.get("nice") else ""),
        "",
        "Memory read bandwidth (one pass over 1 GiB float32): "
        + (", ".join(f"{t} thread{'s' if t != '1' else ''} {v:.1f} GB/s" for t, v in bw.items())
           if bw else report["bandwidth_note"])
        + " (perf-anchors §0 on a quiet machine: 37–38 GB/s on 1 core, 44.5 GB/s on 2)"
        + ". *Passes* = fit time ÷ (data bytes ÷ the best of those): how many reads of the "
        "data the fit costs.",
        "",
        "| Work | System | Fit s | Hearth faster by | Hearth `train` process s (phases); notes | "
        "Peak RSS MiB | Passes | Quality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for section in report["sections"]:
        for row in section["rows"]:
            if row.get("skipped"):
                lines.append(f"| {section['work']} | {row['system']} | – | – | "
                             f"{row['skipped']} | – | – | – |")
                continue
            speed = row.get("hearth_speedup")
            if row["system"].startswith("Hearth pca"):
                speed_text = (f"{row['speedup_vs_randomized']:.1f}x vs randomized, "
                              f"{row['speedup_vs_full']:.1f}x vs full")
            else:
                speed_text = f"{speed:.1f}x" if speed else ""
            process = ""
            if "train_process_s" in row:
                phases = ", ".join(f"{k} {v:.3f}" for k, v in row["phases"].items())
                process = f"{row['train_process_s']:.3f}" + (f" ({phases})" if phases else
                                                             " (no #phase lines)")
            elif row.get("parse_estimate_s") is not None:
                process = f"parsing ≈ {row['parse_estimate_s']:.1f} of it"
            elif row.get("dmatrix_s") is not None:
                process = f"DMatrix build {row['dmatrix_s']:.3f} s not in fit"
            elif row.get("notes"):
                process = row["notes"]
            rss = f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else ""
            passes = f"{row['passes_at_bandwidth']:.0f}" if row.get("passes_at_bandwidth") else ""
            fit = fmt_s(row["fit_s"]) if row["fit_s"] is not None else "–"
            if row["fit_s"] is None and row.get("train_process_s"):
                fit = "– (no fit phase)"
            lines.append(f"| {section['work']} | {row['system']} | {fit} | {speed_text} | "
                         f"{process} | {rss} | {passes} | {fmt_quality(row['quality'])} |")
    lines += ["", "## Goals", "", "| Work | Goal | Measured | Met |", "|---|---|---|---|"]
    for section in report["sections"]:
        for goal in section["goals"]:
            lines.append(f"| {section['work']} | {goal['goal']} | {goal['measured']} | "
                         f"{'yes' if goal['met'] else '**no**'} |")
        if not section["goals"]:
            lines.append(f"| {section['work']} | – | not measured (Hearth not run) | – |")
    latency = [(s["work"], e, s["latency"][0]) for s in report["sections"] for e in s["latency"]]
    if latency:
        lines += ["", "## Single-row prediction (one test row, same model within a work)", "",
                  "The first row of each work is the peer's own single-row predict; *faster "
                  "by* = its median ÷ this median.", "",
                  "| Work | Path | median µs | p99 µs | Faster by |", "|---|---|---|---|---|"]
        for work, e, reference in latency:
            ratio = reference["median_us"] / e["median_us"]
            lines.append(f"| {work} | {e['path']} | {e['median_us']:.2f} | {e['p99_us']:.2f} | "
                         f"{ratio:.1f}x |")
    notes = [(s["work"], n) for s in report["sections"] for n in s["notes"]]
    lines += ["", "## Notes", ""]
    for section in report["sections"]:
        d = section["details"]
        lines.append(f"* **{section['work']}**: {section['description']}. Took "
                     f"{d.get('seconds', 0):.0f} s; other processes used "
                     f"{100 * d.get('other_load', 0):.0f} % of the CPUs meanwhile.")
    for work, note in notes:
        lines.append(f"* {work}: {note}")
    lines += [
        "* Hearth runs as a training host does: `hearth algo <name> train` over an /opt/ml-like "
        "directory, data as application/x-recordio-protobuf in File mode (page cache warm). "
        "*Fit* is its `#phase: fit` line; the process time adds reading the channel and writing "
        "the model. Peak RSS is the process's own (GNU time's %M). Peers' fit times are their fit "
        "calls on in-memory numpy arrays (sklearn converts float32 to float64 inside where its "
        "solver needs it; that is part of its fit).",
        "* Quality of Hearth's linear models, XGBoost's served scores, k-means' served clusters "
        "and PCA's served projections come from `hearth algo <name> serve`: the test rows "
        "POSTed to /invocations as RecordIO-protobuf, answers read as JSON.",
        "",
    ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=WORKS, default=list(WORKS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hp", action="append", default=[],
                        help="ALGORITHM:NAME=VALUE, a Hearth hyperparameter to set or override "
                             "(e.g. linear-learner:epochs=5)")
    parser.add_argument("--no-liblinear", dest="liblinear", action="store_false",
                        help="skip liblinear-train (about 40 s with writing its text input)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each work, wait up to this many seconds until other "
                             "processes use under 25 %% of the CPUs (0: do not wait)")
    parser.add_argument("--out", default=RESULTS_DIR)
    parser.add_argument("--tmp-root", default=None, help="where data and /opt/ml dirs go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    # SIGTERM unwinds like Ctrl-C: training hosts and endpoints are stopped, the temporary
    # directory removed.
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)

    started = time.perf_counter()
    report = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
              "repeat": args.repeat, "load_before": load_average(), "machine": machine_info()}
    bandwidth, report["bandwidth_note"] = memory_bandwidth()
    report["bandwidth"] = bandwidth
    registered = registered_algorithms()
    report["registered"] = sorted(registered)
    print(f"registered: {', '.join(sorted(registered)) or 'none'}; bandwidth {bandwidth}",
          flush=True)
    bench = Bench(args, registered, bandwidth)
    sections = []

    def run(name, fn, data):
        waited, quiet_share = wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else (0, None)
        print(f"== {name}" + (f" (waited {waited:.0f} s for a quiet machine: others at "
                              f"{100 * quiet_share:.0f} %)" if quiet_share is not None else ""),
              flush=True)
        start = time.perf_counter()
        others = OtherLoad().start()
        try:
            section = fn(data)
        except Exception as e:  # a broken work is reported, the others still run
            section = Section(name, "failed")
            section.notes.append(f"the benchmark itself failed: {e!r}")
            traceback.print_exc()
        section.details["other_load"] = others.stop()
        section.details["seconds"] = time.perf_counter() - start
        section.details["load_after"] = load_average()
        section.details["quiet_wait_s"] = waited
        sections.append(section)
        for row in section.rows:
            print(f"   {row['system']}: fit {fmt_s(row['fit_s'])} s  {fmt_quality(row['quality'])}"
                  f"{'  ' + row['skipped'] if row.get('skipped') else ''}", flush=True)
        for goal in section.goals:
            print(f"   goal {goal['goal']}: {goal['measured']} -> "
                  f"{'met' if goal['met'] else 'NOT met'}", flush=True)

    try:
        if {"linear-binary", "linear-regressor"} & set(args.only):
            data = linear_data()
            if "linear-binary" in args.only:
                run("linear-learner binary", bench.linear_binary, data)
            if "linear-regressor" in args.only:
                run("linear-learner regressor", bench.linear_regressor, data)
            del data
        if "xgboost" in args.only:
            run("xgboost", bench.xgboost, xgboost_data())
        if {"kmeans", "pca"} & set(args.only):
            data = fashion_mnist()
            if "kmeans" in args.only:
                run("kmeans", bench.kmeans, data)
            if "pca" in args.only:
                run("pca", bench.pca, data)
    finally:
        if args.keep:
            print(f"kept {bench.root}")
        else:
            shutil.rmtree(bench.root, ignore_errors=True)

    report["load_after"] = load_average()
    report["duration_s"] = time.perf_counter() - started
    report["sections"] = [s.to_json() for s in sections]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "algorithms.json"), "w") as f:
        json.dump(report, f, indent=1, default=float)
    markdown = render_markdown(report)
    with open(os.path.join(args.out, "algorithms.md"), "w") as f:
        f.write(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
