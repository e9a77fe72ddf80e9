"""The Python SDK (python/hearth) end to end, against a real server: uploads read back byte for
byte (RecordIO-protobuf decoded with the protobuf module, and equal to what the sagemaker SDK's
writer produces), Estimator.fit of linear-learner and XGBoost with their log lines streamed
while the job runs, metrics parsed from the logs and plotted, a failing job raising with its
reason, deploy and predict with every serializer and deserializer, attaching to jobs and
endpoints, batch transform, hyperparameter tuning (progress, analytics DataFrame, best job,
attach, warm start, stop), deletion, and the errors the SDK raises.

Run by Debian's /usr/bin/python3 (numpy, pandas, matplotlib, protobuf).
"""
import http.server
import io
import os
import shutil
import stat
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from builtin_algorithms import record_pb2, recordio_protobuf_bytes
from conftest import free_port, wait_for

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "python")
sys.path.insert(0, PYTHON_DIR)
import hearth  # noqa: E402 (the SDK under test, from the source tree)
from hearth import deserializers, recordio, serializers  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# --- data and helpers ------------------------------------------------------------------------


def binary_data(rows=600, dim=5, seed=3):
    """float32 features and 0/1 labels that a linear model separates well."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, dim)).astype(np.float32)
    y = (X[:, 0] - 0.8 * X[:, 1] + 0.3 * X[:, 2] > 0).astype(np.float32)
    return X, y


@pytest.fixture
def sess(server):
    return hearth.Session(server.url, poll_interval=0.2)


def get(s3, uri):
    bucket, key = hearth.session.parse_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def sdk_reference_recordio(X, y):
    """sagemaker.amazon.common.write_numpy_to_dense_tensor, with the protobuf module: the
    tensor type follows the dtype (float32, float64, int -> Int32)."""
    pb = record_pb2()

    def tensor(value, dtype):
        if dtype == np.dtype(int):
            return value.int32_tensor
        if dtype == np.dtype(float):
            return value.float64_tensor
        return value.float32_tensor

    out = io.BytesIO()
    for i, row in enumerate(X):
        record = pb.Record()
        tensor(record.features["values"], X.dtype).values.extend(row)
        tensor(record.label["values"], y.dtype).values.extend([y[i]])
        payload = record.SerializeToString()
        out.write(recordio.frame(payload))
    return out.getvalue()


def fit_linear_learner(sess, X, y, bucket="data", epochs=4, **fit_kwargs):
    train = sess.upload_numpy(X[:400], y[:400], f"s3://{bucket}/train/")
    val = sess.upload_numpy(X[400:500], y[400:500], f"s3://{bucket}/validation/", format="csv")
    est = hearth.Estimator("linear-learner", instance_count=1, instance_type="ml.m5.large",
                           hyperparameters={"predictor_type": "binary_classifier",
                                            "epochs": epochs}, session=sess)
    est.fit({"train": train, "validation": val}, **fit_kwargs)
    return est


def register_image(server, tmp_path, name, **scripts):
    """A bring-your-own image: executables (`train=`, `serve=` source) in a registered
    directory."""
    d = tmp_path / "images" / name
    d.mkdir(parents=True)
    for entry, source in scripts.items():
        path = d / entry
        path.write_text(source)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    server.register_image(name, str(d))
    return name


# --- packaging -------------------------------------------------------------------------------


def test_the_package_builds_with_pip_and_needs_only_boto3(tmp_path):
    source = tmp_path / "python"
    shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=120)
    wheels = list((tmp_path / "dist").glob("hearth-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = next(wheel.read(n).decode() for n in names if n.endswith("/METADATA"))
    assert {"hearth/__init__.py", "hearth/estimator.py", "hearth/recordio.py"} <= names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["Requires-Dist: boto3"]


# --- Session ---------------------------------------------------------------------------------


def test_session_takes_endpoint_credentials_and_region_from_the_environment(monkeypatch,
                                                                            tmp_path):
    for var in ("HEARTH_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    plain = hearth.Session()
    assert plain.endpoint_url == "http://127.0.0.1:7070"
    assert plain.region == "us-east-1"
    creds = plain.boto_session.get_credentials()
    assert (creds.access_key, creds.secret_key) == ("hearth", "hearth-secret")
    assert plain.sagemaker_client.meta.endpoint_url == "http://127.0.0.1:7070"
    assert plain.s3_client.meta.config.s3["addressing_style"] == "path"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.2:7071")
    assert hearth.Session().endpoint_url == "http://127.0.0.2:7071"
    monkeypatch.setenv("HEARTH_ENDPOINT_URL", "http://127.0.0.3:7072/")
    assert hearth.Session().logs_client.meta.endpoint_url == "http://127.0.0.3:7072"
    assert hearth.Session("http://127.0.0.4:1").endpoint_url == "http://127.0.0.4:1"

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "my-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    configured = hearth.Session()
    assert configured.boto_session.get_credentials().access_key == "mine"
    assert configured.region == "eu-west-1"
    assert hearth.Session(hearth.AWS).endpoint_url is None


# --- uploads ---------------------------------------------------------------------------------


def test_upload_numpy_writes_recordio_byte_for_byte_as_the_sagemaker_sdk(sess, s3):
    X, y = binary_data(rows=50, dim=7)
    channel = sess.upload_numpy(X, y, "s3://data/train/", format="recordio-protobuf")
    assert channel.config == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/train/",
                                        "S3DataDistributionType": "FullyReplicated"}},
        "ContentType": "application/x-recordio-protobuf"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="train/")["Contents"]]
    assert keys == ["train/matrix_0.pbr"]
    body = s3.get_object(Bucket="data", Key="train/matrix_0.pbr")["Body"].read()
    assert body == recordio_protobuf_bytes(X, y)
    assert body == sdk_reference_recordio(X, y)

    # Decoded with the protobuf module: one Record per row, features and label as written.
    pb = record_pb2()
    payloads = recordio.read_recordio(body)
    assert len(payloads) == 50
    for i, payload in enumerate(payloads):
        record = pb.Record()
        record.ParseFromString(payload)
        assert np.array_equal(np.array(record.features["values"].float32_tensor.values,
                                        dtype=np.float32), X[i])
        assert record.label["values"].float32_tensor.values[0] == y[i]
    # ... and with the SDK's own reader.
    back = recordio.read_records(body)
    assert np.array_equal(recordio.records_to_numpy(back).astype(np.float32), X)
    assert [r.label["values"].float32_tensor.values[0] for r in back] == y.tolist()

    # float64 features and int labels (negative ones too) keep their tensor types, as in the
    # sagemaker SDK; the rows are sharded into matrix_<i>.pbr the way its record_set does.
    X64 = np.random.default_rng(5).normal(size=(10, 3))
    labels = np.array([-3, 0, 1, 2, 70000, -1, 5, 6, 7, 8])
    sess.upload_numpy(X64, labels, "s3://data/wide", num_shards=3)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="wide/")["Contents"])
    assert keys == ["wide/matrix_0.pbr", "wide/matrix_1.pbr", "wide/matrix_2.pbr"]
    shards = [s3.get_object(Bucket="data", Key=k)["Body"].read() for k in keys]
    assert [len(recordio.read_recordio(s)) for s in shards] == [3, 3, 4]
    assert b"".join(shards) == sdk_reference_recordio(X64, labels)
    record = pb.Record()
    record.ParseFromString(recordio.read_recordio(shards[0])[0])
    assert list(record.features["values"].float64_tensor.values) == X64[0].tolist()
    assert list(record.label["values"].int32_tensor.values) == [-3]
    ints, wide = np.arange(-6, 6).reshape(4, 3), np.random.default_rng(6).normal(size=(3, 300))
    assert recordio.numpy_to_recordio(ints, ints[:, 0] * 0.5) == sdk_reference_recordio(
        ints, ints[:, 0] * 0.5)
    assert recordio.numpy_to_recordio(wide, np.ones(3)) == sdk_reference_recordio(wide, np.ones(3))


def test_upload_data_and_download_data_round_trip_a_directory(sess, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv").write_bytes(b"1,2\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)))
    assert sess.upload_data(str(src), "dl-data", key_prefix="run/1") == "s3://dl-data/run/1"
    got = sess.download_data(str(tmp_path / "out"), "dl-data", "run/1")
    assert sorted(os.path.relpath(p, tmp_path / "out") for p in got) == [
        "1/a.csv", os.path.join("1", "sub", "b.bin")]
    assert (tmp_path / "out" / "1" / "sub" / "b.bin").read_bytes() == bytes(range(256))
    # A prefix ending in "/" keeps the folders below it; one object's key is that file.
    assert sess.download_data(str(tmp_path / "o2"), "dl-data", "run/1/") == [
        str(tmp_path / "o2" / "a.csv"), str(tmp_path / "o2" / "sub" / "b.bin")]
    assert sess.download_data(str(tmp_path / "o3"), "dl-data", "run/1/a.csv") == [
        str(tmp_path / "o3" / "a.csv")]


def test_upload_numpy_and_dataframe_as_csv_label_first_without_header(sess, s3):
    X, y = binary_data(rows=40, dim=3)
    X[0, 0] = np.float32(0.1)  # shortest exact form, not 0.10000000149011612
    channel = sess.upload_numpy(X, y, "s3://csv/train/", format="csv")
    assert channel.content_type == "text/csv"
    text = get(s3, "s3://csv/train/data_0.csv").decode()
    assert text.splitlines()[0].split(",")[:2] == [str(y[0]), "0.1"]
    back = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32)
    assert np.array_equal(back, np.column_stack([y, X]))

    unlabelled = sess.upload_numpy(X, None, "s3://csv/unlabelled/", format="csv")
    assert unlabelled.content_type == "text/csv;label_size=0"
    back = np.loadtxt(io.StringIO(get(s3, "s3://csv/unlabelled/data_0.csv").decode()),
                      delimiter=",", dtype=np.float32)
    assert np.array_equal(back, X)

    df = pd.DataFrame({"a": [1.5, -2.0, 3.25], "target": [1, 0, 1], "flag": [True, False, True],
                       "n": [10, 20, 30]})
    channel = sess.upload_dataframe(df, "s3://csv/frame", label="target")
    assert channel.s3_uri == "s3://csv/frame/" and channel.content_type == "text/csv"
    assert get(s3, "s3://csv/frame/data_0.csv").decode().splitlines() == [
        "1,1.5,1,10", "0,-2.0,0,20", "1,3.25,1,30"]

    with pytest.raises(ValueError, match="name"):
        sess.upload_dataframe(df.assign(name=["x", "y", "z"]), "s3://csv/bad/", label="target")
    with pytest.raises(ValueError, match="format"):
        sess.upload_numpy(X, y, "s3://csv/bad/", format="parquet")


# --- training --------------------------------------------------------------------------------


def test_fit_linear_learner_streams_logs_and_reports_metrics(sess, s3, capsys):
    X, y = binary_data()
    est = fit_linear_learner(sess, X, y, epochs=4)

    out = capsys.readouterr().out.splitlines()
    job = est.latest_training_job.name
    assert job.startswith("linear-learner-")

    def first(text):
        return next(i for i, line in enumerate(out) if text in line)

    # Status lines and the job's own log lines, in the order they happened.
    assert first(f"{job} Training - ") < first("#quality_metric: host=algo-1, epoch=0, train "
                                               "objective_loss") < first(f"{job} Completed")
    assert sum("validation objective_loss <score>=" in line for line in out) >= 4

    desc = est.describe()
    assert desc["TrainingJobStatus"] == "Completed"
    assert desc["HyperParameters"]["epochs"] == "4"
    assert [c["ChannelName"] for c in desc["InputDataConfig"]] == ["train", "validation"]
    assert est.model_data == desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert get(s3, est.model_data)[:2] == b"\x1f\x8b"  # model.tar.gz

    series = est.metrics()
    finals = est.final_metrics()
    assert [p.step for p in series["train:objective_loss"]] == [0, 1, 2, 3]
    assert series["train:objective_loss"][-1].value == pytest.approx(
        finals["train:objective_loss"])
    assert finals["validation:binary_classification_accuracy"] > 0.85

    fig = est.plot_metrics()
    panels = {ax.get_title(): ax for ax in fig.axes}
    lines = {line.get_label(): line for line in panels["objective_loss"].get_lines()}
    assert list(lines["train:objective_loss"].get_ydata()) == [
        p.value for p in series["train:objective_loss"]]
    assert "reported once" in panels
    plt.close(fig)


def test_fit_xgboost_on_csv_and_predict(sess, capsys):
    X, y = binary_data(seed=8)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
    train = sess.upload_dataframe(frame.iloc[:400], "s3://xgb/train/", label="label")
    val = sess.upload_numpy(X[400:500], y[400:500], "s3://xgb/validation/", format="csv")
    est = hearth.Estimator("xgboost", hyperparameters={"objective": "binary:logistic",
                                                       "num_round": 6, "max_depth": 3},
                           session=sess)
    assert est.image_uri == "hearth/xgboost"
    est.fit({"train": train, "validation": val})

    out = capsys.readouterr().out
    assert out.count("#011validation-logloss:") == 6
    assert "[5]#011train-logloss:" in out
    series = est.metrics()
    assert [p.step for p in series["validation:logloss"]] == list(range(6))
    assert series["validation:logloss"][-1].value < series["validation:logloss"][0].value
    assert series["validation:logloss"][-1].value == pytest.approx(
        est.final_metrics()["validation:logloss"])

    pred = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    answer = pred.predict(X[500:])
    scores = np.array([p["score"] for p in answer["predictions"]])
    assert len(scores) == 100
    assert np.mean((scores > 0.5) == (y[500:] == 1)) > 0.8
    pred.delete_endpoint()


def test_a_failing_job_raises_with_its_failure_reason(sess, capsys):
    train = sess.upload_numpy(*binary_data(rows=50), "s3://data/train/")
    est = hearth.Estimator("linear-learner", hyperparameters={"predictor_type": "bogus"},
                           session=sess)
    with pytest.raises(hearth.TrainingJobFailed) as failed:
        est.fit(train)
    assert failed.value.job_name == est.latest_training_job.name
    assert failed.value.status == "Failed"
    assert "predictor_type" in failed.value.reason and "bogus" in failed.value.reason
    assert failed.value.reason == est.describe()["FailureReason"]
    assert isinstance(failed.value, hearth.HearthError)
    assert f"{est.latest_training_job.name} Failed" in capsys.readouterr().out


# A training image that prints a line, then holds until the test has seen that line (it asks
# a small HTTP server in the test for /go), so the job cannot end before the SDK streams it.
GATED_TRAIN = """#!/usr/bin/python3
import json, sys, time, urllib.request
hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
print("waiting for the test", flush=True)
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(hps["gate"] + "/go", timeout=5) as reply:
            if reply.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        open("/opt/ml/output/failure", "w").write("the test never saw the first line")
        sys.exit(1)
    time.sleep(0.05)
print("released", flush=True)
open("/opt/ml/model/model.txt", "w").write("ok")
"""


class Gate(http.server.ThreadingHTTPServer):
    """Answers GET /go with 200 once opened, 404 before."""

    def __init__(self):
        self.opened = threading.Event()
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if gate.opened.is_set() else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


def test_log_lines_arrive_while_the_job_runs(server, sess, tmp_path):
    image = register_image(server, tmp_path, "gated", train=GATED_TRAIN)
    gate = Gate()
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    seen = []

    def sink(line):
        seen.append(line)
        if line == "waiting for the test":
            gate.opened.set()

    try:
        est = hearth.Estimator(image, hyperparameters={"gate": f"http://127.0.0.1:{gate.port}"},
                               session=sess)
        est.fit(logs=sink)
    finally:
        gate.shutdown()
    assert est.describe()["TrainingJobStatus"] == "Completed"
    assert seen.index("waiting for the test") < seen.index("released")
    assert any(line.endswith(" Completed - Training job completed") for line in seen)


# --- endpoints -------------------------------------------------------------------------------


def test_deploy_and_predict_with_every_serializer(sess):
    X, y = binary_data()
    est = fit_linear_learner(sess, X, y, logs=False)
    pred = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    assert isinstance(pred.serializer, serializers.CSVSerializer)
    assert isinstance(pred.deserializer, deserializers.JSONDeserializer)
    X_test, y_test = X[500:], y[500:]

    answer = pred.predict(X_test[:5])  # numpy in, CSV on the wire, JSON back
    assert len(answer["predictions"]) == 5
    scores = np.array([p["score"] for p in answer["predictions"]])
    labels = [p["predicted_label"] for p in pred.predict(X_test)["predictions"]]
    assert np.mean(np.array(labels) == y_test) > 0.85

    def predict(serializer, deserializer):
        pred.serializer, pred.deserializer = serializer, deserializer
        return pred.predict(X_test[:5])

    for serializer in (serializers.JSONSerializer(), serializers.RecordSerializer(),
                       serializers.CSVSerializer()):
        got = predict(serializer, deserializers.JSONDeserializer())
        assert [p["score"] for p in got["predictions"]] == pytest.approx(scores, rel=1e-6)
    got = predict(serializers.JSONSerializer(), deserializers.JSONDeserializer())
    assert got == pred.predict({"instances": [{"features": row} for row in X_test[:5]]})
    rows = predict(serializers.CSVSerializer(), deserializers.CSVDeserializer())
    assert [float(r[0]) for r in rows] == pytest.approx(scores, rel=1e-6)
    array = predict(serializers.CSVSerializer(), deserializers.NumpyDeserializer(accept="text/csv"))
    assert array.shape == (5, 2) and array[:, 0] == pytest.approx(scores, rel=1e-6)
    lines = predict(serializers.JSONLinesSerializer(), deserializers.JSONLinesDeserializer())
    assert [line["score"] for line in lines] == pytest.approx(scores, rel=1e-6)
    records = predict(serializers.RecordSerializer(), deserializers.RecordDeserializer())
    assert [r.label["score"].float32_tensor.values[0] for r in records] == pytest.approx(
        scores, rel=1e-6)

    # Attaching to the endpoint by name.
    attached = hearth.Predictor(pred.endpoint_name, session=sess,
                                serializer=serializers.CSVSerializer(),
                                deserializer=deserializers.JSONDeserializer())
    assert attached.predict(X_test[:5]) == answer
    raw = hearth.Predictor(pred.endpoint_name, sess).predict(
        b"1,2,3,4,5", initial_args={"ContentType": "text/csv"})
    assert isinstance(raw, bytes) and raw.startswith(b'{"predictions":[{"score":')


def test_attach_to_a_job_then_delete_endpoint_and_model(sess, sm):
    X, y = binary_data()
    est = fit_linear_learner(sess, X, y, logs=False)
    job = est.latest_training_job.name

    attached = hearth.Estimator.attach(job, sess)
    assert attached.image_uri == "hearth/linear-learner"
    assert attached.model_data == est.model_data
    assert attached.hyperparameters() == est.hyperparameters()
    assert attached.output_path == f"s3://{sess.default_bucket()}"
    pred = attached.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    assert len(pred.predict(X[:3])["predictions"]) == 3

    endpoint = pred.endpoint_name
    model = sm.describe_endpoint_config(EndpointConfigName=endpoint)[
        "ProductionVariants"][0]["ModelName"]
    assert sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"] == est.model_data
    pred.delete_endpoint()
    pred.delete_model()

    def gone(call):
        try:
            call()
        except ClientError as e:
            return "Could not find" in e.response["Error"]["Message"]
        return False

    wait_for(lambda: gone(lambda: sm.describe_endpoint(EndpointName=endpoint)), timeout=30,
             what="the endpoint to be deleted")
    assert gone(lambda: sm.describe_endpoint_config(EndpointConfigName=endpoint))
    assert gone(lambda: sm.describe_model(ModelName=model))
    with pytest.raises(hearth.ResourceNotFound):
        pred.predict(X[:1])


# A model server answering application/x-npy with 2x+1 of the array it got, and JSON with the
# document it got, wrapped.
NPY_SERVE = """#!/usr/bin/python3
import http.server, io, json, os
import numpy as np
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, "text/plain", b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Type") == "application/x-npy":
            out = io.BytesIO()
            np.save(out, np.load(io.BytesIO(body)) * 2 + 1)
            return self.answer(200, "application/x-npy", out.getvalue())
        self.answer(200, "application/json", json.dumps({"got": json.loads(body)}).encode())
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])),
                                H).serve_forever()
"""


def test_numpy_and_json_serializers_with_a_bring_your_own_model(server, sess, tmp_path):
    image = register_image(server, tmp_path, "npy-echo", serve=NPY_SERVE)
    model = hearth.Model(image, session=sess)
    pred = model.deploy(1, "ml.m5.large", serializer=serializers.NumpySerializer(),
                        deserializer=deserializers.NumpyDeserializer())
    assert pred.content_type == "application/x-npy" and pred.accept == ("application/x-npy",)
    data = np.arange(12, dtype=np.float64).reshape(3, 4)
    got = pred.predict(data)
    assert got.dtype == np.float64 and np.array_equal(got, data * 2 + 1)
    pred.serializer = serializers.NumpySerializer(dtype=np.int32)
    assert pred.predict([[1, 2], [3, 4]]).tolist() == [[3, 5], [7, 9]]

    pred.serializer = serializers.JSONSerializer()
    pred.deserializer = deserializers.JSONDeserializer()
    assert pred.predict({"x": np.array([1.5, 2.5]), "n": 3}) == {"got": {"x": [1.5, 2.5],
                                                                        "n": 3}}
    # A bring-your-own model's predictor sends and returns bytes unless told otherwise.
    plain = hearth.Predictor(pred.endpoint_name, sess)
    assert plain.predict(b'{"a": 1}', initial_args={"ContentType": "application/json"}) == (
        b'{"got": {"a": 1}}')
    pred.delete_endpoint()
    pred.delete_model()


# --- batch transform -------------------------------------------------------------------------


def test_transformer_scores_an_s3_prefix(sess, s3):
    X, y = binary_data()
    est = fit_linear_learner(sess, X, y, logs=False)
    batch = X[500:]
    for i, part in enumerate((batch[:60], batch[60:])):
        body = "\n".join(",".join(str(v) for v in row) for row in part) + "\n"
        sess.upload_string_as_file_body(body, "data", f"batch/part-{i}.csv")

    transformer = est.transformer(1, "ml.m5.large", accept="text/csv", assemble_with="Line")
    job = transformer.transform("s3://data/batch/", content_type="text/csv", split_type="Line",
                                logs=False)
    assert transformer.describe()["TransformJobStatus"] == "Completed"
    assert transformer.output_path == f"s3://{sess.default_bucket()}/{job}"
    outputs = transformer.output_uris()
    assert outputs == [f"{transformer.output_path}/part-{i}.csv.out" for i in range(2)]
    scores = [float(line.split(",")[0]) for uri in outputs
              for line in get(s3, uri).decode().splitlines()]
    assert len(scores) == len(batch)

    pred = est.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    online = [p["score"] for p in pred.predict(batch)["predictions"]]
    assert scores == pytest.approx(online, rel=1e-6)
    pred.delete_endpoint()

    again = hearth.Transformer.attach(job, sess)
    assert again.model_name == est.latest_training_job.name
    assert again.output_path == transformer.output_path
    second = again.transform("s3://data/batch/part-0.csv", content_type="text/csv",
                             split_type="Line", wait=False)
    assert again.wait(logs=False)["TransformJobStatus"] == "Completed"
    assert again.latest_transform_job == second


# --- errors ----------------------------------------------------------------------------------


def test_errors_carry_the_service_code_and_message(server, sess):
    train = sess.upload_numpy(*binary_data(rows=50), "s3://data/train/")
    with pytest.raises(hearth.ValidationError) as bad_image:
        hearth.Estimator("no-such-image", session=sess).fit(train)
    assert bad_image.value.code == "ValidationException"
    assert bad_image.value.operation == "CreateTrainingJob"
    assert "no-such-image" in bad_image.value.message
    assert isinstance(bad_image.value.__cause__, ClientError)

    with pytest.raises(hearth.ResourceNotFound):
        hearth.Estimator.attach("no-such-job", sess)
    with pytest.raises(hearth.ResourceNotFound):
        hearth.Predictor("no-such-endpoint", sess).predict(b"1,2")
    with pytest.raises(hearth.ResourceNotFound) as no_key:
        sess.read_s3_file("data", "no/such/key")
    assert no_key.value.code == "NoSuchKey"

    X, y = binary_data()
    pred = fit_linear_learner(sess, X, y, logs=False).deploy(1, "ml.m5.large")
    with pytest.raises(hearth.ModelError) as model_error:
        pred.predict(X[:2, :3])  # three features for a five-feature model
    assert model_error.value.original_status_code == 400
    assert model_error.value.code == "ModelError"
    pred.delete_endpoint()

    with pytest.raises(hearth.ServiceConnectionError, match="cannot reach"):
        hearth.Session(f"http://127.0.0.1:{free_port()}").call("sagemaker", "list_models")
    with pytest.raises(ValueError, match="fit"):
        hearth.Estimator("linear-learner", session=sess).model_data
    with pytest.raises(ValueError, match="min_value 2 is greater than max_value 1"):
        hearth.IntegerParameter(2, 1)
    with pytest.raises(TypeError, match=r"hyperparameter_ranges\['eta'\] must be"):
        hearth.HyperparameterTuner(hearth.Estimator("xgboost", session=sess), "validation:auc",
                                   {"eta": (0.1, 0.2)})


# --- hyperparameter tuning -------------------------------------------------------------------


def linear_learner_tuner(sess, X, y, **kwargs):
    """A tuner of linear-learner's learning_rate (log scale), mini_batch_size and loss on the
    binary data, maximising validation accuracy; `kwargs` override the tuner's settings."""
    train = sess.upload_numpy(X[:400], y[:400], "s3://tune/train/")
    val = sess.upload_numpy(X[400:500], y[400:500], "s3://tune/validation/", format="csv")
    est = hearth.Estimator("linear-learner", hyperparameters={
        "predictor_type": "binary_classifier", "epochs": 3, "learning_rate": 0.5},
        session=sess)
    settings = dict(strategy="Random", max_jobs=4, max_parallel_jobs=2)
    settings.update(kwargs)
    tuner = hearth.HyperparameterTuner(
        est, "validation:binary_classification_accuracy",
        {"learning_rate": hearth.ContinuousParameter(1e-4, 1e-1, "Logarithmic"),
         "mini_batch_size": hearth.IntegerParameter(10, 100),
         "loss": hearth.CategoricalParameter(["logistic", "hinge_loss"])},
        **settings)
    return tuner, {"train": train, "validation": val}


def test_tuner_runs_trials_and_reports_them_as_a_dataframe(sess, capsys):
    X, y = binary_data(seed=11)
    tuner, inputs = linear_learner_tuner(sess, X, y)
    tuner.fit(inputs)

    name = tuner.latest_tuning_job
    assert name.startswith("linear-learner-") and len(name) <= 32
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Created hyperparameter tuning job {name}"
    assert any(f"{name} Completed: 4/4 finished, 0 running, best "
               "validation:binary_classification_accuracy" in line for line in out), out

    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    config = desc["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["ResourceLimits"]["MaxParallelTrainingJobs"] == 2
    assert config["ParameterRanges"]["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1",
         "ScalingType": "Logarithmic"}]
    # The tuned hyperparameter is left out of the static ones the estimator had.
    static = desc["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["predictor_type"] == "binary_classifier" and static["epochs"] == "3"
    assert "learning_rate" not in static

    frame = tuner.analytics().dataframe()
    assert len(frame) == 4
    assert {"learning_rate", "mini_batch_size", "loss", "TrainingJobName", "TrainingJobStatus",
            "FinalObjectiveValue", "TrainingStartTime", "TrainingEndTime",
            "TrainingElapsedTimeSeconds"} <= set(frame.columns)
    assert (frame["TrainingJobStatus"] == "Completed").all()
    assert frame["learning_rate"].between(1e-4, 1e-1).all()
    assert frame["mini_batch_size"].map(lambda v: isinstance(v, int) and 10 <= v <= 100).all()
    assert set(frame["loss"]) <= {"logistic", "hinge_loss"}
    assert (frame["TrainingElapsedTimeSeconds"] >= 0).all()
    # Each row's objective is that job's own final metric.
    for row in frame.itertuples():
        job = hearth.Estimator.attach(row.TrainingJobName, sess)
        assert job.final_metrics()["validation:binary_classification_accuracy"] == \
            pytest.approx(row.FinalObjectiveValue)
        assert float(job.describe()["HyperParameters"]["learning_rate"]) == \
            pytest.approx(row.learning_rate)

    best = tuner.best_training_job()
    assert frame.loc[frame["FinalObjectiveValue"].idxmax(), "FinalObjectiveValue"] == \
        frame.loc[frame["TrainingJobName"] == best, "FinalObjectiveValue"].iloc[0]
    pred = tuner.deploy(1, "ml.m5.large")
    assert pred.describe()["EndpointStatus"] == "InService"
    answer = pred.predict(X[500:520])
    assert len(answer["predictions"]) == 20
    pred.delete_endpoint()


def test_tuner_attach_warm_start_and_stop(sess):
    X, y = binary_data(seed=12)
    tuner, inputs = linear_learner_tuner(sess, X, y, max_jobs=2, max_parallel_jobs=1)
    tuner.fit(inputs, logs=False)

    attached = hearth.HyperparameterTuner.attach(tuner.latest_tuning_job, sess)
    assert attached.objective_metric_name == "validation:binary_classification_accuracy"
    assert attached.hyperparameter_ranges() == tuner.hyperparameter_ranges()
    assert attached.estimator.hyperparameters() == {"predictor_type": "binary_classifier",
                                                    "epochs": "3"}
    assert attached.best_training_job() == tuner.best_training_job()

    # A warm start from the first tuning job: the parent is recorded, and the best job overall
    # is at least as good as the parent's best.
    child = attached.identical_dataset_and_algorithm_tuner()
    child.max_jobs = 2
    child.fit(inputs, logs=False)
    desc = child.describe()
    assert desc["WarmStartConfig"] == {
        "WarmStartType": "IdenticalDataAndAlgorithm",
        "ParentHyperParameterTuningJobs": [
            {"HyperParameterTuningJobName": tuner.latest_tuning_job}]}
    parent_best = tuner.describe()["BestTrainingJob"][
        "FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    overall = child.describe().get("OverallBestTrainingJob") or child.describe()[
        "BestTrainingJob"]
    assert overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] >= parent_best

    # Stopped right after it starts: ends Stopped with fewer trials than its budget.
    long, _ = linear_learner_tuner(sess, X, y, max_jobs=50, max_parallel_jobs=1)
    long.fit(inputs, wait=False)
    long.stop_tuning_job()
    assert long.wait(logs=False)["HyperParameterTuningJobStatus"] == "Stopped"
    assert len(long.analytics().dataframe()) < 50


def test_tuner_errors_name_the_field(sess):
    X, y = binary_data(seed=13)
    tuner, inputs = linear_learner_tuner(sess, X, y)
    tuner._hyperparameter_ranges["learning_rate"] = hearth.ContinuousParameter(
        0, 0.1, "Logarithmic")
    with pytest.raises(hearth.ValidationError,
                       match=r"continuousParameterRanges\.1\.member\.minValue' failed to "
                             "satisfy constraint: Member must be greater than 0"):
        tuner.fit(inputs)
    with pytest.raises(ValueError, match="no tuning job yet"):
        tuner.best_training_job()
