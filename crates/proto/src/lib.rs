//! caravan's protobuf contracts, generated from `proto/` at build time.
//!
//! Every service depends on this crate for its own server and its callees'
//! clients; only `api` modules (and this crate) see these prost types.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod codec;

/// Shared messages: money, dates, localized text, error reasons.
pub mod r#type {
    /// Version 1.
    pub mod v1 {
        // prost names the file after the escaped Rust module path.
        include!(concat!(env!("OUT_DIR"), "/caravan.r#type.v1.rs"));
    }
}

/// The catalog service's contract.
pub mod catalog {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("caravan.catalog.v1");
    }
}

/// The scheduling service's contract.
pub mod scheduling {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("caravan.scheduling.v1");
    }
}

/// The inventory service's contract.
pub mod inventory {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("caravan.inventory.v1");
    }
}

/// The orders service's contract.
pub mod orders {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("caravan.orders.v1");
    }
}

/// The load generator's echo baseline.
pub mod loadgen {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("caravan.loadgen.v1");
    }
}

/// The encoded `FileDescriptorSet` of every caravan proto and its imports,
/// served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/caravan_descriptor.bin"));

/// The fully qualified names of caravan's four services.
pub const SERVICE_NAMES: [&str; 4] = [
    "caravan.catalog.v1.CatalogService",
    "caravan.scheduling.v1.SchedulingService",
    "caravan.inventory.v1.InventoryService",
    "caravan.orders.v1.OrdersService",
];

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for micros in [0, 1, 999_999, 1_000_000, -1, -1_000_001, 1_641_772_800_123_456] {
            let ts = timestamp_from_micros(micros);
            assert!((0..1_000_000_000).contains(&ts.nanos));
            assert_eq!(micros_from_timestamp(&ts), Some(micros));
        }
        assert_eq!(micros_from_timestamp(&prost_types::Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(micros_from_timestamp(&prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }), None);
    }

    #[test]
    fn descriptor_set_holds_all_four_services_and_their_imports() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let services: Vec<String> = fds
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service.iter().map(move |svc| format!("{package}.{}", svc.name()))
            })
            .collect();
        for name in SERVICE_NAMES {
            assert!(services.iter().any(|s| s == name), "{name} missing from {services:?}");
        }
        // Reflection clients resolve imports from the same set.
        for import in ["google/protobuf/timestamp.proto", "google/protobuf/field_mask.proto"] {
            assert!(fds.file.iter().any(|f| f.name() == import), "{import} not included");
        }
    }
}

/// A protobuf `Timestamp` from microseconds since the Unix epoch (UTC).
pub fn timestamp_from_micros(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        // Always in 0..1e9, so it fits.
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// Microseconds since the Unix epoch from a protobuf `Timestamp`; `None` when
/// its nanos are out of range or it overflows.
pub fn micros_from_timestamp(ts: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds.checked_mul(1_000_000)?.checked_add(i64::from(ts.nanos / 1000))
}
