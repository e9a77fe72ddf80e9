#!/usr/bin/python3
"""InvokeEndpoint throughput and latency, and CreateEndpoint -> InService.

Starts its own `hearth server` (temporary data dir, free port), trains a linear-learner binary
classifier on 100 synthetic features through boto3, deploys it (InitialInstanceCount=1) and
measures, side by side in one run:

  create     CreateEndpoint -> InService as a client polling DescribeEndpoint every 10 ms sees
             it (median of CYCLES create/delete cycles).
  front      wrk against POST /endpoints/<name>/invocations on the server (unsigned, keep-alive):
             the whole Hearth path, front + instance. 1-row CSV, and 1-row JSON.
  direct     wrk against the endpoint instance's own POST /invocations (its port is read from
             SAGEMAKER_BIND_TO_PORT in the instance process's environment): no front.
  gunicorn   the peer users write by hand: Debian's gunicorn (1 worker, gthread worker class,
             1 thread: the sync worker closes every connection, so it cannot keep alive) running
             a Flask app that predicts with scikit-learn's LogisticRegression trained on the
             same rows, answering the same 1-row CSV in linear-learner's JSON shape.
  xgboost    the same front and peer with an XGBoost model: `hearth/xgboost` trained on the same
             rows (100 trees, depth 6) behind an endpoint, against gunicorn + Flask + the python
             xgboost module (Debian python3-xgboost) serving that job's own `xgboost-model` with
             inplace_predict on one thread, both answering the 1-row CSV with the score as CSV.
  nginx      nginx (1 worker) serving a small static file on loopback: the ceiling of loopback
             HTTP on this machine.
  nginx proxy  the same nginx as a reverse proxy in front of the same instance (keep-alive to
             it): what the best-known front costs on this machine, beside Hearth's.

Every load is wrk (Debian's, keep-alive, one thread) for DURATION seconds at 1, 8 and 64
connections; requests/s and p50/p99 come from wrk --latency. The rounds are interleaved
(every target at 1 connection, then at 8, ...) and repeated REPEAT times; the tables give the
median of the rounds, and every round is in the JSON. Beside each load, the CPU time that the
processes serving it (Hearth's server, the instance, nginx, gunicorn) and wrk spent per
request, from /proc: on a machine shared with other work this moves far less than req/s.

p99 at 80 % of peak: wrk at 64 connections with a Lua delay() that sends on a fixed schedule
(0.8 x the target's best req/s), sent-time latency (not corrected for coordinated omission),
millisecond timer granularity. Results go to bench/results/invoke_latency.{json,md}.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/invoke_latency.py   (or `make bench`)
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import botocore.config
import botocore.exceptions
import numpy as np

import hearth_server  # noqa: E402
from hearth_server import HEARTH, REPO, Server, free_port  # noqa: E402
RESULTS_DIR = os.path.join(REPO, "bench", "results")
ROLE = "arn:aws:iam::000000000000:role/bench"
FEATURES = 100
ROWS = 2000
CONNECTIONS = (1, 8, 64)
POLL_S = 0.01  # DescribeEndpoint polling interval while an endpoint is Creating

FLASK_APP = """\
import json
import os

import numpy as np
from flask import Flask, Response, request
from sklearn.linear_model import LogisticRegression

data = np.load(os.environ["BENCH_TRAIN_NPZ"])
model = LogisticRegression(max_iter=1000).fit(data["X"], data["y"])
app = Flask(__name__)


@app.route("/ping")
def ping():
    return ""


@app.route("/invocations", methods=["POST"])
def invocations():
    rows = [[float(v) for v in line.split(",")]
            for line in request.get_data(as_text=True).splitlines() if line]
    scores = model.predict_proba(np.array(rows))[:, 1]
    body = {"predictions": [{"score": float(s), "predicted_label": int(s >= 0.5)}
                            for s in scores]}
    return Response(json.dumps(body), mimetype="application/json")
"""

FLASK_XGBOOST_APP = """\
import os

import numpy as np
import xgboost
from flask import Flask, Response, request

booster = xgboost.Booster(model_file=os.environ["BENCH_XGBOOST_MODEL"])
# One thread: a 1-row prediction gains nothing from more, and OpenMP's spinning threads cost
# the peer dearly on a shared machine.
booster.set_param({"nthread": 1})
app = Flask(__name__)


@app.route("/ping")
def ping():
    return ""


@app.route("/invocations", methods=["POST"])
def invocations():
    rows = np.array([[float(v) for v in line.split(",")]
                     for line in request.get_data(as_text=True).splitlines() if line],
                    dtype=np.float32)
    scores = booster.inplace_predict(rows)
    return Response("".join(f"{s:.7g}\\n" for s in scores), mimetype="text/csv")
"""

NGINX_PROXY = """\
    upstream instance {{
        server 127.0.0.1:{instance_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://instance;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
    }}
{proxy}}}
"""

WRK_POST = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "{ctype}"
"""

# A fixed schedule of WRK_RATE requests/s over all connections: delay() says how long until the
# next slot (0 when behind, so that the schedule catches up). wrk's timers count whole ms.
WRK_RATE = """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / tonumber(os.getenv("WRK_RATE"))
local next_at = nil
function delay()
  local t = now_ms()
  if next_at == nil then next_at = t end
  next_at = next_at + interval
  return math.max(0, next_at - t)
end
"""


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def synthetic_data():
    """A linearly separable-ish binary problem: label = sign(X.w + noise)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
    w = rng.standard_normal(FEATURES)
    y = ((X @ w + 0.5 * rng.standard_normal(ROWS)) > 0).astype(np.float32)
    return X, y


def csv_rows(X, y=None):
    lines = []
    for i, row in enumerate(X):
        cells = ([repr(float(y[i]))] if y is not None else []) + [repr(float(v)) for v in row]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def train_model(sm, s3, X, y, algorithm="linear-learner", hyperparameters=None):
    """Trains hearth/<algorithm> on the rows and returns the S3 URI of model.tar.gz."""
    job = f"{algorithm}-bench"
    try:
        s3.create_bucket(Bucket="bench")
    except botocore.exceptions.ClientError as e:
        if "BucketAlready" not in str(e):
            raise
    s3.put_object(Bucket="bench", Key="ll/train/part-000", Body=csv_rows(X, y))
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": f"hearth/{algorithm}",
                                "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters=hyperparameters or {
            "predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
            "mini_batch_size": "100", "epochs": "5"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv",
                          "DataSource": {"S3DataSource": {
                              "S3DataType": "S3Prefix", "S3Uri": "s3://bench/ll/train/",
                              "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bench/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300})
    d = wait_until(lambda: (lambda d: d if d["TrainingJobStatus"] in
                            ("Completed", "Failed", "Stopped") else None)(
        sm.describe_training_job(TrainingJobName=job)), 300, "training job", 0.1)
    if d["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"training ended {d['TrainingJobStatus']}: {d.get('FailureReason')}")
    return d["ModelArtifacts"]["S3ModelArtifacts"]


def create_until_in_service(sm, name, timeout=60, config="ll"):
    """CreateEndpoint, then DescribeEndpoint every POLL_S until InService; returns ms."""
    t0 = time.perf_counter()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    deadline = time.monotonic() + timeout
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] == "InService":
            return (time.perf_counter() - t0) * 1000.0
        if d["EndpointStatus"] == "Failed":
            raise SystemExit(f"endpoint {name} failed: {d.get('FailureReason')}")
        if time.monotonic() > deadline:
            raise SystemExit(f"endpoint {name} not InService in {timeout}s")
        time.sleep(POLL_S)


def delete_and_wait(sm, name, timeout=60):
    sm.delete_endpoint(EndpointName=name)

    def gone():
        try:
            sm.describe_endpoint(EndpointName=name)
            return False
        except botocore.exceptions.ClientError as e:
            return "Could not find" in str(e)
    wait_until(gone, timeout, f"deletion of {name}", POLL_S)


def instance_ports(data_dir):
    """SAGEMAKER_BIND_TO_PORT of every endpoint instance of the server on `data_dir`."""
    return sorted(instance_pids(data_dir))


def instance_pids(data_dir):
    """{SAGEMAKER_BIND_TO_PORT: pid} of every endpoint instance of the server on `data_dir`.
    Instances outlive the server's process (their supervisor is detached), so they are found
    through a supervisor ancestor whose command line names a state directory under `data_dir`;
    the pid is the process serving (the one that is not an ancestor of another)."""
    parents, cmdlines = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdlines[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    ports = {}
    for pid in sorted(parents):
        p, depth, ours = parents[pid], 0, False
        while p in parents and depth < 32:
            if data_dir + "/" in cmdlines.get(p, ""):
                ours = True
                break
            p, depth = parents[p], depth + 1
        if not ours:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"SAGEMAKER_BIND_TO_PORT="):
                port = int(kv.split(b"=", 1)[1])
                # The deepest process with the variable is the server itself (bwrap and the
                # sandbox's init carry it too).
                if port not in ports or _is_ancestor(parents, ports[port], pid):
                    ports[port] = pid
    return ports


def _is_ancestor(parents, a, pid):
    depth = 0
    while pid in parents and depth < 32:
        pid, depth = parents[pid], depth + 1
        if pid == a:
            return True
    return False


def children(pid):
    """Pids whose parent is `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU time of `pids` (all their threads) so far."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, ValueError, IndexError):
            pass
    return total


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, connections, duration, script=None, pids=(), env=None):
    """One wrk run; with `pids`, also the CPU µs per request of those processes and of wrk."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    for attempt in range(3):
        cpu0, wrk0 = cpu_seconds(pids), _children_cpu()
        out = subprocess.run(argv + [url], capture_output=True, text=True, check=True,
                             env=env).stdout
        cpu1, wrk1 = cpu_seconds(pids), _children_cpu()
        pct = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
        if len(pct) == 4:
            break
        print(f"wrk printed no latency distribution; again:\n{out}", flush=True)
    else:
        raise SystemExit("wrk printed no latency distribution three times")
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    total = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {"connections": connections, "requests_per_s": round(rps, 1), "requests": total,
            "p50_ms": round(_ms(pct["50"]), 4), "p75_ms": round(_ms(pct["75"]), 4),
            "p90_ms": round(_ms(pct["90"]), 4), "p99_ms": round(_ms(pct["99"]), 4),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else "",
            "server_cpu_us_per_request": round((cpu1 - cpu0) / total * 1e6, 2)
            if pids and total else None,
            "wrk_cpu_us_per_request": round((wrk1 - wrk0) / total * 1e6, 2) if total else None}


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def post_script(tmp, name, body, ctype, rate=False):
    path = os.path.join(tmp, f"{name}.lua")
    with open(path, "w") as f:
        # A Lua long bracket keeps the body verbatim (no escapes inside).
        f.write(WRK_POST.format(body="[==[" + body.decode() + "]==]", ctype=ctype))
        if rate:
            f.write(WRK_RATE)
    return path


def start_gunicorn(tmp, app_source, module, env):
    """gunicorn (1 worker, gthread, 1 thread) serving `app_source` as `module`:app."""
    with open(os.path.join(tmp, f"{module}.py"), "w") as f:
        f.write(app_source)
    port = free_port()
    log = open(os.path.join(tmp, f"{module}.log"), "w")
    proc = subprocess.Popen(
        ["gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "1",
         "--bind", f"127.0.0.1:{port}", "--chdir", tmp, f"{module}:app"],
        env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: proc.poll() is not None or
               http("GET", f"http://127.0.0.1:{port}/ping")[0] == 200, 60, "gunicorn")
    if proc.poll() is not None:
        raise SystemExit(f"gunicorn exited; see {log.name}")
    return proc, port


def model_file(s3, model_url, directory, name):
    """Unpacks `name` from the model.tar.gz at `model_url` into `directory`; returns its path."""
    import io
    import tarfile
    bucket, key = model_url[len("s3://"):].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    os.makedirs(directory, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(directory)
    return os.path.join(directory, name)


def start_nginx(tmp, instance_port):
    """nginx serving the static file, and proxying to the instance on a second port. Returns
    (process, static port, proxy port, worker pid, its directory)."""
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        return None, None, None, None, None
    # Its own directory, readable by all: as root, nginx's workers drop to an unprivileged user.
    d = tempfile.mkdtemp(prefix="hearth-invoke-bench-nginx-", dir=os.path.dirname(tmp))
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "www"), mode=0o755)
    with open(os.path.join(d, "www", "p.json"), "w") as f:
        f.write('{"predictions":[{"score":0.5,"predicted_label":1}]}')
    port, proxy_port = free_port(), free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port, proxy=NGINX_PROXY.format(
            instance_port=instance_port, proxy_port=proxy_port)))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "stderr.log"), "w"))
    try:
        wait_until(lambda: proc.poll() is not None or
                   http("GET", f"http://127.0.0.1:{port}/p.json")[0] == 200, 10, "nginx")
    except SystemExit:
        stop(proc)
    if proc.poll() is not None:
        shutil.rmtree(d, ignore_errors=True)
        return None, None, None, None, None
    workers = children(proc.pid)
    return proc, port, proxy_port, workers[0] if workers else proc.pid, d


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine_facts():
    return hearth_server.machine_facts(tools={"wrk": ("wrk", "-v"),
                                              "gunicorn": ("gunicorn", "--version"),
                                              "nginx": ("nginx", "-v")})



def ratio(a, b):
    return round(a / b, 2) if a and b else None


def _us(ms):
    return f"{ms * 1000:.0f} µs"


def write_markdown(path, r):
    m = r["machine"]
    loads = r["loads"]
    lines = [
        "# InvokeEndpoint latency and throughput",
        "",
        f"{m['date_utc']}, {m['nproc']} CPUs ({m['cpu']}), load average "
        f"{m['loadavg_at_start'][0]:.2f} at the start and {m['loadavg_at_end'][0]:.2f} at the end "
        f"(the machine is shared), hearth {m['hearth_commit']}"
        f"{' with uncommitted changes under src/' if m.get('hearth_src_modified') else ''} "
        f"({m['cmake_build_type']}). "
        f"linear-learner binary classifier and XGBoost (100 trees, depth 6) on the same rows, "
        f"{FEATURES} features, 1-row bodies; wrk, one thread, "
        f"keep-alive, {r['duration_s']} s per row, {r['repeat']} interleaved rounds: medians. "
        f"gunicorn: 1 worker, gthread, 1 thread. `instance direct` is {r['direct_target']}. "
        "`server CPU` is the CPU time the serving processes (Hearth's server and the instance; "
        "nginx; gunicorn) spent per request, `wrk CPU` the load generator's.",
        "",
        "| target | connections | req/s | p50 | p99 | server CPU / req | wrk CPU / req | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in loads.items():
        for row in rows:
            cpu = row.get("server_cpu_us_per_request")
            lines.append(f"| {name} | {row['connections']} | {row['requests_per_s']:,.0f} | "
                         f"{_us(row['p50_ms'])} | {_us(row['p99_ms'])} | "
                         f"{f'{cpu:.1f} µs' if cpu is not None else '–'} | "
                         f"{row['wrk_cpu_us_per_request']:.1f} µs | {row['non_2xx']} |")
    lines += ["", "| connections | front / gunicorn req/s (goal ≥ 10) | XGBoost: front / "
              "gunicorn+xgboost req/s (goal ≥ 10) | front / direct req/s "
              "(goal ≥ 0.77: front adds ≤ 30 %) | nginx proxy / direct req/s | "
              "front p50 − direct p50 | front CPU − direct CPU per req | direct / nginx req/s |",
              "|---|---|---|---|---|---|---|---|"]
    for c in r["ratios"]:
        lines.append(f"| {c['connections']} | {c['front_vs_gunicorn']} | "
                     f"{c.get('xgboost_front_vs_gunicorn')} | {c['front_vs_direct']} | "
                     f"{c['nginx_proxy_vs_direct']} | {c['front_minus_direct_p50_us']} µs | "
                     f"{c['front_minus_direct_cpu_us']} µs | {c['direct_vs_nginx']} |")
    if r.get("at_80_percent"):
        lines += ["", "p99 at 80 % of peak (goal ≤ 1 ms): wrk at 64 connections sending on a fixed "
                  "schedule of 0.8 × the target's best req/s above.", "",
                  "| target | peak req/s | asked req/s | got req/s | p50 | p99 | p99 ≤ 1 ms |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in r["at_80_percent"].items():
            lines.append(f"| {name} | {row['peak_requests_per_s']:,.0f} | "
                         f"{row['rate_requests_per_s']:,.0f} | {row['requests_per_s']:,.0f} | "
                         f"{_us(row['p50_ms'])} | {_us(row['p99_ms'])} | "
                         f"{'yes' if row['p99_ms'] <= 1.0 else 'no'} |")
    ce = r["create_endpoint_ms"]
    lines += ["", f"CreateEndpoint → InService (DescribeEndpoint polled every "
              f"{int(POLL_S * 1000)} ms): median {ce['median_ms']:.1f} ms over {ce['n']} "
              f"create/delete cycles ({', '.join(f'{v:.1f}' for v in ce['samples_ms'])} ms); "
              "goal ≤ 1 s.", ""]
    if r.get("notes"):
        lines += [f"* {n}" for n in r["notes"]] + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def median_row(rounds):
    """The median of each number over the rounds of one target and connection count."""
    out = dict(rounds[0])
    for key, value in rounds[0].items():
        if isinstance(value, (int, float)) and key != "connections":
            values = [r[key] for r in rounds if r.get(key) is not None]
            out[key] = round(statistics.median(values), 4) if values else None
    out["non_2xx"] = sum(r["non_2xx"] for r in rounds)
    out["requests"] = sum(r["requests"] for r in rounds)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--cycles", type=int, default=3, help="create/delete cycles timed")
    ap.add_argument("--repeat", type=int, default=3,
                    help="interleaved rounds of every load (the tables give medians)")
    ap.add_argument("--connections", default=",".join(map(str, CONNECTIONS)),
                    help="comma-separated connection counts")
    ap.add_argument("--no-rate", action="store_true",
                    help="skip the runs at 80 %% of peak")
    ap.add_argument("--out", default=RESULTS_DIR)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not os.access(HEARTH, os.X_OK):
        raise SystemExit(f"{HEARTH} not found; build the hearth target or set HEARTH_BUILD_DIR")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (scripts/install-deps.sh installs it)")

    tmp = tempfile.mkdtemp(prefix="hearth-invoke-bench-")
    server = Server(os.path.join(tmp, "data"))
    os.makedirs(server.data_dir)
    procs = []
    extra_dirs = []
    notes = []
    try:
        machine = machine_facts()
        server.start()
        sm, s3 = server.client("sagemaker"), server.client("s3")
        X, y = synthetic_data()
        print("training linear-learner ...", flush=True)
        model_url = train_model(sm, s3, X, y)
        sm.create_model(ModelName="ll", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "hearth/linear-learner",
                                          "ModelDataUrl": model_url})
        sm.create_endpoint_config(
            EndpointConfigName="ll",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "ll",
                                 "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        create_ms = []
        for i in range(args.cycles):
            create_ms.append(create_until_in_service(sm, f"ll-cycle-{i}"))
            delete_and_wait(sm, f"ll-cycle-{i}")
        print(f"CreateEndpoint -> InService: {[round(v, 1) for v in create_ms]} ms", flush=True)
        create_until_in_service(sm, "ll")
        before_xgboost = set(instance_pids(os.path.abspath(server.data_dir)))

        print("training xgboost (100 trees) ...", flush=True)
        xgb_url = train_model(sm, s3, X, y, "xgboost",
                              {"objective": "binary:logistic", "num_round": "100",
                               "max_depth": "6"})
        sm.create_model(ModelName="xgb", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "hearth/xgboost", "ModelDataUrl": xgb_url})
        sm.create_endpoint_config(
            EndpointConfigName="xgb",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "xgb",
                                 "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        create_until_in_service(sm, "xgb", config="xgb")
        xgb_pids = {p: pid for p, pid in instance_pids(os.path.abspath(server.data_dir)).items()
                    if p not in before_xgboost}

        row = X[:1]
        csv_body = csv_rows(row)
        json_body = json.dumps({"instances": [{"features": [float(v) for v in row[0]]}]}).encode()
        csv_lua = post_script(tmp, "csv", csv_body, "text/csv")
        json_lua = post_script(tmp, "json", json_body, "application/json")
        front = f"http://127.0.0.1:{server.port}/endpoints/ll/invocations"

        pids = {p: pid for p, pid in instance_pids(os.path.abspath(server.data_dir)).items()
                if p in before_xgboost}
        direct = None
        instance_pid = None
        for p, pid in sorted(pids.items()):
            if http("GET", f"http://127.0.0.1:{p}/ping")[0] == 200:
                direct = f"http://127.0.0.1:{p}/invocations"
                direct_port, instance_pid = p, pid
                direct_target = f"the endpoint instance (bwrap sandbox, port {p})"
                break
        if direct is None:
            notes.append("the endpoint instance's port was not reachable; `direct` is a "
                         "separate `hearth algo linear-learner serve` on the same model")
            model_dir = os.path.join(tmp, "model")
            model_file(s3, model_url, model_dir, "")
            port = free_port()
            p = subprocess.Popen([HEARTH, "algo", "linear-learner", "serve"],
                                 env=dict(os.environ, SM_MODEL_DIR=model_dir,
                                          SAGEMAKER_BIND_TO_PORT=str(port)),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/ping")[0] == 200, 30,
                       "linear-learner serve")
            notes.append("the front's CPU per request does not count this instance's")
            direct = f"http://127.0.0.1:{port}/invocations"
            direct_port, instance_pid = port, p.pid
            direct_target = f"`hearth algo linear-learner serve`, no sandbox, port {port}"

        np.savez(os.path.join(tmp, "train.npz"), X=X, y=y)
        gunicorn, gport = start_gunicorn(tmp, FLASK_APP, "bench_app",
                                         {"BENCH_TRAIN_NPZ": os.path.join(tmp, "train.npz")})
        procs.append(gunicorn)
        peer = f"http://127.0.0.1:{gport}/invocations"
        xgb_model = model_file(s3, xgb_url, os.path.join(tmp, "xgboost-model-dir"),
                               "xgboost-model")
        gunicorn_xgb, gxport = start_gunicorn(tmp, FLASK_XGBOOST_APP, "bench_xgboost_app",
                                              {"BENCH_XGBOOST_MODEL": xgb_model})
        procs.append(gunicorn_xgb)
        peer_xgb = f"http://127.0.0.1:{gxport}/invocations"
        front_xgb = f"http://127.0.0.1:{server.port}/endpoints/xgb/invocations"
        nginx, nport, proxy_port, nginx_worker, nginx_dir = start_nginx(tmp, direct_port)
        if nginx:
            procs.append(nginx)
            extra_dirs.append(nginx_dir)
        else:
            notes.append("nginx is not installed or did not start: no loopback ceiling rows")

        # Every target must answer the same row with a prediction before it is loaded.
        samples = {}
        checks = [("front csv", front, csv_body, "text/csv"),
                  ("front json", front, json_body, "application/json"),
                  ("direct csv", direct, csv_body, "text/csv"),
                  ("gunicorn csv", peer, csv_body, "text/csv")]
        if nginx:
            checks.append(("nginx proxy csv", f"http://127.0.0.1:{proxy_port}/invocations",
                           csv_body, "text/csv"))
        for name, url, body, ctype in checks:
            status, answer = http("POST", url, body, {"Content-Type": ctype})
            if status != 200 or b"predicted_label" not in answer:
                raise SystemExit(f"{name}: {status} {answer[:200]!r}")
            samples[name] = json.loads(answer)
        # The XGBoost pair answers with the score as CSV: the same score.
        scores = {}
        for name, url in (("front xgboost csv", front_xgb), ("gunicorn xgboost csv", peer_xgb)):
            status, answer = http("POST", url, csv_body, {"Content-Type": "text/csv"})
            if status != 200:
                raise SystemExit(f"{name}: {status} {answer[:200]!r}")
            scores[name] = float(answer.decode().strip().split(",")[0])
            samples[name] = answer.decode().strip()
        if abs(scores["front xgboost csv"] - scores["gunicorn xgboost csv"]) > 1e-5:
            raise SystemExit(f"the XGBoost scores differ: {scores}")

        # name, url, wrk script, the processes that serve it (their CPU is counted)
        hearth_pids = [server.proc.pid] + ([instance_pid] if instance_pid else [])
        gunicorn_pids = [gunicorn.pid] + children(gunicorn.pid)
        xgb_hearth_pids = [server.proc.pid] + list(xgb_pids.values())
        xgb_gunicorn_pids = [gunicorn_xgb.pid] + children(gunicorn_xgb.pid)
        targets = [("hearth front, CSV", front, csv_lua, hearth_pids),
                   ("hearth front, JSON", front, json_lua, hearth_pids),
                   ("instance direct, CSV", direct, csv_lua, [instance_pid]),
                   ("gunicorn+Flask+sklearn, CSV", peer, csv_lua, gunicorn_pids),
                   ("hearth front, XGBoost CSV", front_xgb, csv_lua, xgb_hearth_pids),
                   ("gunicorn+Flask+xgboost, CSV", peer_xgb, csv_lua, xgb_gunicorn_pids)]
        if nginx:
            targets.append(("nginx proxy → instance, CSV",
                            f"http://127.0.0.1:{proxy_port}/invocations", csv_lua,
                            [nginx_worker, instance_pid]))
            targets.append(("nginx static file", f"http://127.0.0.1:{nport}/p.json", None,
                            [nginx_worker]))
        connections = [int(c) for c in args.connections.split(",")]
        rounds = {name: {c: [] for c in connections} for name, *_ in targets}
        for i in range(args.repeat):
            for c in connections:
                for name, url, script, serving in targets:
                    result = wrk(url, c, args.duration, script, pids=serving)
                    print(f"[{i + 1}/{args.repeat}] {name:32} c={c:<3} "
                          f"{result['requests_per_s']:>9,.0f} req/s  "
                          f"p50 {result['p50_ms'] * 1000:6.0f} µs  "
                          f"p99 {result['p99_ms'] * 1000:7.0f} µs  "
                          f"cpu {result['server_cpu_us_per_request']:6.1f} µs/req  "
                          f"non-2xx {result['non_2xx']}", flush=True)
                    rounds[name][c].append(result)
        loads = {name: [median_row(rounds[name][c]) for c in connections] for name in rounds}

        at_80 = {}
        if not args.no_rate:
            rated = [("hearth front, CSV", front, csv_body, hearth_pids),
                     ("instance direct, CSV", direct, csv_body, [instance_pid])]
            if nginx:
                rated.append(("nginx proxy → instance, CSV",
                              f"http://127.0.0.1:{proxy_port}/invocations", csv_body,
                              [nginx_worker, instance_pid]))
            for name, url, body, serving in rated:
                peak = max(row["requests_per_s"] for row in loads[name])
                rate = int(0.8 * peak)
                script = post_script(tmp, "rate", body, "text/csv", rate=True)
                runs = [wrk(url, 64, args.duration, script, pids=serving,
                            env=dict(os.environ, WRK_RATE=str(rate)))
                        for _ in range(args.repeat)]
                row = median_row(runs)
                row.update(peak_requests_per_s=peak, rate_requests_per_s=rate, samples=runs)
                at_80[name] = row
                print(f"{name:32} at 80 % of {peak:,.0f}: {row['requests_per_s']:,.0f} req/s  "
                      f"p50 {row['p50_ms'] * 1000:.0f} µs  p99 {row['p99_ms'] * 1000:.0f} µs",
                      flush=True)

        def at(name, c):
            return loads[name][connections.index(c)] if name in loads else None

        ratios = []
        for c in connections:
            f, d, g = (at("hearth front, CSV", c), at("instance direct, CSV", c),
                       at("gunicorn+Flask+sklearn, CSV", c))
            n, np_ = at("nginx static file", c), at("nginx proxy → instance, CSV", c)
            fx, gx = at("hearth front, XGBoost CSV", c), at("gunicorn+Flask+xgboost, CSV", c)
            fc, dc = f["server_cpu_us_per_request"], d["server_cpu_us_per_request"]
            ratios.append({"connections": c,
                           "front_vs_gunicorn": ratio(f["requests_per_s"], g["requests_per_s"]),
                           "xgboost_front_vs_gunicorn":
                               ratio(fx["requests_per_s"], gx["requests_per_s"]),
                           "front_vs_direct": ratio(f["requests_per_s"], d["requests_per_s"]),
                           "nginx_proxy_vs_direct":
                               ratio(np_["requests_per_s"], d["requests_per_s"]) if np_ else None,
                           "front_minus_direct_p50_us": round((f["p50_ms"] - d["p50_ms"]) * 1000),
                           "front_minus_direct_cpu_us":
                               round(fc - dc, 1) if fc is not None and dc is not None else None,
                           "direct_vs_nginx": ratio(d["requests_per_s"], n["requests_per_s"])
                           if n else None})
        notes.append("wrk and every server share the machine's cores; wrk uses one thread")
        result = {
            "machine": machine,
            "duration_s": args.duration,
            "repeat": args.repeat,
            "features": FEATURES,
            "wrk_threads": 1,
            "gunicorn": "1 worker, gthread worker class, 1 thread",
            "direct_target": direct_target,
            "create_endpoint_ms": {"median_ms": round(statistics.median(create_ms), 2),
                                   "samples_ms": [round(v, 2) for v in create_ms],
                                   "n": len(create_ms), "poll_ms": POLL_S * 1000},
            "loads": loads,
            "rounds": rounds,
            "at_80_percent": at_80,
            "ratios": ratios,
            "sample_answers": samples,
            "notes": notes,
        }
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "invoke_latency.json"), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        write_markdown(os.path.join(args.out, "invoke_latency.md"), result)
        print(f"wrote {args.out}/invoke_latency.json and .md")
    finally:
        for p in procs:
            stop(p)
        try:
            # So that no instance outlives the server.
            delete_and_wait(server.client("sagemaker"), "ll", timeout=20)
        except (Exception, SystemExit):
            pass
        try:
            delete_and_wait(server.client("sagemaker"), "xgb", timeout=20)
        except (Exception, SystemExit):
            pass
        stop(server.proc)
        if args.keep:
            print(f"kept {tmp}")
        else:
            for d in [tmp] + extra_dirs:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
