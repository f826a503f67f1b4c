//! Helpers shared by the unit tests of several modules.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A path under the system's temporary directory that no other call uses, in this process
/// or another: named by `tag`, the process id and a counter. Whatever an earlier run left
/// there is removed; the directory itself is not created (a test that needs it makes it).
pub(crate) fn fresh_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hutong-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The shipped dialect `id` (config/regions), as a gateway or a simulator loads it.
pub(crate) fn shipped_dialect(id: &str) -> crate::translate::Dialect {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::sim::region::DEFAULT_REGIONS_DIR);
    crate::sim::region::load_dialect(&dir, id, &crate::standard::Standard::embedded())
        .unwrap_or_else(|e| panic!("{e}"))
}
