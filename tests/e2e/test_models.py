"""Models and endpoint configs as durable resources: CreateModel/DescribeModel/ListModels/
DeleteModel and the EndpointConfig four, through boto3 and the AWS CLI, with SageMaker's
"Could not find" and "Cannot create already existing" errors that the sagemaker SDK and boto3
waiters match on, and both resources kept across a server restart."""
import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:000000000000"
BUCKET = "models"
MODEL_DATA = f"s3://{BUCKET}/xgb/model.tar.gz"
XGBOOST_ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def model_tarball():
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w:gz") as tar:
        data = b"not a real booster\n"
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return body.getvalue()


@pytest.fixture
def model_data(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="xgb/model.tar.gz", Body=model_tarball())
    return MODEL_DATA


def container(image="hearth/xgboost", data=MODEL_DATA):
    c = {"Image": image, "Environment": {"A": "1"}}
    if data:
        c["ModelDataUrl"] = data
    return c


def create_model(sm, name, **overrides):
    args = {"ModelName": name, "ExecutionRoleArn": ROLE, "PrimaryContainer": container()}
    args.update(overrides)
    return sm.create_model(**args)


def variant(name, model, **extra):
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large", **extra}


def validation_error(excinfo):
    err = excinfo.value.response["Error"]
    assert err["Code"] == "ValidationException", err
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err["Message"]


def test_create_describe_delete_model(sm, s3, model_data):
    out = create_model(sm, "xgb-Model", Tags=[{"Key": "team", "Value": "ml"}])
    arn = f"{ARN_PREFIX}:model/xgb-model"
    assert out["ModelArn"] == arn
    doc = sm.describe_model(ModelName="xgb-Model")
    assert doc["ModelName"] == "xgb-Model"
    assert doc["ModelArn"] == arn
    assert doc["ExecutionRoleArn"] == ROLE
    assert doc["PrimaryContainer"] == container()
    assert doc["EnableNetworkIsolation"] is False
    assert doc["CreationTime"].year >= 2024  # parsed by botocore as a timestamp
    assert "Tags" not in doc

    assert sm.delete_model(ModelName="xgb-Model")["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        sm.describe_model(ModelName="xgb-Model")
    assert validation_error(e) == f'Could not find model "{arn}".'
    with pytest.raises(ClientError) as e:
        sm.delete_model(ModelName="xgb-Model")
    assert "Could not find model" in validation_error(e)
    # The artifact is the user's: deleting the model leaves it.
    assert s3.head_object(Bucket=BUCKET, Key="xgb/model.tar.gz")["ContentLength"] > 0


def test_model_with_ecr_image_and_pipeline_containers(sm, model_data):
    create_model(sm, "ecr", PrimaryContainer=container(XGBOOST_ECR))
    assert sm.describe_model(ModelName="ecr")["PrimaryContainer"]["Image"] == XGBOOST_ECR
    pipeline = [container(), container(XGBOOST_ECR, data=None)]
    sm.create_model(ModelName="pipe", ExecutionRoleArn=ROLE, Containers=pipeline,
                    InferenceExecutionConfig={"Mode": "Serial"})
    doc = sm.describe_model(ModelName="pipe")
    assert doc["Containers"] == pipeline
    assert "PrimaryContainer" not in doc


def test_create_model_validation_errors(sm, model_data):
    with pytest.raises(ClientError) as e:
        sm.create_model(ModelName="none", ExecutionRoleArn=ROLE)
    assert "PrimaryContainer or Containers" in validation_error(e)
    with pytest.raises(ClientError) as e:
        create_model(sm, "both", Containers=[container()])
    assert "PrimaryContainer and Containers" in validation_error(e)

    with pytest.raises(ClientError) as e:
        create_model(sm, "unknown", PrimaryContainer=container("acme/never-registered:3"))
    message = validation_error(e)
    assert "acme/never-registered:3" in message and "primaryContainer.image" in message

    missing = f"s3://{BUCKET}/xgb/other.tar.gz"
    with pytest.raises(ClientError) as e:
        create_model(sm, "nodata", PrimaryContainer=container(data=missing))
    assert validation_error(e) == f"Could not find model data at {missing}."
    with pytest.raises(ClientError) as e:
        create_model(sm, "nobucket", PrimaryContainer=container(data="s3://nope/m.tar.gz"))
    assert validation_error(e) == "Could not find model data at s3://nope/m.tar.gz."
    assert sm.list_models()["Models"] == []

    create_model(sm, "dup")
    for name in ("dup", "DUP"):
        with pytest.raises(ClientError) as e:
            create_model(sm, name)
        assert validation_error(e) == f'Cannot create already existing model "{ARN_PREFIX}:model/dup".'


def test_list_models_sorts_filters_and_pages(sm, model_data):
    names = ["m-beta", "m-alpha", "x-gamma", "m-delta", "x-epsilon"]
    for name in names:
        create_model(sm, name)
    listed = sm.list_models()["Models"]
    assert [m["ModelName"] for m in listed] == names[::-1]  # newest first by default
    assert all(m["ModelArn"] == f"{ARN_PREFIX}:model/{m['ModelName']}" for m in listed)
    times = [m["CreationTime"] for m in listed]
    assert times == sorted(times, reverse=True)

    by_name = sm.list_models(SortBy="Name", SortOrder="Ascending")["Models"]
    assert [m["ModelName"] for m in by_name] == sorted(names)
    contains = sm.list_models(NameContains="x-", SortBy="Name")["Models"]
    assert [m["ModelName"] for m in contains] == ["x-gamma", "x-epsilon"]

    before = sm.list_models(CreationTimeBefore=listed[-1]["CreationTime"])["Models"]
    assert before == []
    after = sm.list_models(CreationTimeAfter=listed[-1]["CreationTime"])["Models"]
    assert len(after) == len(names)

    page = sm.list_models(SortBy="Name", SortOrder="Ascending", MaxResults=2)
    assert [m["ModelName"] for m in page["Models"]] == ["m-alpha", "m-beta"]
    collected = [m["ModelName"] for m in page["Models"]]
    while "NextToken" in page:
        page = sm.list_models(SortBy="Name", SortOrder="Ascending", MaxResults=2,
                              NextToken=page["NextToken"])
        collected += [m["ModelName"] for m in page["Models"]]
    assert collected == sorted(names)

    paginator = sm.get_paginator("list_models")
    pages = list(paginator.paginate(SortBy="Name", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [m["ModelName"] for p in pages for m in p["Models"]] == sorted(names, reverse=True)

    with pytest.raises(ClientError) as e:
        sm.list_models(NextToken="not-a-token")
    assert "pagination token" in validation_error(e)


def test_endpoint_config_create_describe_list_delete(sm, model_data):
    create_model(sm, "m1")
    create_model(sm, "m2")
    out = sm.create_endpoint_config(
        EndpointConfigName="Cfg-One",
        ProductionVariants=[variant("a", "m1"), variant("b", "m2", InitialVariantWeight=3.0)],
        Tags=[{"Key": "k", "Value": "v"}])
    arn = f"{ARN_PREFIX}:endpoint-config/cfg-one"
    assert out["EndpointConfigArn"] == arn
    doc = sm.describe_endpoint_config(EndpointConfigName="Cfg-One")
    assert doc["EndpointConfigName"] == "Cfg-One"
    assert doc["EndpointConfigArn"] == arn
    assert [v["InitialVariantWeight"] for v in doc["ProductionVariants"]] == [1.0, 3.0]
    assert [v["ModelName"] for v in doc["ProductionVariants"]] == ["m1", "m2"]
    assert doc["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    assert doc["CreationTime"].year >= 2024

    sm.create_endpoint_config(EndpointConfigName="cfg-two", ProductionVariants=[variant("a", "m1")])
    sm.create_endpoint_config(EndpointConfigName="other", ProductionVariants=[variant("a", "m1")])
    listed = sm.list_endpoint_configs()["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == ["other", "cfg-two", "Cfg-One"]
    assert listed[2]["EndpointConfigArn"] == arn
    page = sm.list_endpoint_configs(NameContains="cfg", SortBy="Name", SortOrder="Ascending",
                                    MaxResults=1)
    assert [c["EndpointConfigName"] for c in page["EndpointConfigs"]] == ["Cfg-One"]
    page = sm.list_endpoint_configs(NameContains="cfg", SortBy="Name", SortOrder="Ascending",
                                    MaxResults=1, NextToken=page["NextToken"])
    assert [c["EndpointConfigName"] for c in page["EndpointConfigs"]] == ["cfg-two"]
    assert "NextToken" not in page

    # Deleting a model an endpoint config names is allowed, and leaves the config.
    sm.delete_model(ModelName="m1")
    assert sm.describe_endpoint_config(EndpointConfigName="cfg-two")["ProductionVariants"][0][
        "ModelName"] == "m1"

    sm.delete_endpoint_config(EndpointConfigName="cfg-one")
    with pytest.raises(ClientError) as e:
        sm.describe_endpoint_config(EndpointConfigName="Cfg-One")
    assert validation_error(e) == f'Could not find endpoint configuration "{arn}".'
    with pytest.raises(ClientError) as e:
        sm.delete_endpoint_config(EndpointConfigName="Cfg-One")
    assert "Could not find endpoint configuration" in validation_error(e)


def test_endpoint_config_validation_errors(sm, model_data):
    create_model(sm, "m")
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="c",
                                  ProductionVariants=[variant("a", "m"), variant("b", "Missing")])
    assert validation_error(e) == f'Could not find model "{ARN_PREFIX}:model/missing".'
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="c",
                                  ProductionVariants=[variant("a", "m"), variant("a", "m")])
    assert "VariantName 'a'" in validation_error(e)
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "s", "ModelName": "m",
             "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    assert "ServerlessConfig is not supported" in validation_error(e)
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.m5.large"}])
    assert "initialInstanceCount" in validation_error(e)
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []

    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("a", "m")])
    with pytest.raises(ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("a", "m")])
    assert validation_error(e) == (
        f'Cannot create already existing endpoint configuration "{ARN_PREFIX}:endpoint-config/c".')


def test_aws_cli_models_and_endpoint_configs(server, model_data):
    out = server.cli("sagemaker", "create-model", "--model-name", "cli-model",
                     "--execution-role-arn", ROLE,
                     "--primary-container", json.dumps(container()))
    assert out["ModelArn"] == f"{ARN_PREFIX}:model/cli-model"
    for i in range(4):
        server.cli("sagemaker", "create-model", "--model-name", f"cli-extra-{i}",
                   "--execution-role-arn", ROLE,
                   "--primary-container", json.dumps(container(data=None)))
    doc = server.cli("sagemaker", "describe-model", "--model-name", "cli-model")
    assert doc["PrimaryContainer"]["ModelDataUrl"] == MODEL_DATA
    # The CLI follows NextToken itself: pages of 2 still give every model, in order.
    listed = server.cli("sagemaker", "list-models", "--sort-by", "Name", "--sort-order",
                        "Ascending", "--page-size", "2")
    assert [m["ModelName"] for m in listed["Models"]] == (
        [f"cli-extra-{i}" for i in range(4)] + ["cli-model"])
    listed = server.cli("sagemaker", "list-models", "--name-contains", "model")
    assert [m["ModelName"] for m in listed["Models"]] == ["cli-model"]

    out = server.cli("sagemaker", "create-endpoint-config", "--endpoint-config-name", "cli-cfg",
                     "--production-variants", json.dumps([variant("AllTraffic", "cli-model")]))
    assert out["EndpointConfigArn"] == f"{ARN_PREFIX}:endpoint-config/cli-cfg"
    doc = server.cli("sagemaker", "describe-endpoint-config", "--endpoint-config-name", "cli-cfg")
    assert doc["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
    listed = server.cli("sagemaker", "list-endpoint-configs")
    assert [c["EndpointConfigName"] for c in listed["EndpointConfigs"]] == ["cli-cfg"]

    proc = server.cli("sagemaker", "create-endpoint-config", "--endpoint-config-name", "bad",
                      "--production-variants", json.dumps([variant("v", "no-model")]),
                      check=False)
    assert proc.returncode != 0
    assert "ValidationException" in proc.stderr
    assert f'Could not find model "{ARN_PREFIX}:model/no-model".' in proc.stderr

    server.cli("sagemaker", "delete-endpoint-config", "--endpoint-config-name", "cli-cfg")
    server.cli("sagemaker", "delete-model", "--model-name", "cli-model")
    proc = server.cli("sagemaker", "describe-model", "--model-name", "cli-model", check=False)
    assert proc.returncode != 0
    assert "Could not find model" in proc.stderr
    proc = server.cli("sagemaker", "describe-endpoint-config", "--endpoint-config-name",
                      "cli-cfg", check=False)
    assert proc.returncode != 0
    assert "Could not find endpoint configuration" in proc.stderr


def test_models_and_endpoint_configs_survive_a_restart(server, sm, model_data):
    create_model(sm, "kept")
    sm.create_endpoint_config(EndpointConfigName="kept-cfg",
                              ProductionVariants=[variant("a", "kept")])
    model_before = sm.describe_model(ModelName="kept")
    config_before = sm.describe_endpoint_config(EndpointConfigName="kept-cfg")
    server.stop()
    server.start()
    sm = server.client("sagemaker")
    model_after = sm.describe_model(ModelName="kept")
    config_after = sm.describe_endpoint_config(EndpointConfigName="kept-cfg")
    for doc in (model_before, model_after, config_before, config_after):
        doc.pop("ResponseMetadata")
    assert model_after == model_before
    assert config_after == config_before
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["kept"]
    with pytest.raises(ClientError) as e:
        create_model(sm, "kept")
    assert "Cannot create already existing model" in validation_error(e)
