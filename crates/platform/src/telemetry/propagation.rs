//! W3C trace context (<https://www.w3.org/TR/trace-context/>) on gRPC
//! metadata: read from every call served, written on every call made, and
//! stored with background work as a `traceparent` string. Read and written
//! directly rather than through the SDK's text-map propagator (checked
//! against it in the tests below): every call pays for this.

/// The W3C headers' names, built once: looked up by a `&str`, a name is
/// checked and lower-cased byte by byte on every call.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
static TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// The caller's W3C trace context (`traceparent`, and `tracestate` with
/// it), as a remote span context; `None` when there is none or it is not
/// valid. Read directly, as [`inject_trace_context`] writes: every call
/// served pays for this.
pub(crate) fn extract_trace_context(headers: &http::HeaderMap) -> Option<opentelemetry::trace::SpanContext> {
    let traceparent = headers.get(&TRACEPARENT)?.to_str().ok()?;
    let tracestate = headers.get(&TRACESTATE).and_then(|v| v.to_str().ok());
    parse_trace_context(traceparent, tracestate)
}

/// A W3C trace context (<https://www.w3.org/TR/trace-context/>):
/// `version-traceid-parentid-flags` in lower-case hex, version `ff`
/// invalid, version `00` exactly that long, a later version possibly longer
/// after a `-`; all-zero ids invalid. Only the sampled flag is kept (the
/// W3C propagator's rule); a `tracestate` that does not parse is dropped,
/// not the context.
fn parse_trace_context(traceparent: &str, tracestate: Option<&str>) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// Each byte's value as a lower-case hex digit, or `INVALID`: one load
    /// per digit, on every call served.
    const INVALID: u8 = 0xff;
    const DIGITS: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut c = 0;
        while c < 16 {
            table[b"0123456789abcdef"[c] as usize] = c as u8;
            c += 1;
        }
        table
    };
    fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
        let mut out = [0; N];
        if text.len() != 2 * N {
            return None;
        }
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let (high, low) = (DIGITS[usize::from(pair[0])], DIGITS[usize::from(pair[1])]);
            if high == INVALID || low == INVALID {
                return None;
            }
            *byte = high << 4 | low;
        }
        Some(out)
    }
    let value = traceparent.trim().as_bytes();
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let [version] = hex::<1>(&value[..2])?;
    let length_fits = match version {
        0xff => false,
        0 => value.len() == 55,
        _ => value.len() == 55 || value[55] == b'-',
    };
    if !length_fits {
        return None;
    }
    let trace_id = TraceId::from_bytes(hex::<16>(&value[3..35])?);
    let span_id = SpanId::from_bytes(hex::<8>(&value[36..52])?);
    let [flags] = hex::<1>(&value[53..55])?;
    let state = tracestate.and_then(|state| state.parse::<TraceState>().ok()).unwrap_or_default();
    let span_context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags) & TraceFlags::SAMPLED, true, state);
    span_context.is_valid().then_some(span_context)
}

/// Writes the W3C trace context of `span_context` into HTTP headers, as the
/// W3C propagator does (`traceparent`, and `tracestate` when a vendor put
/// something in it), but without the text-map machinery: every outgoing
/// call pays for this.
pub(crate) fn inject_trace_context(span_context: &opentelemetry::trace::SpanContext, headers: &mut http::HeaderMap) {
    use opentelemetry::trace::TraceState;
    let Some(traceparent) = traceparent(span_context) else {
        return;
    };
    if let Ok(mut value) = http::HeaderValue::from_bytes(&traceparent) {
        // Never indexed by HPACK: a value no other call repeats would only
        // push the connection's repeated headers (the key, the caller) out of
        // its compression table.
        value.set_sensitive(true);
        headers.insert(TRACEPARENT.clone(), value);
    }
    if *span_context.trace_state() != TraceState::NONE {
        let state = span_context.trace_state().header();
        if !state.is_empty()
            && let Ok(value) = http::HeaderValue::try_from(state)
        {
            headers.insert(TRACESTATE.clone(), value);
        }
    }
}

/// The W3C `traceparent` of a valid span context,
/// `00-{trace id}-{span id}-{flags}` in lower-case hex, with only the
/// sampled flag (the W3C propagator's rule).
fn traceparent(span_context: &opentelemetry::trace::SpanContext) -> Option<[u8; 55]> {
    use opentelemetry::trace::TraceFlags;
    if !span_context.is_valid() {
        return None;
    }
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    let flags = span_context.trace_flags() & TraceFlags::SAMPLED;
    hex::encode_to_slice(span_context.trace_id().to_bytes(), &mut out[3..35]).ok()?;
    hex::encode_to_slice(span_context.span_id().to_bytes(), &mut out[36..52]).ok()?;
    hex::encode_to_slice([flags.to_u8()], &mut out[53..55]).ok()?;
    Some(out)
}

/// The W3C `traceparent` of the work running here (its span's, or its
/// unsampled trace's), to store with an item that background work will act
/// on later (so its run can link to this trace); empty when there is none.
pub fn current_traceparent() -> String {
    super::current_trace_context()
        .and_then(|span_context| traceparent(&span_context))
        .and_then(|bytes| std::str::from_utf8(&bytes).ok().map(str::to_owned))
        .unwrap_or_default()
}

/// The span context in a stored `traceparent`, for a link.
pub fn span_context_of(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    parse_trace_context(traceparent, None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::{
        Context,
        propagation::{Extractor, Injector, TextMapPropagator as _},
        trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    struct Written(HashMap<String, String>);

    struct Headers<'a>(&'a http::HeaderMap);

    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }

    /// What the SDK's W3C propagator reads from `headers`.
    fn theirs(headers: &http::HeaderMap) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        Some(cx.span().span_context().clone()).filter(SpanContext::is_valid)
    }

    fn headers(traceparent: &str, tracestate: Option<&str>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().expect("a header value"));
        if let Some(state) = tracestate {
            headers.insert("tracestate", state.parse().expect("a header value"));
        }
        headers
    }

    #[test]
    fn trace_context_is_read_as_the_w3c_propagator_reads_it() {
        let ids = opentelemetry_sdk::trace::RandomIdGenerator::default();
        use opentelemetry_sdk::trace::IdGenerator as _;
        // Valid contexts, each as written, read back identically by both.
        for flags in [0, 1, 0xff] {
            for state in [None, Some("vendor=opaque,other=x"), Some("not a tracestate")] {
                let written = SpanContext::new(
                    ids.new_trace_id(),
                    ids.new_span_id(),
                    TraceFlags::new(flags),
                    true,
                    TraceState::NONE,
                );
                let traceparent = String::from_utf8(traceparent(&written).unwrap().to_vec()).unwrap();
                let headers = headers(&traceparent, state);
                let ours = extract_trace_context(&headers);
                assert_eq!(ours, theirs(&headers), "{traceparent} {state:?}");
                assert!(ours.is_some_and(|c| c.is_remote() && c.trace_id() == written.trace_id()));
            }
        }
        // Invalid ones, refused by both.
        let good_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let good_span = "00f067aa0ba902b7";
        for invalid in [
            String::new(),
            "garbage".to_owned(),
            format!("00-{}-{good_span}-01", "0".repeat(32)),
            format!("00-{good_trace}-{}-01", "0".repeat(16)),
            format!("00-{}-{good_span}-01", good_trace.to_uppercase()),
            format!("00-{good_trace}-{good_span}-0G"),
            format!("ff-{good_trace}-{good_span}-01"),
            format!("00-{good_trace}-{good_span}-01-extra"),
            format!("00-{good_trace}x{good_span}-01"),
        ] {
            let headers = headers(&invalid, None);
            assert_eq!(extract_trace_context(&headers), None, "{invalid}");
            assert_eq!(theirs(&headers), None, "{invalid}");
        }
        // W3C: a later version may carry more fields after the four it knows.
        let future = headers(&format!("01-{good_trace}-{good_span}-01-more"), None);
        assert_eq!(extract_trace_context(&future), theirs(&future));
        assert!(extract_trace_context(&future).is_some());
        // Ids of another length are not W3C ids (the SDK's propagator takes
        // some; a context that is not one is no parent).
        assert_eq!(extract_trace_context(&headers(&format!("00-{}-{good_span}-01-", &good_trace[..31]), None)), None);
        assert_eq!(extract_trace_context(&http::HeaderMap::new()), None);
    }

    #[test]
    fn the_traceparent_sent_is_never_indexed() {
        let mut headers = http::HeaderMap::new();
        inject_trace_context(&span_context(1, TraceState::NONE), &mut headers);
        assert!(headers.get("traceparent").is_some_and(http::HeaderValue::is_sensitive));
    }

    impl Injector for Written {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
    }

    fn span_context(flags: u8, state: TraceState) -> SpanContext {
        let trace_id = TraceId::from_bytes(*b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36");
        let span_id = SpanId::from_bytes(*b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7");
        SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state)
    }

    #[test]
    fn trace_context_is_written_as_the_w3c_propagator_writes_it() {
        let vendor = TraceState::from_key_value([("vendor", "opaque"), ("other", "x")]).expect("a valid tracestate");
        let cases = [
            span_context(1, TraceState::NONE),
            span_context(0, TraceState::NONE),
            // Flags the propagator does not know are not passed on.
            span_context(0xff, TraceState::NONE),
            span_context(1, vendor),
            SpanContext::NONE,
        ];
        for case in cases {
            let cx = Context::new().with_remote_span_context(case.clone());
            let mut ours = http::HeaderMap::new();
            inject_trace_context(&case, &mut ours);
            let ours: HashMap<String, String> = ours
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.to_str().expect("ASCII").to_owned()))
                .collect();
            let mut theirs = Written(HashMap::new());
            TraceContextPropagator::new().inject_context(&cx, &mut theirs);
            // Our headers leave out an empty `tracestate`.
            theirs.0.retain(|_, value| !value.is_empty());
            assert_eq!(ours, theirs.0, "{case:?}");
        }
    }

    #[test]
    fn a_stored_traceparent_reads_back_as_its_span_context() {
        let sampled = span_context(1, TraceState::NONE);
        let stored = traceparent(&sampled).expect("a valid context has a traceparent");
        let stored = std::str::from_utf8(&stored).expect("hex is ASCII");
        assert_eq!(stored, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(span_context_of(stored), Some(sampled));
        assert_eq!(traceparent(&SpanContext::NONE), None);
    }
}
