//! Failpoints: named steps of a saga at which the process can be made to
//! abort, to prove that every step converges after a crash.
//!
//! A service declares its failpoints (orders: `caravan_orders::failpoints`)
//! and arms at most one from its settings; when the code reaches that step
//! the process aborts at once — no drain, no flush, no reply — exactly as if
//! it had been killed with `kill -9` there. Unarmed, a failpoint costs one
//! comparison. Only crash drills and tests arm them.

use std::sync::Arc;

/// The failpoint armed in this process, if any.
#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    known: &'static [&'static str],
    armed: Option<Arc<str>>,
}

impl Failpoints {
    /// Arms `armed`, one of `known` (the service's settings refuse any
    /// other).
    pub fn new(known: &'static [&'static str], armed: Option<&str>) -> Self {
        Failpoints { known, armed: armed.map(Arc::from) }
    }

    /// Aborts the process if `name` is the armed failpoint.
    pub fn hit(&self, name: &'static str) {
        debug_assert!(
            self.known.is_empty() || self.known.contains(&name),
            "failpoint {name} is not among the service's declared ones"
        );
        if self.armed.as_deref() == Some(name) {
            tracing::error!(failpoint = name, "failpoint reached: aborting the process");
            eprintln!("caravan: failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unarmed_or_other_failpoint_does_nothing() {
        const KNOWN: &[&str] = &["a.after_insert", "a.after_reserve"];
        Failpoints::default().hit("a.after_reserve");
        Failpoints::new(KNOWN, Some("a.after_insert")).hit("a.after_reserve");
    }
}
