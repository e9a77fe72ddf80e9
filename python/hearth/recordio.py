"""application/x-recordio-protobuf, written and read without the protobuf package.

A body is a sequence of RecordIO frames (magic 0xCED7230A, the payload length, the payload,
zero padding to 4 bytes), each payload one `aialgs.data.Record` message:

    Record  { map<string, Value> features = 1; map<string, Value> label = 2;
              optional string uid = 3; metadata = 4; configuration = 5; }
    Value   { oneof { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3;
                      Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
    *Tensor { repeated values = 1 [packed]; repeated uint64 keys = 2 [packed];
              repeated uint64 shape = 3 [packed]; }

`write_numpy_to_dense_tensor` writes the same bytes as the sagemaker SDK's function of that
name: one Record per row, the row under features["values"] and its label under
label["values"], the tensor type chosen from the array's dtype (float32 -> Float32Tensor,
float64 -> Float64Tensor, the platform int -> Int32Tensor). `read_records` parses any such body
(the built-in algorithms answer in it too) into `Record` objects whose fields read like the
protobuf messages: `record.label["score"].float32_tensor.values[0]`.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, List, Optional, Sequence

try:
    import numpy as np
except ImportError:  # numpy is optional; rows may be plain sequences
    np = None

MAGIC = 0xCED7230A
CONTENT_TYPE = "application/x-recordio-protobuf"

_FLOAT32, _FLOAT64, _INT32 = "Float32", "Float64", "Int32"
# Field number of each tensor inside Value, and how its values are packed.
_VALUE_FIELD = {_FLOAT32: 2, _FLOAT64: 3, _INT32: 7}
_PACK = {_FLOAT32: "<f", _FLOAT64: "<d"}
_WIRE_VARINT, _WIRE_64BIT, _WIRE_LENGTH, _WIRE_32BIT = 0, 1, 2, 5


# --- writing ---------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | _WIRE_LENGTH) + _varint(len(payload)) + payload


def _packed_values(kind: str, values: Any) -> bytes:
    if kind == _INT32:
        out = bytearray()
        for v in values:
            v = int(v)
            if not -2**31 <= v < 2**31:
                raise ValueError(f"value {v} does not fit an Int32Tensor")
            out += _varint(v & 0xFFFFFFFFFFFFFFFF)  # negative int32s are 10-byte varints
        return bytes(out)
    if np is not None and isinstance(values, np.ndarray):
        return np.ascontiguousarray(values, dtype=_PACK[kind]).tobytes()
    return struct.pack(f"<{len(values)}{_PACK[kind][1]}", *values)


def _value(kind: str, values: Any) -> bytes:
    """A serialized Value holding one dense tensor of `values`."""
    packed = _packed_values(kind, values)
    tensor = _length_delimited(1, packed) if packed else b""
    return _length_delimited(_VALUE_FIELD[kind], tensor)


def _map_entry(key: str, value: bytes) -> bytes:
    return _length_delimited(1, key.encode()) + _length_delimited(2, value)


def encode_record(features: Any, feature_kind: str = _FLOAT32, label: Any = None,
                  label_kind: str = _FLOAT32) -> bytes:
    """One serialized Record: `features` (a row) under features["values"] and, unless None,
    the scalar `label` under label["values"]."""
    out = _length_delimited(1, _map_entry("values", _value(feature_kind, features)))
    if label is not None:
        out += _length_delimited(2, _map_entry("values", _value(label_kind, [label])))
    return out


def frame(payload: bytes) -> bytes:
    """`payload` in one RecordIO frame, padded to a multiple of 4 bytes."""
    return struct.pack("<II", MAGIC, len(payload)) + payload + b"\x00" * (-len(payload) % 4)


def _resolve_type(dtype: Any) -> str:
    """The tensor type the sagemaker SDK picks for a numpy dtype."""
    if dtype == np.dtype(int):
        return _INT32
    if dtype == np.dtype(float):
        return _FLOAT64
    if dtype == np.dtype("float32"):
        return _FLOAT32
    raise ValueError(f"Unsupported dtype {dtype} on array (use float32, float64 or int; "
                     "float32 is what the built-in algorithms read fastest)")


def _as_array(data: Any) -> Any:
    if np is None:
        raise ImportError("writing RecordIO-protobuf needs numpy (Debian: python3-numpy)")
    return data if isinstance(data, np.ndarray) else np.asarray(data)


def write_numpy_to_dense_tensor(file: BinaryIO, array: Any, labels: Any = None) -> None:
    """Writes `array` (2-D), one Record per row with `labels[i]` as its label, to `file`,
    byte for byte as sagemaker.amazon.common.write_numpy_to_dense_tensor does."""
    array = _as_array(array)
    if array.ndim != 2:
        raise ValueError("Array must be a Matrix")
    label_kind = None
    if labels is not None:
        labels = _as_array(labels)
        if labels.ndim != 1:
            raise ValueError("Labels must be a Vector")
        if labels.shape[0] not in array.shape:
            raise ValueError(f"Label shape {labels.shape} not compatible with array shape "
                             f"{array.shape}")
        label_kind = _resolve_type(labels.dtype)
    kind = _resolve_type(array.dtype)
    if kind != _INT32 and array.shape[1] > 0:
        _write_float_rows(file, array, kind, labels, label_kind)
        return
    for i, row in enumerate(array):
        label = None if labels is None else labels[i]
        file.write(frame(encode_record(row, kind, label, label_kind or _FLOAT32)))


def _write_float_rows(file: BinaryIO, array: Any, kind: str, labels: Any,
                      label_kind: Optional[str]) -> None:
    # Every row of a float matrix has the same framing around its values: build it once and
    # fill in each row's bytes (and its label's, when the label has a fixed width).
    width = array.shape[1]
    template = encode_record(np.zeros(width, dtype=array.dtype), kind)
    row_bytes = np.ascontiguousarray(array, dtype=_PACK[kind])
    row_size = row_bytes.dtype.itemsize * width
    values_at = len(template) - row_size
    head, tail = template[:values_at], template[values_at + row_size:]
    label_fixed = labels is not None and label_kind != _INT32
    if label_fixed:
        label_template = _length_delimited(
            2, _map_entry("values", _value(label_kind, np.zeros(1, dtype=labels.dtype))))
        label_size = np.dtype(_PACK[label_kind]).itemsize
        label_head = label_template[:-label_size]
        label_bytes = np.ascontiguousarray(labels, dtype=_PACK[label_kind])
    chunk = []
    for i in range(array.shape[0]):
        payload = head + row_bytes[i].tobytes() + tail
        if label_fixed:
            payload += label_head + label_bytes[i].tobytes()
        elif labels is not None:
            payload += _length_delimited(2, _map_entry("values", _value(_INT32, [labels[i]])))
        chunk.append(frame(payload))
        if len(chunk) >= 4096:
            file.write(b"".join(chunk))
            chunk = []
    file.write(b"".join(chunk))


def numpy_to_recordio(array: Any, labels: Any = None) -> bytes:
    """The bytes `write_numpy_to_dense_tensor` writes."""
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, array, labels)
    return buf.getvalue()


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Tensor:
    """A Float32Tensor, Float64Tensor or Int32Tensor. Empty `keys` means dense."""
    values: List[Any] = field(default_factory=list)
    keys: List[int] = field(default_factory=list)
    shape: List[int] = field(default_factory=list)


@dataclass
class BytesValue:
    value: List[bytes] = field(default_factory=list)
    content_type: str = ""


@dataclass
class Value:
    """One Value: the tensor that is set is named by `kind` ("float32_tensor", ...); the
    others read as empty, as unset protobuf fields do."""
    kind: str = ""
    float32_tensor: Tensor = field(default_factory=Tensor)
    float64_tensor: Tensor = field(default_factory=Tensor)
    int32_tensor: Tensor = field(default_factory=Tensor)
    bytes: BytesValue = field(default_factory=BytesValue)

    def __repr__(self) -> str:
        if not self.kind:
            return "Value()"
        return f"Value({self.kind}={getattr(self, self.kind)!r})"

    @property
    def values(self) -> List[Any]:
        """The values of whichever tensor is set."""
        if self.kind == "bytes":
            return list(self.bytes.value)
        return getattr(self, self.kind).values if self.kind else []


@dataclass
class Record:
    features: Dict[str, Value] = field(default_factory=dict)
    label: Dict[str, Value] = field(default_factory=dict)
    uid: str = ""
    metadata: str = ""
    configuration: str = ""


def _read_varint(buf: memoryview, pos: int) -> tuple:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """(field number, wire type, value) of each field of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _WIRE_64BIT:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == _WIRE_LENGTH:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == _WIRE_32BIT:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        yield number, wire, value


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _varints(buf: memoryview) -> List[int]:
    out, pos = [], 0
    while pos < len(buf):
        v, pos = _read_varint(buf, pos)
        out.append(v)
    return out


def _tensor(buf: memoryview, kind: str) -> Tensor:
    tensor = Tensor()
    for number, wire, value in _fields(buf):
        if number == 1:
            if kind == "int32_tensor":
                raw = _varints(value) if wire == _WIRE_LENGTH else [value]
                tensor.values.extend(_signed32(v) for v in raw)
            else:
                fmt = "<f" if kind == "float32_tensor" else "<d"
                tensor.values.extend(v for (v,) in struct.iter_unpack(fmt, bytes(value)))
        elif number in (2, 3):
            target = tensor.keys if number == 2 else tensor.shape
            target.extend(_varints(value) if wire == _WIRE_LENGTH else [value])
    return tensor


_TENSOR_FIELDS = {2: "float32_tensor", 3: "float64_tensor", 7: "int32_tensor"}


def _value_message(buf: memoryview) -> Value:
    value = Value()
    for number, _, payload in _fields(buf):
        if number in _TENSOR_FIELDS:
            value.kind = _TENSOR_FIELDS[number]
            setattr(value, value.kind, _tensor(payload, value.kind))
        elif number == 9:
            value.kind = "bytes"
            for n, _, item in _fields(payload):
                if n == 1:
                    value.bytes.value.append(bytes(item))
                elif n == 2:
                    value.bytes.content_type = bytes(item).decode()
    return value


def decode_record(payload: bytes) -> Record:
    """Parses one serialized Record."""
    record = Record()
    for number, _, value in _fields(memoryview(payload)):
        if number in (1, 2):
            key, entry = "", Value()
            for n, _, item in _fields(value):
                if n == 1:
                    key = bytes(item).decode()
                elif n == 2:
                    entry = _value_message(item)
            (record.features if number == 1 else record.label)[key] = entry
        elif number in (3, 4, 5):
            setattr(record, ("uid", "metadata", "configuration")[number - 3],
                    bytes(value).decode())
    return record


def read_recordio(data: bytes) -> List[bytes]:
    """The payloads of a RecordIO body (records split across frames are joined again)."""
    payloads, pos, pending = [], 0, None
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError(f"truncated RecordIO header at byte {pos}")
        magic, lrecord = struct.unpack_from("<II", data, pos)
        if magic != MAGIC:
            raise ValueError(f"bad RecordIO magic {magic:#x} at byte {pos}")
        cflag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
        start = pos + 8
        if start + length > len(data):
            raise ValueError(f"truncated RecordIO record at byte {pos}")
        part = data[start:start + length]
        pos = start + length + (-length % 4)
        if cflag == 0:
            payloads.append(part)
        elif cflag == 1:
            pending = part
        else:  # 2: middle, 3: end; the magic the split removed goes back in between
            pending = (pending or b"") + struct.pack("<I", MAGIC) + part
            if cflag == 3:
                payloads.append(pending)
                pending = None
    return payloads


def read_records(data: Any) -> List[Record]:
    """Every Record of an application/x-recordio-protobuf body (bytes or a file object)."""
    if hasattr(data, "read"):
        data = data.read()
    return [decode_record(p) for p in read_recordio(bytes(data))]


def records_to_numpy(records: Sequence[Record], key: str = "values",
                     from_label: bool = False) -> Any:
    """The dense `key` tensors of `records` stacked as a 2-D numpy array (one row each)."""
    if np is None:
        raise ImportError("records_to_numpy needs numpy (Debian: python3-numpy)")
    rows = [(r.label if from_label else r.features)[key].values for r in records]
    return np.array(rows)
