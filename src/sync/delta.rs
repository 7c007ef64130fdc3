//! The client's side of a block delta: hash the local file's blocks (and the whole
//! file, on a second thread) to compare with the server's block list, then send only
//! the blocks that differ (see `server::delta` for how the server builds the file).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use crate::protocol::frame::{Kind, write_frame};
use crate::protocol::sync::{BLOCK_HASH, block_hash};
use crate::transfer;

/// Bytes of file content per `Data` frame of a patch (after its 8-byte offset).
const FRAME: usize = 256 << 10;

/// The hash of each `block`-sized block of the first `size` bytes of `file`, and the
/// SHA-256 of all of them.
pub fn hash_blocks(
    file: &mut File,
    size: u64,
    block: u64,
) -> io::Result<(Vec<[u8; BLOCK_HASH]>, [u8; 32])> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let whole = s.spawn(move || {
            let mut ctx = transfer::sha();
            for b in rx {
                ctx.update(&b);
            }
            transfer::finish(ctx)
        });
        let mut hashes = Vec::with_capacity(size.div_ceil(block) as usize);
        let mut left = size;
        let mut result = Ok(());
        while left > 0 {
            let n = block.min(left) as usize;
            let mut buf = vec![0u8; n];
            if let Err(e) = file.read_exact(&mut buf) {
                result = Err(e);
                break;
            }
            hashes.push(block_hash(&buf));
            if tx.send(buf).is_err() {
                result = Err(io::Error::other("the hashing thread failed"));
                break;
            }
            left -= n as u64;
        }
        drop(tx);
        let whole = whole
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?;
        result.map(|()| (hashes, whole))
    })
}

/// The blocks of `ours` that `theirs` (the server's list, [`BLOCK_HASH`] bytes per
/// block) does not have at the same index.
pub fn changed_blocks(ours: &[[u8; BLOCK_HASH]], theirs: &[u8]) -> Vec<u64> {
    ours.iter()
        .enumerate()
        .filter(|(i, h)| theirs.get(i * BLOCK_HASH..(i + 1) * BLOCK_HASH) != Some(&h[..]))
        .map(|(i, _)| i as u64)
        .collect()
}

/// Sends the given blocks of `file` as patch frames (offset, bytes), then `End` with
/// `sha`. Returns the content bytes sent.
pub fn send_blocks(
    w: &mut impl Write,
    file: &File,
    size: u64,
    block: u64,
    blocks: &[u64],
    sha: &[u8; 32],
) -> io::Result<u64> {
    let mut buf = vec![0u8; 8 + FRAME];
    let mut sent = 0;
    for &b in blocks {
        let start = b * block;
        let end = (start + block).min(size);
        let mut off = start;
        while off < end {
            let n = ((end - off) as usize).min(FRAME);
            buf[..8].copy_from_slice(&off.to_be_bytes());
            file.read_exact_at(&mut buf[8..8 + n], off)?;
            write_frame(w, Kind::Data, &buf[..8 + n])?;
            off += n as u64;
            sent += n as u64;
        }
    }
    write_frame(w, Kind::End, sha)?;
    w.flush()?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_blocks_are_listed() {
        let a = [[1u8; BLOCK_HASH], [2; BLOCK_HASH], [3; BLOCK_HASH]];
        let mut theirs = Vec::new();
        for h in [[1u8; BLOCK_HASH], [9; BLOCK_HASH]] {
            theirs.extend_from_slice(&h);
        }
        assert_eq!(changed_blocks(&a, &theirs), vec![1, 2]);
    }
}
