"""The gRPC status codes both gRPC services answer with (TF Serving's and KServe V2's), and the
size check both make on a request tensor before anything is allocated."""
from __future__ import annotations

import math

import grpc

from tfx_gan.server.json_codec import RequestError

# The REST side's error statuses as the gRPC codes TF Serving and Triton use for them.
HTTP_TO_GRPC = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


class Refused(Exception):
    """A request refused with a gRPC status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def declared_bytes(name: str, shape: list[int], dtype_name: str, item_bytes: int, max_bytes: int) -> int:
    """The bytes a tensor of ``shape`` declares (elements x ``item_bytes``, in Python integers, so a
    huge shape cannot overflow), once known to be within ``max_bytes``: RequestError for a negative
    dimension, Refused (RESOURCE_EXHAUSTED) over the limit."""
    if any(size < 0 for size in shape):
        raise RequestError(f"input '{name}': shape {shape} has a negative dimension")
    declared = math.prod(shape) * item_bytes
    if declared > max_bytes:
        raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, f"input '{name}': shape {shape} of {dtype_name} is "
                      f"{declared:,} bytes, over the request limit of {max_bytes:,}")
    return declared
