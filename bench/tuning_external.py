#!/usr/bin/python3
"""Hearth's tuning strategies against Optuna TPE on a real XGBoost objective, at the strategy
layer: no server, no training jobs.

hearth_tuning_bench --ranges (bench/tuning_bench.cc) runs the Strategy exactly as the tuning
job controller does (RandomSeed = seed, the same ParameterRanges, Suggest(1) / Complete one at a
time) and asks this script for each objective value over its line protocol; this script trains
XGBoost in-process (Debian python3-xgboost, the library the built-in links) on the
hyperparameter strings it is given. Optuna's TPESampler(seed=seed) tunes the same objective.
bench/xgboost_tune.py runs the same comparison through real tuning jobs; this is the fast
version of it, for working on the strategies.

Objectives (all: binary:logistic, 60 rounds, tree_method hist, eval_metric auc, nthread 1, which
gives the same AUC as 2 or 4 threads; the value is the last round's validation AUC rounded to 5
decimals, maximised):
  digits        scikit-learn digits, odd vs even, 500 training / 600 validation rows after a
                numpy default_rng(0) permutation (bench/xgboost_tune.py's data)
  breast_cancer scikit-learn breast_cancer, 250 training rows, the rest validation
Ranges: max_depth Integer [1, 10], eta [0.01, 1] log, min_child_weight [0.1, 20] log,
subsample [0.5, 1], lambda [0.01, 10] log.

Goal (digits): Hearth Bayesian's best AUC >= TPE's in >= 70 % of seeds 1..20.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/tuning_external.py [--dataset digits]
     [--seeds 20] [--first-seed 1] [--trials 30] [--strategy bayesian] [--jobs 1]
Optuna's results and every objective value are cached under --cache (they do not depend on
Hearth), so a rerun after a change to the strategy only reruns Hearth.
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading

import numpy as np

# The ranges, rounds, digits data and Optuna's sampling are xgboost_tune.py's own.
from xgboost_tune import RANGES, ROUNDS, suggest  # noqa: E402
from xgboost_tune import dataset as digits_dataset  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.environ.get("HEARTH_BUILD_DIR", os.path.join(REPO, "build"))
if not os.path.isabs(BUILD_DIR):
    BUILD_DIR = os.path.join(REPO, BUILD_DIR)

STATIC = {"objective": "binary:logistic", "tree_method": "hist", "eval_metric": "auc",
          "nthread": "1"}
GOAL_WIN_FRACTION = 0.7


def dataset(name):
    from sklearn.datasets import load_breast_cancer

    if name == "digits":
        return digits_dataset()
    if name == "breast_cancer":
        d = load_breast_cancer()
        order = np.random.default_rng(0).permutation(len(d.target))
        X = d.data[order].astype(np.float32)
        y = d.target[order].astype(np.float32)
        return (X[:250], y[:250]), (X[250:], y[250:])
    raise SystemExit(f"unknown dataset {name}")


class Objective:
    """Validation AUC of XGBoost trained with the given hyperparameter strings; memoised (and
    persisted) by those strings, since training is deterministic with one thread."""

    def __init__(self, name, cache_dir):
        import xgboost

        self.xgb = xgboost
        train, validation = dataset(name)
        self.dtrain = xgboost.DMatrix(train[0], label=train[1])
        self.dvalid = xgboost.DMatrix(validation[0], label=validation[1])
        self.path = os.path.join(cache_dir, f"objective-{name}.json")
        self.lock = threading.Lock()
        self.memo = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.memo = json.load(f)

    def __call__(self, hps):
        key = json.dumps({k: str(hps[k]) for k in sorted(hps)})
        with self.lock:
            if key in self.memo:
                return self.memo[key]
        params = dict(STATIC)
        params.update({k: str(v) for k, v in hps.items()})
        history = {}
        self.xgb.train(params, self.dtrain, ROUNDS, evals=[(self.dvalid, "validation")],
                       evals_result=history, verbose_eval=False)
        value = round(history["validation"]["auc"][-1], 5)
        with self.lock:
            self.memo[key] = value
        return value

    def save(self):
        with self.lock:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.memo, f)
            os.replace(tmp, self.path)


def parameter_ranges():
    ranges = {"IntegerParameterRanges": [], "ContinuousParameterRanges": []}
    for name, (kind, low, high, scaling) in RANGES.items():
        ranges[f"{kind}ParameterRanges"].append(
            {"Name": name, "MinValue": str(low), "MaxValue": str(high), "ScalingType": scaling})
    return ranges


def run_hearth(objective, ranges_file, strategy, seed, trials):
    exe = os.path.join(BUILD_DIR, "bench", "hearth_tuning_bench")
    proc = subprocess.Popen([exe, "--ranges", ranges_file, "--objective", "Maximize", "--seed",
                             str(seed), "--trials", str(trials), "--strategy", strategy],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    values, configs = [], []
    for line in proc.stdout:
        message = json.loads(line)
        if message.get("done"):
            break
        hps = message["hyperparameters"]
        value = objective(hps)
        values.append(value)
        configs.append(hps)
        proc.stdin.write(f"{value!r}\n")
        proc.stdin.flush()
    proc.stdin.close()
    if proc.wait() != 0 or len(values) != trials:
        raise SystemExit(f"hearth_tuning_bench failed for seed {seed}")
    return {"seed": seed, "best": max(values), "values": values, "configs": configs}


def run_tpe(objective, seed, trials):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))

    study.optimize(lambda trial: objective(suggest(trial)), n_trials=trials)
    values = [t.value for t in study.trials]
    return {"seed": seed, "best": max(values), "values": values}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits",
                        choices=["digits", "breast_cancer"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--strategy", default="bayesian", choices=["bayesian", "random"])
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                        "hearth-tuning-external"))
    parser.add_argument("--out", help="write the per-seed results here (JSON)")
    args = parser.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    objective = Objective(args.dataset, args.cache)
    ranges_file = os.path.join(args.cache, "ranges.json")
    with open(ranges_file, "w") as f:
        json.dump(parameter_ranges(), f)

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    tpe_path = os.path.join(args.cache, f"tpe-{args.dataset}-{args.trials}.json")
    tpe = {}
    if os.path.exists(tpe_path):
        with open(tpe_path) as f:
            tpe = {int(k): v for k, v in json.load(f).items()}
    missing = [s for s in seeds if s not in tpe]
    for seed in missing:
        tpe[seed] = run_tpe(objective, seed, args.trials)
    if missing:
        with open(tpe_path, "w") as f:
            json.dump(tpe, f)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        hearth = list(pool.map(
            lambda s: run_hearth(objective, ranges_file, args.strategy, s, args.trials), seeds))
    objective.save()

    wins = ties = 0
    for h in hearth:
        t = tpe[h["seed"]]
        wins += h["best"] >= t["best"]
        ties += h["best"] == t["best"]
        mark = ">=" if h["best"] >= t["best"] else "< "
        print(f"seed {h['seed']:2d}  hearth {h['best']:.5f} {mark} tpe {t['best']:.5f}  "
              f"(hearth best at trial {h['values'].index(h['best']) + 1})")
    h_best = [h["best"] for h in hearth]
    t_best = [tpe[s]["best"] for s in seeds]
    print(f"{args.dataset}: hearth {args.strategy} median {statistics.median(h_best):.5f} "
          f"mean {statistics.mean(h_best):.5f}; tpe median {statistics.median(t_best):.5f} "
          f"mean {statistics.mean(t_best):.5f}; hearth >= tpe in {wins}/{len(seeds)} "
          f"(ties {ties}); goal {'met' if wins >= GOAL_WIN_FRACTION * len(seeds) else 'NOT met'}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"dataset": args.dataset, "hearth": hearth,
                       "tpe": [tpe[s] for s in seeds], "wins": wins, "ties": ties}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
