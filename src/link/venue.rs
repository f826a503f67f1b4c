//! Venue codes (场所码, Beijing's extension, DESIGN.md §6): a region asks the gateway for a
//! code to post at a venue; a traveler's scan of it, sent with their verification, records
//! the visit, and the trip data goes to the traveler's home region.
//!
//! A venue code is `https://{host}/phic/v?vc={id}`, the id 20 lowercase hex digits. It names
//! a place, not a person: the records are kept in clear.

use serde::{Deserialize, Serialize};

use crate::store::tables::VENUES;
use crate::store::{Store, StoreError};

/// Path of venue code URLs.
pub const VENUE_PATH: &str = "/phic/v";

/// A venue the gateway issued a code for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Venue {
    /// The code id.
    pub id: String,
    /// The venue's name.
    pub name: String,
    /// Its address, if given.
    pub address: Option<String>,
    /// Its division (6 digits).
    pub region: String,
    /// The client that asked for it.
    pub issued_by: String,
    /// Unix milliseconds.
    pub created_ms: u64,
}

impl Venue {
    /// The code's content: what the QR posted at the venue holds.
    pub fn content(&self, host: &str) -> String {
        format!("https://{host}{VENUE_PATH}?vc={}", self.id)
    }
}

/// The venue id in a scanned venue code's content (the URL form, or the bare id).
pub fn venue_id(content: &str) -> Option<&str> {
    let id = content
        .split_once("?vc=")
        .filter(|(head, _)| head.ends_with(VENUE_PATH))
        .map_or(content, |(_, id)| id);
    (id.len() == 20
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(id)
}

/// The venue registry over the gateway's store. Blocking, like every store.
#[derive(Debug, Clone)]
pub struct Venues {
    store: Store,
}

impl Venues {
    /// The venues in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Issues a venue code: a fresh id, kept durably.
    ///
    /// # Errors
    /// [`StoreError`] when the store or the random source fails.
    pub fn issue(
        &self,
        name: &str,
        address: Option<&str>,
        region: &str,
        issued_by: &str,
        now_ms: u64,
    ) -> Result<Venue, StoreError> {
        let mut b = [0u8; 10];
        crate::crypto::fill_random(&mut b)
            .map_err(|e| StoreError::Db(format!("random source: {e}")))?;
        let v = Venue {
            id: crate::crypto::to_hex(&b),
            name: name.to_owned(),
            address: address.map(str::to_owned),
            region: region.to_owned(),
            issued_by: issued_by.to_owned(),
            created_ms: now_ms,
        };
        let json = serde_json::to_vec(&v).map_err(|e| StoreError::Corrupt {
            what: "venue",
            reason: e.to_string(),
        })?;
        let txn = self.store.db().begin_write()?;
        txn.open_table(VENUES)?
            .insert(v.id.as_str(), json.as_slice())?;
        txn.commit()?;
        Ok(v)
    }

    /// The venue with `id`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the record is corrupt.
    pub fn get(&self, id: &str) -> Result<Option<Venue>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let t = txn.open_table(VENUES)?;
        match t.get(id)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| crate::store::undecodable("venue", &e)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_codes_are_issued_kept_and_recognised() {
        let dir = std::env::temp_dir().join(format!("hutong-venue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let v = Venues::new(Store::open(&dir).unwrap());
        let issued = v
            .issue("王府井某商场", Some("东城区"), "110101", "B1", 5)
            .unwrap();
        let content = issued.content("localhost:8443");
        assert_eq!(venue_id(&content), Some(issued.id.as_str()));
        assert_eq!(venue_id(&issued.id), Some(issued.id.as_str()));
        assert_eq!(v.get(&issued.id).unwrap(), Some(issued));
        assert_eq!(v.get("00000000000000000000").unwrap(), None);
        assert_eq!(venue_id("https://x/phic/v?vc=XYZ"), None);
        assert_eq!(venue_id("not a venue"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
