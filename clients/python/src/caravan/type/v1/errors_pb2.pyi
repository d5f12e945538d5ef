from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    INVALID_ARGUMENT: _ClassVar[ErrorReason]
    REQUEST_TOO_LARGE: _ClassVar[ErrorReason]
    KIND_NOT_ALLOWED: _ClassVar[ErrorReason]
    RATE_LIMITED: _ClassVar[ErrorReason]
    OVERLOADED: _ClassVar[ErrorReason]
    REQUEST_IN_PROGRESS: _ClassVar[ErrorReason]
    REQUEST_ID_REUSED: _ClassVar[ErrorReason]
    ETAG_MISMATCH: _ClassVar[ErrorReason]
    PRODUCT_RETIRED: _ClassVar[ErrorReason]
    SHOW_CONFLICT: _ClassVar[ErrorReason]
    OUTSIDE_CAMPAIGN: _ClassVar[ErrorReason]
    SHOW_STATE: _ClassVar[ErrorReason]
    LINE_UP_NOT_ALLOCATED: _ClassVar[ErrorReason]
    NOT_ON_LINE_UP: _ClassVar[ErrorReason]
    INSUFFICIENT_STOCK: _ClassVar[ErrorReason]
    RESERVATION_ID_REUSED: _ClassVar[ErrorReason]
    RESERVATION_ACTIVE: _ClassVar[ErrorReason]
    RESERVATION_COMMITTED: _ClassVar[ErrorReason]
    RESERVATION_RELEASED: _ClassVar[ErrorReason]
    RESERVATION_EXPIRED: _ClassVar[ErrorReason]
    ALLOCATION_CLOSED: _ClassVar[ErrorReason]
    ALLOCATION_IN_USE: _ClassVar[ErrorReason]
    SHOW_NOT_LIVE: _ClassVar[ErrorReason]
    SHOW_OF_ANOTHER_PARTNER: _ClassVar[ErrorReason]
    PRODUCT_NOT_AVAILABLE: _ClassVar[ErrorReason]
    PER_BUYER_LIMIT: _ClassVar[ErrorReason]
    ORDER_REJECTED: _ClassVar[ErrorReason]
    ORDER_STATE: _ClassVar[ErrorReason]
    ORDER_ALREADY_PAID: _ClassVar[ErrorReason]
    PAYMENT_IN_PROGRESS: _ClassVar[ErrorReason]
    ORDER_EXPIRED: _ClassVar[ErrorReason]
ERROR_REASON_UNSPECIFIED: ErrorReason
INVALID_ARGUMENT: ErrorReason
REQUEST_TOO_LARGE: ErrorReason
KIND_NOT_ALLOWED: ErrorReason
RATE_LIMITED: ErrorReason
OVERLOADED: ErrorReason
REQUEST_IN_PROGRESS: ErrorReason
REQUEST_ID_REUSED: ErrorReason
ETAG_MISMATCH: ErrorReason
PRODUCT_RETIRED: ErrorReason
SHOW_CONFLICT: ErrorReason
OUTSIDE_CAMPAIGN: ErrorReason
SHOW_STATE: ErrorReason
LINE_UP_NOT_ALLOCATED: ErrorReason
NOT_ON_LINE_UP: ErrorReason
INSUFFICIENT_STOCK: ErrorReason
RESERVATION_ID_REUSED: ErrorReason
RESERVATION_ACTIVE: ErrorReason
RESERVATION_COMMITTED: ErrorReason
RESERVATION_RELEASED: ErrorReason
RESERVATION_EXPIRED: ErrorReason
ALLOCATION_CLOSED: ErrorReason
ALLOCATION_IN_USE: ErrorReason
SHOW_NOT_LIVE: ErrorReason
SHOW_OF_ANOTHER_PARTNER: ErrorReason
PRODUCT_NOT_AVAILABLE: ErrorReason
PER_BUYER_LIMIT: ErrorReason
ORDER_REJECTED: ErrorReason
ORDER_STATE: ErrorReason
ORDER_ALREADY_PAID: ErrorReason
PAYMENT_IN_PROGRESS: ErrorReason
ORDER_EXPIRED: ErrorReason
