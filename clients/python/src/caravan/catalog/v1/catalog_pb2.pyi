import datetime

from caravan.type.v1 import types_pb2 as _types_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCO_STATUS_UNSPECIFIED: _ClassVar[ScoStatus]
    SCO_STATUS_MEMBER: _ClassVar[ScoStatus]
    SCO_STATUS_OBSERVER: _ClassVar[ScoStatus]
    SCO_STATUS_DIALOGUE_PARTNER: _ClassVar[ScoStatus]
    SCO_STATUS_GUEST: _ClassVar[ScoStatus]

class Category(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATEGORY_UNSPECIFIED: _ClassVar[Category]
    CATEGORY_FOOD: _ClassVar[Category]
    CATEGORY_BEVERAGE: _ClassVar[Category]
    CATEGORY_CONFECTIONERY: _ClassVar[Category]
    CATEGORY_HANDICRAFT: _ClassVar[Category]
    CATEGORY_HOME_DECOR: _ClassVar[Category]
    CATEGORY_TEXTILE: _ClassVar[Category]
    CATEGORY_JEWELRY: _ClassVar[Category]
    CATEGORY_COSMETICS: _ClassVar[Category]
    CATEGORY_HEALTH: _ClassVar[Category]
SCO_STATUS_UNSPECIFIED: ScoStatus
SCO_STATUS_MEMBER: ScoStatus
SCO_STATUS_OBSERVER: ScoStatus
SCO_STATUS_DIALOGUE_PARTNER: ScoStatus
SCO_STATUS_GUEST: ScoStatus
CATEGORY_UNSPECIFIED: Category
CATEGORY_FOOD: Category
CATEGORY_BEVERAGE: Category
CATEGORY_CONFECTIONERY: Category
CATEGORY_HANDICRAFT: Category
CATEGORY_HOME_DECOR: Category
CATEGORY_TEXTILE: Category
CATEGORY_JEWELRY: Category
CATEGORY_COSMETICS: Category
CATEGORY_HEALTH: Category

class Country(_message.Message):
    __slots__ = ("name", "code", "display_name", "status_history", "current_status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_HISTORY_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    code: str
    display_name: _types_pb2.LocalizedText
    status_history: _containers.RepeatedCompositeFieldContainer[ScoStatusPeriod]
    current_status: ScoStatus
    def __init__(self, name: _Optional[str] = ..., code: _Optional[str] = ..., display_name: _Optional[_Union[_types_pb2.LocalizedText, _Mapping]] = ..., status_history: _Optional[_Iterable[_Union[ScoStatusPeriod, _Mapping]]] = ..., current_status: _Optional[_Union[ScoStatus, str]] = ...) -> None: ...

class ScoStatusPeriod(_message.Message):
    __slots__ = ("status", "since_year")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SINCE_YEAR_FIELD_NUMBER: _ClassVar[int]
    status: ScoStatus
    since_year: int
    def __init__(self, status: _Optional[_Union[ScoStatus, str]] = ..., since_year: _Optional[int] = ...) -> None: ...

class GetCountryRequest(_message.Message):
    __slots__ = ("name", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _types_pb2.Date
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[_types_pb2.Date, _Mapping]] = ...) -> None: ...

class ListCountriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status", "as_of")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: ScoStatus
    as_of: _types_pb2.Date
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[ScoStatus, str]] = ..., as_of: _Optional[_Union[_types_pb2.Date, _Mapping]] = ...) -> None: ...

class ListCountriesResponse(_message.Message):
    __slots__ = ("countries", "next_page_token")
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    countries: _containers.RepeatedCompositeFieldContainer[Country]
    next_page_token: str
    def __init__(self, countries: _Optional[_Iterable[_Union[Country, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("name", "country", "category", "title", "description", "list_price", "unit", "image_urls", "tags", "state", "etag", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Product.State]
        STATE_DRAFT: _ClassVar[Product.State]
        STATE_ACTIVE: _ClassVar[Product.State]
        STATE_RETIRED: _ClassVar[Product.State]
    STATE_UNSPECIFIED: Product.State
    STATE_DRAFT: Product.State
    STATE_ACTIVE: Product.State
    STATE_RETIRED: Product.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LIST_PRICE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URLS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    country: str
    category: Category
    title: _types_pb2.LocalizedText
    description: _types_pb2.LocalizedText
    list_price: _types_pb2.Money
    unit: str
    image_urls: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    state: Product.State
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., country: _Optional[str] = ..., category: _Optional[_Union[Category, str]] = ..., title: _Optional[_Union[_types_pb2.LocalizedText, _Mapping]] = ..., description: _Optional[_Union[_types_pb2.LocalizedText, _Mapping]] = ..., list_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., unit: _Optional[str] = ..., image_urls: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[Product.State, str]] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BatchGetProductsRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetProductsResponse(_message.Message):
    __slots__ = ("products", "missing")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., missing: _Optional[_Iterable[str]] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "country", "category", "state", "query")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    country: str
    category: Category
    state: Product.State
    query: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., country: _Optional[str] = ..., category: _Optional[_Union[Category, str]] = ..., state: _Optional[_Union[Product.State, str]] = ..., query: _Optional[str] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    next_page_token: str
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateProductRequest(_message.Message):
    __slots__ = ("product", "product_id", "request_id")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    product: Product
    product_id: str
    request_id: str
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ..., product_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateProductRequest(_message.Message):
    __slots__ = ("product", "update_mask", "request_id")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    product: Product
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ActivateProductRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RetireProductRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportProductsRequest(_message.Message):
    __slots__ = ("products", "initial_state", "request_id")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    initial_state: Product.State
    request_id: str
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., initial_state: _Optional[_Union[Product.State, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportProductsResponse(_message.Message):
    __slots__ = ("created_count", "updated_count", "unchanged_count")
    CREATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    created_count: int
    updated_count: int
    unchanged_count: int
    def __init__(self, created_count: _Optional[int] = ..., updated_count: _Optional[int] = ..., unchanged_count: _Optional[int] = ...) -> None: ...
