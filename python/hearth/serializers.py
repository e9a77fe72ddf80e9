"""Serializers: turn what `Predictor.predict` is given into an InvokeEndpoint body, with the
Content-Type to send. Names and behaviour follow sagemaker.serializers.

    CSVSerializer            text/csv: a row per line (numpy arrays, lists, DataFrames)
    JSONSerializer           application/json: json.dumps, numpy arrays as lists
    JSONLinesSerializer      application/jsonlines: one JSON document per item
    NumpySerializer          application/x-npy: numpy's .npy format
    RecordSerializer         application/x-recordio-protobuf: a Record per row (as
                             sagemaker.amazon.common.RecordSerializer)
    IdentitySerializer       the bytes as given
"""
from __future__ import annotations

import abc
import csv
import io
import json
from typing import Any

from hearth.recordio import CONTENT_TYPE as RECORDIO_CONTENT_TYPE
from hearth.recordio import numpy_to_recordio

try:
    import numpy as np
except ImportError:
    np = None


class BaseSerializer(abc.ABC):
    """Turns data into a request body; CONTENT_TYPE is the Content-Type sent with it."""

    @abc.abstractmethod
    def serialize(self, data: Any) -> Any:
        """The body for `data` (bytes, str or a file-like object)."""

    @property
    @abc.abstractmethod
    def CONTENT_TYPE(self) -> str:  # noqa: N802 (the sagemaker SDK's name)
        """The MIME type of the bodies this serializer makes."""


class SimpleBaseSerializer(BaseSerializer):
    """A serializer with a fixed content type."""

    def __init__(self, content_type: str = "application/json"):
        if not isinstance(content_type, str):
            raise ValueError(f"content_type must be a string, got {content_type!r}")
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:  # noqa: N802
        return self.content_type


def _is_ndarray(data: Any) -> bool:
    return np is not None and isinstance(data, np.ndarray)


def _json_default(value: Any) -> Any:
    if np is not None:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class IdentitySerializer(SimpleBaseSerializer):
    """Sends the data unchanged (bytes, str or a file object)."""

    def __init__(self, content_type: str = "application/octet-stream"):
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        return data


class CSVSerializer(SimpleBaseSerializer):
    """text/csv: a 2-D array (or list of rows, or DataFrame) becomes one line per row, a 1-D
    one a single line; strings and file objects pass through."""

    def __init__(self, content_type: str = "text/csv"):
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if hasattr(data, "to_csv"):  # a pandas DataFrame or Series
            return data.to_csv(header=False, index=False)
        if hasattr(data, "read"):
            return data.read()
        if isinstance(data, str):
            return data
        rows = self._is_sequence_like(data) and hasattr(data, "__setitem__")
        if rows and len(data) > 0 and self._is_sequence_like(data[0]):
            return "\n".join(self._serialize_row(row) for row in data)
        return self._serialize_row(data)

    def _serialize_row(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if _is_ndarray(data):
            data = data.flatten()
        if hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError("Cannot serialize empty array")
            buf = io.StringIO()
            csv.writer(buf, delimiter=",").writerow(data)
            return buf.getvalue().rstrip("\r\n")
        raise ValueError(f"Unable to handle input format: {type(data).__name__}")

    @staticmethod
    def _is_sequence_like(data: Any) -> bool:
        return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


class JSONSerializer(SimpleBaseSerializer):
    """application/json: dicts, lists and numpy arrays (as nested lists) through json.dumps.
    The built-ins take {"instances": [{"features": [...]}, ...]} or a list of rows."""

    def __init__(self, content_type: str = "application/json"):
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, dict):
            return json.dumps({k: (v.tolist() if _is_ndarray(v) else v) for k, v in data.items()},
                              default=_json_default)
        if hasattr(data, "read"):
            return data.read()
        if _is_ndarray(data):
            return json.dumps(data.tolist())
        return json.dumps(data, default=_json_default)


class JSONLinesSerializer(SimpleBaseSerializer):
    """application/jsonlines: one JSON document per line, one per item of `data`."""

    def __init__(self, content_type: str = "application/jsonlines"):
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if hasattr(data, "read"):
            return data.read()
        if _is_ndarray(data):
            data = data.tolist()
        return "\n".join(json.dumps(item, default=_json_default) for item in data)


class NumpySerializer(SimpleBaseSerializer):
    """application/x-npy: the array in numpy's .npy format (`dtype` converts first)."""

    def __init__(self, dtype: Any = None, content_type: str = "application/x-npy"):
        super().__init__(content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> Any:
        if np is None:
            raise ImportError("NumpySerializer needs numpy (Debian: python3-numpy)")
        if hasattr(data, "read"):
            return data.read()
        if isinstance(data, np.ndarray):
            if data.size == 0:
                raise ValueError("Cannot serialize empty array.")
            if self.dtype is not None:
                data = data.astype(self.dtype)
        else:
            data = np.array(data, self.dtype)
        buf = io.BytesIO()
        np.save(buf, data)
        return buf.getvalue()


class RecordSerializer(SimpleBaseSerializer):
    """application/x-recordio-protobuf: a 2-D array (a 1-D one is one row) as one Record per
    row, byte for byte as sagemaker.amazon.common.RecordSerializer."""

    def __init__(self, content_type: str = RECORDIO_CONTENT_TYPE):
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if np is None:
            raise ImportError("RecordSerializer needs numpy (Debian: python3-numpy)")
        data = np.asarray(data)
        if data.ndim == 1:
            data = data.reshape(1, data.shape[0])
        if data.ndim != 2:
            raise ValueError(f"Expected a 1D or 2D array, but got a {data.ndim}D array")
        return numpy_to_recordio(data)


# The name the recordio format goes by elsewhere in this package.
RecordIOProtobufSerializer = RecordSerializer
