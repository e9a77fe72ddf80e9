"""Deserializers: turn an InvokeEndpoint answer into Python data. ACCEPT is what the Predictor
asks for (the Accept header). Names and behaviour follow sagemaker.deserializers.

    JSONDeserializer         application/json -> dicts and lists (the built-ins answer
                             {"predictions": [{"score": .., "predicted_label": ..}, ...]})
    CSVDeserializer          text/csv -> a list of rows of strings
    NumpyDeserializer        application/x-npy, text/csv or application/json -> numpy array
    JSONLinesDeserializer    application/jsonlines -> a list of documents
    RecordDeserializer       application/x-recordio-protobuf -> a list of hearth.recordio.Record
    BytesDeserializer, StringDeserializer, StreamDeserializer
"""
from __future__ import annotations

import abc
import csv
import io
import json
from typing import Any, Sequence, Tuple, Union

from hearth.recordio import CONTENT_TYPE as RECORDIO_CONTENT_TYPE
from hearth.recordio import read_records

try:
    import numpy as np
except ImportError:
    np = None

Accept = Union[str, Sequence[str]]


def _read(stream: Any) -> bytes:
    """All bytes of a response body (a botocore StreamingBody, a file object or bytes)."""
    if isinstance(stream, (bytes, bytearray)):
        return bytes(stream)
    try:
        return stream.read()
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def _media_type(content_type: str) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class BaseDeserializer(abc.ABC):
    """Turns a response body into data; ACCEPT lists the types it can read, most wanted
    first."""

    @abc.abstractmethod
    def deserialize(self, stream: Any, content_type: str) -> Any:
        """The data in `stream`, a body of type `content_type`."""

    @property
    @abc.abstractmethod
    def ACCEPT(self) -> Tuple[str, ...]:  # noqa: N802 (the sagemaker SDK's name)
        """The MIME types to ask for."""


class SimpleBaseDeserializer(BaseDeserializer):
    """A deserializer with a fixed accept list."""

    def __init__(self, accept: Accept = "*/*"):
        self.accept = accept

    @property
    def ACCEPT(self) -> Tuple[str, ...]:  # noqa: N802
        return (self.accept,) if isinstance(self.accept, str) else tuple(self.accept)


class BytesDeserializer(SimpleBaseDeserializer):
    """The body as bytes."""

    def deserialize(self, stream: Any, content_type: str) -> bytes:
        return _read(stream)


class StringDeserializer(SimpleBaseDeserializer):
    """The body as text."""

    def __init__(self, encoding: str = "UTF-8", accept: Accept = "application/json"):
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> str:
        return _read(stream).decode(self.encoding)


class StreamDeserializer(SimpleBaseDeserializer):
    """(the body stream, its content type), for the caller to read and close."""

    def deserialize(self, stream: Any, content_type: str) -> Tuple[Any, str]:
        return stream, content_type


class JSONDeserializer(SimpleBaseDeserializer):
    """application/json through json.loads."""

    def __init__(self, accept: Accept = "application/json"):
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> Any:
        return json.loads(_read(stream).decode("utf-8"))


class JSONLinesDeserializer(SimpleBaseDeserializer):
    """application/jsonlines: a list with one entry per non-empty line."""

    def __init__(self, accept: Accept = "application/jsonlines"):
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> list:
        text = _read(stream).decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class CSVDeserializer(SimpleBaseDeserializer):
    """text/csv: a list of rows, each a list of strings."""

    def __init__(self, encoding: str = "utf-8", accept: Accept = "text/csv"):
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> list:
        return list(csv.reader(io.StringIO(_read(stream).decode(self.encoding))))


class NumpyDeserializer(SimpleBaseDeserializer):
    """A numpy array from application/x-npy (numpy's .npy), text/csv or application/json
    (whichever the endpoint answered). Ask the built-ins for text/csv or application/json:
    NumpyDeserializer(accept="text/csv")."""

    def __init__(self, dtype: Any = None, accept: Accept = "application/x-npy",
                 allow_pickle: bool = False):
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: Any, content_type: str) -> Any:
        if np is None:
            raise ImportError("NumpyDeserializer needs numpy (Debian: python3-numpy)")
        body = _read(stream)
        media = _media_type(content_type)
        if media == "text/csv":
            return np.genfromtxt(io.StringIO(body.decode("utf-8")), delimiter=",",
                                 dtype=self.dtype if self.dtype is not None else float)
        if media == "application/json":
            return np.array(json.loads(body.decode("utf-8")), dtype=self.dtype)
        if media == "application/x-npy":
            return np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
        if media == "application/x-npz":
            return np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
        raise ValueError(f"NumpyDeserializer cannot read {content_type!r}")


class RecordDeserializer(SimpleBaseDeserializer):
    """application/x-recordio-protobuf: a list of hearth.recordio.Record, read like the
    protobuf messages: `record.label["score"].float32_tensor.values[0]`."""

    def __init__(self, accept: Accept = RECORDIO_CONTENT_TYPE):
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> list:
        return read_records(_read(stream))


RecordIOProtobufDeserializer = RecordDeserializer
