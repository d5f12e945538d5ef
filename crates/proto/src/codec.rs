//! The codec of every caravan service and client: prost's, with two promises
//! to callers that prost's own codec does not keep.
//!
//! - A request whose bytes do not decode is `INVALID_ARGUMENT` (the caller
//!   sent it), not `INTERNAL`.
//! - No string of a request holds a NUL character (U+0000). PostgreSQL
//!   cannot store one, SQLite can: refusing it here, before any handler,
//!   gives the same answer on every database, with a field violation naming
//!   each such field (`product.title.en`, `lines[0].product`).
//!
//! Both checks concern requests only (messages whose name ends in
//! `Request`, which buf lint enforces for every RPC); responses decode as
//! prost decodes them. The NUL check costs one scan of the request's bytes
//! for a zero byte, which almost no request has (proto3 writes no zero
//! values); only then is the request walked field by field through its
//! descriptor.

use std::{collections::HashMap, marker::PhantomData, sync::LazyLock};

use bytes::{Buf as _, Bytes};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value};
use tonic::{
    Code, Status,
    codec::{BufferSettings, DecodeBuf, Decoder as TonicDecoder},
};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::r#type::v1::ErrorReason;

/// The most NUL-bearing fields one refusal names.
const MAX_NAMED: usize = 16;

/// See the [module](self).
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec { _types: PhantomData }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder { _type: PhantomData }
    }
}

/// Decodes `U`; see the [module](self).
#[derive(Debug, Clone)]
pub struct Decoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Name + Default> TonicDecoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // Zero-copy: the buffer splits off the message's bytes.
        let bytes = buf.copy_to_bytes(buf.remaining());
        decode_message(bytes).map(Some)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Decodes one message of type `U`; see the [module](self).
pub fn decode_message<U: Message + Name + Default>(bytes: Bytes) -> Result<U, Status> {
    if !U::NAME.ends_with("Request") {
        return U::decode(bytes).map_err(|e| Status::internal(e.to_string()));
    }
    if bytes.contains(&0) {
        let fields = fields_with_nul(&U::full_name(), bytes.clone()).map_err(undecodable)?;
        if !fields.is_empty() {
            return Err(nul_refusal(&fields));
        }
    }
    U::decode(bytes).map_err(undecodable)
}

/// Every message of caravan's contracts, by full name.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // Written by our build script from protox's output.
    DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).expect("the build wrote a valid descriptor set")
});

/// Every message and service of caravan's contracts.
pub fn descriptor_pool() -> &'static DescriptorPool {
    &POOL
}

/// Whether the gRPC `path` (`/caravan.x.v1.XService/Method`) names a method
/// whose server answers with a stream.
pub fn is_server_streaming(path: &str) -> bool {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return false;
    };
    POOL.get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .is_some_and(|m| m.is_server_streaming())
}

/// The paths of the string fields of the `full_name` message in `bytes` that
/// hold a NUL (map keys included), at most [`MAX_NAMED`].
pub fn fields_with_nul(full_name: &str, bytes: Bytes) -> Result<Vec<String>, prost::DecodeError> {
    let Some(descriptor) = POOL.get_message_by_name(full_name) else {
        return Ok(Vec::new());
    };
    let message = DynamicMessage::decode(descriptor, bytes)?;
    let mut found = Vec::new();
    walk(&message, "", &mut found);
    Ok(found)
}

fn walk(message: &DynamicMessage, prefix: &str, found: &mut Vec<String>) {
    for (field, value) in message.fields() {
        let path = if prefix.is_empty() { field.name().to_owned() } else { format!("{prefix}.{}", field.name()) };
        visit(value, &path, found);
    }
}

fn visit(value: &Value, path: &str, found: &mut Vec<String>) {
    if found.len() >= MAX_NAMED {
        return;
    }
    match value {
        Value::String(text) if text.contains('\0') => found.push(path.to_owned()),
        Value::Message(message) => walk(message, path, found),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                visit(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries {
                match key {
                    MapKey::String(key) if key.contains('\0') => found.push(format!("{path} (a key)")),
                    MapKey::String(key) => visit(item, &format!("{path}[{key:?}]"), found),
                    _ => visit(item, path, found),
                }
            }
        }
        _ => {}
    }
}

fn undecodable(error: prost::DecodeError) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(ErrorReason::InvalidArgument.as_str_name(), "caravan", HashMap::new());
    Status::with_error_details(
        Code::InvalidArgument,
        format!("the request is not a valid protobuf message of its method's request type: {error}"),
        details,
    )
}

fn nul_refusal(fields: &[String]) -> Status {
    const WHY: &str = "must not contain NUL characters (U+0000)";
    let violations: Vec<_> = fields.iter().map(|field| FieldViolation::new(field.as_str(), WHY)).collect();
    let mut details = ErrorDetails::with_bad_request(violations);
    details.set_error_info(ErrorReason::InvalidArgument.as_str_name(), "caravan", HashMap::new());
    Status::with_error_details(Code::InvalidArgument, format!("invalid request: {}: {WHY}", fields.join(", ")), details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        catalog::v1::{CreateProductRequest, Product},
        orders::v1::{ListOrdersRequest, PlaceOrderLine, PlaceOrderRequest},
        r#type::v1::LocalizedText,
    };

    fn decode<U: Message + Name + Default>(bytes: &[u8]) -> Result<Option<U>, Status> {
        decode_message(Bytes::copy_from_slice(bytes)).map(Some)
    }

    #[test]
    fn nul_in_a_nested_string_is_refused_naming_the_field() {
        let request = CreateProductRequest {
            product: Some(Product {
                title: Some(LocalizedText { en: "walnuts\0".into(), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = decode::<CreateProductRequest>(&request.encode_to_vec()).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details.bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
        assert_eq!(fields, ["product.title.en"]);
    }

    #[test]
    fn nul_in_a_repeated_message_names_its_index() {
        let request = PlaceOrderRequest {
            lines: vec![
                PlaceOrderLine { product: "products/a".into(), quantity: 1 },
                PlaceOrderLine { product: "products/\0b".into(), quantity: 1 },
            ],
            ..Default::default()
        };
        let status = decode::<PlaceOrderRequest>(&request.encode_to_vec()).unwrap_err();
        assert!(status.message().contains("lines[1].product"), "{}", status.message());
    }

    #[test]
    fn zero_bytes_that_are_not_in_strings_pass() {
        // A zero varint written explicitly (a packed repeated 0, or a
        // non-canonical writer) puts a 0 byte in the message: not a NUL.
        let request = ListOrdersRequest { buyer: "buyer-1".into(), page_size: 10, ..Default::default() };
        let mut bytes = request.encode_to_vec();
        bytes.extend_from_slice(&[0x08, 0x00]); // field 1 (page_size) = 0, after 10: last one wins
        let decoded = decode::<ListOrdersRequest>(&bytes).unwrap().unwrap();
        assert_eq!((decoded.buyer.as_str(), decoded.page_size), ("buyer-1", 0));
    }

    #[test]
    fn undecodable_bytes_are_invalid_argument() {
        let status = decode::<PlaceOrderRequest>(&[0x0a, 0xff, 0xff]).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn responses_decode_as_prost_does() {
        let product = Product { name: "products/with\0nul".into(), ..Default::default() };
        let decoded = decode::<Product>(&product.encode_to_vec()).unwrap().unwrap();
        assert_eq!(decoded.name, "products/with\0nul");
    }
}
