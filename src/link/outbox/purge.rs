//! The retention purge of finished deliveries, through their index (module docs of
//! [`super`]).

use redb::ReadableTable;

use super::{Outbox, PURGE_BATCH, Refile};
use crate::store::StoreError;
use crate::store::tables::{CALLBACKS, CALLBACKS_DUE, CALLBACKS_FINISHED};

impl Outbox {
    /// Removes finished deliveries (delivered or abandoned) created before `before_ms`
    /// (retention), and returns how many. Reads the finished index, so it opens only the
    /// records it removes, each checked to be finished first; [`PURGE_BATCH`] rows a
    /// transaction. A row that does not match its record is dropped and the record filed
    /// where it belongs; an unreadable record keeps its row (module docs). Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails: the batches committed before stay removed.
    pub fn purge_before(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.purge_in_batches(before_ms, PURGE_BATCH)
    }

    /// [`purge_before`](Self::purge_before), `batch` rows a transaction.
    pub(crate) fn purge_in_batches(
        &self,
        before_ms: u64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let batch = batch.max(1);
        let (mut removed, mut refiled, mut unreadable) = (0, 0, 0);
        // After the last row of the batch before (an unreadable record's row stays).
        let mut after: Option<(u64, u64)> = None;
        loop {
            let txn = self.store.db().begin_write()?;
            let rows = {
                let mut t = txn.open_table(CALLBACKS)?;
                let mut due = txn.open_table(CALLBACKS_DUE)?;
                let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
                let from = after.map_or(Unbounded, Excluded);
                let rows: Vec<(u64, u64)> = finished
                    .range((from, Excluded((before_ms, 0))))?
                    .take(batch)
                    .map(|item| item.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for &(created, id) in &rows {
                    let belongs = {
                        let record = t.get(id)?;
                        self.belongs(record.as_ref().map(|v| v.value()))
                    };
                    let Some((refile, _)) = belongs else {
                        unreadable += 1;
                        continue;
                    };
                    finished.remove((created, id))?;
                    match refile {
                        Refile::Finished(at) if at < before_ms => {
                            t.remove(id)?;
                            removed += 1;
                        }
                        Refile::Finished(at) => {
                            finished.insert((at, id), ())?;
                            refiled += 1;
                        }
                        Refile::Due(at) => {
                            due.insert((at, id), ())?;
                            refiled += 1;
                        }
                        Refile::Nowhere => refiled += 1,
                    }
                }
                after = rows.last().copied();
                rows.len()
            };
            txn.commit()?;
            if rows < batch {
                break;
            }
        }
        if refiled > 0 || unreadable > 0 {
            tracing::warn!(
                refiled,
                unreadable,
                "callback finished index: rows that did not match their records"
            );
        }
        Ok(removed)
    }
}
