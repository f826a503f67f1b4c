//! hutong (互通, "interconnect"): the interoperability gateway for China's Personal Health
//! Information Code standard, GB/T 38961/38962/38963-2020.
//!
//! # Layout
//!
//! The modules follow the domain, and (as they land) the request path:
//!
//! - [`config`]: the gateway's configuration (`config/hutong.toml`), validated whole.
//! - [`auth`]: who is calling: mTLS identity, access tokens (JWT ES256).
//! - [`server`]: `hutong serve`: TLS listener, the request pipeline, the one error-to-code
//!   rescue point, the admin listener; first-start generation of development files.
//! - [`route`]: which region answers a call (code issuer, ticket, caller's area), and the
//!   relay to it.
//! - [`client`]: a caller of the gateway (`hutong client`, tests, conformance): seal, send
//!   over TLS with mTLS and a token, open the answer.
//! - [`conformance`]: the black-box conformance suite: cases as data, per-stage verdicts,
//!   reports.
//! - [`metrics`]: counters with bounded labels, as Prometheus text.
//! - [`standard`]: the profile of the standard as data (`standard/`), loaded once into an
//!   immutable [`standard::Standard`]: data elements, code tables, return codes, services
//!   and their schemas, and the OpenAPI document generated from them.
//! - [`national`]: the typed national model (records of GB/T 38962, messages of GB/T 38963),
//!   validation of a message against the standard, GB 11643 ID numbers, calendar dates.
//! - [`crypto`]: national cryptography: SM2 signatures and encryption, SM3 and HMAC-SM3 over
//!   RustCrypto, SM4-CBC of our own; keys from hex and PEM.
//! - [`envelope`]: the national envelope of GB/T 38963 clause 5, both sides: canonical
//!   string, SM2 or HMAC-SM3 signatures, SM4 `bizContent`, timestamp window and nonces.
//! - [`code`]: PHIC1 national code tokens and their URL form; the `CodeFormat` trait that
//!   regional code contents plug into; verification against the trust registry.
//! - [`trust`]: the trust registry of issuers and keys, and the signed trust list.
//! - [`render`]: the code page of GB/T 38961 as PNG or SVG (QR in the status colour).
//! - [`ratelimit`]: governor rate limits on the request path: per IP before
//!   authentication, per client and per client and service after it (1007, `Retry-After`).
//! - [`cache`]: the response cache (own CLOCK store, a few hundred bytes an entry): freshness tied to health-status validity, one
//!   upstream call per key, keys partitioned by what the caller may see, purge by person.
//! - [`ticket`]: BizExtData tickets, sealed with SM4 and tagged with HMAC-SM3, bound to a
//!   verifier and an expiry.
//! - [`tlsdev`]: development certificates (CA, server, mTLS clients) with rcgen.
//! - [`mask`]: masking of personal fields for anyone but their holder.
//! - [`store`]: the embedded state: one redb file in the data directory, and its tables.
//! - [`audit`]: the SM3-chained audit log, person pseudonyms, verification, holder receipts.
//! - [`idempotency`]: the answer given to each `(appId, requestId)`, kept 24 hours.
//! - [`link`]: the link registry (a person's codes across regions, by pseudonym) and the
//!   outbox of status-event callbacks to regions.
//! - [`corrections`]: correction tickets (更正权): each region's answer to a holder's
//!   correction, tracked to DONE or REJECTED and queryable by the app that filed it.
//! - [`retention`]: purging what is kept past its period: audit records (keeping the
//!   chain verifiable), expired idempotency records, closed correction tickets.
//! - [`translate`]: regional dialects (`config/regions/*.toml`) and the pure mapping engine
//!   between them and the national model, both ways, with a loss report per translation.
//! - [`upstream`]: how the gateway calls a region: the `Upstream` trait, the national-envelope
//!   client with deadlines, a retry budget and a circuit breaker per region.
//! - [`sim`]: `hutong sim --national` and `hutong sim --region <dialect>`, reference region
//!   back-ends over real HTTP with a synthetic population and injectable faults; its small
//!   generic HTTP server.
//! - [`cli`]: the `hutong` command runners; `main.rs` only parses arguments and calls them.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client;
pub mod code;
pub mod config;
pub mod conformance;
pub mod corrections;
pub mod crypto;
pub mod envelope;
pub mod idempotency;
pub mod link;
pub mod mask;
pub mod metrics;
pub mod national;
pub mod ratelimit;
pub mod render;
pub mod retention;
pub mod route;
pub mod server;
pub mod sim;
pub mod standard;
pub mod store;
pub mod ticket;
pub mod tlsdev;
pub mod translate;
pub mod trust;
pub mod upstream;

#[cfg(test)]
mod testutil;
