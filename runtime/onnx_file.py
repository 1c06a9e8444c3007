"""What the runtime must know of an ONNX file before onnxruntime opens it: whether any tensor
keeps its data outside the file, and the metadata export mirrored into it.

A bundle is one verified file. A tensor with external data would make onnxruntime read bytes
the manifest's hash never covered, so such a model is refused before a session exists. The
protobuf wire format is walked directly (message fields by number, big payloads skipped by
length), so the runtime needs neither the onnx package nor a second copy of the model in memory.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError

# Field numbers from onnx.proto3 (message -> {field: child message}), for the fields that can hold tensors.
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _TRAINING, _ENTRY = range(9)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 14: _ENTRY, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNCTION: {7: _NODE},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
}
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION, _EXTERNAL = 8, 13, 14, 1


class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class OnnxFacts:
    external: tuple[str, ...]  # tensors whose data lives outside model.onnx
    metadata: dict[str, str]  # metadata_props


def scan(model: Path | bytes) -> OnnxFacts:
    """Walk the model file (mapped, not read) or bytes once; a malformed protobuf is refused."""
    if isinstance(model, bytes):
        return _scan(model, "the model")
    with open(model, "rb") as fh:
        if fh.seek(0, 2) == 0:
            raise BundleError(f"{model} is empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _scan(data, str(model))


def _scan(data: mmap.mmap | bytes, name: str) -> OnnxFacts:
    external: list[str] = []
    metadata: dict[str, str] = {}
    try:
        _walk(data, 0, len(data), _MODEL, external, metadata)
    except _Malformed as exc:
        raise BundleError(f"{name} is not a valid ONNX model ({exc})") from None
    return OnnxFacts(tuple(external), metadata)


def _walk(data: mmap.mmap | bytes, start: int, end: int, kind: int, external: list[str], metadata: dict[str, str]) -> None:
    children = _CHILDREN.get(kind, {})
    name, outside = "", False
    for number, wire, value, span in _fields(data, start, end):
        if wire == 2 and number in children:
            if children[number] == _ENTRY:
                pair = {n: _text(data, s) for n, w, _, s in _fields(data, *span) if w == 2}
                metadata[pair.get(1, "")] = pair.get(2, "")
            else:
                _walk(data, *span, children[number], external, metadata)
        elif kind == _TENSOR:
            if number == _TENSOR_NAME and wire == 2:
                name = _text(data, span)
            outside |= number == _TENSOR_EXTERNAL or (number == _TENSOR_LOCATION and wire == 0 and value == _EXTERNAL)
    if outside:
        external.append(name or "(unnamed tensor)")


def _text(data: mmap.mmap | bytes, span: tuple[int, int]) -> str:
    return data[span[0] : span[1]].decode("utf-8", "replace")


def _fields(data: mmap.mmap | bytes, start: int, end: int) -> Iterator[tuple[int, int, int, tuple[int, int]]]:
    """(field number, wire type, varint value, (start, end) of a length-delimited payload)."""
    position = start
    while position < end:
        key, position = _varint(data, position, end)
        number, wire, value, span = key >> 3, key & 7, 0, (position, position)
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, position = _varint(data, position, end)
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        elif wire == 2:
            length, position = _varint(data, position, end)
            span, position = (position, position + length), position + length
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if position > end:
            raise _Malformed("truncated")
        yield number, wire, value, span


def _varint(data: mmap.mmap | bytes, position: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= end or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
