"""Transformer: batch transform jobs (CreateTransformJob) over S3 data with a model; as
sagemaker.transformer.Transformer."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from hearth import images
from hearth.exceptions import HearthError
from hearth.session import Session


class Transformer:
    """Runs `model_name` over every object under an S3 prefix; each input object's results land
    at `<output_path>/<its key relative to the input prefix>.out`.

    `strategy` is "MultiRecord" or "SingleRecord" (needs a split_type), `assemble_with` "Line"
    or "None", `accept` the output's MIME type, `max_payload` in MB. `output_path` defaults to
    s3://<default bucket>/<job name>."""

    def __init__(self, model_name: str, instance_count: int = 1,
                 instance_type: str = "ml.m5.large", strategy: Optional[str] = None,
                 assemble_with: Optional[str] = None, output_path: Optional[str] = None,
                 accept: Optional[str] = None, max_concurrent_transforms: Optional[int] = None,
                 max_payload: Optional[int] = None, tags: Optional[List[dict]] = None,
                 env: Optional[Dict[str, str]] = None,
                 base_transform_job_name: Optional[str] = None, *,
                 session: Optional[Session] = None, sagemaker_session: Optional[Session] = None,
                 volume_kms_key: Optional[str] = None, output_kms_key: Optional[str] = None):
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.output_path = output_path
        self.accept = accept
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = max_payload
        self.tags = tags
        self.env = env
        self.base_transform_job_name = base_transform_job_name
        self.session = session or sagemaker_session or Session()
        self.volume_kms_key = volume_kms_key
        self.output_kms_key = output_kms_key
        self.latest_transform_job: Optional[str] = None
        self._reset_output_path = False

    def __repr__(self) -> str:
        return f"Transformer({self.model_name!r}, latest job {self.latest_transform_job!r})"

    @property
    def sagemaker_session(self) -> Session:
        return self.session

    def transform(self, data: str, data_type: str = "S3Prefix",
                  content_type: Optional[str] = None, compression_type: Optional[str] = None,
                  split_type: Optional[str] = None, job_name: Optional[str] = None,
                  input_filter: Optional[str] = None, output_filter: Optional[str] = None,
                  join_source: Optional[str] = None,
                  model_client_config: Optional[Dict[str, int]] = None, wait: bool = True,
                  logs: Any = True) -> str:
        """CreateTransformJob over `data` (an S3 prefix, or a manifest with
        data_type="ManifestFile"), then waits for it with its logs unless wait=False. Returns
        the job's name; its results are under `self.output_path`. Raises TransformJobFailed
        with the reason if it fails."""
        job_name = job_name or images.name_from_base(self._base_job_name())
        if self.output_path is None or self._reset_output_path:
            self.output_path = f"s3://{self.session.default_bucket()}/{job_name}"
            self._reset_output_path = True
        transform_input: Dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": data}}}
        if content_type:
            transform_input["ContentType"] = content_type
        if compression_type:
            transform_input["CompressionType"] = compression_type
        if split_type:
            transform_input["SplitType"] = split_type
        output: Dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.accept:
            output["Accept"] = self.accept
        if self.assemble_with:
            output["AssembleWith"] = self.assemble_with
        if self.output_kms_key:
            output["KmsKeyId"] = self.output_kms_key
        resources: Dict[str, Any] = {"InstanceType": self.instance_type,
                                     "InstanceCount": self.instance_count}
        if self.volume_kms_key:
            resources["VolumeKmsKeyId"] = self.volume_kms_key
        args: Dict[str, Any] = {"TransformJobName": job_name, "ModelName": self.model_name,
                                "TransformInput": transform_input, "TransformOutput": output,
                                "TransformResources": resources}
        if self.strategy:
            args["BatchStrategy"] = self.strategy
        if self.max_concurrent_transforms is not None:
            args["MaxConcurrentTransforms"] = self.max_concurrent_transforms
        if self.max_payload is not None:
            args["MaxPayloadInMB"] = self.max_payload
        if self.env:
            args["Environment"] = self.env
        if self.tags:
            args["Tags"] = self.tags
        if model_client_config:
            args["ModelClientConfig"] = model_client_config
        processing = {k: v for k, v in (("InputFilter", input_filter),
                                        ("OutputFilter", output_filter),
                                        ("JoinSource", join_source)) if v}
        if processing:
            args["DataProcessing"] = processing
        self.session.call("sagemaker", "create_transform_job", **args)
        self.latest_transform_job = job_name
        if wait:
            self.wait(logs=logs)
        return job_name

    def _base_job_name(self) -> str:
        """The model's image name, as the sagemaker SDK names transform jobs."""
        if not self.base_transform_job_name:
            try:
                model = self.session.call("sagemaker", "describe_model",
                                          ModelName=self.model_name)
                image = (model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])
                self.base_transform_job_name = images.base_name_from_image(
                    image.get("Image") or self.model_name)
            except HearthError:
                self.base_transform_job_name = images.base_name_from_image(self.model_name)
        return self.base_transform_job_name

    def _job(self) -> str:
        if not self.latest_transform_job:
            raise ValueError("no transform job yet: call transform() first")
        return self.latest_transform_job

    def describe(self) -> dict:
        """DescribeTransformJob of the latest job."""
        return self.session.call("sagemaker", "describe_transform_job",
                                 TransformJobName=self._job())

    def wait(self, logs: Any = True) -> dict:
        """Waits for the latest job to end; returns its final description."""
        return self.session.wait_for_transform_job(self._job(), logs=logs)

    def stop_transform_job(self, wait: bool = True) -> None:
        """StopTransformJob of the latest job; waits for it to stop unless wait=False."""
        self.session.call("sagemaker", "stop_transform_job", TransformJobName=self._job())
        if wait:
            self.session.wait_for_transform_job(self._job(), logs=False)

    def output_uris(self) -> List[str]:
        """The S3 URIs of the latest job's result objects."""
        from hearth.session import parse_s3_uri

        bucket, prefix = parse_s3_uri(self.output_path)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return [f"s3://{bucket}/{k}" for k in self.session.list_s3_files(bucket, prefix)]

    @classmethod
    def attach(cls, transform_job_name: str, session: Optional[Session] = None, *,
               sagemaker_session: Optional[Session] = None) -> "Transformer":
        """A Transformer for an existing transform job."""
        session = session or sagemaker_session or Session()
        d = session.call("sagemaker", "describe_transform_job",
                         TransformJobName=transform_job_name)
        output = d.get("TransformOutput", {})
        resources = d["TransformResources"]
        transformer = cls(d["ModelName"], resources["InstanceCount"], resources["InstanceType"],
                          strategy=d.get("BatchStrategy"),
                          assemble_with=output.get("AssembleWith"),
                          output_path=output.get("S3OutputPath"), accept=output.get("Accept"),
                          max_concurrent_transforms=d.get("MaxConcurrentTransforms"),
                          max_payload=d.get("MaxPayloadInMB"), env=d.get("Environment"),
                          session=session)
        transformer.latest_transform_job = transform_job_name
        return transformer
