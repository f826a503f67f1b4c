//! Random bytes from the operating system, drawn in blocks.
//!
//! Every relayed request needs about five small random values: two SM4-CBC IVs, the nonce and
//! `requestId` of the envelope to the region, and the answer's nonce. One `getrandom` system
//! call for each was five kernel entries per request (seen with `strace -c` on the gateway
//! under load). So each thread draws [`BLOCK`] bytes from the OS at a time and hands them
//! out in order, zeroing each byte as it leaves: every byte given out is still the OS
//! generator's output, given out once, and what remains in memory is only what has not been
//! given out yet. Requests of more than [`DIRECT`] bytes go to the OS directly.
//!
//! A process that `fork`s and goes on without `exec` would give its child the same
//! remaining bytes; hutong starts other programs only through `exec`.

use std::cell::RefCell;

use getrandom::rand_core::TryRng;
use zeroize::Zeroize;

use super::CryptoError;

/// Bytes drawn from the OS at a time, per thread.
const BLOCK: usize = 4096;

/// Larger requests than this skip the block.
const DIRECT: usize = 256;

/// One thread's block: bytes before `next` have been given out (and zeroed).
struct Pool {
    bytes: [u8; BLOCK],
    next: usize,
}

impl Pool {
    /// Gives out `buf.len()` bytes (at most [`DIRECT`]), drawing a new block when too few
    /// are left. A failed draw leaves the pool empty and `buf` untouched.
    fn take(&mut self, buf: &mut [u8]) -> Result<(), CryptoError> {
        if BLOCK - self.next < buf.len() {
            self.bytes.zeroize();
            self.next = BLOCK;
            os_fill(&mut self.bytes)?;
            self.next = 0;
        }
        let given = &mut self.bytes[self.next..self.next + buf.len()];
        buf.copy_from_slice(given);
        given.zeroize();
        self.next += buf.len();
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bytes: [0; BLOCK],
            next: BLOCK,
        })
    };
}

/// The operating system's generator, with no block between.
fn os_fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::SysRng
        .try_fill_bytes(buf)
        .map_err(|_| CryptoError::Rng)
}

/// Fills `buf` from the operating system's random number generator (through this thread's
/// block when `buf` is small: see the module's documentation).
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    if buf.len() > DIRECT {
        return os_fill(buf);
    }
    POOL.with(|pool| match pool.try_borrow_mut() {
        Ok(mut pool) => pool.take(buf),
        // Not reached (nothing here calls back into it); the OS is always right.
        Err(_) => os_fill(buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_given_out_once_and_zeroed_behind() {
        let mut pool = Pool {
            bytes: [0; BLOCK],
            next: BLOCK,
        };
        let mut a = [0u8; 32];
        pool.take(&mut a).unwrap();
        assert_eq!(pool.next, 32);
        assert!(
            pool.bytes[..32].iter().all(|&b| b == 0),
            "given bytes stay behind"
        );
        assert!(
            pool.bytes[32..].iter().any(|&b| b != 0),
            "the block was drawn"
        );
        let ahead = pool.bytes[32..64].to_vec();
        let mut b = [0u8; 32];
        pool.take(&mut b).unwrap();
        assert_eq!(b.as_slice(), ahead.as_slice(), "handed out in order");
        assert_ne!(a, b);
    }

    #[test]
    fn a_request_larger_than_what_is_left_draws_a_new_block() {
        let mut pool = Pool {
            bytes: [0; BLOCK],
            next: BLOCK - 8,
        };
        pool.bytes[BLOCK - 8..].copy_from_slice(&[7; 8]);
        let mut buf = [0u8; 16];
        pool.take(&mut buf).unwrap();
        // The new block's first 16 bytes went out: none of the old tail did.
        assert_eq!(pool.next, 16);
        assert!(pool.bytes[..16].iter().all(|&b| b == 0));
        assert!(
            buf.iter().any(|&b| b != 7) && buf.iter().any(|&b| b != 0),
            "{buf:?}"
        );
    }

    #[test]
    fn small_and_large_fills_differ_from_call_to_call() {
        for len in [16, DIRECT, DIRECT + 1, 2 * BLOCK] {
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            fill_random(&mut a).unwrap();
            fill_random(&mut b).unwrap();
            assert_ne!(a, b, "{len} bytes");
            assert!(a.iter().any(|&x| x != 0), "{len} bytes");
        }
        // Across a block's end: 4096 / 16 fills and one more stay distinct.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..=BLOCK / 16 {
            let mut iv = [0u8; 16];
            fill_random(&mut iv).unwrap();
            assert!(seen.insert(iv), "a value came out twice");
        }
    }
}
