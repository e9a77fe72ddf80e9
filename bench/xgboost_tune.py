"""A real tune of the built-in XGBoost: Hearth's tuning jobs against Optuna on the same objective.

The data: scikit-learn's handwritten digits (UCI), odd against even, 500 training rows and 600
validation rows (a fixed split), label first in CSV as the built-in reads it. The search space:
max_depth [1, 10], eta [0.01, 1] log, min_child_weight [0.1, 20] log, subsample [0.5, 1],
lambda [0.01, 10] log; static: binary:logistic, 60 rounds, tree_method hist, eval_metric auc.
The objective is the last round's validation AUC, maximised.

Per seed, 30 trials, one at a time:
  - Hearth Bayesian and Hearth Random: real CreateHyperParameterTuningJob calls (RandomSeed =
    seed), every trial a training job of `hearth/xgboost` run by the server; the best is
    DescribeHyperParameterTuningJob's BestTrainingJob.
  - Optuna TPE and Optuna random (Debian python3-optuna, sampler seed = seed): each trial trains
    with the python xgboost module (Debian python3-xgboost, the same libxgboost) in this
    process, with the same data, parameters and rounds.
Before the seeds, one fixed configuration is trained both ways and the two validation AUCs are
recorded: they must agree for the comparison to be about the search and nothing else.

Goal: Hearth Bayesian's best validation AUC >= Optuna TPE's in >= 70 % of seeds.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/xgboost_tune.py [--seeds 20]
Results: bench/results/xgboost_tune.{json,md}.
"""
import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

import numpy as np

import hearth_server
from hearth_server import REPO, Server

RESULTS = os.path.join(REPO, "bench", "results")
ROLE = "arn:aws:iam::000000000000:role/bench"
BUCKET = "xgboost-tune"
TRIALS = 30
ROUNDS = 60
GOAL_WIN_FRACTION = 0.7
STATIC = {"objective": "binary:logistic", "num_round": str(ROUNDS), "tree_method": "hist",
          "eval_metric": "auc"}
# name: (kind, low, high, scaling)
RANGES = {"max_depth": ("Integer", 1, 10, "Linear"),
          "eta": ("Continuous", 0.01, 1.0, "Logarithmic"),
          "min_child_weight": ("Continuous", 0.1, 20.0, "Logarithmic"),
          "subsample": ("Continuous", 0.5, 1.0, "Linear"),
          "lambda": ("Continuous", 0.01, 10.0, "Logarithmic")}
FIXED = {"max_depth": "4", "eta": "0.2", "min_child_weight": "1.5", "subsample": "0.8",
         "lambda": "1.0"}


def dataset():
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    X = digits.data[order].astype(np.float32)
    y = (digits.target[order] % 2 == 1).astype(np.float32)
    return (X[:500], y[:500]), (X[500:1100], y[500:1100])


def csv_bytes(X, y):
    out = io.StringIO()
    np.savetxt(out, np.column_stack([y, X]), delimiter=",", fmt="%g")
    return out.getvalue().encode()


# --- Hearth ------------------------------------------------------------------------------------


def sagemaker_call(server, operation, body):
    """One SageMaker JSON call without boto3's parameter checks: Debian's botocore predates
    RandomSeed, which makes seeds repeatable."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/", data=json.dumps(body).encode(),
        headers={"X-Amz-Target": f"SageMaker.{operation}",
                 "Content-Type": "application/x-amz-json-1.1"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def parameter_ranges():
    ranges = {"IntegerParameterRanges": [], "ContinuousParameterRanges": []}
    for name, (kind, low, high, scaling) in RANGES.items():
        ranges[f"{kind}ParameterRanges"].append(
            {"Name": name, "MinValue": str(low), "MaxValue": str(high), "ScalingType": scaling})
    return ranges


def training_definition():
    return {
        "AlgorithmSpecification": {"TrainingImage": "hearth/xgboost",
                                   "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {"ChannelName": channel, "ContentType": "text/csv",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                             "S3Uri": f"s3://{BUCKET}/{channel}/"}}}
            for channel in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "StaticHyperParameters": STATIC,
    }


def wait_terminal(describe, key, timeout=1800):
    deadline = time.monotonic() + timeout
    while True:
        d = describe()
        if d[key] in ("Completed", "Failed", "Stopped"):
            return d
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting: {d[key]}")
        time.sleep(0.1)


def hearth_fixed_auc(server, sm):
    request = training_definition()
    spec = request.pop("AlgorithmSpecification")
    hps = {**request.pop("StaticHyperParameters"), **FIXED}
    sm.create_training_job(TrainingJobName="fixed", AlgorithmSpecification=spec,
                           HyperParameters=hps, **request)
    d = wait_terminal(lambda: sm.describe_training_job(TrainingJobName="fixed"),
                      "TrainingJobStatus")
    metrics = {m["MetricName"]: m["Value"] for m in d.get("FinalMetricDataList", [])}
    if d["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"the fixed training job failed: {d.get('FailureReason')}")
    return metrics["validation:auc"]


def run_hearth(server, sm, strategy, seed):
    name = f"{strategy.lower()[:5]}-{seed}"
    started = time.perf_counter()
    sagemaker_call(server, "CreateHyperParameterTuningJob", {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": seed,
            "HyperParameterTuningJobObjective": {"Type": "Maximize",
                                                 "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": TRIALS, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": parameter_ranges()},
        "TrainingJobDefinition": training_definition()})
    d = wait_terminal(lambda: sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name), "HyperParameterTuningJobStatus")
    seconds = time.perf_counter() - started
    summaries = []
    kwargs = {"HyperParameterTuningJobName": name, "MaxResults": 100,
              "SortBy": "CreationTime", "SortOrder": "Ascending"}
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
        summaries += page["TrainingJobSummaries"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    values = [s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
              for s in summaries]
    failed = sum(v is None for v in values)
    if d["HyperParameterTuningJobStatus"] != "Completed" or "BestTrainingJob" not in d:
        raise SystemExit(f"tuning job {name} ended {d['HyperParameterTuningJobStatus']} "
                         f"({d.get('FailureReason', 'no best training job')}); counters "
                         f"{d.get('TrainingJobStatusCounters')}; server log "
                         f"{server.log_path}")
    best = d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    return {"seed": seed, "best": best, "trials": len(summaries), "failed": failed,
            "curve": best_so_far([v for v in values if v is not None]),
            "seconds": round(seconds, 2)}


# --- Optuna ------------------------------------------------------------------------------------


class PythonObjective:
    """The same objective in this process: python xgboost, same data, parameters, rounds."""

    def __init__(self, train, validation):
        import xgboost

        self.xgb = xgboost
        self.dtrain = xgboost.DMatrix(train[0], label=train[1])
        self.dvalid = xgboost.DMatrix(validation[0], label=validation[1])

    def __call__(self, hps):
        params = {k: v for k, v in STATIC.items() if k != "num_round"}
        params.update(hps)
        history = {}
        self.xgb.train(params, self.dtrain, ROUNDS, evals=[(self.dvalid, "validation")],
                       evals_result=history, verbose_eval=False)
        # Rounded as the built-in prints it ("validation-auc:0.98949"), which is the value
        # a tuning job sees.
        return round(history["validation"]["auc"][-1], 5)


def suggest(trial):
    """An Optuna trial's hyperparameters over RANGES (log where the range is Logarithmic)."""
    hps = {}
    for name, (kind, low, high, scaling) in RANGES.items():
        if kind == "Integer":
            hps[name] = trial.suggest_int(name, low, high)
        else:
            hps[name] = trial.suggest_float(name, low, high, log=scaling == "Logarithmic")
    return hps


def run_optuna(objective, sampler_name, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(direction="maximize", sampler=sampler)

    started = time.perf_counter()
    study.optimize(lambda trial: objective(suggest(trial)), n_trials=TRIALS)
    values = [t.value for t in study.trials]
    return {"seed": seed, "best": study.best_value, "trials": len(values), "failed": 0,
            "curve": best_so_far(values), "seconds": round(time.perf_counter() - started, 2)}


# --- summary -----------------------------------------------------------------------------------


def best_so_far(values):
    out, best = [], -float("inf")
    for v in values:
        best = max(best, v)
        out.append(round(best, 6))
    return out


def summarise(runs):
    bests = [r["best"] for r in runs]
    return {"median_best": statistics.median(bests), "min_best": min(bests),
            "max_best": max(bests),
            "median_best_at_10": statistics.median(r["curve"][min(9, len(r["curve"]) - 1)]
                                                   for r in runs),
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "failed_trials": sum(r["failed"] for r in runs)}


def write_markdown(path, result):
    m = result["machine"]
    s = result["summary"]
    wins = result["comparison"]
    lines = [
        "# XGBoost tune: Hearth tuning jobs against Optuna",
        "",
        f"`bench/xgboost_tune.py`, {m['date_utc']}, {m['nproc']} CPUs ({m['cpu']}), load average "
        f"{m['loadavg_at_start'][0]:.2f} at the start and {m['loadavg_at_end'][0]:.2f} at the "
        f"end (the machine is shared), hearth {m['hearth_commit']}"
        f"{' with uncommitted changes under src/' if m.get('hearth_src_modified') else ''} "
        f"({m['cmake_build_type']}), "
        f"optuna {m['versions']['optuna']}, xgboost {m['versions']['xgboost']}. Digits odd vs "
        f"even, 500 training and 600 validation rows; {result['seeds']} seeds x {TRIALS} "
        f"trials, one at a time; objective: last-round validation AUC ({ROUNDS} rounds).",
        "",
        f"Same objective check: one fixed configuration scored {result['fixed']['hearth']:.6f} "
        f"by a Hearth training job and {result['fixed']['python']:.6f} by python xgboost.",
        "",
        "| search | median best AUC | worst seed | best seed | median best after 10 trials "
        "| median seconds per tune | failed trials |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in s.items():
        lines.append(f"| {name} | {x['median_best']:.5f} | {x['min_best']:.5f} | "
                     f"{x['max_best']:.5f} | {x['median_best_at_10']:.5f} | "
                     f"{x['median_seconds']:.1f} | {x['failed_trials']} |")
    lines += [
        "",
        f"Hearth Bayesian >= Optuna TPE in {wins['bayesian_ge_tpe']} of {result['seeds']} seeds "
        f"({wins['fraction']:.0%}; strictly better in {wins['bayesian_gt_tpe']}, tied in "
        f"{wins['ties']}). Goal: >= {GOAL_WIN_FRACTION:.0%} — "
        f"{'met' if wins['fraction'] >= GOAL_WIN_FRACTION else 'NOT met'}.",
        "",
        "Per seed (best validation AUC):",
        "",
        "| seed | " + " | ".join(s) + " |",
        "|---|" + "---|" * len(s),
    ]
    for i in range(result["seeds"]):
        lines.append(f"| {result['runs'][next(iter(s))][i]['seed']} | " + " | ".join(
            f"{result['runs'][name][i]['best']:.5f}" for name in s) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    if not os.path.exists(hearth_server.HEARTH):
        raise SystemExit(f"{hearth_server.HEARTH} not found; build it or set HEARTH_BUILD_DIR")

    train, validation = dataset()
    objective = PythonObjective(train, validation)
    result = {"seeds": args.seeds, "trials": TRIALS,
              "machine": hearth_server.machine_facts(modules=("optuna", "xgboost", "sklearn")),
              "runs": {}}
    data_dir = tempfile.mkdtemp(prefix="hearth-xgb-tune-")
    try:
        server = Server(data_dir)
        server.start()
        try:
            s3, sm = server.client("s3"), server.client("sagemaker")
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=csv_bytes(*train))
            s3.put_object(Bucket=BUCKET, Key="validation/validation.csv",
                          Body=csv_bytes(*validation))
            result["fixed"] = {"hearth": hearth_fixed_auc(server, sm),
                               "python": objective(dict(FIXED))}
            print(f"fixed configuration: hearth {result['fixed']['hearth']:.6f}, "
                  f"python {result['fixed']['python']:.6f}", flush=True)
            plan = [("Hearth Bayesian", lambda seed: run_hearth(server, sm, "Bayesian", seed)),
                    ("Optuna TPE", lambda seed: run_optuna(objective, "tpe", seed)),
                    ("Hearth Random", lambda seed: run_hearth(server, sm, "Random", seed)),
                    ("Optuna random", lambda seed: run_optuna(objective, "random", seed))]
            for name, _ in plan:
                result["runs"][name] = []
            # Interleaved by seed, so that the machine's load falls on every search alike.
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for name, run in plan:
                    r = run(seed)
                    result["runs"][name].append(r)
                    print(f"seed {seed:2d} {name:15s} best {r['best']:.5f} "
                          f"({r['seconds']:.1f} s)", flush=True)
        finally:
            server.kill()
    finally:
        if args.keep:
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["summary"] = {name: summarise(runs) for name, runs in result["runs"].items()}
    pairs = list(zip(result["runs"]["Hearth Bayesian"], result["runs"]["Optuna TPE"]))
    ge = sum(h["best"] >= o["best"] for h, o in pairs)
    gt = sum(h["best"] > o["best"] for h, o in pairs)
    result["comparison"] = {"bayesian_ge_tpe": ge, "bayesian_gt_tpe": gt, "ties": ge - gt,
                            "fraction": ge / len(pairs),
                            "goal_met": ge / len(pairs) >= GOAL_WIN_FRACTION}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "xgboost_tune.json"), "w") as f:
        json.dump(result, f, indent=1)
    write_markdown(os.path.join(args.out, "xgboost_tune.md"), result)
    c = result["comparison"]
    print(f"Hearth Bayesian >= Optuna TPE in {c['bayesian_ge_tpe']}/{len(pairs)} seeds: goal "
          f"{'met' if c['goal_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
