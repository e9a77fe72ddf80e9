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
  nginx      nginx (1 worker) serving a small static file on loopback: the ceiling of loopback
             HTTP on this machine.

Every load is wrk (Debian's, keep-alive, one thread) for DURATION seconds at 1, 8 and 64
connections; requests/s and p50/p99 come from wrk --latency. Results go to
bench/results/invoke_latency.{json,md}.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/invoke_latency.py   (or `make bench`)
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import botocore.config
import botocore.exceptions
import numpy as np

from hearth_server import BUILD_DIR, HEARTH, REPO, Server, free_port  # noqa: E402
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
}}
"""

WRK_POST = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "{ctype}"
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


def train_model(sm, s3, X, y):
    """Trains hearth/linear-learner and returns the S3 URI of model.tar.gz."""
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="ll/train/part-000", Body=csv_rows(X, y))
    sm.create_training_job(
        TrainingJobName="ll-bench",
        AlgorithmSpecification={"TrainingImage": "hearth/linear-learner",
                                "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={"predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
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
        sm.describe_training_job(TrainingJobName="ll-bench")), 300, "training job", 0.1)
    if d["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"training ended {d['TrainingJobStatus']}: {d.get('FailureReason')}")
    return d["ModelArtifacts"]["S3ModelArtifacts"]


def create_until_in_service(sm, name, timeout=60):
    """CreateEndpoint, then DescribeEndpoint every POLL_S until InService; returns ms."""
    t0 = time.perf_counter()
    sm.create_endpoint(EndpointName=name, EndpointConfigName="ll")
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
    """SAGEMAKER_BIND_TO_PORT of every endpoint instance of the server on `data_dir`. Instances
    outlive the server's process (their supervisor is detached), so they are found through a
    supervisor ancestor whose command line names a state directory under `data_dir`."""
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
    ports = set()
    for pid in parents:
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
                ports.add(int(kv.split(b"=", 1)[1]))
    return sorted(ports)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, connections, duration, script=None):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    total = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {"connections": connections, "requests_per_s": round(rps, 1), "requests": total,
            "p50_ms": round(_ms(pct["50"]), 4), "p75_ms": round(_ms(pct["75"]), 4),
            "p90_ms": round(_ms(pct["90"]), 4), "p99_ms": round(_ms(pct["99"]), 4),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else ""}


def post_script(tmp, name, body, ctype):
    path = os.path.join(tmp, f"{name}.lua")
    with open(path, "w") as f:
        # A Lua long bracket keeps the body verbatim (no escapes inside).
        f.write(WRK_POST.format(body="[==[" + body.decode() + "]==]", ctype=ctype))
    return path


def start_gunicorn(tmp, X, y):
    np.savez(os.path.join(tmp, "train.npz"), X=X, y=y)
    with open(os.path.join(tmp, "bench_app.py"), "w") as f:
        f.write(FLASK_APP)
    port = free_port()
    log = open(os.path.join(tmp, "gunicorn.log"), "w")
    proc = subprocess.Popen(
        ["gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "1",
         "--bind", f"127.0.0.1:{port}", "--chdir", tmp, "bench_app:app"],
        env=dict(os.environ, BENCH_TRAIN_NPZ=os.path.join(tmp, "train.npz")),
        stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: proc.poll() is not None or
               http("GET", f"http://127.0.0.1:{port}/ping")[0] == 200, 60, "gunicorn")
    if proc.poll() is not None:
        raise SystemExit(f"gunicorn exited; see {log.name}")
    return proc, port


def start_nginx(tmp):
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        return None, None
    # Its own directory, readable by all: as root, nginx's workers drop to an unprivileged user.
    d = tempfile.mkdtemp(prefix="hearth-invoke-bench-nginx-", dir=os.path.dirname(tmp))
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "www"), mode=0o755)
    with open(os.path.join(d, "www", "p.json"), "w") as f:
        f.write('{"predictions":[{"score":0.5,"predicted_label":1}]}')
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
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
        return None, None, None
    return proc, port, d


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine_facts():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass

    def cmd(*argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    build_type = ""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            build_type = next((l.split("=", 1)[1].strip() for l in f
                               if l.startswith("CMAKE_BUILD_TYPE:")), "")
    except OSError:
        pass
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "wrk": cmd("wrk", "-v").splitlines()[0] if cmd("wrk", "-v") else "",
        "gunicorn": cmd("gunicorn", "--version"),
        "nginx": cmd("nginx", "-v"),
        "hearth_commit": cmd("git", "rev-parse", "--short", "HEAD"),
        "hearth_src_modified": bool(cmd("git", "status", "--porcelain", "--", "src")),
        "cmake_build_type": build_type or "(empty: no optimisation flags)",
    }


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def write_markdown(path, r):
    m = r["machine"]
    loads = r["loads"]
    lines = [
        "# InvokeEndpoint latency and throughput",
        "",
        f"{m['date_utc']}, {m['nproc']} CPUs ({m['cpu']}), load average "
        f"{m['loadavg_at_start'][0]:.2f} at the start and {m['loadavg_at_end'][0]:.2f} at the end "
        f"(the machine is shared), hearth {m['hearth_commit']} ({m['cmake_build_type']}). "
        f"linear-learner binary classifier, {FEATURES} features, 1-row bodies; wrk, one thread, "
        f"keep-alive, {r['duration_s']} s per row. gunicorn: 1 worker, gthread, 1 thread. "
        f"`instance direct` is {r['direct_target']}.",
        "",
        "| target | connections | req/s | p50 | p99 | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in loads.items():
        for row in rows:
            lines.append(f"| {name} | {row['connections']} | {row['requests_per_s']:,.0f} | "
                         f"{row['p50_ms'] * 1000:.0f} µs | {row['p99_ms'] * 1000:.0f} µs | "
                         f"{row['non_2xx']} |")
    lines += ["", "| connections | front / gunicorn req/s (goal ≥ 10) | front / direct req/s "
              "(goal ≥ 0.77: front adds ≤ 30 %) | front p50 − direct p50 | direct / nginx req/s |",
              "|---|---|---|---|---|"]
    for c in r["ratios"]:
        lines.append(f"| {c['connections']} | {c['front_vs_gunicorn']} | {c['front_vs_direct']} | "
                     f"{c['front_minus_direct_p50_us']} µs | {c['direct_vs_nginx']} |")
    ce = r["create_endpoint_ms"]
    lines += ["", f"CreateEndpoint → InService (DescribeEndpoint polled every "
              f"{int(POLL_S * 1000)} ms): median {ce['median_ms']:.1f} ms over {ce['n']} "
              f"create/delete cycles ({', '.join(f'{v:.1f}' for v in ce['samples_ms'])} ms); "
              "goal ≤ 1 s.", ""]
    if r.get("notes"):
        lines += [f"* {n}" for n in r["notes"]] + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--cycles", type=int, default=3, help="create/delete cycles timed")
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

        row = X[:1]
        csv_body = csv_rows(row)
        json_body = json.dumps({"instances": [{"features": [float(v) for v in row[0]]}]}).encode()
        csv_lua = post_script(tmp, "csv", csv_body, "text/csv")
        json_lua = post_script(tmp, "json", json_body, "application/json")
        front = f"http://127.0.0.1:{server.port}/endpoints/ll/invocations"

        ports = instance_ports(os.path.abspath(server.data_dir))
        direct = None
        for p in ports:
            if http("GET", f"http://127.0.0.1:{p}/ping")[0] == 200:
                direct = f"http://127.0.0.1:{p}/invocations"
                direct_target = f"the endpoint instance (bwrap sandbox, port {p})"
                break
        if direct is None:
            notes.append("the endpoint instance's port was not reachable; `direct` is a "
                         "separate `hearth algo linear-learner serve` on the same model")
            model_dir = os.path.join(tmp, "model")
            os.makedirs(model_dir)
            bucket, key = model_url[len("s3://"):].split("/", 1)
            import io
            import tarfile
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
                tar.extractall(model_dir)
            port = free_port()
            p = subprocess.Popen([HEARTH, "algo", "linear-learner", "serve"],
                                 env=dict(os.environ, SM_MODEL_DIR=model_dir,
                                          SAGEMAKER_BIND_TO_PORT=str(port)),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/ping")[0] == 200, 30,
                       "linear-learner serve")
            direct = f"http://127.0.0.1:{port}/invocations"
            direct_target = f"`hearth algo linear-learner serve`, no sandbox, port {port}"

        gunicorn, gport = start_gunicorn(tmp, X, y)
        procs.append(gunicorn)
        peer = f"http://127.0.0.1:{gport}/invocations"
        nginx, nport, nginx_dir = start_nginx(tmp)
        if nginx:
            procs.append(nginx)
            extra_dirs.append(nginx_dir)
        else:
            notes.append("nginx is not installed or did not start: no loopback ceiling row")

        # Every target must answer the same row with a prediction before it is loaded.
        samples = {}
        for name, url, body, ctype in (("front csv", front, csv_body, "text/csv"),
                                       ("front json", front, json_body, "application/json"),
                                       ("direct csv", direct, csv_body, "text/csv"),
                                       ("gunicorn csv", peer, csv_body, "text/csv")):
            status, answer = http("POST", url, body, {"Content-Type": ctype})
            if status != 200 or b"predicted_label" not in answer:
                raise SystemExit(f"{name}: {status} {answer[:200]!r}")
            samples[name] = json.loads(answer)

        targets = [("hearth front, CSV", front, csv_lua),
                   ("hearth front, JSON", front, json_lua),
                   ("instance direct, CSV", direct, csv_lua),
                   ("gunicorn+Flask+sklearn, CSV", peer, csv_lua)]
        if nginx:
            targets.append(("nginx static file", f"http://127.0.0.1:{nport}/p.json", None))
        loads = {}
        for name, url, script in targets:
            loads[name] = []
            for c in CONNECTIONS:
                result = wrk(url, c, args.duration, script)
                print(f"{name:32} c={c:<3} {result['requests_per_s']:>10,.0f} req/s  "
                      f"p50 {result['p50_ms'] * 1000:7.0f} µs  p99 {result['p99_ms'] * 1000:7.0f} µs"
                      f"  non-2xx {result['non_2xx']}", flush=True)
                loads[name].append(result)

        ratios = []
        for i, c in enumerate(CONNECTIONS):
            f, d, g = (loads["hearth front, CSV"][i], loads["instance direct, CSV"][i],
                       loads["gunicorn+Flask+sklearn, CSV"][i])
            n = loads["nginx static file"][i] if nginx else None
            ratios.append({"connections": c,
                           "front_vs_gunicorn": ratio(f["requests_per_s"], g["requests_per_s"]),
                           "front_vs_direct": ratio(f["requests_per_s"], d["requests_per_s"]),
                           "front_minus_direct_p50_us": round((f["p50_ms"] - d["p50_ms"]) * 1000),
                           "direct_vs_nginx": ratio(d["requests_per_s"], n["requests_per_s"])
                           if n else None})
        notes.append("p99 at 80 % of peak load is not measured: it needs a constant-rate load "
                     "generator (wrk2), which Debian 12 does not package")
        notes.append("wrk and every server share the machine's cores; wrk uses one thread")
        result = {
            "machine": machine,
            "duration_s": args.duration,
            "features": FEATURES,
            "wrk_threads": 1,
            "gunicorn": "1 worker, gthread worker class, 1 thread",
            "direct_target": direct_target,
            "create_endpoint_ms": {"median_ms": round(statistics.median(create_ms), 2),
                                   "samples_ms": [round(v, 2) for v in create_ms],
                                   "n": len(create_ms), "poll_ms": POLL_S * 1000},
            "loads": loads,
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
        stop(server.proc)
        if args.keep:
            print(f"kept {tmp}")
        else:
            for d in [tmp] + extra_dirs:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
