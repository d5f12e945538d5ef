"""caravan's partner API from Python: keys, channels, retries, errors.

The generated stubs live in the ``caravan`` package (``caravan.orders.v1``
…); this module adds what every partner writes around them.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import pathlib
import random
import time
import uuid
from typing import Callable, Iterator, Mapping, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from caravan.catalog.v1 import catalog_pb2_grpc
from caravan.inventory.v1 import inventory_pb2_grpc
from caravan.orders.v1 import orders_pb2_grpc
from caravan.scheduling.v1 import scheduling_pb2_grpc
from caravan.type.v1 import errors_pb2

__all__ = [
    "ApiKey",
    "Caravan",
    "CaravanError",
    "KeyKind",
    "Reason",
    "RetryPolicy",
    "call",
]

#: The `ErrorInfo.domain` of caravan's errors.
ERROR_DOMAIN = "caravan"

#: Every reason an RPC can answer, as declared in proto/caravan/type/v1/errors.proto.
Reason = errors_pb2.ErrorReason


class KeyKind(enum.Enum):
    """Who a key belongs to."""

    PARTNER = "partner"
    OPERATOR = "operator"
    SERVICE = "service"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """An API key and whose it is. Its value never appears in `repr`."""

    kind: KeyKind
    value: str = dataclasses.field(repr=False)
    #: For a partner's key, the partner (`hema`, `douyin`).
    partner: str | None = None

    def __post_init__(self) -> None:
        if not self.value or any(c.isspace() for c in self.value):
            raise ValueError("an API key is one word, without spaces")

    @property
    def header(self) -> tuple[str, str]:
        """The metadata pair that carries it."""
        return ("authorization", f"Bearer {self.value}")

    @classmethod
    def from_dev_keys(cls, path: str | pathlib.Path, who: str) -> "ApiKey":
        """The key named `who` (`operator`, `partner:hema`, …) in the
        development keys file `caravan up` writes (`data/dev-keys.txt`)."""
        for line in pathlib.Path(path).read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == who:
                kind, _, partner = who.partition(":")
                return cls(KeyKind(kind), fields[1], partner or None)
        raise KeyError(f"no key named {who!r} in {path}")


class _Authorize(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """Adds the key to every call."""

    def __init__(self, key: ApiKey) -> None:
        self._header = key.header

    def _with_key(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _Details(
            details.method,
            details.timeout,
            list(details.metadata or []) + [self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: D102
        return continuation(self._with_key(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # noqa: D102
        return continuation(self._with_key(client_call_details), request)


class _Details(
    collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """Call details with the key added (grpc's own type cannot be changed)."""


class Caravan:
    """Stubs of the four services, calling with `key`.

    `targets` maps a service to its address; `caravan up` serves catalog on
    localhost:50051, scheduling on 50052, inventory on 50053 and orders on
    50054. Pass `credentials` for TLS (production), none for plaintext.
    """

    DEFAULT_TARGETS: Mapping[str, str] = {
        "catalog": "localhost:50051",
        "scheduling": "localhost:50052",
        "inventory": "localhost:50053",
        "orders": "localhost:50054",
    }

    def __init__(
        self,
        key: ApiKey,
        targets: Mapping[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.key = key
        targets = {**self.DEFAULT_TARGETS, **(targets or {})}
        self._channels = {}
        for service, target in targets.items():
            raw = (
                grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
            )
            self._channels[service] = grpc.intercept_channel(raw, _Authorize(key))
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channels["catalog"])
        self.scheduling = scheduling_pb2_grpc.SchedulingServiceStub(self._channels["scheduling"])
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self._channels["inventory"])
        self.orders = orders_pb2_grpc.OrdersServiceStub(self._channels["orders"])

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> "Caravan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaravanError(Exception):
    """A failed call, with caravan's error details decoded."""

    def __init__(self, error: grpc.RpcError) -> None:
        self.code: grpc.StatusCode = error.code()
        self.message: str = error.details() or ""
        #: `ErrorInfo.reason` (a name of `Reason`), or "" when the reply has none.
        self.reason: str = ""
        #: `ErrorInfo.metadata`: what the refusal is about (`product`, `show`, …).
        self.metadata: dict[str, str] = {}
        #: `BadRequest` field violations: (field path, description).
        self.violations: list[tuple[str, str]] = []
        #: `RetryInfo.retry_delay`, in seconds, when the server advises one.
        self.retry_delay: float | None = None
        status = _status_of(error)
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == ERROR_DOMAIN:
                    self.reason, self.metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                self.retry_delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                self.violations = [(v.field, v.description) for v in bad.field_violations]
        super().__init__(f"{self.code.name}{f' {self.reason}' if self.reason else ''}: {self.message}")

    @property
    def known_reason(self) -> bool:
        """Whether the reason is one this client's contracts declare."""
        return self.reason in Reason.keys()


def _status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` in the reply's `grpc-status-details-bin`."""
    for key, value in getattr(error, "trailing_metadata", lambda: None)() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How `call` retries."""

    attempts: int = 5
    #: Each attempt's deadline, in seconds.
    timeout: float = 10.0
    #: Backoff without RetryInfo: `base * 2**n`, jittered, at most `cap`.
    base: float = 0.1
    cap: float = 3.0
    #: Codes worth retrying with the same request: the server, a hop, or a
    #: limit said "not now", never "no".
    codes: frozenset = frozenset(
        {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    )

    def retryable(self, error: CaravanError) -> bool:
        if error.code in self.codes:
            # A request over the size limit fails again, however often it is sent.
            return error.reason != "REQUEST_TOO_LARGE"
        # The first call with this request id is still running: ask again.
        return error.code == grpc.StatusCode.ABORTED and error.reason == "REQUEST_IN_PROGRESS"

    def delay(self, error: CaravanError, attempt: int) -> float:
        if error.retry_delay is not None:
            return error.retry_delay
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


Req = TypeVar("Req")
Resp = TypeVar("Resp")


def call(
    method: Callable[..., Resp],
    request: Req,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> Resp:
    """Calls `method` (a stub's unary method) with `request`, retrying as
    `policy` says; raises `CaravanError` with the last failure.

    A request with a `request_id` field gets one (a UUID) if it has none,
    before the first attempt, so every attempt is the same request to the
    server: an order placed by an attempt whose answer was lost is answered
    to the next one, never placed twice.
    """
    if "request_id" in type(request).DESCRIPTOR.fields_by_name and not request.request_id:
        request.request_id = str(uuid.uuid4())
    attempt = 0
    while True:
        try:
            return method(request, timeout=policy.timeout)
        except grpc.RpcError as raw:
            error = CaravanError(raw)
            attempt += 1
            if attempt >= policy.attempts or not policy.retryable(error):
                raise error from raw
            sleep(policy.delay(error, attempt))


def stream(method: Callable[..., Iterator[Resp]], request: Req, timeout: float | None = None) -> Iterator[Resp]:
    """A server stream's messages; a failure is raised as `CaravanError`."""
    try:
        yield from method(request, timeout=timeout)
    except grpc.RpcError as raw:
        raise CaravanError(raw) from raw
