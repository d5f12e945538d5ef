"""The helper layer against a real gRPC server (in this process) that
answers the way caravan does: RetryInfo on a transient failure, ErrorInfo
and BadRequest on a refusal."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from caravan.orders.v1 import orders_pb2, orders_pb2_grpc
from caravan_client import ApiKey, Caravan, CaravanError, KeyKind, RetryPolicy, call

KEY = ApiKey(KeyKind.PARTNER, "cvn_test_key", "hema")


def _status(code: grpc.StatusCode, rpc_code: int, message: str, *details) -> tuple:
    status = status_pb2.Status(code=rpc_code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return code, message, (("grpc-status-details-bin", status.SerializeToString()),)


class FakeOrders(orders_pb2_grpc.OrdersServiceServicer):
    """Fails each PlaceOrder as `script` says, then places the order."""

    def __init__(self, script: list[tuple]) -> None:
        self.script = list(script)
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def PlaceOrder(self, request, context):  # noqa: N802 (the generated name)
        with self.lock:
            key = dict(context.invocation_metadata()).get("authorization", "")
            self.seen.append((request.request_id, key))
            step = self.script.pop(0) if self.script else None
        if step is not None:
            code, message, trailers = step
            context.set_trailing_metadata(trailers)
            context.abort(code, message)
        return orders_pb2.Order(name="orders/o1", request_id=request.request_id, buyer=request.buyer)


@pytest.fixture
def serve():
    servers = []

    def start(servicer: FakeOrders) -> Caravan:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        orders_pb2_grpc.add_OrdersServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return Caravan(KEY, {"orders": f"127.0.0.1:{port}"})

    yield start
    for server in servers:
        server.stop(None)


def test_retries_send_the_same_request_id_and_honour_retry_info(serve):
    retry_in = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=250_000_000))
    busy = _status(grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED, "overloaded", retry_in)
    down = _status(grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE, "retry with the same request_id")
    fake = FakeOrders([busy, down])
    slept: list[float] = []
    client = serve(fake)

    order = call(client.orders.PlaceOrder, orders_pb2.PlaceOrderRequest(buyer="b-1"), sleep=slept.append)

    assert len(fake.seen) == 3
    ids = {request_id for request_id, _ in fake.seen}
    assert len(ids) == 1 and ids != {""}, "one request id, generated once, sent by every attempt"
    assert order.request_id in ids
    assert all(key == "Bearer cvn_test_key" for _, key in fake.seen)
    assert slept[0] == pytest.approx(0.25), "the server's RetryInfo is the wait"
    assert 0 <= slept[1] <= 3.0


def test_a_refusal_is_not_retried_and_its_details_are_decoded(serve):
    info = error_details_pb2.ErrorInfo(
        reason="INSUFFICIENT_STOCK",
        domain="caravan",
        metadata={"product": "products/uz-walnuts", "show": "shows/uz", "requested": "2", "available": "0"},
    )
    sold_out = _status(grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION, "sold out", info)
    fake = FakeOrders([sold_out])
    client = serve(fake)

    with pytest.raises(CaravanError) as refused:
        call(client.orders.PlaceOrder, orders_pb2.PlaceOrderRequest(buyer="b-1", request_id="r-1"), sleep=lambda _: None)

    assert len(fake.seen) == 1, "a refusal is an answer, not a failure"
    error = refused.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "INSUFFICIENT_STOCK" and error.known_reason
    assert error.metadata["available"] == "0"


def test_field_violations_and_the_attempt_limit(serve):
    bad = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="lines[0].quantity", description="1 to 1000")]
    )
    invalid = _status(grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, "invalid request", bad)
    client = serve(FakeOrders([invalid]))
    with pytest.raises(CaravanError) as refused:
        call(client.orders.PlaceOrder, orders_pb2.PlaceOrderRequest(), sleep=lambda _: None)
    assert refused.value.violations == [("lines[0].quantity", "1 to 1000")]

    down = _status(grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE, "down")
    fake = FakeOrders([down] * 10)
    client = serve(fake)
    with pytest.raises(CaravanError) as failed:
        call(client.orders.PlaceOrder, orders_pb2.PlaceOrderRequest(), RetryPolicy(attempts=3), sleep=lambda _: None)
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.seen) == 3


def test_dev_keys_file(tmp_path):
    keys = tmp_path / "dev-keys.txt"
    keys.write_text("# kind key\noperator cvn_op\npartner:hema cvn_hema\n")
    hema = ApiKey.from_dev_keys(keys, "partner:hema")
    assert (hema.kind, hema.partner, hema.value) == (KeyKind.PARTNER, "hema", "cvn_hema")
    assert "cvn_hema" not in repr(hema)
    with pytest.raises(KeyError):
        ApiKey.from_dev_keys(keys, "partner:douyin")
