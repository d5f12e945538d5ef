//! Limits every service applies to money, so amounts one service accepts
//! never overflow in another.

/// The highest price caravan accepts, in minor units: 100 million in a
/// currency's major unit (catalog's list prices and scheduling's show
/// prices alike). With orders' most units per line (1,000,000) a line's
/// total stays below 10^16, far inside `i64`, and so does an order's.
pub const MAX_PRICE_MINOR: i64 = 10_000_000_000;
