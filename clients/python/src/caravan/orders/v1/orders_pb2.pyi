import datetime

from caravan.type.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderLine(_message.Message):
    __slots__ = ("product", "quantity", "unit_price", "line_total")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    unit_price: _types_pb2.Money
    line_total: _types_pb2.Money
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., line_total: _Optional[_Union[_types_pb2.Money, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("name", "partner", "buyer", "show", "lines", "totals", "state", "state_reason", "payment_deadline", "payment_reference", "create_time", "update_time", "request_id")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Order.State]
        STATE_PENDING: _ClassVar[Order.State]
        STATE_AWAITING_PAYMENT: _ClassVar[Order.State]
        STATE_PAID: _ClassVar[Order.State]
        STATE_REJECTED: _ClassVar[Order.State]
        STATE_CANCELLED: _ClassVar[Order.State]
        STATE_EXPIRED: _ClassVar[Order.State]
    STATE_UNSPECIFIED: Order.State
    STATE_PENDING: Order.State
    STATE_AWAITING_PAYMENT: Order.State
    STATE_PAID: Order.State
    STATE_REJECTED: Order.State
    STATE_CANCELLED: Order.State
    STATE_EXPIRED: Order.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    partner: str
    buyer: str
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[OrderLine]
    totals: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    state: Order.State
    state_reason: str
    payment_deadline: _timestamp_pb2.Timestamp
    payment_reference: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, name: _Optional[str] = ..., partner: _Optional[str] = ..., buyer: _Optional[str] = ..., show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[OrderLine, _Mapping]]] = ..., totals: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ..., state: _Optional[_Union[Order.State, str]] = ..., state_reason: _Optional[str] = ..., payment_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment_reference: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class PlaceOrderLine(_message.Message):
    __slots__ = ("product", "quantity")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class PlaceOrderRequest(_message.Message):
    __slots__ = ("buyer", "show", "lines", "request_id")
    BUYER_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    buyer: str
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[PlaceOrderLine]
    request_id: str
    def __init__(self, buyer: _Optional[str] = ..., show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PlaceOrderLine, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "show", "buyer", "state", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    show: str
    buyer: str
    state: Order.State
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show: _Optional[str] = ..., buyer: _Optional[str] = ..., state: _Optional[_Union[Order.State, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ConfirmPaymentRequest(_message.Message):
    __slots__ = ("name", "payment_reference", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    payment_reference: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., payment_reference: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("name", "reason", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetShowSalesReportRequest(_message.Message):
    __slots__ = ("show",)
    SHOW_FIELD_NUMBER: _ClassVar[int]
    show: str
    def __init__(self, show: _Optional[str] = ...) -> None: ...

class ProductSales(_message.Message):
    __slots__ = ("product", "order_count", "units_paid", "units_awaiting_payment", "revenue_paid", "sold_out_time", "revenue_awaiting_payment", "country", "turned_away", "units_turned_away")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNITS_PAID_FIELD_NUMBER: _ClassVar[int]
    UNITS_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PAID_FIELD_NUMBER: _ClassVar[int]
    SOLD_OUT_TIME_FIELD_NUMBER: _ClassVar[int]
    REVENUE_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TURNED_AWAY_FIELD_NUMBER: _ClassVar[int]
    UNITS_TURNED_AWAY_FIELD_NUMBER: _ClassVar[int]
    product: str
    order_count: int
    units_paid: int
    units_awaiting_payment: int
    revenue_paid: _types_pb2.Money
    sold_out_time: _timestamp_pb2.Timestamp
    revenue_awaiting_payment: _types_pb2.Money
    country: str
    turned_away: int
    units_turned_away: int
    def __init__(self, product: _Optional[str] = ..., order_count: _Optional[int] = ..., units_paid: _Optional[int] = ..., units_awaiting_payment: _Optional[int] = ..., revenue_paid: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., sold_out_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revenue_awaiting_payment: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., country: _Optional[str] = ..., turned_away: _Optional[int] = ..., units_turned_away: _Optional[int] = ...) -> None: ...

class CountrySales(_message.Message):
    __slots__ = ("country", "order_count", "units_paid", "units_awaiting_payment", "revenue_paid", "revenue_awaiting_payment")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNITS_PAID_FIELD_NUMBER: _ClassVar[int]
    UNITS_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PAID_FIELD_NUMBER: _ClassVar[int]
    REVENUE_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    country: str
    order_count: int
    units_paid: int
    units_awaiting_payment: int
    revenue_paid: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    revenue_awaiting_payment: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    def __init__(self, country: _Optional[str] = ..., order_count: _Optional[int] = ..., units_paid: _Optional[int] = ..., units_awaiting_payment: _Optional[int] = ..., revenue_paid: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ..., revenue_awaiting_payment: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ...) -> None: ...

class ShowSalesReport(_message.Message):
    __slots__ = ("name", "show", "products", "order_count", "units_paid", "units_awaiting_payment", "revenue_paid", "revenue_awaiting_payment", "compute_time", "orders_paid", "orders_awaiting_payment", "countries")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNITS_PAID_FIELD_NUMBER: _ClassVar[int]
    UNITS_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PAID_FIELD_NUMBER: _ClassVar[int]
    REVENUE_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PAID_FIELD_NUMBER: _ClassVar[int]
    ORDERS_AWAITING_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    show: str
    products: _containers.RepeatedCompositeFieldContainer[ProductSales]
    order_count: int
    units_paid: int
    units_awaiting_payment: int
    revenue_paid: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    revenue_awaiting_payment: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    compute_time: _timestamp_pb2.Timestamp
    orders_paid: int
    orders_awaiting_payment: int
    countries: _containers.RepeatedCompositeFieldContainer[CountrySales]
    def __init__(self, name: _Optional[str] = ..., show: _Optional[str] = ..., products: _Optional[_Iterable[_Union[ProductSales, _Mapping]]] = ..., order_count: _Optional[int] = ..., units_paid: _Optional[int] = ..., units_awaiting_payment: _Optional[int] = ..., revenue_paid: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ..., revenue_awaiting_payment: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., orders_paid: _Optional[int] = ..., orders_awaiting_payment: _Optional[int] = ..., countries: _Optional[_Iterable[_Union[CountrySales, _Mapping]]] = ...) -> None: ...
