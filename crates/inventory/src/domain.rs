//! Inventory rules and values, free of I/O.
//!
//! A stock row (product × warehouse) holds `on_hand` units, of which
//! `reserved` are held by active reservations and `allocated` are earmarked
//! for shows and not yet reserved; the rest, `on_hand - reserved -
//! allocated`, is the general pool. Warehouses are drawn from in ascending
//! `(priority, id)` order, which is also the order rows are locked in.

use std::time::Duration;

use caravan_platform::time::Micros;
use sha2::{Digest as _, Sha256};

/// Longest free-text field.
pub const MAX_TEXT: usize = 200;
/// Most lines in one reservation or allocation request.
pub const MAX_LINES: usize = 100;
/// Largest quantity of one line or movement (keeps sums far from overflow).
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// Reservation hold when the caller asks for none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Longest reservation hold.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// A warehouse's fields as given by an operator, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseFields {
    /// Human name.
    pub display_name: String,
    /// Where it is.
    pub location: String,
    /// Allocations and reservations draw from lower priorities first.
    pub priority: i32,
}

impl WarehouseFields {
    /// Validates the fields, naming each bad one.
    pub fn parse(display_name: String, location: String, priority: i32) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        if display_name.trim().is_empty() {
            problems.push(("display_name", "is required".to_owned()));
        }
        for (field, value) in [("display_name", &display_name), ("location", &location)] {
            if value.chars().count() > MAX_TEXT {
                problems.push((field, format!("must be at most {MAX_TEXT} characters")));
            }
            if value.chars().any(char::is_control) {
                problems.push((field, "must not contain control characters".to_owned()));
            }
        }
        if !(0..=1_000_000).contains(&priority) {
            problems.push(("priority", "must be between 0 and 1000000".to_owned()));
        }
        if problems.is_empty() { Ok(WarehouseFields { display_name, location, priority }) } else { Err(problems) }
    }
}

/// A stored warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    /// The id in `warehouses/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: WarehouseFields,
    /// When it was created.
    pub create_time: Micros,
}

/// One product's stock in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseStock {
    /// The warehouse id.
    pub warehouse_id: String,
    /// Units physically present.
    pub on_hand: i64,
    /// Units held by active reservations.
    pub reserved: i64,
    /// Units earmarked for shows, not yet reserved.
    pub allocated: i64,
    /// Bumped by every change of the row.
    pub version: i64,
}

impl WarehouseStock {
    /// The general pool of this warehouse.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved - self.allocated
    }
}

/// One product's stock, per warehouse in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    /// The product id.
    pub product_id: String,
    /// Its rows, in priority order (empty: never received).
    pub warehouses: Vec<WarehouseStock>,
}

impl StockLevel {
    /// A product never received.
    pub fn empty(product_id: &str) -> Self {
        StockLevel { product_id: product_id.to_owned(), warehouses: Vec::new() }
    }

    fn sum(&self, f: impl Fn(&WarehouseStock) -> i64) -> i64 {
        self.warehouses.iter().map(f).sum()
    }

    /// Units present.
    pub fn on_hand(&self) -> i64 {
        self.sum(|w| w.on_hand)
    }
    /// Units held.
    pub fn reserved(&self) -> i64 {
        self.sum(|w| w.reserved)
    }
    /// Units earmarked for shows.
    pub fn allocated(&self) -> i64 {
        self.sum(|w| w.allocated)
    }
    /// The general pool.
    pub fn available(&self) -> i64 {
        self.sum(WarehouseStock::available)
    }
    /// Sum of the rows' versions: grows with every change of the product.
    pub fn version(&self) -> i64 {
        self.sum(|w| w.version)
    }
}

/// What a movement records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum MovementKind {
    /// Goods received.
    Receive = 1,
    /// Manual correction.
    Adjust = 2,
    /// Earmarked for a show.
    Allocate = 3,
    /// Show stock given back to the general pool.
    Return = 4,
    /// Held for an order.
    Reserve = 5,
    /// Sold.
    Commit = 6,
    /// Hold given back.
    Release = 7,
    /// Hold expired.
    Expire = 8,
}

impl MovementKind {
    /// From its stored code.
    pub fn from_code(code: i16) -> Option<Self> {
        use MovementKind::*;
        [Receive, Adjust, Allocate, Return, Reserve, Commit, Release, Expire].into_iter().find(|k| *k as i16 == code)
    }
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// Its id, in insertion order.
    pub id: i64,
    /// What happened.
    pub kind: MovementKind,
    /// The product id.
    pub product_id: String,
    /// The warehouse id.
    pub warehouse_id: String,
    /// Change of on-hand units.
    pub on_hand_delta: i64,
    /// Change of reserved units.
    pub reserved_delta: i64,
    /// Change of allocated units.
    pub allocated_delta: i64,
    /// What caused it (`reservations/…`, `allocations/…`, a request id).
    pub reference: String,
    /// Adjustment reason code (0 for other kinds).
    pub reason: i16,
    /// When.
    pub create_time: Micros,
}

/// Units of a line drawn from one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The warehouse id.
    pub warehouse_id: String,
    /// Units.
    pub quantity: i64,
}

/// One product of a show's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationLine {
    /// The product id.
    pub product_id: String,
    /// Per warehouse: `(warehouse, quantity, used)`, in priority order.
    pub sources: Vec<(String, i64, i64)>,
    /// Whether the allocation was closed.
    pub closed: bool,
    /// Sum of the rows' versions.
    pub version: i64,
}

impl AllocationLine {
    /// Units earmarked.
    pub fn quantity(&self) -> i64 {
        self.sources.iter().map(|s| s.1).sum()
    }
    /// Units reserved or sold (frozen when the allocation closes).
    pub fn used(&self) -> i64 {
        self.sources.iter().map(|s| s.2).sum()
    }
    /// Units still free for the show.
    pub fn available(&self) -> i64 {
        if self.closed { 0 } else { self.quantity() - self.used() }
    }
}

/// Lifecycle of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum AllocationState {
    /// Reservations may draw from it.
    Open = 1,
    /// Returned.
    Closed = 2,
}

/// Stock earmarked for one show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The show id.
    pub show_id: String,
    /// Open or closed.
    pub state: AllocationState,
    /// When it was closed.
    pub close_time: Option<Micros>,
    /// By product.
    pub lines: Vec<AllocationLine>,
}

/// Lifecycle of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum ReservationState {
    /// Holding stock.
    Active = 1,
    /// Sold.
    Committed = 2,
    /// Given back on request.
    Released = 3,
    /// Given back when its TTL passed.
    Expired = 4,
}

impl ReservationState {
    /// From its stored code.
    pub fn from_code(code: i16) -> Option<Self> {
        use ReservationState::*;
        [Active, Committed, Released, Expired].into_iter().find(|s| *s as i16 == code)
    }
}

/// One product of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationLine {
    /// The product id.
    pub product_id: String,
    /// Units held.
    pub quantity: i64,
    /// Where from, in priority order.
    pub sources: Vec<Source>,
}

/// A hold on stock for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The id (the order id).
    pub id: String,
    /// The show whose allocation it draws from, if any.
    pub show_id: Option<String>,
    /// Lines as requested.
    pub lines: Vec<ReservationLine>,
    /// State.
    pub state: ReservationState,
    /// When an active reservation expires.
    pub expire_time: Micros,
    /// When it was created.
    pub create_time: Micros,
    /// When it left ACTIVE.
    pub close_time: Option<Micros>,
    /// A release of an id never reserved: it holds nothing and makes a later
    /// ReserveStock with the id fail.
    pub tombstone: bool,
}

/// A validated ReserveStock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The reservation id.
    pub id: String,
    /// Draw from this show's allocation instead of the general pool.
    pub show_id: Option<String>,
    /// `(product, quantity)`, products distinct, in the order asked.
    pub lines: Vec<(String, i64)>,
    /// How long to hold.
    pub ttl: Duration,
}

impl ReserveRequest {
    /// What makes two requests with one id "the same": the pool and the
    /// lines (as a set; the TTL is not part of it).
    pub fn fingerprint(&self) -> String {
        let mut lines = self.lines.clone();
        lines.sort();
        let mut hasher = Sha256::new();
        hasher.update(self.show_id.as_deref().unwrap_or("").as_bytes());
        for (product, quantity) in &lines {
            hasher.update(b"\n");
            hasher.update(product.as_bytes());
            hasher.update(b"=");
            hasher.update(quantity.to_string().as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// Checks a list of `(product, quantity)` lines: 1 to [`MAX_LINES`], distinct
/// products, quantities in `min..=MAX_QUANTITY`. Problems name the line.
pub fn check_lines(lines: &[(String, i64)], min: i64) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if lines.is_empty() {
        problems.push(("lines".to_owned(), "at least one line is required".to_owned()));
    }
    if lines.len() > MAX_LINES {
        problems.push(("lines".to_owned(), format!("at most {MAX_LINES} lines")));
    }
    for (i, (product, quantity)) in lines.iter().enumerate() {
        if lines[..i].iter().any(|(p, _)| p == product) {
            problems.push((format!("lines[{i}].product"), "appears in an earlier line".to_owned()));
        }
        if !(min..=MAX_QUANTITY).contains(quantity) {
            problems.push((format!("lines[{i}].quantity"), format!("must be between {min} and {MAX_QUANTITY}")));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_rules() {
        assert!(WarehouseFields::parse("Shanghai bonded".into(), "Waigaoqiao".into(), 1).is_ok());
        let problems = WarehouseFields::parse(" ".into(), "x\u{7}".into(), -1).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["display_name", "location", "priority"]);
    }

    fn request(show: Option<&str>, lines: &[(&str, i64)]) -> ReserveRequest {
        ReserveRequest {
            id: "order-1".into(),
            show_id: show.map(str::to_owned),
            lines: lines.iter().map(|(p, q)| ((*p).to_owned(), *q)).collect(),
            ttl: DEFAULT_TTL,
        }
    }

    #[test]
    fn a_reservation_is_the_same_whatever_the_order_of_its_lines() {
        let a = request(None, &[("tea", 1), ("walnuts", 2)]);
        assert_eq!(a.fingerprint(), request(None, &[("walnuts", 2), ("tea", 1)]).fingerprint());
        assert_ne!(a.fingerprint(), request(None, &[("tea", 1), ("walnuts", 3)]).fingerprint());
        assert_ne!(a.fingerprint(), request(Some("uz-show"), &[("tea", 1), ("walnuts", 2)]).fingerprint());
        let mut longer = a.clone();
        longer.ttl = MAX_TTL;
        assert_eq!(a.fingerprint(), longer.fingerprint());
    }

    #[test]
    fn lines_are_checked_one_by_one() {
        let lines = vec![("tea".to_owned(), 1), ("tea".to_owned(), 0)];
        let fields: Vec<_> = check_lines(&lines, 1).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["lines[1].product", "lines[1].quantity"]);
        assert_eq!(check_lines(&[], 1)[0].0, "lines");
        assert!(check_lines(&[("tea".to_owned(), 0)], 0).is_empty());
    }

    #[test]
    fn levels_add_up_over_warehouses() {
        let row = |w: &str, on_hand, reserved, allocated, version| WarehouseStock {
            warehouse_id: w.into(),
            on_hand,
            reserved,
            allocated,
            version,
        };
        let level =
            StockLevel { product_id: "tea".into(), warehouses: vec![row("sh", 10, 3, 2, 4), row("gz", 5, 0, 5, 1)] };
        assert_eq!((level.on_hand(), level.reserved(), level.allocated(), level.available()), (15, 3, 7, 5));
        assert_eq!(level.version(), 5);
        assert_eq!(MovementKind::from_code(6), Some(MovementKind::Commit));
        assert_eq!(MovementKind::from_code(9), None);
    }
}
