//! The crypto benchmark lands with its harness; see README.
fn main() {}
