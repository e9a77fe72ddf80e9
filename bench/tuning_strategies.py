#!/usr/bin/python3
"""Hearth's tuning strategies (src/tuning/) beside Optuna and a scikit-learn GP loop.

Every strategy minimises the same two functions from the same seeds, 20 seeds × 100 trials by
default, with the evaluation as a plain function call:
  Branin     2-D on [-5, 10] × [0, 15], minimum 0.397887 (three global minima)
  Hartmann6  6-D on [0, 1]^6, minimum -3.32237 (and a local minimum at -3.2032)

  hearth bayesian     bench/tuning_bench.cc (GP, Matérn 5/2 ARD, log-EI), sequential and with
                      4 trials pending (the oldest completes first, then one new suggestion)
  hearth random       the Random strategy
  optuna tpe          optuna.samplers.TPESampler(seed) (defaults: 10 random start-up trials);
                      with 4 pending: ask/tell with constant_liar=True
  optuna random       optuna.samplers.RandomSampler(seed)
  sklearn GP-EI       GaussianProcessRegressor(Constant × Matern(2.5, ARD) + White,
                      normalize_y, 2 optimiser restarts) + EI maximised over 2000 random
                      points and L-BFGS-B (finite-difference gradients) from the best 5: timed
                      for one suggestion with 100 random observations (not run as a loop)

Goals (Hearth's Bayesian strategy, sequential and with 4 pending): Branin regret < 1e-3 in at
least 90 % of the seeds within 100 trials, median evaluations to get there <= 35; Hartmann6
median regret <= 3e-3 after 100 trials; a suggestion with 100 observations in <= 20 ms, judged
on the thread's CPU time (median over seeds) because the machine is shared; the wall time is
reported beside it.

Times: Hearth's are measured inside the C++ driver around Strategy::Suggest, wall clock and
the thread's CPU time (the machine is shared, so wall time includes waiting for a core);
Optuna's around ask() and the suggest_float calls that sample; scikit-learn's around fit +
EI maximisation. Results: bench/results/tuning_strategies.{json,md}.

Run: HEARTH_BUILD_DIR=build /usr/bin/python3 bench/tuning_strategies.py [--seeds 20]
     [--trials 100] [--skip-optuna]
(needs the hearth_tuning_bench target and Debian's python3-optuna, python3-sklearn)
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import hearth_server
from hearth_server import BUILD_DIR, REPO

RESULTS = os.path.join(REPO, "bench", "results")

BRANIN_MIN = 0.39788735772973816
HARTMANN6_MIN = -3.322368011415515
GOAL_BRANIN_REGRET = 1e-3
GOAL_BRANIN_FRACTION = 0.9
GOAL_BRANIN_MEDIAN_EVALS = 35
GOAL_HARTMANN6_MEDIAN_REGRET = 3e-3
GOAL_SUGGEST_MS = 20.0


def branin(x):
    b = 5.1 / (4 * math.pi ** 2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                              [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650],
                              [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(x):
    x = np.asarray(x)
    inner = (HARTMANN_A * (x - HARTMANN_P) ** 2).sum(axis=1)
    return float(-(HARTMANN_ALPHA * np.exp(-inner)).sum())


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], BRANIN_MIN),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, HARTMANN6_MIN),
}


def best_so_far_regret(values, minimum):
    out, best = [], math.inf
    for v in values:
        best = min(best, v)
        out.append(best - minimum)
    return out


# ---------------------------------------------------------------------------------------------
# Hearth

def run_hearth(function, strategy, seeds, trials, parallel):
    exe = os.path.join(BUILD_DIR, "bench", "hearth_tuning_bench")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: cmake --build {BUILD_DIR} --target hearth_tuning_bench")
    out = subprocess.run([exe, "--function", function, "--strategy", strategy, "--seeds",
                          str(seeds), "--trials", str(trials), "--parallel", str(parallel)],
                         check=True, capture_output=True, text=True).stdout
    runs = []
    for line in out.splitlines():
        r = json.loads(line)
        # The call with `trials` observations: the extra Suggest after the last evaluation.
        runs.append({"seed": r["seed"], "regret": r["regret"],
                     "suggest_ms": r["suggest_ms"], "suggest_cpu_ms": r["suggest_cpu_ms"],
                     "suggest_ms_at_n": r["final_suggest_ms"],
                     "suggest_cpu_ms_at_n": r["final_suggest_cpu_ms"]})
    return runs


# ---------------------------------------------------------------------------------------------
# Optuna

def run_optuna(function, sampler_name, seeds, trials, parallel):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    f, bounds, minimum = FUNCTIONS[function]
    runs = []
    for seed in range(seeds):
        if sampler_name == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=parallel > 1)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        pending, values, times = [], [], []

        def ask():
            t = time.perf_counter()
            trial = study.ask()
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
            times.append((time.perf_counter() - t) * 1000)
            pending.append((trial, x))

        for _ in range(min(parallel, trials)):
            ask()
        created = len(pending)
        while len(values) < trials:
            trial, x = pending.pop(0)
            v = f(x)
            study.tell(trial, v)
            values.append(v)
            if created < trials:
                ask()
                created += 1
        ask()  # with `trials` observations
        runs.append({"seed": seed, "regret": best_so_far_regret(values, minimum),
                     "suggest_ms": times[:-1], "suggest_ms_at_n": times[-1]})
    return runs


# ---------------------------------------------------------------------------------------------
# scikit-learn GP + EI, one suggestion with n observations

def sklearn_suggest_ms(function, n, seeds):
    from scipy.optimize import minimize
    from scipy.stats import norm
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
    import warnings
    warnings.filterwarnings("ignore")
    f, bounds, _ = FUNCTIONS[function]
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    d = len(bounds)
    times = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        u = rng.random((n, d))
        y = np.array([f(lo + ui * (hi - lo)) for ui in u])
        t = time.perf_counter()
        kernel = (ConstantKernel(1.0) * Matern(length_scale=np.full(d, 0.5), nu=2.5)
                  + WhiteKernel(1e-6, noise_level_bounds=(1e-10, 1e-1)))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2,
                                      random_state=seed).fit(u, y)
        best = y.min()

        def neg_ei(x):
            mu, sd = gp.predict(np.atleast_2d(x), return_std=True)
            sd = np.maximum(sd, 1e-12)
            z = (best - mu) / sd
            return -(sd * (norm.pdf(z) + z * norm.cdf(z)))

        cand = rng.random((2000, d))
        ei = -neg_ei(cand)
        starts = cand[np.argsort(-ei)[:5]]
        for s in starts:
            minimize(lambda x: float(neg_ei(x)[0]), s, method="L-BFGS-B", bounds=[(0, 1)] * d)
        times.append((time.perf_counter() - t) * 1000)
    return times


# ---------------------------------------------------------------------------------------------
# Summaries and report

def evals_to_reach(regret, threshold):
    return next((i + 1 for i, r in enumerate(regret) if r < threshold), None)


def summarise(function, runs, trials):
    s = {"seeds": len(runs)}
    for k in (25, 50, 100):
        if k <= trials:
            s[f"median_regret_at_{k}"] = statistics.median(r["regret"][k - 1] for r in runs)
    s["median_regret_final"] = statistics.median(r["regret"][-1] for r in runs)
    if function == "branin":
        reach = [evals_to_reach(r["regret"], GOAL_BRANIN_REGRET) for r in runs]
        s["fraction_reaching_1e-3"] = sum(x is not None for x in reach) / len(runs)
        # Seeds that never get there count as "more than `trials`" in the median.
        s["median_evals_to_1e-3"] = statistics.median(x if x else math.inf for x in reach)
        s["evals_to_1e-3"] = reach
    s["median_suggest_ms_at_n"] = statistics.median(r["suggest_ms_at_n"] for r in runs)
    if "suggest_cpu_ms_at_n" in runs[0]:
        s["median_suggest_cpu_ms_at_n"] = statistics.median(r["suggest_cpu_ms_at_n"]
                                                            for r in runs)
    s["median_suggest_ms_all"] = statistics.median(t for r in runs for t in r["suggest_ms"])
    return s


def goals_for(function, s):
    goals = []
    if function == "branin":
        goals.append(("regret < 1e-3 in >= 90 % of seeds within the trials",
                      f"{s['fraction_reaching_1e-3'] * 100:.0f} %",
                      s["fraction_reaching_1e-3"] >= GOAL_BRANIN_FRACTION))
        goals.append(("median evaluations to regret < 1e-3 <= 35",
                      fmt_evals(s["median_evals_to_1e-3"]),
                      s["median_evals_to_1e-3"] <= GOAL_BRANIN_MEDIAN_EVALS))
    else:
        goals.append(("median regret after the last trial <= 3e-3",
                      f"{s['median_regret_final']:.2e}",
                      s["median_regret_final"] <= GOAL_HARTMANN6_MEDIAN_REGRET))
    # Judged on CPU time: the machine is shared, and its wall clock also counts the time other
    # processes held the cores. Both are reported.
    goals.append(("suggest with all trials observed <= 20 ms (CPU time; wall time beside it)",
                  f"{s['median_suggest_cpu_ms_at_n']:.1f} ms CPU, "
                  f"{s['median_suggest_ms_at_n']:.1f} ms wall",
                  s["median_suggest_cpu_ms_at_n"] <= GOAL_SUGGEST_MS))
    return goals


def compact(run):
    """A seed's record for the JSON: the regret curve to 3 significant digits and its suggest
    times summarised (every call's time is in the driver's output, not kept here)."""
    out = {"seed": run["seed"], "regret": [float(f"{r:.3g}") for r in run["regret"]]}
    for key in ("suggest_ms", "suggest_cpu_ms"):
        if key in run:
            times = run[key]
            out[f"{key}_median"] = round(statistics.median(times), 3)
            out[f"{key}_max"] = round(max(times), 3)
            out[f"{key}_at_n"] = round(run[f"{key}_at_n"], 3)
    return out


def finite(value):
    """JSON has no infinity: "never reached" is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def fmt_evals(x):
    return "never" if x == math.inf else f"{x:g}"


def machine_facts():
    return hearth_server.machine_facts(modules=("optuna", "sklearn", "numpy", "scipy"))



def write_markdown(path, result):
    m = result["machine"]
    trials = result["trials"]
    lines = [
        "# Tuning strategies",
        "",
        f"`bench/tuning_strategies.py`, {result['seeds']} seeds × {trials} trials, "
        f"{m['date_utc']}, {m['nproc']} CPUs ({m['cpu']}), hearth {m['hearth_commit']} "
        f"(build type {m['cmake_build_type']}), Optuna {m['versions']['optuna']}, "
        f"scikit-learn {m['versions']['sklearn']}; load average "
        f"{m['loadavg_at_start'][0]:.2f} at the start and {m['loadavg_at_end'][0]:.2f} at the "
        "end (the machine is shared: wall times include waiting for a core; Hearth's CPU time "
        "is given beside them).",
        "",
        "## Goals (Hearth Bayesian)",
        "",
        "| function | mode | goal | measured | met |",
        "|---|---|---|---|---|",
    ]
    for g in result["goals"]:
        lines.append(f"| {g['function']} | {g['mode']} | {g['goal']} | {g['measured']} | "
                     f"{'yes' if g['met'] else '**no**'} |")
    lines += [
        "",
        "## All strategies",
        "",
        "Regret = best value so far minus the known minimum; medians over seeds. "
        "\"evals to 1e-3\": evaluations until Branin's regret falls below 1e-3 (median; a seed "
        "that never gets there counts as more than the budget). Suggest time: one suggestion "
        f"with {trials} observations (median over seeds; Hearth: wall / CPU).",
        "",
        "| function | strategy | mode | regret@25 | regret@50 | regret@100 | reach 1e-3 | "
        "evals to 1e-3 | suggest ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, entry in result["runs"].items():
        s = entry["summary"]
        reach = (f"{s['fraction_reaching_1e-3'] * 100:.0f} %"
                 if "fraction_reaching_1e-3" in s else "")
        evals = fmt_evals(s["median_evals_to_1e-3"]) if "median_evals_to_1e-3" in s else ""
        ms = f"{s['median_suggest_ms_at_n']:.1f}"
        if "median_suggest_cpu_ms_at_n" in s:
            ms += f" / {s['median_suggest_cpu_ms_at_n']:.1f}"
        lines.append(
            f"| {entry['function']} | {entry['strategy']} | {entry['mode']} | "
            f"{s.get('median_regret_at_25', float('nan')):.2e} | "
            f"{s.get('median_regret_at_50', float('nan')):.2e} | "
            f"{s.get('median_regret_at_100', float('nan')):.2e} | {reach} | {evals} | {ms} |")
    if result.get("sklearn"):
        lines += ["", "scikit-learn GaussianProcessRegressor + EI, one suggestion with "
                  f"{trials} random observations (fit with 2 restarts + EI over 2000 points + "
                  "5 L-BFGS-B refinements with finite-difference gradients), median over "
                  "seeds:", ""]
        for function, times in result["sklearn"].items():
            lines.append(f"- {function}: {statistics.median(times):.0f} ms")
    lines += [
        "",
        "Notes: Branin has three global minima, and expected improvement visits each of them "
        "before refining one, which is most of the evaluations between regret 1 and 1e-3. "
        "On Hartmann6 some seeds settle in the local minimum at -3.2032 (regret 0.119); the "
        "median is over all seeds. With 4 pending, each suggestion is made while three others "
        "are still unobserved, so the same budget buys less information.",
        "",
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()

    result = {"seeds": args.seeds, "trials": args.trials, "machine": machine_facts(),
              "runs": {}, "goals": []}
    plan = [("hearth", "bayesian", 1), ("hearth", "bayesian", 4), ("hearth", "random", 1)]
    if not args.skip_optuna:
        plan += [("optuna", "tpe", 1), ("optuna", "tpe", 4), ("optuna", "random", 1)]
    for function in FUNCTIONS:
        for system, strategy, parallel in plan:
            name = f"{system} {strategy}"
            mode = "sequential" if parallel == 1 else f"{parallel} pending"
            print(f"{function}: {name}, {mode} ...", flush=True)
            started = time.perf_counter()
            if system == "hearth":
                runs = run_hearth(function, strategy, args.seeds, args.trials, parallel)
            else:
                runs = run_optuna(function, strategy, args.seeds, args.trials, parallel)
            summary = summarise(function, runs, args.trials)
            result["runs"][f"{function}/{name}/{mode}"] = {
                "function": function, "strategy": name, "mode": mode, "parallel": parallel,
                "summary": summary, "seconds": time.perf_counter() - started,
                "per_seed": [compact(r) for r in runs]}
            if system == "hearth" and strategy == "bayesian":
                for goal, measured, met in goals_for(function, summary):
                    result["goals"].append({"function": function, "mode": mode, "goal": goal,
                                            "measured": measured, "met": bool(met)})
    print("scikit-learn GP-EI timing ...", flush=True)
    result["sklearn"] = {f: sklearn_suggest_ms(f, args.trials, min(args.seeds, 5))
                         for f in FUNCTIONS}
    result["machine"]["loadavg_at_end"] = os.getloadavg()

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tuning_strategies.json"), "w") as fh:
        # One line per seed keeps the file small and still greppable.
        data = finite(result)
        runs = data.pop("runs")
        fh.write(json.dumps(data, allow_nan=False)[:-1] + ', "runs": {\n')
        for i, (key, entry) in enumerate(runs.items()):
            per_seed = entry.pop("per_seed")
            fh.write(f' {json.dumps(key)}: {json.dumps(entry, allow_nan=False)[:-1]}, '
                     '"per_seed": [\n')
            fh.write(",\n".join("  " + json.dumps(r, allow_nan=False) for r in per_seed))
            fh.write("]}" + ("," if i + 1 < len(runs) else "") + "\n")
        fh.write("}}\n")
    write_markdown(os.path.join(args.out, "tuning_strategies.md"), result)
    for g in result["goals"]:
        print(f"{g['function']:9} {g['mode']:10} {g['goal']}: {g['measured']} "
              f"{'met' if g['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
