//! The national model: the typed records of GB/T 38962 and messages of GB/T 38963, and
//! validation of a message against the loaded standard.
//!
//! On the request path this is the "validate against standard/" step: after the envelope is
//! opened and before routing, the business content is checked with [`validate`], so nothing
//! malformed reaches a region.

pub mod idno;
pub mod model;
pub mod time;
pub mod validate;
