"""Estimator: training jobs (CreateTrainingJob) and what follows from one (its model, an
endpoint, a batch transform); as sagemaker.estimator.Estimator."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from hearth import images
from hearth import logs as logs_mod
from hearth.deserializers import BaseDeserializer
from hearth.inputs import TrainingInput
from hearth.model import Model
from hearth.predictor import Predictor
from hearth.serializers import BaseSerializer
from hearth.session import TERMINAL_JOB_STATES, Session
from hearth.transformer import Transformer

Inputs = Union[str, TrainingInput, Mapping[str, Union[str, TrainingInput, dict]], None]


def hyperparameter_string(value: Any) -> str:
    """How a hyperparameter value is sent (SageMaker takes strings only): booleans as
    true/false (what the built-ins parse), lists and dicts as JSON, the rest as str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


# What the service adds to a tuning job's trials' hyperparameters (the objective's name), as
# SageMaker does; not the user's, so not carried over by attach().
_SERVICE_HYPERPARAMETERS = frozenset({"_tuning_objective_metric"})


def user_hyperparameters(hyperparameters: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """A job's hyperparameters without the ones the service added."""
    return {k: v for k, v in (hyperparameters or {}).items()
            if k not in _SERVICE_HYPERPARAMETERS}


class TrainingJob:
    """One training job by name: describe(), wait(), stop()."""

    def __init__(self, session: Session, name: str):
        self.session = session
        self.name = name

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"

    @property
    def job_name(self) -> str:
        return self.name

    def describe(self) -> dict:
        """DescribeTrainingJob."""
        return self.session.call("sagemaker", "describe_training_job", TrainingJobName=self.name)

    def wait(self, logs: Any = True) -> dict:
        """Waits for the job to end (see Session.wait_for_training_job)."""
        return self.session.wait_for_training_job(self.name, logs=logs)

    def stop(self) -> None:
        """StopTrainingJob."""
        self.session.call("sagemaker", "stop_training_job", TrainingJobName=self.name)


class Estimator:
    """Trains a model with an image: a built-in algorithm by name ("linear-learner",
    "xgboost", ..., sent as "hearth/<name>"), any image URI, or a registered bring-your-own
    image name.

    `hyperparameters` values may be any type (sent as strings; booleans as true/false).
    `output_path` (default s3://<default bucket>) receives <job>/output/model.tar.gz.
    `metric_definitions` ([{"Name", "Regex"}]) name the metrics to find in the log lines;
    built-in images bring their own."""

    def __init__(self, image_uri: str, role: Optional[str] = None, instance_count: int = 1,
                 instance_type: str = "ml.m5.large", *,
                 hyperparameters: Optional[Dict[str, Any]] = None,
                 session: Optional[Session] = None, sagemaker_session: Optional[Session] = None,
                 volume_size: int = 30, max_run: int = 24 * 60 * 60, input_mode: str = "File",
                 output_path: Optional[str] = None, base_job_name: Optional[str] = None,
                 metric_definitions: Optional[List[Dict[str, str]]] = None,
                 environment: Optional[Dict[str, str]] = None,
                 enable_network_isolation: bool = False,
                 checkpoint_s3_uri: Optional[str] = None,
                 checkpoint_local_path: Optional[str] = None,
                 max_retry_attempts: Optional[int] = None,
                 tags: Optional[List[Dict[str, str]]] = None):
        self.image_uri = images.image_uri(image_uri)
        self.algorithm = images.builtin_algorithm(self.image_uri)
        self.session = session or sagemaker_session or Session()
        self.role = role
        self.instance_count = instance_count
        self.instance_type = instance_type
        self._hyperparameters: Dict[str, Any] = dict(hyperparameters or {})
        self.volume_size = volume_size
        self.max_run = max_run
        self.input_mode = input_mode
        self.output_path = output_path
        self.base_job_name = base_job_name
        self.metric_definitions = metric_definitions
        self.environment = environment
        self.enable_network_isolation = enable_network_isolation
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.checkpoint_local_path = checkpoint_local_path
        self.max_retry_attempts = max_retry_attempts
        self.tags = tags
        self.latest_training_job: Optional[TrainingJob] = None
        self._model_data: Optional[str] = None

    def __repr__(self) -> str:
        job = self.latest_training_job.name if self.latest_training_job else None
        return f"Estimator({self.image_uri!r}, latest job {job!r})"

    @property
    def sagemaker_session(self) -> Session:
        return self.session

    # --- hyperparameters -----------------------------------------------------------------------

    def hyperparameters(self) -> Dict[str, str]:
        """The hyperparameters as they will be sent."""
        return {str(k): hyperparameter_string(v) for k, v in self._hyperparameters.items()}

    def set_hyperparameters(self, **kwargs: Any) -> None:
        self._hyperparameters.update(kwargs)

    # --- training ------------------------------------------------------------------------------

    def _channels(self, inputs: Inputs) -> Optional[List[dict]]:
        if inputs is None:
            return None
        if isinstance(inputs, (str, TrainingInput)):
            # One input without a channel name: built-ins read "train", others "training"
            # (the sagemaker SDK's default channel).
            inputs = {("train" if self.algorithm else "training"): inputs}
        if not isinstance(inputs, Mapping):
            raise TypeError("inputs must be an S3 URI, a TrainingInput, or a dict of channel "
                            f"name to either; got {type(inputs).__name__}")
        channels = []
        for name, value in inputs.items():
            if isinstance(value, str):
                config = TrainingInput(value).config
            elif isinstance(value, TrainingInput):
                config = value.config
            elif isinstance(value, Mapping) and "DataSource" in value:
                config = dict(value)
            else:
                raise TypeError(f"channel {name!r}: expected an S3 URI or a TrainingInput, got "
                                f"{type(value).__name__}")
            channels.append({"ChannelName": name, **config})
        return channels

    def _training_request(self, job_name: str, inputs: Inputs) -> dict:
        output_path = self.output_path or f"s3://{self.session.default_bucket()}"
        spec: Dict[str, Any] = {"TrainingImage": self.image_uri,
                                "TrainingInputMode": self.input_mode}
        if self.metric_definitions:
            spec["MetricDefinitions"] = self.metric_definitions
        request: Dict[str, Any] = {
            "TrainingJobName": job_name,
            "AlgorithmSpecification": spec,
            "RoleArn": self.role or self.session.role,
            "OutputDataConfig": {"S3OutputPath": output_path},
            "ResourceConfig": {"InstanceType": self.instance_type,
                               "InstanceCount": self.instance_count,
                               "VolumeSizeInGB": self.volume_size},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run},
        }
        hyperparameters = self.hyperparameters()
        if hyperparameters:
            request["HyperParameters"] = hyperparameters
        channels = self._channels(inputs)
        if channels:
            request["InputDataConfig"] = channels
        if self.environment:
            request["Environment"] = self.environment
        if self.enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        if self.checkpoint_s3_uri:
            checkpoint = {"S3Uri": self.checkpoint_s3_uri}
            if self.checkpoint_local_path:
                checkpoint["LocalPath"] = self.checkpoint_local_path
            request["CheckpointConfig"] = checkpoint
        if self.max_retry_attempts:
            request["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        if self.tags:
            request["Tags"] = self.tags
        return request

    def fit(self, inputs: Inputs = None, wait: bool = True, logs: Any = True,
            job_name: Optional[str] = None) -> None:
        """Starts a training job on `inputs` ({"train": ..., "validation": ...}: S3 URIs or
        TrainingInputs such as Session.upload_numpy returns) and, unless wait=False, waits for
        it: its log lines are printed as they arrive (logs=False: status lines only; a
        callable receives every line instead), with a line per status change.
        Raises TrainingJobFailed carrying the job's FailureReason if it fails."""
        job_name = job_name or images.name_from_base(
            self.base_job_name or images.base_name_from_image(self.image_uri))
        request = self._training_request(job_name, inputs)
        self.session.call("sagemaker", "create_training_job", **request)
        _, progress = logs_mod.sinks(logs)
        progress(f"Created training job {job_name}")
        self.latest_training_job = TrainingJob(self.session, job_name)
        self._model_data = None
        if wait:
            self.latest_training_job.wait(logs=logs)

    def _job(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValueError("no training job yet: call fit() (or Estimator.attach) first")
        return self.latest_training_job

    def describe(self) -> dict:
        """DescribeTrainingJob of the latest job."""
        return self._job().describe()

    def logs(self) -> None:
        """Prints the latest job's log lines (waiting for it if it still runs)."""
        self._job().wait(logs=True)

    def stop_training_job(self) -> None:
        """StopTrainingJob of the latest job."""
        self._job().stop()

    @property
    def model_data(self) -> str:
        """The S3 URI of the latest job's model.tar.gz."""
        if self._model_data is None:
            desc = self.describe()
            uri = desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            if not uri:
                raise ValueError(f"training job {self._job().name} has no model artifacts "
                                 f"({desc['TrainingJobStatus']})")
            if desc["TrainingJobStatus"] not in TERMINAL_JOB_STATES:
                return uri
            self._model_data = uri
        return self._model_data

    # --- metrics -------------------------------------------------------------------------------

    def final_metrics(self) -> Dict[str, float]:
        """The last value of each metric (DescribeTrainingJob's FinalMetricDataList)."""
        return {m["MetricName"]: m["Value"]
                for m in self.describe().get("FinalMetricDataList", [])}

    def metrics(self) -> Dict[str, List[logs_mod.MetricPoint]]:
        """Every value each metric took, in order, found in the job's log lines with its
        MetricDefinitions (a built-in image's own when none were given)."""
        desc = self.describe()
        definitions = (desc.get("AlgorithmSpecification", {}).get("MetricDefinitions")
                       or self.metric_definitions or [])
        events = logs_mod.job_events(self.session.call, logs_mod.TRAINING_LOG_GROUP,
                                     desc["TrainingJobName"])
        return logs_mod.parse_metrics(events, definitions)

    def plot_metrics(self, names: Optional[Iterable[str]] = None, x: str = "step") -> Any:
        """A matplotlib Figure of the job's metrics: a panel of curves per measure
        (train:loss and validation:loss share the "loss" panel), and one panel of bars for
        the metrics reported once. `x` is "step" (the n-th report: epochs, boosting rounds) or
        "time" (seconds since the first report). Needs matplotlib."""
        try:
            import matplotlib.pyplot as plt
            from matplotlib.ticker import MaxNLocator
        except ImportError as e:
            raise ImportError("plot_metrics needs matplotlib (Debian: python3-matplotlib)") from e
        if x not in ("step", "time"):
            raise ValueError(f"x must be 'step' or 'time', got {x!r}")
        series = self.metrics()
        if names is not None:
            wanted = set(names)
            series = {k: v for k, v in series.items() if k in wanted}
        if not series:
            raise ValueError(f"training job {self._job().name} reported no metrics")
        curves: Dict[str, List[str]] = {}
        once = sorted(name for name, points in series.items() if len(points) == 1)
        for name in sorted(series):
            if len(series[name]) > 1:
                curves.setdefault(name.split(":", 1)[-1], []).append(name)
        start = min(p.timestamp for points in series.values() for p in points)
        count = len(curves) + (1 if once else 0)
        fig, axes = plt.subplots(count, 1, figsize=(7, 2.8 * count), squeeze=False)
        panels = iter(axes[:, 0])
        for measure, members in curves.items():
            ax = next(panels)
            for name in members:
                points = series[name]
                xs = [p.step if x == "step" else p.timestamp - start for p in points]
                ax.plot(xs, [p.value for p in points], marker="o" if len(points) <= 50 else None,
                        label=name)
            ax.set_title(measure)
            ax.set_xlabel("report (epoch, round)" if x == "step" else "seconds")
            if x == "step":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend()
        if once:
            ax = next(panels)
            values = [series[name][0].value for name in once]
            ax.barh(once, values)
            for i, v in enumerate(values):
                ax.annotate(f"{v:.4g}", (v, i), xytext=(3, 0), textcoords="offset points",
                            va="center")
            ax.invert_yaxis()
            ax.set_title("reported once")
            ax.grid(alpha=0.3, axis="x")
        fig.suptitle(self._job().name)
        fig.tight_layout()
        return fig

    # --- models, endpoints, batch transform ----------------------------------------------------

    def create_model(self, role: Optional[str] = None, image_uri: Optional[str] = None,
                     name: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> Model:
        """A Model of the latest job's artifacts served by the training image (or
        `image_uri`)."""
        return Model(image_uri or self.image_uri, self.model_data, role or self.role,
                     session=self.session, name=name, env=env,
                     enable_network_isolation=self.enable_network_isolation)

    def deploy(self, initial_instance_count: int = 1, instance_type: str = "ml.m5.large",
               serializer: Optional[BaseSerializer] = None,
               deserializer: Optional[BaseDeserializer] = None,
               endpoint_name: Optional[str] = None, model_name: Optional[str] = None,
               wait: bool = True, tags: Optional[List[dict]] = None,
               env: Optional[Dict[str, str]] = None) -> Predictor:
        """Deploys the latest job's model to an endpoint (CreateModel, CreateEndpointConfig,
        CreateEndpoint; model, config and endpoint share one name by default) and waits for it
        to be InService. Built-ins get CSVSerializer + JSONDeserializer by default."""
        default_name = images.name_from_base(
            self.base_job_name or images.base_name_from_image(self.image_uri))
        model = self.create_model(name=model_name or default_name, env=env)
        return model.deploy(initial_instance_count, instance_type, serializer=serializer,
                            deserializer=deserializer, endpoint_name=endpoint_name or default_name,
                            wait=wait, tags=tags)

    def transformer(self, instance_count: int, instance_type: str,
                    strategy: Optional[str] = None, assemble_with: Optional[str] = None,
                    output_path: Optional[str] = None, accept: Optional[str] = None,
                    env: Optional[Dict[str, str]] = None,
                    max_concurrent_transforms: Optional[int] = None,
                    max_payload: Optional[int] = None, tags: Optional[List[dict]] = None,
                    model_name: Optional[str] = None, role: Optional[str] = None) -> Transformer:
        """A Transformer running the latest job's model (created under the job's name, as the
        sagemaker SDK does, unless `model_name` is given)."""
        model = self.create_model(role=role, name=model_name or self._job().name)
        model.create(instance_type, tags)
        return Transformer(model.name, instance_count, instance_type, strategy=strategy,
                           assemble_with=assemble_with, output_path=output_path, accept=accept,
                           max_concurrent_transforms=max_concurrent_transforms,
                           max_payload=max_payload, tags=tags, env=env,
                           session=self.session)

    # --- attaching -----------------------------------------------------------------------------

    @classmethod
    def attach(cls, training_job_name: str, session: Optional[Session] = None, *,
               sagemaker_session: Optional[Session] = None, wait: bool = True) -> "Estimator":
        """An Estimator for an existing training job, configured as the job was. If the job is
        still running this waits for it (without its logs), as the sagemaker SDK does, unless
        wait=False."""
        session = session or sagemaker_session or Session()
        d = session.call("sagemaker", "describe_training_job", TrainingJobName=training_job_name)
        spec = d.get("AlgorithmSpecification", {})
        resources = d.get("ResourceConfig", {})
        checkpoint = d.get("CheckpointConfig") or {}
        retry = d.get("RetryStrategy") or {}
        estimator = cls(spec.get("TrainingImage", ""), d.get("RoleArn"),
                        resources.get("InstanceCount", 1),
                        resources.get("InstanceType", "ml.m5.large"),
                        hyperparameters=user_hyperparameters(d.get("HyperParameters")),
                        session=session,
                        volume_size=resources.get("VolumeSizeInGB", 30),
                        max_run=d.get("StoppingCondition", {}).get("MaxRuntimeInSeconds",
                                                                   24 * 60 * 60),
                        input_mode=spec.get("TrainingInputMode", "File"),
                        output_path=d.get("OutputDataConfig", {}).get("S3OutputPath"),
                        metric_definitions=spec.get("MetricDefinitions"),
                        environment=d.get("Environment"),
                        enable_network_isolation=bool(d.get("EnableNetworkIsolation")),
                        checkpoint_s3_uri=checkpoint.get("S3Uri"),
                        checkpoint_local_path=checkpoint.get("LocalPath"),
                        max_retry_attempts=retry.get("MaximumRetryAttempts"))
        estimator.latest_training_job = TrainingJob(session, training_job_name)
        if wait and d["TrainingJobStatus"] not in TERMINAL_JOB_STATES:
            estimator.latest_training_job.wait(logs=False)
        return estimator
