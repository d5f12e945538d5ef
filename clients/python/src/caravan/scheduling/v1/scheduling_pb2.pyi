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

class Campaign(_message.Message):
    __slots__ = ("name", "title", "organiser", "start_date", "end_date", "time_zone", "etag", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ORGANISER_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: _types_pb2.LocalizedText
    organiser: str
    start_date: _types_pb2.Date
    end_date: _types_pb2.Date
    time_zone: str
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., title: _Optional[_Union[_types_pb2.LocalizedText, _Mapping]] = ..., organiser: _Optional[str] = ..., start_date: _Optional[_Union[_types_pb2.Date, _Mapping]] = ..., end_date: _Optional[_Union[_types_pb2.Date, _Mapping]] = ..., time_zone: _Optional[str] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "campaign_id", "request_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    campaign_id: str
    request_id: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., campaign_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "update_mask", "request_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("name", "platform", "display_name", "partner", "etag", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    platform: str
    display_name: str
    partner: str
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., platform: _Optional[str] = ..., display_name: _Optional[str] = ..., partner: _Optional[str] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateChannelRequest(_message.Message):
    __slots__ = ("channel", "channel_id", "request_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    channel_id: str
    request_id: str
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ..., channel_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetChannelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "partner")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    partner: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., partner: _Optional[str] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels", "next_page_token")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    next_page_token: str
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateChannelRequest(_message.Message):
    __slots__ = ("channel", "update_mask", "request_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("name", "display_name", "title", "country", "embassy", "etag", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    EMBASSY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    title: str
    country: str
    embassy: str
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., title: _Optional[str] = ..., country: _Optional[str] = ..., embassy: _Optional[str] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateHostRequest(_message.Message):
    __slots__ = ("host", "host_id", "request_id")
    HOST_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    host: Host
    host_id: str
    request_id: str
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., host_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "country")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    country: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts", "next_page_token")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    next_page_token: str
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateHostRequest(_message.Message):
    __slots__ = ("host", "update_mask", "request_id")
    HOST_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    host: Host
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("product", "show_price", "allocated_quantity", "per_buyer_limit", "display_order")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SHOW_PRICE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PER_BUYER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_ORDER_FIELD_NUMBER: _ClassVar[int]
    product: str
    show_price: _types_pb2.Money
    allocated_quantity: int
    per_buyer_limit: int
    display_order: int
    def __init__(self, product: _Optional[str] = ..., show_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., allocated_quantity: _Optional[int] = ..., per_buyer_limit: _Optional[int] = ..., display_order: _Optional[int] = ...) -> None: ...

class Show(_message.Message):
    __slots__ = ("name", "campaign", "channel", "host", "title", "start_time", "end_time", "offers", "state", "pinned_product", "live_time", "close_time", "version", "etag", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Show.State]
        STATE_SCHEDULED: _ClassVar[Show.State]
        STATE_LIVE: _ClassVar[Show.State]
        STATE_ENDED: _ClassVar[Show.State]
        STATE_CANCELLED: _ClassVar[Show.State]
    STATE_UNSPECIFIED: Show.State
    STATE_SCHEDULED: Show.State
    STATE_LIVE: Show.State
    STATE_ENDED: Show.State
    STATE_CANCELLED: Show.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PINNED_PRODUCT_FIELD_NUMBER: _ClassVar[int]
    LIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    campaign: str
    channel: str
    host: str
    title: _types_pb2.LocalizedText
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    state: Show.State
    pinned_product: str
    live_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    version: int
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., campaign: _Optional[str] = ..., channel: _Optional[str] = ..., host: _Optional[str] = ..., title: _Optional[_Union[_types_pb2.LocalizedText, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., state: _Optional[_Union[Show.State, str]] = ..., pinned_product: _Optional[str] = ..., live_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateShowRequest(_message.Message):
    __slots__ = ("show", "show_id", "request_id")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    show: Show
    show_id: str
    request_id: str
    def __init__(self, show: _Optional[_Union[Show, _Mapping]] = ..., show_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetShowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListShowsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "campaign", "channel", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    campaign: str
    channel: str
    state: Show.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., campaign: _Optional[str] = ..., channel: _Optional[str] = ..., state: _Optional[_Union[Show.State, str]] = ...) -> None: ...

class ListShowsResponse(_message.Message):
    __slots__ = ("shows", "next_page_token")
    SHOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shows: _containers.RepeatedCompositeFieldContainer[Show]
    next_page_token: str
    def __init__(self, shows: _Optional[_Iterable[_Union[Show, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateShowRequest(_message.Message):
    __slots__ = ("show", "update_mask", "request_id")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    show: Show
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, show: _Optional[_Union[Show, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartShowRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class EndShowRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelShowRequest(_message.Message):
    __slots__ = ("name", "reason", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PinProductRequest(_message.Message):
    __slots__ = ("name", "product", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    product: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., product: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetLiveOffersRequest(_message.Message):
    __slots__ = ("show", "products")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    show: str
    products: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, show: _Optional[str] = ..., products: _Optional[_Iterable[str]] = ...) -> None: ...

class GetLiveOffersResponse(_message.Message):
    __slots__ = ("show", "state", "offers", "not_offered", "version", "partner")
    SHOW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    NOT_OFFERED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    show: str
    state: Show.State
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    not_offered: _containers.RepeatedScalarFieldContainer[str]
    version: int
    partner: str
    def __init__(self, show: _Optional[str] = ..., state: _Optional[_Union[Show.State, str]] = ..., offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., not_offered: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., partner: _Optional[str] = ...) -> None: ...

class WatchShowRequest(_message.Message):
    __slots__ = ("name", "after_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_version: int
    def __init__(self, name: _Optional[str] = ..., after_version: _Optional[int] = ...) -> None: ...

class WatchShowResponse(_message.Message):
    __slots__ = ("kind", "show")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[WatchShowResponse.Kind]
        KIND_SNAPSHOT: _ClassVar[WatchShowResponse.Kind]
        KIND_CHANGE: _ClassVar[WatchShowResponse.Kind]
    KIND_UNSPECIFIED: WatchShowResponse.Kind
    KIND_SNAPSHOT: WatchShowResponse.Kind
    KIND_CHANGE: WatchShowResponse.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHOW_FIELD_NUMBER: _ClassVar[int]
    kind: WatchShowResponse.Kind
    show: Show
    def __init__(self, kind: _Optional[_Union[WatchShowResponse.Kind, str]] = ..., show: _Optional[_Union[Show, _Mapping]] = ...) -> None: ...
