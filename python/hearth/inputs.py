"""TrainingInput: one channel of a training job, as sagemaker.inputs.TrainingInput."""
from __future__ import annotations

from typing import Optional


class TrainingInput:
    """Where a channel's data is and how to read it. `config` is the channel's entry of
    CreateTrainingJob's InputDataConfig (without ChannelName).

    `s3_data` is an S3 prefix (all objects under it), or a manifest with
    s3_data_type="ManifestFile"; `content_type` ("text/csv", "application/x-recordio-protobuf",
    "text/libsvm", ...) tells the algorithm how to parse it; `distribution` is
    "FullyReplicated" (every host reads everything) or "ShardedByS3Key" (each host a share of
    the objects)."""

    def __init__(self, s3_data: str, distribution: Optional[str] = None,
                 compression: Optional[str] = None, content_type: Optional[str] = None,
                 record_wrapping: Optional[str] = None, s3_data_type: str = "S3Prefix",
                 input_mode: Optional[str] = None, shuffle_seed: Optional[int] = None):
        self.config = {
            "DataSource": {"S3DataSource": {
                "S3DataType": s3_data_type,
                "S3Uri": s3_data,
                "S3DataDistributionType": distribution or "FullyReplicated",
            }},
        }
        if compression:
            self.config["CompressionType"] = compression
        if content_type:
            self.config["ContentType"] = content_type
        if record_wrapping:
            self.config["RecordWrapperType"] = record_wrapping
        if input_mode:
            self.config["InputMode"] = input_mode
        if shuffle_seed is not None:
            self.config["ShuffleConfig"] = {"Seed": shuffle_seed}

    @property
    def s3_uri(self) -> str:
        return self.config["DataSource"]["S3DataSource"]["S3Uri"]

    @property
    def content_type(self) -> Optional[str]:
        return self.config.get("ContentType")

    def __repr__(self) -> str:
        ctype = f", content_type={self.content_type!r}" if self.content_type else ""
        return f"TrainingInput({self.s3_uri!r}{ctype})"
