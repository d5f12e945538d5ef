//! Inventory rules, free of I/O.

use caravan_platform::time::Micros;

/// Longest free-text field.
pub const MAX_TEXT: usize = 200;

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
}
