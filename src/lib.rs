//! hutong (互通, "interconnect"): the interoperability gateway for China's Personal Health
//! Information Code standard, GB/T 38961/38962/38963-2020.
//!
//! # Layout
//!
//! The modules follow the domain, and (as they land) the request path:
//!
//! - [`standard`]: the profile of the standard as data (`standard/`), loaded once into an
//!   immutable [`standard::Standard`]: data elements, code tables, return codes, services
//!   and their schemas, and the OpenAPI document generated from them.
//! - [`national`]: the typed national model (records of GB/T 38962, messages of GB/T 38963),
//!   validation of a message against the standard, GB 11643 ID numbers, calendar dates.
//! - [`mask`]: masking of personal fields for anyone but their holder.
//! - [`cli`]: the `hutong` command runners; `main.rs` only parses arguments and calls them.

pub mod cli;
pub mod mask;
pub mod national;
pub mod standard;
