//! Random bytes from the operating system, drawn in blocks.
//!
//! Every relayed request needs about five small random values: two SM4-CBC IVs, the nonce and
//! `requestId` of the envelope to the region, and the answer's nonce. One `getrandom` system
//! call for each was five kernel entries per request (seen with `strace -c` on the gateway
//! under load). So each thread draws [`BLOCK`] bytes from the OS at a time and hands them
//! out in order, zeroing each byte as it leaves: every byte given out is still the OS
//! generator's output, given out once, and what remains in memory is only what has not been
//! given out yet. Requests of more than [`DIRECT`] bytes go to the OS directly, and so do
//! keys ([`fill_key`]: SM4 and MAC keys, the process's table keys, the pseudonym secret), so
//! that no key sits in a block before it is drawn.
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
    /// Gives out `buf.len()` bytes (at most [`DIRECT`]), drawing a new block with `draw`
    /// (the OS's generator) when too few are left: the rest of the old block is wiped, never
    /// given out. A failed draw leaves the pool empty and `buf` untouched.
    fn take(
        &mut self,
        buf: &mut [u8],
        draw: impl FnOnce(&mut [u8]) -> Result<(), CryptoError>,
    ) -> Result<(), CryptoError> {
        if BLOCK - self.next < buf.len() {
            self.bytes.zeroize();
            self.next = BLOCK;
            draw(&mut self.bytes)?;
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
    // Without the pool (a thread's storage already torn down, or a call from within it,
    // which nothing here makes), the OS directly.
    POOL.try_with(|pool| match pool.try_borrow_mut() {
        Ok(mut pool) => pool.take(buf, os_fill),
        Err(_) => os_fill(buf),
    })
    .unwrap_or_else(|_| os_fill(buf))
}

/// Fills `buf` straight from the operating system's generator, with no block between: for
/// keys, which then never sit in a block before they are drawn.
pub fn fill_key(buf: &mut [u8]) -> Result<(), CryptoError> {
    os_fill(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A draw that writes the next bytes of a counting stream (each byte its position in
    /// the stream, modulo 251, a prime, so that blocks do not line up with the pattern).
    fn stream(at: &mut usize) -> impl FnOnce(&mut [u8]) -> Result<(), CryptoError> + '_ {
        move |block: &mut [u8]| {
            for b in block.iter_mut() {
                *b = (*at % 251) as u8;
                *at += 1;
            }
            Ok(())
        }
    }

    fn empty() -> Pool {
        Pool {
            bytes: [0; BLOCK],
            next: BLOCK,
        }
    }

    #[test]
    fn bytes_come_out_in_the_streams_order_once_and_are_wiped_behind() {
        let mut pool = empty();
        let mut at = 0;
        let mut out = Vec::new();
        // 7-byte requests: the 586th does not fit the first block's last byte.
        for _ in 0..600 {
            let mut b = [0u8; 7];
            pool.take(&mut b, stream(&mut at)).unwrap();
            out.extend_from_slice(&b);
            assert!(
                pool.bytes[..pool.next].iter().all(|&x| x == 0),
                "given bytes wiped"
            );
        }
        assert_eq!(at, 2 * BLOCK, "two blocks drawn");
        // The first block gave its first 585 × 7 bytes; its 1-byte tail was skipped.
        let first = 585 * 7;
        let expect: Vec<u8> = (0..first)
            .chain(BLOCK..BLOCK + (600 - 585) * 7)
            .map(|i| (i % 251) as u8)
            .collect();
        assert_eq!(out, expect);
    }

    #[test]
    fn a_failed_draw_leaves_the_pool_empty_and_the_buffer_untouched() {
        let mut pool = empty();
        pool.next = BLOCK - 4;
        pool.bytes[BLOCK - 4..].copy_from_slice(&[9; 4]);
        let mut buf = [1u8; 16];
        let failed = pool.take(&mut buf, |_| Err(CryptoError::Rng));
        assert!(failed.is_err());
        assert_eq!(buf, [1u8; 16]);
        assert_eq!(pool.next, BLOCK);
        assert!(pool.bytes.iter().all(|&x| x == 0), "the old tail is wiped");
        // The next draw that works starts a fresh block.
        let mut at = 0;
        pool.take(&mut buf, stream(&mut at)).unwrap();
        assert_eq!(buf.to_vec(), (0..16u8).collect::<Vec<_>>());
    }

    #[test]
    fn small_and_large_fills_differ_from_call_to_call() {
        for len in [16, DIRECT, DIRECT + 1, 2 * BLOCK] {
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            fill_random(&mut a).unwrap();
            fill_random(&mut b).unwrap();
            assert_ne!(a, b, "{len} bytes");
        }
        let (mut k1, mut k2) = ([0u8; 32], [0u8; 32]);
        fill_key(&mut k1).unwrap();
        fill_key(&mut k2).unwrap();
        assert_ne!(k1, k2);
    }
}
