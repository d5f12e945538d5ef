//! PlaceOrder, ConfirmPayment and CancelOrder requests, validated into the
//! saga's terms ([`crate::saga`] holds the steps).

use caravan_platform::{
    error::{FieldViolations, invalid_argument},
    resource,
};
use caravan_proto::orders::v1 as pb;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use tonic::Status;

use crate::saga::NewOrder;

/// Most lines in one order.
const MAX_LINES: usize = 50;
/// Most units of one line.
const MAX_QUANTITY: i64 = 1_000_000;

/// The order id: derived from the partner, its request id and the request
/// (so a retry finds the same order, and a request id reused for another
/// order after its record was purged makes a new one), or generated.
pub fn order_id(partner: &str, request: &pb::PlaceOrderRequest) -> String {
    if request.request_id.is_empty() {
        return resource::new_id('o');
    }
    let mut hasher = Sha256::new();
    hasher.update(partner.as_bytes());
    hasher.update([0]);
    hasher.update(request.request_id.as_bytes());
    hasher.update([0]);
    hasher.update(request.encode_to_vec());
    format!("o{}", &hex::encode(hasher.finalize())[..24])
}

/// Which request placed an order, whatever its body: a digest of the
/// partner and its request id; `None` without one.
fn request_key(partner: &str, request_id: &str) -> Option<String> {
    if request_id.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(partner.as_bytes());
    hasher.update([0]);
    hasher.update(request_id.as_bytes());
    Some(format!("r{}", &hex::encode(hasher.finalize())[..24]))
}

/// Whether `text` is 1 to `max` characters with no control characters.
fn printable(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

/// A PlaceOrder request of `partner` as the saga takes it; every bad field
/// is named.
pub(super) fn new_order(request: &pb::PlaceOrderRequest, partner: &str) -> Result<NewOrder, Status> {
    let pb::PlaceOrderRequest { buyer, show, lines, request_id } = request;
    let mut violations = FieldViolations::new();
    violations.check(printable(buyer, 128), "buyer", "must be 1 to 128 printable characters");
    let show_id = if show.is_empty() {
        None
    } else {
        resource::parse_name(show, "shows").map(str::to_owned).map_err(|e| violations.add("show", e)).ok()
    };
    violations.check(!lines.is_empty() && lines.len() <= MAX_LINES, "lines", format!("1 to {MAX_LINES} lines"));
    let mut wanted: Vec<(String, i64)> = Vec::with_capacity(lines.len());
    for (i, pb::PlaceOrderLine { product, quantity }) in lines.iter().enumerate() {
        match resource::parse_name(product, "products") {
            Ok(id) if wanted.iter().any(|(p, _)| p == id) => {
                violations.add(format!("lines[{i}].product"), "appears in an earlier line");
            }
            Ok(id) => wanted.push((id.to_owned(), *quantity)),
            Err(e) => violations.add(format!("lines[{i}].product"), e),
        }
        violations.check(
            (1..=MAX_QUANTITY).contains(quantity),
            format!("lines[{i}].quantity"),
            format!("must be between 1 and {MAX_QUANTITY}"),
        );
    }
    violations.into_result()?;
    Ok(NewOrder {
        id: order_id(partner, request),
        request_key: request_key(partner, request_id),
        request_id: request_id.clone(),
        partner: partner.to_owned(),
        buyer: buyer.clone(),
        show: show_id,
        lines: wanted,
    })
}

/// A ConfirmPayment request: the order id and the payment reference.
pub(super) fn payment(request: &pb::ConfirmPaymentRequest) -> Result<(String, String), Status> {
    let pb::ConfirmPaymentRequest { name, payment_reference, request_id: _ } = request;
    let mut violations = FieldViolations::new();
    let id = resource::parse_name(name, "orders").map(str::to_owned).map_err(|e| violations.add("name", e)).ok();
    violations.check(printable(payment_reference, 128), "payment_reference", "must be 1 to 128 printable characters");
    violations.into_result()?;
    let id = id.ok_or_else(|| invalid_argument("name", "is invalid"))?;
    Ok((id, payment_reference.clone()))
}

/// A CancelOrder request: the order id and the reason.
pub(super) fn cancellation(request: &pb::CancelOrderRequest) -> Result<(String, String), Status> {
    let pb::CancelOrderRequest { name, reason, request_id: _ } = request;
    let mut violations = FieldViolations::new();
    let id = resource::parse_name(name, "orders").map(str::to_owned).map_err(|e| violations.add("name", e)).ok();
    violations.check(
        reason.chars().count() <= 200 && !reason.chars().any(char::is_control),
        "reason",
        "must be at most 200 printable characters",
    );
    violations.into_result()?;
    let id = id.ok_or_else(|| invalid_argument("name", "is invalid"))?;
    Ok((id, reason.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(buyer: &str, show: &str, lines: &[(&str, i64)], request_id: &str) -> pb::PlaceOrderRequest {
        pb::PlaceOrderRequest {
            buyer: buyer.into(),
            show: show.into(),
            lines: lines.iter().map(|(p, q)| pb::PlaceOrderLine { product: (*p).into(), quantity: *q }).collect(),
            request_id: request_id.into(),
        }
    }

    fn violated(request: &pb::PlaceOrderRequest) -> Vec<String> {
        new_order(request, "hema").map(|_| Vec::new()).unwrap_or_else(|s| caravan_platform::error::violated_fields(&s))
    }

    #[test]
    fn every_bad_field_is_named() {
        let check = |request: pb::PlaceOrderRequest, expected: &[&str]| assert_eq!(violated(&request), expected);
        check(place("b-1", "shows/uz-hema", &[("products/uz-walnuts", 2)], "r"), &[]);
        check(place("", "", &[("products/uz-walnuts", 1)], ""), &["buyer"]);
        check(place("b\n", "", &[("products/uz-walnuts", 1)], ""), &["buyer"]);
        check(place(&"b".repeat(129), "", &[("products/uz-walnuts", 1)], ""), &["buyer"]);
        check(place("b", "uz-hema", &[("products/uz-walnuts", 1)], ""), &["show"]);
        check(place("b", "", &[], ""), &["lines"]);
        check(
            place("b", "", &[("walnuts", 1), ("products/uz-raisins", 0), ("products/uz-raisins", 1_000_001)], ""),
            &["lines[0].product", "lines[1].quantity", "lines[2].product", "lines[2].quantity"],
        );
        let many: Vec<(String, i64)> = (0..51).map(|i| (format!("products/uz-{i}"), 1)).collect();
        let many: Vec<(&str, i64)> = many.iter().map(|(p, q)| (p.as_str(), *q)).collect();
        check(place("b", "", &many, ""), &["lines"]);
    }

    #[test]
    fn a_request_id_names_one_order_per_partner_and_body() {
        let request = place("b", "shows/uz-hema", &[("products/uz-walnuts", 1)], "req-1");
        let id = |partner: &str, request: &pb::PlaceOrderRequest| new_order(request, partner).unwrap().id;
        assert_eq!(id("hema", &request), id("hema", &request), "a retry finds the same order");
        assert_ne!(id("hema", &request), id("douyin", &request), "request ids are per partner");
        let other = place("b", "shows/uz-hema", &[("products/uz-walnuts", 2)], "req-1");
        assert_ne!(id("hema", &request), id("hema", &other), "another body is another order");
        let anonymous = place("b", "shows/uz-hema", &[("products/uz-walnuts", 1)], "");
        assert_ne!(id("hema", &anonymous), id("hema", &anonymous), "no request id: a new order each time");
        let key = |partner: &str, request: &pb::PlaceOrderRequest| new_order(request, partner).unwrap().request_key;
        assert_eq!(key("hema", &request), key("hema", &other), "the key names the request id, whatever the body");
        assert_ne!(key("hema", &request), key("douyin", &request));
        assert_eq!(key("hema", &anonymous), None);
    }
}
