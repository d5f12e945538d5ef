import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdjustmentReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADJUSTMENT_REASON_UNSPECIFIED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_COUNT: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_DAMAGED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_LOST: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_EXPIRED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_FOUND: _ClassVar[AdjustmentReason]
ADJUSTMENT_REASON_UNSPECIFIED: AdjustmentReason
ADJUSTMENT_REASON_COUNT: AdjustmentReason
ADJUSTMENT_REASON_DAMAGED: AdjustmentReason
ADJUSTMENT_REASON_LOST: AdjustmentReason
ADJUSTMENT_REASON_EXPIRED: AdjustmentReason
ADJUSTMENT_REASON_FOUND: AdjustmentReason

class Warehouse(_message.Message):
    __slots__ = ("name", "display_name", "location", "priority", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    location: str
    priority: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., location: _Optional[str] = ..., priority: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWarehouseRequest(_message.Message):
    __slots__ = ("warehouse", "warehouse_id", "request_id")
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    warehouse: Warehouse
    warehouse_id: str
    request_id: str
    def __init__(self, warehouse: _Optional[_Union[Warehouse, _Mapping]] = ..., warehouse_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetWarehouseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListWarehousesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWarehousesResponse(_message.Message):
    __slots__ = ("warehouses", "next_page_token")
    WAREHOUSES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    warehouses: _containers.RepeatedCompositeFieldContainer[Warehouse]
    next_page_token: str
    def __init__(self, warehouses: _Optional[_Iterable[_Union[Warehouse, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WarehouseStock(_message.Message):
    __slots__ = ("warehouse", "on_hand", "reserved", "allocated", "available", "version")
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    warehouse: str
    on_hand: int
    reserved: int
    allocated: int
    available: int
    version: int
    def __init__(self, warehouse: _Optional[str] = ..., on_hand: _Optional[int] = ..., reserved: _Optional[int] = ..., allocated: _Optional[int] = ..., available: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class StockLevel(_message.Message):
    __slots__ = ("name", "product", "on_hand", "reserved", "allocated", "available", "warehouses", "version", "sold_out")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOLD_OUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    product: str
    on_hand: int
    reserved: int
    allocated: int
    available: int
    warehouses: _containers.RepeatedCompositeFieldContainer[WarehouseStock]
    version: int
    sold_out: bool
    def __init__(self, name: _Optional[str] = ..., product: _Optional[str] = ..., on_hand: _Optional[int] = ..., reserved: _Optional[int] = ..., allocated: _Optional[int] = ..., available: _Optional[int] = ..., warehouses: _Optional[_Iterable[_Union[WarehouseStock, _Mapping]]] = ..., version: _Optional[int] = ..., sold_out: bool = ...) -> None: ...

class ReceiveStockRequest(_message.Message):
    __slots__ = ("product", "warehouse", "quantity", "request_id", "reference")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    product: str
    warehouse: str
    quantity: int
    request_id: str
    reference: str
    def __init__(self, product: _Optional[str] = ..., warehouse: _Optional[str] = ..., quantity: _Optional[int] = ..., request_id: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class AdjustStockRequest(_message.Message):
    __slots__ = ("product", "warehouse", "delta", "reason", "request_id", "note")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    product: str
    warehouse: str
    delta: int
    reason: AdjustmentReason
    request_id: str
    note: str
    def __init__(self, product: _Optional[str] = ..., warehouse: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[_Union[AdjustmentReason, str]] = ..., request_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BatchGetStockRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetStockResponse(_message.Message):
    __slots__ = ("stock_levels",)
    STOCK_LEVELS_FIELD_NUMBER: _ClassVar[int]
    stock_levels: _containers.RepeatedCompositeFieldContainer[StockLevel]
    def __init__(self, stock_levels: _Optional[_Iterable[_Union[StockLevel, _Mapping]]] = ...) -> None: ...

class ListStockRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStockResponse(_message.Message):
    __slots__ = ("stock_levels", "next_page_token")
    STOCK_LEVELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stock_levels: _containers.RepeatedCompositeFieldContainer[StockLevel]
    next_page_token: str
    def __init__(self, stock_levels: _Optional[_Iterable[_Union[StockLevel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Movement(_message.Message):
    __slots__ = ("name", "kind", "product", "warehouse", "on_hand_delta", "reserved_delta", "allocated_delta", "reference", "reason", "create_time")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Movement.Kind]
        KIND_RECEIVE: _ClassVar[Movement.Kind]
        KIND_ADJUST: _ClassVar[Movement.Kind]
        KIND_ALLOCATE: _ClassVar[Movement.Kind]
        KIND_RETURN: _ClassVar[Movement.Kind]
        KIND_RESERVE: _ClassVar[Movement.Kind]
        KIND_COMMIT: _ClassVar[Movement.Kind]
        KIND_RELEASE: _ClassVar[Movement.Kind]
        KIND_EXPIRE: _ClassVar[Movement.Kind]
    KIND_UNSPECIFIED: Movement.Kind
    KIND_RECEIVE: Movement.Kind
    KIND_ADJUST: Movement.Kind
    KIND_ALLOCATE: Movement.Kind
    KIND_RETURN: Movement.Kind
    KIND_RESERVE: Movement.Kind
    KIND_COMMIT: Movement.Kind
    KIND_RELEASE: Movement.Kind
    KIND_EXPIRE: Movement.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_DELTA_FIELD_NUMBER: _ClassVar[int]
    RESERVED_DELTA_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_DELTA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: Movement.Kind
    product: str
    warehouse: str
    on_hand_delta: int
    reserved_delta: int
    allocated_delta: int
    reference: str
    reason: AdjustmentReason
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[Movement.Kind, str]] = ..., product: _Optional[str] = ..., warehouse: _Optional[str] = ..., on_hand_delta: _Optional[int] = ..., reserved_delta: _Optional[int] = ..., allocated_delta: _Optional[int] = ..., reference: _Optional[str] = ..., reason: _Optional[_Union[AdjustmentReason, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListMovementsRequest(_message.Message):
    __slots__ = ("product", "page_size", "page_token")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    product: str
    page_size: int
    page_token: str
    def __init__(self, product: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMovementsResponse(_message.Message):
    __slots__ = ("movements", "next_page_token")
    MOVEMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    movements: _containers.RepeatedCompositeFieldContainer[Movement]
    next_page_token: str
    def __init__(self, movements: _Optional[_Iterable[_Union[Movement, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AllocationLine(_message.Message):
    __slots__ = ("product", "quantity", "used", "sources", "available", "sold_out", "version", "closed")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SOLD_OUT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    used: int
    sources: _containers.RepeatedCompositeFieldContainer[AllocationSource]
    available: int
    sold_out: bool
    version: int
    closed: bool
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ..., used: _Optional[int] = ..., sources: _Optional[_Iterable[_Union[AllocationSource, _Mapping]]] = ..., available: _Optional[int] = ..., sold_out: bool = ..., version: _Optional[int] = ..., closed: bool = ...) -> None: ...

class AllocationSource(_message.Message):
    __slots__ = ("warehouse", "quantity")
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    warehouse: str
    quantity: int
    def __init__(self, warehouse: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class Allocation(_message.Message):
    __slots__ = ("name", "show", "lines", "state", "close_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Allocation.State]
        STATE_OPEN: _ClassVar[Allocation.State]
        STATE_CLOSED: _ClassVar[Allocation.State]
    STATE_UNSPECIFIED: Allocation.State
    STATE_OPEN: Allocation.State
    STATE_CLOSED: Allocation.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[AllocationLine]
    state: Allocation.State
    close_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[AllocationLine, _Mapping]]] = ..., state: _Optional[_Union[Allocation.State, str]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AllocationRequestLine(_message.Message):
    __slots__ = ("product", "quantity")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class AllocateStockRequest(_message.Message):
    __slots__ = ("show", "lines", "request_id")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[AllocationRequestLine]
    request_id: str
    def __init__(self, show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[AllocationRequestLine, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReturnAllocationRequest(_message.Message):
    __slots__ = ("show", "request_id")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    show: str
    request_id: str
    def __init__(self, show: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetAllocationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ReservationLine(_message.Message):
    __slots__ = ("product", "quantity", "sources")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    sources: _containers.RepeatedCompositeFieldContainer[AllocationSource]
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ..., sources: _Optional[_Iterable[_Union[AllocationSource, _Mapping]]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("name", "show", "lines", "state", "expire_time", "create_time", "close_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Reservation.State]
        STATE_ACTIVE: _ClassVar[Reservation.State]
        STATE_COMMITTED: _ClassVar[Reservation.State]
        STATE_RELEASED: _ClassVar[Reservation.State]
        STATE_EXPIRED: _ClassVar[Reservation.State]
    STATE_UNSPECIFIED: Reservation.State
    STATE_ACTIVE: Reservation.State
    STATE_COMMITTED: Reservation.State
    STATE_RELEASED: Reservation.State
    STATE_EXPIRED: Reservation.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[ReservationLine]
    state: Reservation.State
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReservationLine, _Mapping]]] = ..., state: _Optional[_Union[Reservation.State, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReserveStockRequest(_message.Message):
    __slots__ = ("reservation_id", "show", "lines", "ttl_seconds", "request_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    show: str
    lines: _containers.RepeatedCompositeFieldContainer[ReservationRequestLine]
    ttl_seconds: int
    request_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., show: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReservationRequestLine, _Mapping]]] = ..., ttl_seconds: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReservationRequestLine(_message.Message):
    __slots__ = ("product", "quantity")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product: str
    quantity: int
    def __init__(self, product: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StockCursor(_message.Message):
    __slots__ = ("product", "version")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    product: str
    version: int
    def __init__(self, product: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class WatchStockRequest(_message.Message):
    __slots__ = ("products", "cursors", "show")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    CURSORS_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedScalarFieldContainer[str]
    cursors: _containers.RepeatedCompositeFieldContainer[StockCursor]
    show: str
    def __init__(self, products: _Optional[_Iterable[str]] = ..., cursors: _Optional[_Iterable[_Union[StockCursor, _Mapping]]] = ..., show: _Optional[str] = ...) -> None: ...

class WatchStockResponse(_message.Message):
    __slots__ = ("kind", "stock_level", "allocation_line")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[WatchStockResponse.Kind]
        KIND_SNAPSHOT: _ClassVar[WatchStockResponse.Kind]
        KIND_CHANGE: _ClassVar[WatchStockResponse.Kind]
    KIND_UNSPECIFIED: WatchStockResponse.Kind
    KIND_SNAPSHOT: WatchStockResponse.Kind
    KIND_CHANGE: WatchStockResponse.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_LINE_FIELD_NUMBER: _ClassVar[int]
    kind: WatchStockResponse.Kind
    stock_level: StockLevel
    allocation_line: AllocationLine
    def __init__(self, kind: _Optional[_Union[WatchStockResponse.Kind, str]] = ..., stock_level: _Optional[_Union[StockLevel, _Mapping]] = ..., allocation_line: _Optional[_Union[AllocationLine, _Mapping]] = ...) -> None: ...
