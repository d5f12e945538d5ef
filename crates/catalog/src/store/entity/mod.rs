//! sea-orm entities of the catalog's tables.

pub mod country;
pub mod country_status;
pub mod product;
