"""HyperparameterTuner: automatic model tuning (CreateHyperParameterTuningJob) around an
Estimator, its parameter ranges, warm starts, and the trials as a pandas DataFrame; as
sagemaker.tuner and sagemaker.analytics.

    tuner = HyperparameterTuner(est, "validation:auc",
                                {"eta": ContinuousParameter(0.01, 0.5, "Logarithmic"),
                                 "max_depth": IntegerParameter(2, 8)},
                                max_jobs=20, max_parallel_jobs=2)
    tuner.fit({"train": train, "validation": val})   # a line per finished trial, then waits
    tuner.analytics().dataframe()                    # one row per training job
    tuner.deploy(1, "ml.m5.large")                   # the best job's model
"""
from __future__ import annotations

import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from hearth import images
from hearth import logs as logs_mod
from hearth.estimator import Estimator, Inputs, hyperparameter_string, user_hyperparameters
from hearth.exceptions import TuningJobFailed
from hearth.predictor import Predictor
from hearth.session import TERMINAL_JOB_STATES, Session

# SageMaker's limit on HyperParameterTuningJobName.
TUNING_JOB_NAME_MAX = 32


class ParameterRange:
    """A range of one hyperparameter; `scaling_type` is "Auto", "Linear", "Logarithmic" or
    "ReverseLogarithmic" (the last two need min_value > 0)."""

    kind = ""

    def __init__(self, min_value: Union[int, float], max_value: Union[int, float],
                 scaling_type: str = "Auto"):
        if min_value > max_value:
            raise ValueError(f"min_value {min_value} is greater than max_value {max_value}")
        self.min_value = min_value
        self.max_value = max_value
        self.scaling_type = scaling_type

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.min_value!r}, {self.max_value!r}, "
                f"{self.scaling_type!r})")

    def as_tuning_range(self, name: str) -> Dict[str, str]:
        """The range as ParameterRanges lists it."""
        return {"Name": name, "MinValue": hyperparameter_string(self.min_value),
                "MaxValue": hyperparameter_string(self.max_value),
                "ScalingType": self.scaling_type}

    def cast(self, value: str) -> Any:
        return float(value)


class ContinuousParameter(ParameterRange):
    """Real values in [min_value, max_value]."""

    kind = "Continuous"


class IntegerParameter(ParameterRange):
    """Whole numbers in [min_value, max_value]."""

    kind = "Integer"

    def cast(self, value: str) -> Any:
        return int(float(value))


class CategoricalParameter:
    """One of `values` (sent as strings)."""

    kind = "Categorical"

    def __init__(self, values: Union[Sequence[Any], Any]):
        if isinstance(values, (list, tuple)):
            self.values = [hyperparameter_string(v) for v in values]
        else:
            self.values = [hyperparameter_string(values)]
        if not self.values:
            raise ValueError("a CategoricalParameter needs at least one value")

    def __repr__(self) -> str:
        return f"CategoricalParameter({self.values!r})"

    def as_tuning_range(self, name: str) -> Dict[str, Any]:
        return {"Name": name, "Values": list(self.values)}

    def cast(self, value: str) -> Any:
        return value


Range = Union[ParameterRange, CategoricalParameter]


def _ranges_from_description(ranges: Mapping[str, List[dict]]) -> Dict[str, Range]:
    """ParameterRanges (as DescribeHyperParameterTuningJob returns them) as range objects."""
    out: Dict[str, Range] = {}
    for r in ranges.get("ContinuousParameterRanges", []):
        out[r["Name"]] = ContinuousParameter(float(r["MinValue"]), float(r["MaxValue"]),
                                             r.get("ScalingType", "Auto"))
    for r in ranges.get("IntegerParameterRanges", []):
        out[r["Name"]] = IntegerParameter(int(float(r["MinValue"])), int(float(r["MaxValue"])),
                                          r.get("ScalingType", "Auto"))
    for r in ranges.get("CategoricalParameterRanges", []):
        out[r["Name"]] = CategoricalParameter(r["Values"])
    return out


class WarmStartConfig:
    """Starts a tuning job from what `parents` (up to 5 tuning job names) learned.
    `warm_start_type` is "IdenticalDataAndAlgorithm" or "TransferLearning"."""

    def __init__(self, warm_start_type: str, parents: Iterable[str]):
        self.type = warm_start_type
        self.parents = list(parents)

    def to_input_req(self) -> dict:
        return {"WarmStartType": self.type,
                "ParentHyperParameterTuningJobs": [
                    {"HyperParameterTuningJobName": p} for p in self.parents]}


class HyperparameterTuner:
    """Runs up to `max_jobs` training jobs of `estimator`, `max_parallel_jobs` at a time, each
    with hyperparameters the `strategy` ("Bayesian", "Random", "Grid" or "Hyperband") picks
    from `hyperparameter_ranges`, to maximise or minimise `objective_metric_name`.

    The estimator's other hyperparameters are sent unchanged with every job. Built-in images
    name their own metrics; a bring-your-own image needs `metric_definitions` (or the
    estimator's) with a regex for the objective. `early_stopping_type="Auto"` stops trials
    whose curve is worse than the median of the others at the same step.
    `completion_criteria` is TuningJobCompletionCriteria as the API takes it (e.g.
    {"TargetObjectiveMetricValue": 0.99}). `random_seed` makes the strategy's choices
    repeatable; botocore before 1.31 (Debian 12's) cannot send it."""

    def __init__(self, estimator: Estimator, objective_metric_name: str,
                 hyperparameter_ranges: Mapping[str, Range],
                 metric_definitions: Optional[List[Dict[str, str]]] = None,
                 strategy: str = "Bayesian", objective_type: str = "Maximize",
                 max_jobs: Optional[int] = None, max_parallel_jobs: int = 1,
                 max_runtime_in_seconds: Optional[int] = None,
                 tags: Optional[List[dict]] = None, base_tuning_job_name: Optional[str] = None,
                 warm_start_config: Optional[WarmStartConfig] = None,
                 early_stopping_type: str = "Off",
                 completion_criteria: Optional[dict] = None,
                 strategy_config: Optional[dict] = None, random_seed: Optional[int] = None):
        if not hyperparameter_ranges:
            raise ValueError("hyperparameter_ranges must name at least one hyperparameter")
        for name, r in hyperparameter_ranges.items():
            if not isinstance(r, (ParameterRange, CategoricalParameter)):
                raise TypeError(f"hyperparameter_ranges[{name!r}] must be a ContinuousParameter,"
                                f" IntegerParameter or CategoricalParameter, got "
                                f"{type(r).__name__}")
        self.estimator = estimator
        self.objective_metric_name = objective_metric_name
        self._hyperparameter_ranges: Dict[str, Range] = dict(hyperparameter_ranges)
        self.metric_definitions = metric_definitions
        self.strategy = strategy
        self.objective_type = objective_type
        # The sagemaker SDK's default: unset for Grid (which runs the whole grid), else 1.
        self.max_jobs = max_jobs if max_jobs is not None else (None if strategy == "Grid"
                                                               else 1)
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.tags = tags
        self.base_tuning_job_name = base_tuning_job_name
        self.warm_start_config = warm_start_config
        self.early_stopping_type = early_stopping_type
        self.completion_criteria = completion_criteria
        self.strategy_config = strategy_config
        self.random_seed = random_seed
        self.latest_tuning_job: Optional[str] = None

    def __repr__(self) -> str:
        return f"HyperparameterTuner({self.objective_metric_name!r}, latest job " \
               f"{self.latest_tuning_job!r})"

    @property
    def session(self) -> Session:
        return self.estimator.session

    @property
    def sagemaker_session(self) -> Session:
        return self.session

    def hyperparameter_ranges(self) -> Dict[str, List[dict]]:
        """ParameterRanges as the API takes them."""
        out: Dict[str, List[dict]] = {"ContinuousParameterRanges": [],
                                      "IntegerParameterRanges": [],
                                      "CategoricalParameterRanges": []}
        for name, r in self._hyperparameter_ranges.items():
            out[f"{r.kind}ParameterRanges"].append(r.as_tuning_range(name))
        return out

    # --- starting ------------------------------------------------------------------------------

    def _request(self, job_name: str, inputs: Inputs) -> dict:
        training = self.estimator._training_request("unused", inputs)
        definition: Dict[str, Any] = {k: v for k, v in training.items()
                                      if k not in ("TrainingJobName", "HyperParameters", "Tags")}
        static = {k: v for k, v in self.estimator.hyperparameters().items()
                  if k not in self._hyperparameter_ranges}
        if static:
            definition["StaticHyperParameters"] = static
        metrics = self.metric_definitions or self.estimator.metric_definitions
        if metrics:
            definition["AlgorithmSpecification"]["MetricDefinitions"] = metrics
        limits: Dict[str, Any] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.max_runtime_in_seconds is not None:
            limits["MaxRuntimeInSeconds"] = self.max_runtime_in_seconds
        config: Dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type,
                                                 "MetricName": self.objective_metric_name},
            "ResourceLimits": limits,
            "ParameterRanges": self.hyperparameter_ranges(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type,
        }
        if self.completion_criteria:
            config["TuningJobCompletionCriteria"] = self.completion_criteria
        if self.strategy_config:
            config["StrategyConfig"] = self.strategy_config
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        request: Dict[str, Any] = {"HyperParameterTuningJobName": job_name,
                                   "HyperParameterTuningJobConfig": config,
                                   "TrainingJobDefinition": definition}
        if self.warm_start_config:
            request["WarmStartConfig"] = self.warm_start_config.to_input_req()
        if self.tags:
            request["Tags"] = self.tags
        return request

    def fit(self, inputs: Inputs = None, job_name: Optional[str] = None, wait: bool = True,
            logs: Any = True) -> None:
        """Starts the tuning job on `inputs` (as Estimator.fit takes them) and, unless
        wait=False, waits for it with a line per finished trial (logs=False: no lines;
        a callable receives them)."""
        job_name = job_name or images.name_from_base(
            self.base_tuning_job_name or self.estimator.base_job_name
            or images.base_name_from_image(self.estimator.image_uri),
            max_length=TUNING_JOB_NAME_MAX, short=True)
        self.session.call("sagemaker", "create_hyper_parameter_tuning_job",
                          **self._request(job_name, inputs))
        self.latest_tuning_job = job_name
        if logs:
            logs_mod.sinks(logs)[1](f"Created hyperparameter tuning job {job_name}")
        if wait:
            self.wait(logs=logs)

    # --- following -----------------------------------------------------------------------------

    def _job(self) -> str:
        if not self.latest_tuning_job:
            raise ValueError("no tuning job yet: call fit() (or HyperparameterTuner.attach) "
                             "first")
        return self.latest_tuning_job

    def describe(self) -> dict:
        """DescribeHyperParameterTuningJob of the latest tuning job."""
        return self.session.call("sagemaker", "describe_hyper_parameter_tuning_job",
                                 HyperParameterTuningJobName=self._job())

    def wait(self, logs: Any = True) -> dict:
        """Waits for the tuning job to end; prints a line whenever trials finish or the best
        one changes. Returns the final description; raises TuningJobFailed if it Failed."""
        name = self._job()
        say = logs_mod.sinks(logs)[1] if logs else (lambda line: None)
        backoff = logs_mod.Backoff(self.session.poll_interval)
        last = None
        while True:
            desc = self.describe()
            status = desc["HyperParameterTuningJobStatus"]
            state = _progress(desc)
            if state != last:
                say(f"{datetime.datetime.now():%H:%M:%S} {name} {state}")
                last = state
                backoff.reset()
            if status in TERMINAL_JOB_STATES:
                if status == "Failed":
                    raise TuningJobFailed(name, status, desc.get("FailureReason"))
                return desc
            backoff.sleep()

    def stop_tuning_job(self) -> None:
        """StopHyperParameterTuningJob of the latest tuning job (running trials are stopped)."""
        self.session.call("sagemaker", "stop_hyper_parameter_tuning_job",
                          HyperParameterTuningJobName=self._job())

    # --- results -------------------------------------------------------------------------------

    def best_training_job(self) -> str:
        """The name of the best training job so far (across warm-start parents when one of
        theirs is better). Raises if no trial has reported the objective yet."""
        desc = self.describe()
        best = desc.get("OverallBestTrainingJob") or desc.get("BestTrainingJob")
        if not best:
            raise ValueError(f"tuning job {self._job()} has no trial with an objective value "
                             f"yet ({desc['HyperParameterTuningJobStatus']})")
        return best["TrainingJobName"]

    def best_estimator(self) -> Estimator:
        """An Estimator attached to the best training job."""
        return Estimator.attach(self.best_training_job(), session=self.session)

    def deploy(self, initial_instance_count: int = 1, instance_type: str = "ml.m5.large",
               **kwargs: Any) -> Predictor:
        """Deploys the best training job's model (Estimator.deploy's arguments)."""
        return self.best_estimator().deploy(initial_instance_count, instance_type, **kwargs)

    def analytics(self) -> "HyperparameterTuningJobAnalytics":
        """The latest tuning job's trials, as a DataFrame among other views."""
        return HyperparameterTuningJobAnalytics(self._job(), session=self.session)

    # --- warm starts and attaching -------------------------------------------------------------

    def _child(self, warm_start_type: str, additional_parents: Iterable[str],
               estimator: Optional[Estimator]) -> "HyperparameterTuner":
        parents = [self._job(), *additional_parents]
        return HyperparameterTuner(
            estimator or self.estimator, self.objective_metric_name,
            self._hyperparameter_ranges, metric_definitions=self.metric_definitions,
            strategy=self.strategy, objective_type=self.objective_type, max_jobs=self.max_jobs,
            max_parallel_jobs=self.max_parallel_jobs,
            max_runtime_in_seconds=self.max_runtime_in_seconds, tags=self.tags,
            base_tuning_job_name=self.base_tuning_job_name,
            warm_start_config=WarmStartConfig(warm_start_type, parents),
            early_stopping_type=self.early_stopping_type,
            completion_criteria=self.completion_criteria,
            strategy_config=self.strategy_config)

    def identical_dataset_and_algorithm_tuner(
            self, additional_parents: Iterable[str] = ()) -> "HyperparameterTuner":
        """A new tuner, configured as this one, that warm-starts from this tuning job (and
        `additional_parents`) on the same data and image."""
        return self._child("IdenticalDataAndAlgorithm", additional_parents, None)

    def transfer_learning_tuner(self, additional_parents: Iterable[str] = (),
                                estimator: Optional[Estimator] = None) -> "HyperparameterTuner":
        """A new tuner warm-starting from this tuning job where data, image or ranges may
        differ (`estimator` replaces this one's)."""
        return self._child("TransferLearning", additional_parents, estimator)

    @classmethod
    def attach(cls, tuning_job_name: str, session: Optional[Session] = None, *,
               sagemaker_session: Optional[Session] = None) -> "HyperparameterTuner":
        """A tuner for an existing tuning job, configured as the job was."""
        session = session or sagemaker_session or Session()
        d = session.call("sagemaker", "describe_hyper_parameter_tuning_job",
                         HyperParameterTuningJobName=tuning_job_name)
        definition = d.get("TrainingJobDefinition") or (d.get("TrainingJobDefinitions")
                                                        or [{}])[0]
        config = d["HyperParameterTuningJobConfig"]
        spec = definition.get("AlgorithmSpecification", {})
        resources = definition.get("ResourceConfig", {})
        static = user_hyperparameters(definition.get("StaticHyperParameters"))
        estimator = Estimator(
            spec.get("TrainingImage", ""), definition.get("RoleArn"),
            resources.get("InstanceCount", 1), resources.get("InstanceType", "ml.m5.large"),
            hyperparameters=static, session=session,
            input_mode=spec.get("TrainingInputMode", "File"),
            output_path=definition.get("OutputDataConfig", {}).get("S3OutputPath"),
            metric_definitions=spec.get("MetricDefinitions"),
            environment=definition.get("Environment"))
        ranges = config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}
        objective = config.get("HyperParameterTuningJobObjective") or definition.get(
            "TuningObjective", {})
        limits = config.get("ResourceLimits", {})
        warm = d.get("WarmStartConfig")
        tuner = cls(estimator, objective.get("MetricName", ""), _ranges_from_description(ranges),
                    strategy=config.get("Strategy", "Bayesian"),
                    objective_type=objective.get("Type", "Maximize"),
                    max_jobs=limits.get("MaxNumberOfTrainingJobs"),
                    max_parallel_jobs=limits.get("MaxParallelTrainingJobs", 1),
                    max_runtime_in_seconds=limits.get("MaxRuntimeInSeconds"),
                    early_stopping_type=config.get("TrainingJobEarlyStoppingType", "Off"),
                    completion_criteria=config.get("TuningJobCompletionCriteria"),
                    strategy_config=config.get("StrategyConfig"),
                    random_seed=config.get("RandomSeed"),
                    warm_start_config=WarmStartConfig(
                        warm["WarmStartType"],
                        [p["HyperParameterTuningJobName"]
                         for p in warm.get("ParentHyperParameterTuningJobs", [])])
                    if warm else None)
        tuner.latest_tuning_job = tuning_job_name
        return tuner


def _progress(desc: dict) -> str:
    """The progress of a tuning job: "<status>: <finished>, <running>, <best so far>"."""
    counts = desc.get("TrainingJobStatusCounters", {})
    finished = sum(counts.get(k, 0) for k in ("Completed", "Stopped", "NonRetryableError",
                                              "RetryableError"))
    parts = [f"{finished} finished", f"{counts.get('InProgress', 0)} running"]
    limit = desc.get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {}).get(
        "MaxNumberOfTrainingJobs")
    if limit:
        parts[0] = f"{finished}/{limit} finished"
    failed = counts.get("NonRetryableError", 0) + counts.get("RetryableError", 0)
    if failed:
        parts.append(f"{failed} failed")
    best = desc.get("BestTrainingJob")
    if best and best.get("FinalHyperParameterTuningJobObjectiveMetric"):
        metric = best["FinalHyperParameterTuningJobObjectiveMetric"]
        parts.append(f"best {metric['MetricName']} {metric['Value']:.6g} "
                     f"({best['TrainingJobName']})")
    status = desc["HyperParameterTuningJobStatus"]
    text = f"{status}: " + ", ".join(parts)
    if status == "Failed" and desc.get("FailureReason"):
        text += f" - {desc['FailureReason']}"
    return text


class HyperparameterTuningJobAnalytics:
    """The training jobs of one tuning job: `dataframe()` has a row per job with its tuned
    hyperparameters (typed by their ranges), TrainingJobName, TrainingJobStatus,
    FinalObjectiveValue, TrainingStartTime, TrainingEndTime and TrainingElapsedTimeSeconds,
    as sagemaker.analytics.HyperparameterTuningJobAnalytics."""

    def __init__(self, hyperparameter_tuning_job_name: str, session: Optional[Session] = None,
                 *, sagemaker_session: Optional[Session] = None):
        self.name = hyperparameter_tuning_job_name
        self.session = session or sagemaker_session or Session()
        self._description: Optional[dict] = None
        self._summaries: Optional[List[dict]] = None
        self._dataframe: Any = None

    def __repr__(self) -> str:
        return f"HyperparameterTuningJobAnalytics({self.name!r})"

    @property
    def name_of_tuning_job(self) -> str:
        return self.name

    def clear_cache(self) -> None:
        self._description = None
        self._summaries = None
        self._dataframe = None

    def description(self, force_refresh: bool = False) -> dict:
        """DescribeHyperParameterTuningJob (cached until force_refresh)."""
        if force_refresh or self._description is None:
            self._description = self.session.call(
                "sagemaker", "describe_hyper_parameter_tuning_job",
                HyperParameterTuningJobName=self.name)
        return self._description

    @property
    def tuning_ranges(self) -> Dict[str, Range]:
        """The tuned hyperparameters' ranges by name."""
        desc = self.description()
        definition = desc.get("TrainingJobDefinition") or {}
        ranges = (desc["HyperParameterTuningJobConfig"].get("ParameterRanges")
                  or definition.get("HyperParameterRanges") or {})
        out = _ranges_from_description(ranges)
        for d in desc.get("TrainingJobDefinitions") or []:
            out.update(_ranges_from_description(d.get("HyperParameterRanges") or {}))
        return out

    def training_job_summaries(self, force_refresh: bool = False) -> List[dict]:
        """Every ListTrainingJobsForHyperParameterTuningJob summary, all pages."""
        if force_refresh or self._summaries is None:
            out: List[dict] = []
            kwargs: Dict[str, Any] = {"HyperParameterTuningJobName": self.name,
                                      "MaxResults": 100}
            while True:
                page = self.session.call("sagemaker",
                                         "list_training_jobs_for_hyper_parameter_tuning_job",
                                         **kwargs)
                out.extend(page.get("TrainingJobSummaries", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
            self._summaries = out
        return self._summaries

    def dataframe(self, force_refresh: bool = False) -> Any:
        """A pandas DataFrame with a row per training job (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("dataframe() needs pandas (Debian: python3-pandas)") from e
        if force_refresh:
            self.clear_cache()
        if self._dataframe is None:
            ranges = self.tuning_ranges
            rows = []
            for s in self.training_job_summaries():
                row: Dict[str, Any] = {}
                for name, value in s.get("TunedHyperParameters", {}).items():
                    r = ranges.get(name)
                    row[name] = r.cast(value) if r else value
                row["TrainingJobName"] = s["TrainingJobName"]
                row["TrainingJobStatus"] = s["TrainingJobStatus"]
                metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
                row["FinalObjectiveValue"] = metric["Value"] if metric else float("nan")
                start, end = s.get("TrainingStartTime"), s.get("TrainingEndTime")
                row["TrainingStartTime"] = start
                row["TrainingEndTime"] = end
                row["TrainingElapsedTimeSeconds"] = (
                    (end - start).total_seconds() if start and end else float("nan"))
                if s.get("TrainingJobDefinitionName"):
                    row["TrainingJobDefinitionName"] = s["TrainingJobDefinitionName"]
                rows.append(row)
            self._dataframe = pd.DataFrame(rows)
        return self._dataframe

    def export_csv(self, filename: str, force_refresh: bool = False) -> None:
        """The DataFrame written to `filename` as CSV."""
        self.dataframe(force_refresh).to_csv(filename)
