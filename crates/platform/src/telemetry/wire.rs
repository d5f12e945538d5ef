//! The protobuf wire format, as far as OTLP trace export needs it: spans are
//! written field by field as they are recorded ([`super::spans`]) and sent as
//! they were written ([`super::otlp`]), never built as message structs
//! first. Every writer here is checked by decoding its output with the
//! `opentelemetry-proto` messages (the tests below and the span layer's).
//!
//! A message's fields may come in any order and a repeated field's entries
//! anywhere among them, so a span's fields are appended as they become known.

use opentelemetry::{Array, Value};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// Field numbers of the OTLP messages written here
/// (`opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`).
pub(crate) mod field {
    pub(crate) mod request {
        pub(crate) const RESOURCE_SPANS: u32 = 1;
    }
    pub(crate) mod resource_spans {
        pub(crate) const RESOURCE: u32 = 1;
        pub(crate) const SCOPE_SPANS: u32 = 2;
    }
    pub(crate) mod resource {
        pub(crate) const ATTRIBUTES: u32 = 1;
    }
    pub(crate) mod scope_spans {
        pub(crate) const SCOPE: u32 = 1;
        pub(crate) const SPANS: u32 = 2;
    }
    pub(crate) mod scope {
        pub(crate) const NAME: u32 = 1;
        pub(crate) const VERSION: u32 = 2;
    }
    pub(crate) mod span {
        pub(crate) const TRACE_ID: u32 = 1;
        pub(crate) const SPAN_ID: u32 = 2;
        pub(crate) const TRACE_STATE: u32 = 3;
        pub(crate) const PARENT_SPAN_ID: u32 = 4;
        pub(crate) const NAME: u32 = 5;
        pub(crate) const KIND: u32 = 6;
        pub(crate) const START: u32 = 7;
        pub(crate) const END: u32 = 8;
        pub(crate) const ATTRIBUTES: u32 = 9;
        pub(crate) const EVENTS: u32 = 11;
        pub(crate) const DROPPED_EVENTS: u32 = 12;
        pub(crate) const LINKS: u32 = 13;
        pub(crate) const DROPPED_LINKS: u32 = 14;
        pub(crate) const STATUS: u32 = 15;
        pub(crate) const FLAGS: u32 = 16;
    }
    pub(crate) mod event {
        pub(crate) const TIME: u32 = 1;
        pub(crate) const NAME: u32 = 2;
        pub(crate) const ATTRIBUTES: u32 = 3;
    }
    pub(crate) mod link {
        pub(crate) const TRACE_ID: u32 = 1;
        pub(crate) const SPAN_ID: u32 = 2;
        pub(crate) const TRACE_STATE: u32 = 3;
        pub(crate) const FLAGS: u32 = 6;
    }
    pub(crate) mod status {
        pub(crate) const MESSAGE: u32 = 2;
        pub(crate) const CODE: u32 = 3;
    }
}

/// `SpanFlags`: the low byte is the W3C trace flags; these say whether the
/// parent (of a span) or the linked span (of a link) is remote.
pub(crate) const HAS_IS_REMOTE: u32 = 0x100;
pub(crate) const IS_REMOTE: u32 = 0x200;

pub(crate) fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub(crate) fn varint_len(value: u64) -> usize {
    // 7 bits a byte, at least one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn key(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(buf, u64::from(field << 3 | wire_type));
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// A length-delimited field: bytes, a string or an encoded message.
pub(crate) fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(buf, field, LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// The header of a length-delimited field whose `len` bytes the caller
/// writes next.
pub(crate) fn len_header(buf: &mut Vec<u8>, field: u32, len: usize) {
    key(buf, field, LEN);
    varint(buf, len as u64);
}

/// Bytes a length-delimited field of `len` bytes takes, header included.
pub(crate) fn len_field_len(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

pub(crate) fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    bytes(buf, field, value.as_bytes());
}

/// A `uint32`/`int32`/enum field; zero is the default and not written.
pub(crate) fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(buf, field, VARINT);
        varint(buf, value);
    }
}

pub(crate) fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    key(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    key(buf, field, FIXED32);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A value of a `KeyValue` (the `AnyValue` variants spans record).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Any<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
}

// `AnyValue` fields.
const ANY_STRING: u32 = 1;
const ANY_BOOL: u32 = 2;
const ANY_INT: u32 = 3;
const ANY_DOUBLE: u32 = 4;
const ANY_ARRAY: u32 = 5;
const ARRAY_VALUES: u32 = 1;
// `KeyValue` fields.
const KV_KEY: u32 = 1;
const KV_VALUE: u32 = 2;

impl Any<'_> {
    /// The encoded `AnyValue` message's length.
    fn len(self) -> usize {
        match self {
            Any::Str(s) => len_field_len(ANY_STRING, s.len()),
            Any::Bool(_) => key_len(ANY_BOOL) + 1,
            Any::Int(i) => key_len(ANY_INT) + varint_len(i as u64),
            Any::Double(_) => key_len(ANY_DOUBLE) + 8,
        }
    }

    fn write(self, buf: &mut Vec<u8>) {
        match self {
            Any::Str(s) => string(buf, ANY_STRING, s),
            Any::Bool(b) => {
                key(buf, ANY_BOOL, VARINT);
                buf.push(u8::from(b));
            }
            // int64: two's complement, as a 64-bit varint.
            Any::Int(i) => {
                key(buf, ANY_INT, VARINT);
                varint(buf, i as u64);
            }
            Any::Double(d) => fixed64(buf, ANY_DOUBLE, d.to_bits()),
        }
    }
}

/// One `KeyValue` entry of the repeated field `field`.
pub(crate) fn attribute(buf: &mut Vec<u8>, field: u32, name: &str, value: Any<'_>) {
    let value_len = value.len();
    len_header(buf, field, len_field_len(KV_KEY, name.len()) + len_field_len(KV_VALUE, value_len));
    string(buf, KV_KEY, name);
    len_header(buf, KV_VALUE, value_len);
    value.write(buf);
}

/// One `KeyValue` entry of an OpenTelemetry API value (resource
/// attributes: arrays too).
pub(crate) fn attribute_value(buf: &mut Vec<u8>, field: u32, name: &str, value: &Value) {
    let mut any = Vec::new();
    any_value(&mut any, value);
    len_header(buf, field, len_field_len(KV_KEY, name.len()) + len_field_len(KV_VALUE, any.len()));
    string(buf, KV_KEY, name);
    bytes(buf, KV_VALUE, &any);
}

/// An encoded `AnyValue` of an OpenTelemetry API value.
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    fn array<T>(buf: &mut Vec<u8>, items: &[T], each: impl Fn(&T) -> Any<'_>) {
        let mut values = Vec::new();
        for item in items {
            let any = each(item);
            len_header(&mut values, ARRAY_VALUES, any.len());
            any.write(&mut values);
        }
        bytes(buf, ANY_ARRAY, &values);
    }
    match value {
        Value::Bool(b) => Any::Bool(*b).write(buf),
        Value::I64(i) => Any::Int(*i).write(buf),
        Value::F64(d) => Any::Double(*d).write(buf),
        Value::String(s) => Any::Str(s.as_str()).write(buf),
        Value::Array(Array::Bool(items)) => array(buf, items, |b| Any::Bool(*b)),
        Value::Array(Array::I64(items)) => array(buf, items, |i| Any::Int(*i)),
        Value::Array(Array::F64(items)) => array(buf, items, |d| Any::Double(*d)),
        Value::Array(Array::String(items)) => array(buf, items, |s| Any::Str(s.as_str())),
        // The API's enums are non-exhaustive: a kind added later is sent as
        // its text rather than lost.
        other => Any::Str(&other.to_string()).write(buf),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use prost::Message as _;

    use super::*;

    #[test]
    fn varints_match_prost() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX, (-1_i64) as u64] {
            let mut ours = Vec::new();
            varint(&mut ours, value);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
            assert_eq!(varint_len(value), theirs.len(), "{value}");
        }
    }

    fn decoded(write: impl FnOnce(&mut Vec<u8>)) -> KeyValue {
        // A KeyValue entry of field 1 is exactly how a message with one
        // `repeated KeyValue attributes = 1` (a Resource) encodes it.
        let mut buf = Vec::new();
        write(&mut buf);
        let resource = opentelemetry_proto::tonic::resource::v1::Resource::decode(buf.as_slice()).unwrap();
        let [kv] = <[KeyValue; 1]>::try_from(resource.attributes).unwrap();
        kv
    }

    #[test]
    fn attributes_decode_as_otlp_key_values() {
        let long = "x".repeat(300);
        let cases = [
            (Any::Str("grpc"), any_value::Value::StringValue("grpc".into())),
            (Any::Str(""), any_value::Value::StringValue(String::new())),
            (Any::Str(&long), any_value::Value::StringValue(long.clone())),
            (Any::Bool(true), any_value::Value::BoolValue(true)),
            (Any::Bool(false), any_value::Value::BoolValue(false)),
            (Any::Int(50051), any_value::Value::IntValue(50051)),
            (Any::Int(-5), any_value::Value::IntValue(-5)),
            (Any::Int(0), any_value::Value::IntValue(0)),
            (Any::Double(0.25), any_value::Value::DoubleValue(0.25)),
        ];
        for (value, expected) in cases {
            let kv = decoded(|buf| attribute(buf, 1, "rpc.system", value));
            assert_eq!(kv.key, "rpc.system");
            // Zero values too are written: a oneof's variant is its presence.
            let got = kv.value.and_then(|v| v.value);
            assert_eq!(got, Some(expected), "{value:?}");
        }
    }

    #[test]
    fn api_values_decode_as_otlp_any_values() {
        let kv = decoded(|buf| attribute_value(buf, 1, "service.name", &Value::from("orders")));
        assert_eq!(kv.value.unwrap().value, Some(any_value::Value::StringValue("orders".into())));
        let array = Value::Array(Array::I64(vec![1, 2, 3]));
        let kv = decoded(|buf| attribute_value(buf, 1, "ports", &array));
        let Some(any_value::Value::ArrayValue(values)) = kv.value.unwrap().value else { panic!("an array") };
        let ints: Vec<_> = values.values.into_iter().map(|v: AnyValue| v.value).collect();
        assert_eq!(ints, [1, 2, 3].map(|i| Some(any_value::Value::IntValue(i))), "every element, in order");
    }
}
