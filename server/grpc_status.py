"""The gRPC status codes both gRPC services answer with (TF Serving's and KServe V2's)."""
from __future__ import annotations

import grpc

# The REST side's error statuses as the gRPC codes TF Serving and Triton use for them.
HTTP_TO_GRPC = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


class Refused(Exception):
    """A request refused with a gRPC status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
