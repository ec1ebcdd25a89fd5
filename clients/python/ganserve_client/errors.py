"""Typed exceptions, one per gRPC status code the server returns.

Every failed call raises a subclass of GanserveError carrying the status code, the
server's message (written for a person to act on) and, for RESOURCE_EXHAUSTED with a
google.rpc.RetryInfo detail, the delay the server asks for.
"""
from __future__ import annotations

from typing import Optional

import grpc


class GanserveError(Exception):
    """A call failed. `code` is the grpc.StatusCode, `message` the server's text."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: Optional[grpc.StatusCode] = None,
                 retry_delay: Optional[float] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        # Seconds the server asks the caller to wait before retrying (RetryInfo).
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class Cancelled(GanserveError):
    code = grpc.StatusCode.CANCELLED


class Unknown(GanserveError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(GanserveError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(GanserveError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(GanserveError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(GanserveError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(GanserveError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(GanserveError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(GanserveError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(GanserveError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(GanserveError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(GanserveError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(GanserveError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(GanserveError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(GanserveError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(GanserveError):
    code = grpc.StatusCode.UNAUTHENTICATED


class JobFailed(GanserveError):
    """A job ended FAILED; `job` is its final snapshot and `code` its error code."""

    def __init__(self, job):
        code = _BY_NUMBER.get(job.error_code, Unknown).code
        super().__init__(f"job {job.id} failed: {job.error_message}", code=code)
        self.job = job


class JobCancelled(GanserveError):
    """A job ended CANCELLED; `job` is its final snapshot."""

    code = grpc.StatusCode.CANCELLED

    def __init__(self, job):
        super().__init__(f"job {job.id} was cancelled")
        self.job = job


_CLASSES = [Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists, PermissionDenied,
            ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal, Unavailable,
            DataLoss, Unauthenticated]
_BY_CODE = {cls.code: cls for cls in _CLASSES}
_BY_NUMBER = {cls.code.value[0]: cls for cls in _CLASSES}


def _varint(data: bytes, pos: int):
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes):
    """(field number, wire type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def retry_delay_of(details: bytes) -> Optional[float]:
    """The RetryInfo delay in a google.rpc.Status (grpc-status-details-bin), in seconds."""
    try:
        for number, wire, any_bytes in _fields(details):
            if number != 3 or wire != 2:  # Status.details
                continue
            fields = {n: v for n, _, v in _fields(any_bytes)}
            if not fields.get(1, b"").endswith(b"google.rpc.RetryInfo"):
                continue
            for n, _, duration in _fields(fields.get(2, b"")):
                if n == 1:  # RetryInfo.retry_delay
                    parts = {k: v for k, _, v in _fields(duration)}
                    return parts.get(1, 0) + parts.get(2, 0) / 1e9
    except ValueError:
        return None
    return None


def from_rpc_error(error: grpc.RpcError) -> GanserveError:
    """The typed exception for a failed call."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    delay = None
    for key, value in (error.trailing_metadata() or ()) if hasattr(error, "trailing_metadata") else ():
        if key == "grpc-status-details-bin":
            delay = retry_delay_of(value)
    return _BY_CODE.get(code, Unknown)(message or "", code=code, retry_delay=delay)
