//! BizExtData tickets: what a verifier gets from `verifyCode` and shows to
//! `queryHealthInfo` to read beyond the colour (DESIGN.md §8, purpose binding).
//!
//! Form: `{issuerId}.{base64url-nopad(IV ‖ SM4-CBC(json) ‖ HMAC-SM3 tag)}`. The issuer
//! prefix routes the ticket back to whoever issued it. The tag (over the issuer prefix and
//! the ciphertext, under a key derived from the ticket key) makes a tampered ticket fail
//! before decryption.
//!
//! The simulators seal the code id, the verifier's `appId` and the expiry
//! ([`TicketKey::seal`]); the gateway seals its own, richer body (the person's pseudonym,
//! the scope, the region's own ticket) with [`TicketKey::seal_json`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{MacKey, SM3_LEN, Sm4Key, sm3};
use crate::trust::IssuerId;

/// A ticket that could not be sealed: the OS random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a ticket cannot be sealed (random source or key)")]
pub struct SealError;

/// Ticket lifetime the simulator gives, seconds.
pub const TICKET_TTL_SECS: u32 = 600;

/// Longest ticket accepted, characters (the schema's bound on `bizExtData`).
pub const MAX_TICKET_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    v: u8,
    cid: String,
    app: String,
    iat: i64,
    exp: i64,
}

/// Why a ticket was refused. Every variant answers 3005.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not `{issuer}.{base64url}`, another issuer's, too long, bad tag, or undecryptable.
    #[error("ticket is malformed or not ours")]
    Malformed,
    /// Issued to another verifier (`appId`).
    #[error("ticket belongs to another client")]
    WrongClient,
    /// Past its expiry.
    #[error("ticket expired")]
    Expired,
}

/// The key that seals and opens this region's tickets.
#[derive(Debug, Clone)]
pub struct TicketKey {
    issuer: IssuerId,
    enc: Sm4Key,
    mac: MacKey,
}

impl TicketKey {
    /// The ticket key of `issuer`; the MAC key is derived from the SM4 key.
    pub fn new(issuer: IssuerId, key: Sm4Key) -> Result<Self, SealError> {
        let mut material = b"hutong-sim-ticket-mac:".to_vec();
        material.extend_from_slice(key.as_bytes());
        let mac = MacKey::from_bytes(&sm3(&material)).map_err(|_| SealError)?;
        Ok(Self {
            issuer,
            enc: key,
            mac,
        })
    }

    /// A ticket for code `cid`, usable by `app_id` until `now + ttl_secs`.
    pub fn seal(
        &self,
        cid: &str,
        app_id: &str,
        now: i64,
        ttl_secs: u32,
    ) -> Result<String, SealError> {
        self.seal_json(&Body {
            v: 1,
            cid: cid.to_owned(),
            app: app_id.to_owned(),
            iat: now,
            exp: now + i64::from(ttl_secs),
        })
    }

    /// The code id a ticket grants `app_id` access to at `now`.
    pub fn open(&self, ticket: &str, app_id: &str, now: i64) -> Result<String, TicketError> {
        let body: Body = self.open_json(ticket)?;
        if body.v != 1 {
            return Err(TicketError::Malformed);
        }
        if body.app != app_id {
            return Err(TicketError::WrongClient);
        }
        if now >= body.exp {
            return Err(TicketError::Expired);
        }
        Ok(body.cid)
    }

    /// Seals any body: `{issuer}.{base64url(IV ‖ SM4-CBC(json) ‖ tag)}`.
    pub fn seal_json<T: Serialize>(&self, body: &T) -> Result<String, SealError> {
        let json = serde_json::to_vec(body).map_err(|_| SealError)?;
        let mut data = self.enc.encrypt_cbc(&json).map_err(|_| SealError)?;
        let tag = self.tag(&data);
        data.extend_from_slice(&tag);
        Ok(format!("{}.{}", self.issuer, B64URL.encode(data)))
    }

    /// Opens a ticket sealed by [`TicketKey::seal_json`] under this key; binding checks
    /// (client, expiry) are the caller's.
    pub fn open_json<T: DeserializeOwned>(&self, ticket: &str) -> Result<T, TicketError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed);
        }
        let (issuer, rest) = ticket.split_once('.').ok_or(TicketError::Malformed)?;
        if issuer != self.issuer.as_str() {
            return Err(TicketError::Malformed);
        }
        let data = B64URL.decode(rest).map_err(|_| TicketError::Malformed)?;
        if data.len() < SM3_LEN {
            return Err(TicketError::Malformed);
        }
        let (ciphertext, tag) = data.split_at(data.len() - SM3_LEN);
        if !self.mac.verify(&self.tagged(ciphertext), tag) {
            return Err(TicketError::Malformed);
        }
        let json = self
            .enc
            .decrypt_cbc(ciphertext)
            .map_err(|_| TicketError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TicketError::Malformed)
    }

    /// The issuer id the tickets are prefixed with.
    pub fn issuer(&self) -> &IssuerId {
        &self.issuer
    }

    fn tagged(&self, ciphertext: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(9 + ciphertext.len());
        m.extend_from_slice(self.issuer.as_str().as_bytes());
        m.push(b'.');
        m.extend_from_slice(ciphertext);
        m
    }

    fn tag(&self, ciphertext: &[u8]) -> [u8; SM3_LEN] {
        self.mac.tag(&self.tagged(ciphertext))
    }
}
