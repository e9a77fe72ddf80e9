"""Errors raised by the SDK.

Every failure the service reports becomes a `HearthError` carrying the service's error code and
message (and the botocore `ClientError` as `__cause__`), so one `except hearth.HearthError`
catches them all, and the subclasses say what kind of failure it was:

    HearthError                     code, message, operation, status_code
      ValidationError               a request the service rejected as invalid
      ResourceNotFound              no such job, model, endpoint, bucket or key
      ResourceInUse                 the name is taken, or the resource is busy
      ResourceLimitExceeded         a quota (running instances, jobs) is full
      ModelError                    the model container answered an invocation with an error
      ServiceConnectionError        the endpoint URL cannot be reached
      UnexpectedStatus              a job or endpoint ended in a state other than the one waited for
        TrainingJobFailed
        TransformJobFailed
        TuningJobFailed
        EndpointFailed
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

from botocore.exceptions import (ClientError, ConnectionClosedError, EndpointConnectionError,
                                 ParamValidationError, ReadTimeoutError)


class HearthError(Exception):
    """A failure reported by the service (or met on the way to it)."""

    def __init__(self, message: str, code: Optional[str] = None, operation: Optional[str] = None,
                 status_code: Optional[int] = None, response: Optional[dict] = None):
        self.message = message
        self.code = code
        self.operation = operation
        self.status_code = status_code
        self.response = response or {}
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" ({self.code} in {self.operation})" if self.code and self.operation else (
            f" ({self.code})" if self.code else "")
        return f"{self.message}{where}"


class ValidationError(HearthError):
    """The service rejected a request as invalid; the message names the field and the rule."""


class ResourceNotFound(HearthError):
    """The named job, model, endpoint, bucket or object does not exist."""


class ResourceInUse(HearthError):
    """A resource with that name already exists, or it is busy."""


class ResourceLimitExceeded(HearthError):
    """A limit of the service (running training instances, for one) is reached."""


class ModelError(HearthError):
    """The model container answered an invocation with an error (SageMaker Runtime's 424).
    `original_status_code` and `original_message` are what the container answered."""

    def __init__(self, message: str, original_status_code: Optional[int] = None,
                 original_message: Optional[str] = None, log_stream_arn: Optional[str] = None,
                 **kwargs: Any):
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn
        super().__init__(message, **kwargs)


class ServiceConnectionError(HearthError):
    """The endpoint URL could not be reached (is `hearth server` running?)."""


class UnexpectedStatus(HearthError):
    """A job or endpoint that was waited for ended in an unexpected state. `name` is the
    resource, `status` its final status and `reason` the service's FailureReason."""

    kind = "resource"

    def __init__(self, name: str, status: str, reason: Optional[str] = None):
        self.name = name
        self.status = status
        self.reason = reason or ""
        message = f"{self.kind} {name} ended {status}"
        if reason:
            message += f": {reason}"
        super().__init__(message, code=status)

    def _text(self) -> str:
        return self.message


class TrainingJobFailed(UnexpectedStatus):
    """A training job ended Failed; `reason` is its FailureReason."""

    kind = "training job"

    @property
    def job_name(self) -> str:
        return self.name


class TransformJobFailed(UnexpectedStatus):
    """A batch transform job ended Failed; `reason` is its FailureReason."""

    kind = "transform job"

    @property
    def job_name(self) -> str:
        return self.name


class TuningJobFailed(UnexpectedStatus):
    """A hyperparameter tuning job ended Failed; `reason` is its FailureReason."""

    kind = "hyperparameter tuning job"

    @property
    def job_name(self) -> str:
        return self.name


class EndpointFailed(UnexpectedStatus):
    """An endpoint did not come InService; `reason` is its FailureReason."""

    kind = "endpoint"


# Error codes, as the services spell them, for each class. SageMaker reports a missing model,
# endpoint or endpoint config as a ValidationException saying "Could not find"; S3's HEAD
# requests carry only the HTTP status as their code.
_NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket",
                    "NoSuchUpload", "NotFound", "404"}
_VALIDATION_CODES = {"ValidationException", "ValidationError", "InvalidParameterException",
                     "InvalidParameterValue", "InvalidRequest", "InvalidArgument",
                     "InvalidBucketName", "MalformedXML"}
_IN_USE_CODES = {"ResourceInUse", "ResourceInUseException", "ConflictException",
                 "BucketAlreadyExists", "BucketNotEmpty"}
_LIMIT_CODES = {"ResourceLimitExceeded", "ResourceLimitExceededException", "LimitExceededException"}


def _looks_missing(message: str) -> bool:
    lowered = message.lower()
    return "could not find" in lowered or "not found" in lowered


def from_client_error(error: ClientError) -> HearthError:
    """The `HearthError` for a botocore `ClientError`."""
    response = error.response or {}
    details = response.get("Error", {})
    code = str(details.get("Code") or "")
    message = details.get("Message") or response.get("Message") or str(error)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    common = {"code": code, "operation": getattr(error, "operation_name", None),
              "status_code": status, "response": response}
    if code == "ModelError":
        return ModelError(message, original_status_code=response.get("OriginalStatusCode"),
                          original_message=response.get("OriginalMessage"),
                          log_stream_arn=response.get("LogStreamArn"), **common)
    if code in _NOT_FOUND_CODES or (code in _VALIDATION_CODES and _looks_missing(message)):
        return ResourceNotFound(message, **common)
    if code in _VALIDATION_CODES:
        return ValidationError(message, **common)
    if code in _IN_USE_CODES:
        return ResourceInUse(message, **common)
    if code in _LIMIT_CODES:
        return ResourceLimitExceeded(message, **common)
    return HearthError(message, **common)


@contextlib.contextmanager
def translated(endpoint_url: Optional[str] = None) -> Iterator[None]:
    """Turns botocore's exceptions raised inside the block into `HearthError`s."""
    try:
        yield
    except ClientError as e:
        raise from_client_error(e) from e
    except ParamValidationError as e:
        raise ValidationError(str(e), code="ParamValidationError") from e
    except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as e:
        where = endpoint_url or "the service"
        raise ServiceConnectionError(
            f"cannot reach {where}: {e} (is `hearth server` running there?)") from e
