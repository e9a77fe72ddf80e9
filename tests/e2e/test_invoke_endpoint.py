"""InvokeEndpoint's traffic rules and wire shapes, through boto3's `sagemaker-runtime` and the
AWS CLI: the split between production variants follows their weights, TargetVariant overrides
it, custom attributes travel both ways, and model errors, unknown endpoints and oversized
bodies get SageMaker's errors.

The model is a bring-your-own `serve` in a few lines of Debian's python3 that answers with the
tag its variant's Environment gives it, so each answer says which variant served it.
"""
import stat
import textwrap

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
FAST = {"Delay": 1, "MaxAttempts": 120}

TAG_SERVE = """\
exec /usr/bin/python3 -c '
import http.server, os
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
tag = os.environ["VARIANT_TAG"].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if body == b"fail":
            out, code = b"bad row: fail", 400
        else:
            out, code = tag + b":" + body, 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes:
            self.send_header("X-Amzn-SageMaker-Custom-Attributes", "seen=" + attributes)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'
"""


@pytest.fixture
def split_endpoint(server, sm, tmp_path):
    """An endpoint with variants "a" (weight 3) and "b" (weight 1), one instance each."""
    d = tmp_path / "images" / "tag-serve"
    d.mkdir(parents=True)
    serve = d / "serve"
    serve.write_text("#!/bin/sh\n" + textwrap.dedent(TAG_SERVE))
    serve.chmod(serve.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    server.register_image("tag-serve", str(d))
    variants = []
    for tag, weight in (("a", 3.0), ("b", 1.0)):
        sm.create_model(ModelName=f"tag-{tag}", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "tag-serve",
                                          "Environment": {"VARIANT_TAG": tag}})
        variants.append({"VariantName": tag, "ModelName": f"tag-{tag}",
                         "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
                         "InitialVariantWeight": weight})
    sm.create_endpoint_config(EndpointConfigName="split", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="split", EndpointConfigName="split")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="split", WaiterConfig=FAST)
    yield "split"
    sm.delete_endpoint(EndpointName="split")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="split", WaiterConfig=FAST)


def test_traffic_follows_variant_weights_and_target_variant(server, split_endpoint):
    runtime = server.client("sagemaker-runtime")
    counts = {"a": 0, "b": 0}
    n = 400
    for i in range(n):
        r = runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                    Body=f"{i},1".encode())
        body = r["Body"].read().decode()
        tag, echoed = body.split(":", 1)
        assert echoed == f"{i},1"
        # The header names the variant whose model answered.
        assert r["InvokedProductionVariant"] == tag
        assert r["ContentType"] == "text/plain"
        counts[tag] += 1
    # Weights 3:1 → P(a) = 0.75; 4 standard deviations of Binomial(400, 0.75) is ±35.
    assert 265 <= counts["a"] <= 335, counts

    for _ in range(20):
        r = runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                    Body=b"1,2", TargetVariant="b")
        assert r["Body"].read() == b"b:1,2"
        assert r["InvokedProductionVariant"] == "b"
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                Body=b"1,2", TargetVariant="c")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "c" in e.value.response["Error"]["Message"]


def test_custom_attributes_and_errors_in_sagemakers_shapes(server, split_endpoint):
    runtime = server.client("sagemaker-runtime")
    r = runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                Body=b"1,2", CustomAttributes="trace=42")
    assert r["CustomAttributes"] == "seen=trace=42"

    # The model's own 4xx: ModelError with what the model said.
    with pytest.raises(runtime.exceptions.ModelError) as e:
        runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                Body=b"fail")
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400
    assert err["OriginalMessage"] == "bad row: fail"
    assert "/aws/sagemaker/Endpoints/split" in err["LogStreamArn"]

    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName="nowhere", ContentType="text/csv", Body=b"1")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"] == \
        "Endpoint nowhere of account 000000000000 not found."

    # Over the 6 MiB payload limit: refused before the model sees it.
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=split_endpoint, ContentType="text/csv",
                                Body=b"1" * (6 * 1024 * 1024 + 1))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_aws_cli_invoke_endpoint(server, split_endpoint, tmp_path):
    out = tmp_path / "out.txt"
    meta = server.cli("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", split_endpoint,
                      "--content-type", "text/csv", "--target-variant", "a",
                      "--body", "fileb://" + str(_write(tmp_path / "row.csv", b"5,6")), str(out))
    assert meta["InvokedProductionVariant"] == "a"
    assert out.read_bytes() == b"a:5,6"


def _write(path, data):
    path.write_bytes(data)
    return path
