"""Hyperparameter tuning jobs end to end: a real `hearth server`, boto3 and the AWS CLI, children
run as real training jobs in the sandbox.

Most jobs run a small bring-your-own image written here (`tune`): it reads its hyperparameters
and prints, once per epoch, `epoch <e> loss=<value>` with value = (x - 0.3)^2 + penalty(optimizer)
+ 1/e, so which child is best is known from its hyperparameters. The built-in XGBoost is tuned on
scikit-learn's breast cancer set for validation:auc.
"""
import json
import os
import re
import shutil
import time

import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from builtin_algorithms import csv_bytes
from conftest import LoggedServer, wait_for

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
BUCKET = "tuning"
TERMINAL = {"Completed", "Failed", "Stopped"}
PENALTY = {"sgd": 0.0, "adam": 0.05, "rmsprop": 0.1}

TRAIN_SCRIPT = """#!/usr/bin/python3
import json, os, time
hp = json.load(open("/opt/ml/input/config/hyperparameters.json"))
penalty = {"sgd": 0.0, "adam": 0.05, "rmsprop": 0.1}[hp.get("optimizer", "sgd")]
base = (float(hp.get("x", "0.3")) - 0.3) ** 2 + penalty
epochs = int(hp.get("epochs", "1"))
for e in range(1, epochs + 1):
    print("epoch %d loss=%.6f" % (e, base + 1.0 / e), flush=True)
    time.sleep(float(hp.get("pause", "0")))
with open("/opt/ml/model/model.json", "w") as f:
    json.dump(hp, f)
"""


def expected_loss(hps, epochs):
    base = (float(hps.get("x", "0.3")) - 0.3) ** 2 + PENALTY[hps.get("optimizer", "sgd")]
    return round(base + 1.0 / epochs, 6)


@pytest.fixture
def server(tmp_path):
    s = LoggedServer(str(tmp_path / "data")).start()
    image = tmp_path / "tune-image"
    image.mkdir()
    (image / "train").write_text(TRAIN_SCRIPT)
    (image / "train").chmod(0o755)
    s.register_image("tune", str(image))
    client = s.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"1,2\n")
    yield s
    s.stop()


def definition(static=None, image="tune", metric_regex=r"loss=([0-9.eE+-]+)"):
    return {
        "StaticHyperParameters": {"epochs": "1", **(static or {})},
        "AlgorithmSpecification": {
            "TrainingImage": image, "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": metric_regex}]},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def x_range(lo=0.0, hi=1.0):
    return {"ContinuousParameterRanges": [{"Name": "x", "MinValue": str(lo), "MaxValue": str(hi)}]}


def categorical(**values):
    return {"CategoricalParameterRanges": [{"Name": k, "Values": v} for k, v in values.items()]}


def request(name, strategy, ranges, max_jobs, parallel, static=None, objective="Minimize",
            **config):
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": objective, "MetricName": "loss"},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            **config,
        },
        "TrainingJobDefinition": definition(static),
    }


def wait_tuning(sm, name, timeout=120, each=None):
    def done():
        d = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if each:
            each(d)
        return d if d["HyperParameterTuningJobStatus"] in TERMINAL else None
    return wait_for(done, timeout=timeout, interval=0.2, what=f"tuning job {name} to end")


def children(sm, name, **kwargs):
    out, token = [], None
    while True:
        args = dict(HyperParameterTuningJobName=name, MaxResults=100, **kwargs)
        if token:
            args["NextToken"] = token
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(**args)
        out += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return out


def objective(summary):
    return summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]


def error_of(excinfo):
    err = excinfo.value.response["Error"]
    return err["Code"], err.get("Message", "")


# --- strategies ---------------------------------------------------------------------------------


def test_random_search_with_boto3_finds_the_best_child(sm):
    arn = sm.create_hyper_parameter_tuning_job(
        **request("random", "Random", x_range(), 4, 2))["HyperParameterTuningJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:hyper-parameter-tuning-job/random"
    most = []
    d = wait_tuning(sm, "random",
                    each=lambda d: most.append(d["TrainingJobStatusCounters"]["InProgress"]))
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    assert max(most) <= 2
    assert d["TrainingJobStatusCounters"]["Completed"] == 4
    assert d["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    summaries = children(sm, "random", SortBy="FinalObjectiveMetricValue")
    assert len(summaries) == 4
    for s in summaries:
        assert re.fullmatch(r"random-00[1-4]-[0-9a-f]{8}", s["TrainingJobName"])
        assert s["ObjectiveStatus"] == "Succeeded"
        assert objective(s) == pytest.approx(expected_loss(s["TunedHyperParameters"], 1),
                                             abs=1e-5)
        job = sm.describe_training_job(TrainingJobName=s["TrainingJobName"])
        assert job["TuningJobArn"] == arn
        assert job["HyperParameters"]["_tuning_objective_metric"] == "loss"
        assert job["HyperParameters"]["x"] == s["TunedHyperParameters"]["x"]
    values = [objective(s) for s in summaries]
    assert values == sorted(values)
    assert d["BestTrainingJob"]["TrainingJobName"] == summaries[0]["TrainingJobName"]
    # ListTrainingJobs shows the children too, as SageMaker's does.
    listed = sm.list_training_jobs(NameContains="random-", MaxResults=100)["TrainingJobSummaries"]
    assert len(listed) == 4


def test_bayesian_through_the_aws_cli_cli_input_json(server):
    req = request("bayes-cli", "Bayesian", x_range(), 4, 2)
    req["HyperParameterTuningJobConfig"]["RandomSeed"] = 7
    out = server.cli("sagemaker", "create-hyper-parameter-tuning-job", "--cli-input-json",
                     json.dumps(req))
    assert out["HyperParameterTuningJobArn"].endswith("/bayes-cli")
    d = wait_for(lambda: (lambda d: d if d["HyperParameterTuningJobStatus"] in TERMINAL else None)(
        server.cli("sagemaker", "describe-hyper-parameter-tuning-job",
                   "--hyper-parameter-tuning-job-name", "bayes-cli")),
        timeout=120, interval=0.5, what="bayes-cli to end")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert d["HyperParameterTuningJobConfig"]["RandomSeed"] == 7
    listed = server.cli("sagemaker", "list-training-jobs-for-hyper-parameter-tuning-job",
                        "--hyper-parameter-tuning-job-name", "bayes-cli")
    assert len(listed["TrainingJobSummaries"]) == 4
    best = min(listed["TrainingJobSummaries"], key=objective)
    assert d["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    jobs = server.cli("sagemaker", "list-hyper-parameter-tuning-jobs")
    assert [j["HyperParameterTuningJobName"] for j in jobs["HyperParameterTuningJobSummaries"]] \
        == ["bayes-cli"]


def test_grid_runs_every_combination(sm):
    ranges = categorical(optimizer=["sgd", "adam", "rmsprop"], x=["0.1", "0.3"])
    sm.create_hyper_parameter_tuning_job(**request("grid", "Grid", ranges, 0, 3))
    d = wait_tuning(sm, "grid")
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    combos = {(s["TunedHyperParameters"]["optimizer"], s["TunedHyperParameters"]["x"])
              for s in children(sm, "grid")}
    assert len(combos) == 6
    assert d["BestTrainingJob"]["TunedHyperParameters"] == {"optimizer": "sgd", "x": "0.3"}


def test_hyperband_stops_children_at_its_rungs(sm):
    # 30 epochs printed; MaxResource 9: Hyperband stops every child by epoch 9 or earlier.
    req = request("hyperband", "Hyperband", x_range(), 4, 2,
                  static={"epochs": "30", "pause": "0.1"},
                  StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 1,
                                                              "MaxResource": 9}})
    sm.create_hyper_parameter_tuning_job(**req)
    d = wait_tuning(sm, "hyperband")
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    assert d["TrainingJobStatusCounters"]["Stopped"] == 4
    for s in children(sm, "hyperband"):
        assert s["TrainingJobStatus"] == "Stopped"
        assert s["ObjectiveStatus"] == "Succeeded"
        # Stopped before its 30th epoch: its last loss is above the 30-epoch value.
        assert objective(s) > expected_loss(s["TunedHyperParameters"], 30)


# --- early stopping, completion criteria, stop ---------------------------------------------------


def test_early_stopping_auto_stops_a_child_behind_the_median(sm):
    # In Grid order, five good children run first; the sixth (x = 2) is far behind their median
    # at its first epoch, so the median rule stops it.
    ranges = categorical(x=["0.30", "0.31", "0.32", "0.33", "0.34", "2.0"])
    req = request("median", "Grid", ranges, 0, 1, static={"epochs": "8", "pause": "0.1"},
                  TrainingJobEarlyStoppingType="Auto")
    sm.create_hyper_parameter_tuning_job(**req)
    d = wait_tuning(sm, "median")
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    status = {s["TunedHyperParameters"]["x"]: s["TrainingJobStatus"]
              for s in children(sm, "median")}
    assert status == {"0.30": "Completed", "0.31": "Completed", "0.32": "Completed",
                      "0.33": "Completed", "0.34": "Completed", "2.0": "Stopped"}
    assert d["TrainingJobStatusCounters"]["Stopped"] == 1


def test_target_objective_value_completes_the_job(sm):
    ranges = categorical(x=["1.0", "0.3", "0.5"])  # losses 1.49, 1.0, 1.04
    req = request("target", "Grid", ranges, 0, 1,
                  TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 1.1})
    sm.create_hyper_parameter_tuning_job(**req)
    d = wait_tuning(sm, "target")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert [s["TunedHyperParameters"]["x"] for s in children(sm, "target")] == ["1.0", "0.3"]


def test_best_objective_not_improving_with_the_newest_cli(server):
    aws = shutil.which("aws", path=os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith("/usr/bin")
        and p not in ("/bin", "/usr/sbin", "/sbin")))
    assert aws, "the image's pyenv AWS CLI (newest botocore) is needed for this request"
    ranges = categorical(x=["0.3", "0.6", "0.7", "0.8", "0.9"])
    req = request("plateau", "Grid", ranges, 0, 1, TuningJobCompletionCriteria={
        "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}})
    server.cli("sagemaker", "create-hyper-parameter-tuning-job", "--cli-input-json",
               json.dumps(req), aws=aws)
    d = wait_for(lambda: (lambda d: d if d["HyperParameterTuningJobStatus"] in TERMINAL else None)(
        server.cli("sagemaker", "describe-hyper-parameter-tuning-job",
                   "--hyper-parameter-tuning-job-name", "plateau", aws=aws)),
        timeout=120, interval=0.5, what="plateau to end")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert d["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"] == 3
    assert d["TrainingJobStatusCounters"]["Completed"] == 4  # 0.9 never launched
    assert d["BestTrainingJob"]["TunedHyperParameters"]["x"] == "0.3"


def test_stop_stops_the_running_children(sm):
    req = request("stop-me", "Random", x_range(), 4, 2, static={"epochs": "600", "pause": "0.1"})
    sm.create_hyper_parameter_tuning_job(**req)
    wait_for(lambda: len([s for s in children(sm, "stop-me")
                          if s["TrainingJobStatus"] == "InProgress"]) == 2,
             timeout=60, what="two running children")
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stop-me")
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="stop-me")["HyperParameterTuningJobStatus"] in (
        "Stopping", "Stopped")
    d = wait_tuning(sm, "stop-me")
    assert d["HyperParameterTuningJobStatus"] == "Stopped"
    assert [s["TrainingJobStatus"] for s in children(sm, "stop-me")] == ["Stopped", "Stopped"]
    with pytest.raises(ClientError) as e:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stop-me")
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-job")
    assert error_of(e)[0] == "ResourceNotFound"


# --- warm start and validation -------------------------------------------------------------------


def test_warm_start_reports_the_overall_best(sm):
    sm.create_hyper_parameter_tuning_job(**request("parent", "Random", x_range(0, 0.5), 3, 3))
    parent = wait_tuning(sm, "parent")
    assert parent["HyperParameterTuningJobStatus"] == "Completed"

    req = request("child", "Bayesian", x_range(0.8, 1.0), 2, 1)
    req["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [
        {"HyperParameterTuningJobName": "parent"}], "WarmStartType": "IdenticalDataAndAlgorithm"}
    bad = json.loads(json.dumps(req))
    bad["HyperParameterTuningJobName"] = "bad-child"
    bad["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] = "Maximize"
    with pytest.raises(ClientError) as e:
        sm.create_hyper_parameter_tuning_job(**bad)
    assert error_of(e)[0] == "ValidationException"
    assert "same as its parents'" in error_of(e)[1]

    sm.create_hyper_parameter_tuning_job(**req)
    d = wait_tuning(sm, "child")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert d["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    # x in [0.8, 1] cannot beat the parent's x in [0, 0.5].
    assert d["OverallBestTrainingJob"]["TrainingJobName"] == \
        parent["BestTrainingJob"]["TrainingJobName"]
    assert d["BestTrainingJob"]["TrainingJobName"].startswith("child-")

    transfer = request("transfer", "Bayesian", x_range(0.2, 0.4), 2, 2)
    transfer["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [
        {"HyperParameterTuningJobName": "parent"}, {"HyperParameterTuningJobName": "child"}],
        "WarmStartType": "TransferLearning"}
    sm.create_hyper_parameter_tuning_job(**transfer)
    assert wait_tuning(sm, "transfer")["HyperParameterTuningJobStatus"] == "Completed"


def test_invalid_requests_are_validation_errors(sm):
    cases = [
        (request("a" * 33, "Random", x_range(), 2, 1), "hyperParameterTuningJobName"),
        (request("hb-auto", "Hyperband", x_range(), 2, 1, static={"epochs": "9"},
                 TrainingJobEarlyStoppingType="Auto"), "Member must be Off when Strategy is"),
        (request("grid-cont", "Grid", x_range(), 0, 1), "supports only CategoricalParameterRanges"),
        (request("no-max", "Hyperband", x_range(), 2, 1, static={"epochs": "x"}), "MaxResource"),
    ]
    wrong_metric = request("wrong-metric", "Random", x_range(), 2, 1)
    wrong_metric["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"][
        "MetricName"] = "accuracy"
    cases.append((wrong_metric, "The objective metric 'accuracy' is not one of the metrics"))
    for req, text in cases:
        with pytest.raises(ClientError) as e:
            sm.create_hyper_parameter_tuning_job(**req)
        code, message = error_of(e)
        assert code == "ValidationException", message
        assert text in message, message
    assert sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    sm.create_hyper_parameter_tuning_job(**request("dup", "Random", x_range(), 1, 1))
    with pytest.raises(ClientError) as e:
        sm.create_hyper_parameter_tuning_job(**request("DUP", "Random", x_range(), 1, 1))
    assert error_of(e)[0] == "ResourceInUse"
    wait_tuning(sm, "dup")


# --- a built-in algorithm ------------------------------------------------------------------------


def test_tuning_the_builtin_xgboost_on_breast_cancer(sm, s3):
    data = load_breast_cancer()
    X = data.data.astype(np.float32)
    y = data.target.astype(np.float32)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    s3.put_object(Bucket=BUCKET, Key="cancer/train/train.csv", Body=csv_bytes(X_train, y_train))
    s3.put_object(Bucket=BUCKET, Key="cancer/validation/valid.csv",
                  Body=csv_bytes(X_valid, y_valid))
    definition_ = definition(static={"objective": "binary:logistic", "eval_metric": "auc",
                                     "num_round": "20"}, image="hearth/xgboost")
    definition_["StaticHyperParameters"].pop("epochs")
    definition_["AlgorithmSpecification"].pop("MetricDefinitions")  # the algorithm's own
    definition_["InputDataConfig"] = [
        {"ChannelName": channel, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/cancer/{channel}/"}}}
        for channel in ("train", "validation")]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="xgb-cancer",
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize",
                                                 "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05",
                                               "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2",
                                            "MaxValue": "6"}]}},
        TrainingJobDefinition=definition_)
    d = wait_tuning(sm, "xgb-cancer", timeout=180)
    assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
    assert d["ObjectiveStatusCounters"]["Succeeded"] == 4
    best = d["BestTrainingJob"]
    assert objective(best) > 0.95
    for s in children(sm, "xgb-cancer"):
        job = sm.describe_training_job(TrainingJobName=s["TrainingJobName"])
        finals = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        assert finals["validation:auc"] == pytest.approx(objective(s))
        assert objective(s) <= objective(best)
        assert 2 <= int(s["TunedHyperParameters"]["max_depth"]) <= 6


# --- crash and restart ---------------------------------------------------------------------------


def test_kill9_mid_tuning_resumes_without_duplicates(tmp_path):
    s = LoggedServer(str(tmp_path / "data")).start()
    image = tmp_path / "tune-image"
    image.mkdir()
    (image / "train").write_text(TRAIN_SCRIPT)
    (image / "train").chmod(0o755)
    s.register_image("tune", str(image))
    s.client("s3").create_bucket(Bucket=BUCKET)
    s.client("s3").put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"1,2\n")
    sm = s.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request(
        "crash", "Random", x_range(), 5, 2, static={"epochs": "6", "pause": "0.5"}))

    def progress():
        # Children train for about 3 s. The kill comes once some have finished and the two
        # running ones both started training less than 2 s ago: neither is about to end, so
        # the crash lands mid-training (a child caught being launched is the training
        # controller's own restart case, tested with training jobs).
        summaries = children(sm, "crash")
        done = [c for c in summaries if c["ObjectiveStatus"] == "Succeeded"]
        running = [c for c in summaries if c["TrainingJobStatus"] == "InProgress"]
        settled = len(running) == 2 and all(
            "TrainingStartTime" in c and time.time() - c["TrainingStartTime"].timestamp() < 2
            for c in running)
        return (done, running) if done and settled else None

    done_before, running_before = wait_for(progress, timeout=90,
                                           what="finished children and two training ones")
    s.kill9()
    s = LoggedServer(s.data_dir, port=s.port).start()
    try:
        sm = s.client("sagemaker")
        d = wait_tuning(sm, "crash")
        assert d["HyperParameterTuningJobStatus"] == "Completed", d.get("FailureReason")
        summaries = children(sm, "crash")
        names = [c["TrainingJobName"] for c in summaries]
        assert len(names) == 5 and len(set(names)) == 5
        listed = sm.list_training_jobs(NameContains="crash-", MaxResults=100)
        assert len(listed["TrainingJobSummaries"]) == 5
        by_name = {c["TrainingJobName"]: c for c in summaries}
        for c in done_before:
            assert objective(by_name[c["TrainingJobName"]]) == objective(c)
        for c in running_before:  # re-adopted, not launched again
            assert by_name[c["TrainingJobName"]]["TrainingJobStatus"] == "Completed"
        assert d["TrainingJobStatusCounters"]["Completed"] == 5, (
            d["TrainingJobStatusCounters"],
            [(c["TrainingJobName"], c["TrainingJobStatus"], c.get("FailureReason", "")[:200])
             for c in summaries])
    finally:
        s.stop()
