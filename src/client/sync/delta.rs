//! The client's side of block deltas: hash the local file's blocks (and the whole
//! file, on a second thread) to compare with the server's block list, and tell which
//! blocks differ; `delta` sends or applies them.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc;

use crate::protocol::sync::{BLOCK_HASH, block_hash};
use crate::transfer;

/// A file's block hashes, and its whole SHA-256 when asked for.
pub type Hashed = (Vec<[u8; BLOCK_HASH]>, Option<[u8; 32]>);

/// The hash of each `block`-sized block of the first `size` bytes of `file`, and with
/// `whole` the SHA-256 of all of them (on a second thread).
pub fn hash_blocks(file: &mut File, size: u64, block: u64, whole: bool) -> io::Result<Hashed> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let hasher = whole.then(|| {
            s.spawn(move || {
                let mut ctx = transfer::sha();
                for b in rx {
                    ctx.update(&b);
                }
                transfer::finish(ctx)
            })
        });
        let mut hashes = Vec::with_capacity(size.div_ceil(block) as usize);
        let mut left = size;
        let mut result = Ok(());
        let mut buf = vec![0u8; block.min(size.max(1)) as usize];
        while left > 0 {
            let n = block.min(left) as usize;
            if whole {
                buf = vec![0u8; n];
            }
            if let Err(e) = file.read_exact(&mut buf[..n]) {
                result = Err(e);
                break;
            }
            hashes.push(block_hash(&buf[..n]));
            if whole && tx.send(std::mem::take(&mut buf)).is_err() {
                result = Err(io::Error::other("the hashing thread failed"));
                break;
            }
            left -= n as u64;
        }
        drop(tx);
        let sha = match hasher {
            Some(h) => Some(
                h.join()
                    .map_err(|_| io::Error::other("the hashing thread failed"))?,
            ),
            None => None,
        };
        result.map(|()| (hashes, sha))
    })
}
