//! Writing a large incoming file without flooding the page cache.
//!
//! Plain buffered writes of a large file leave every page dirty in the cache until the
//! kernel gets round to writing it back: a 1 GiB upload pushes 1 GiB of other cached
//! data out of a small host's memory, the final fsync has all of it still to do, and
//! each write needs a fresh page, which on some hosts costs more than the copy into it
//! (virtual machines that hand freed memory back to the hypervisor pay a fault per new
//! page: `make bench` saw 1 GiB written this way take 1.7-2.3 s, against 0.4 s below).
//!
//! [`WriteBehind`] is the usual streaming pattern instead: as soon as a window of
//! [`WINDOW`] bytes is complete its write-back is started, and once the next one is
//! complete too the older one is waited for and dropped from the cache. The pages are
//! reused while still warm, a transfer holds about two windows of the cache, and the
//! disk works while the network does. A sustained transfer cannot outrun the disk
//! either way; this makes it wait a window behind instead of at the dirty limit.
//!
//! Only for transfers of [`MIN`] bytes and more: a small file is better left to the
//! cache. Where the calls do not exist (non-Linux, or a filesystem without them) the
//! writes are plain.
//!
//! Sending a large file pays the same fresh-page cost when the file is not cached: the
//! read fills a new page for every 4 KiB (a 1 GiB download read at 1.4 GB/s this way,
//! and at 3.4 GB/s with its pages recycled). [`ReadBehind`] drops each window from the
//! cache once it has been read, but only for a file that was (almost) not in the cache
//! when the transfer began — at most a sixteenth of it, or three windows, cached: the
//! tail a write-behind leaves, or a few pages someone peeked at. It then leaves the
//! cache about as it found it, and never evicts a file that other clients have been
//! reading. A cached file is read as it is.

use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;

use crate::sys;

/// Bytes per write-back window.
pub const WINDOW: u64 = 8 << 20;

/// Transfers at least this large are written behind; smaller ones are written plainly.
pub const MIN: u64 = 4 * WINDOW;

/// The page size `cachestat` counts in (4 KiB on the platforms fos runs on; a larger
/// page only makes a file look more cached, never less).
const PAGE: u64 = 4096;

/// A file being written sequentially from `start`, written back as it goes (see the
/// module notes).
#[derive(Debug)]
pub struct WriteBehind<W: Write + AsFd> {
    file: W,
    /// Offset just past the last byte written.
    pos: u64,
    /// Write-back has been started for everything before this offset.
    started: u64,
    /// Everything before this offset has been written back and dropped from the cache.
    dropped: u64,
    on: bool,
}

impl<W: Write + AsFd> WriteBehind<W> {
    /// Wraps `file`, whose write position is `start`, for a transfer of `len` more bytes.
    pub fn new(file: W, start: u64, len: u64) -> WriteBehind<W> {
        WriteBehind {
            file,
            pos: start,
            started: start,
            dropped: start,
            on: len >= MIN,
        }
    }

    /// The destination of a received stream: `file`, written from `start` for `len`
    /// more bytes, behind a buffer of one transfer chunk (less for a smaller file).
    pub fn buffered(file: W, start: u64, len: u64) -> BufWriter<WriteBehind<W>> {
        let room = usize::try_from(len).unwrap_or(crate::transfer::CHUNK);
        BufWriter::with_capacity(
            crate::transfer::CHUNK.min(room),
            WriteBehind::new(file, start, len),
        )
    }

    /// After a write: start write-back of a completed window, then wait for and drop
    /// the window before it.
    fn behind(&mut self) -> io::Result<()> {
        if self.pos - self.started < WINDOW {
            return Ok(());
        }
        let fd = self.file.as_fd();
        if let Err(e) = sys::sync_range(fd, self.started, self.pos - self.started, false) {
            return self.unsupported(e);
        }
        self.started = self.pos;
        let done = self.started - WINDOW;
        if done > self.dropped {
            // waiting here is what keeps the cache small: it reports write errors too
            if let Err(e) = sys::sync_range(fd, self.dropped, done - self.dropped, true) {
                return self.unsupported(e);
            }
            // advice only: a failure costs memory, never data
            let _ = sys::drop_cached(fd, self.dropped, done - self.dropped);
            self.dropped = done;
        }
        Ok(())
    }

    /// A call the platform or filesystem does not offer turns write-behind off; any
    /// other failure (an I/O error during write-back) is the write's failure.
    fn unsupported(&mut self, e: io::Error) -> io::Result<()> {
        match e.raw_os_error() {
            Some(
                sys::errno::ENOSYS
                | sys::errno::EINVAL
                | sys::errno::ESPIPE
                | sys::errno::EOPNOTSUPP,
            ) => {
                self.on = false;
                Ok(())
            }
            _ => Err(e),
        }
    }
}

impl<W: Write + AsFd> Write for WriteBehind<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.pos += n as u64;
        if self.on {
            self.behind()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A file being read sequentially from `start` for a transfer; if none of it was cached,
/// what has been read is dropped from the cache as it goes (see the module notes).
#[derive(Debug)]
pub struct ReadBehind<R: Read + AsFd> {
    file: R,
    pos: u64,
    /// Everything from `start` to here has been dropped from the cache.
    dropped: u64,
    on: bool,
}

impl<R: Read + AsFd> ReadBehind<R> {
    /// Wraps `file`, whose read position is `start`, for a transfer of `len` bytes.
    pub fn new(file: R, start: u64, len: u64) -> ReadBehind<R> {
        // "cold": at most a sixteenth of it cached, or three windows, whichever is more
        // (a file just written behind keeps up to two windows and a bit cached); no
        // cachestat (older kernels): leave the cache alone
        let most = (len / 16).max(3 * WINDOW);
        let cold = || {
            sys::cached_pages(file.as_fd(), start, len)
                .is_ok_and(|n| n.saturating_mul(PAGE) <= most)
        };
        let on = len >= MIN && cold();
        ReadBehind {
            file,
            pos: start,
            dropped: start,
            on,
        }
    }

    #[cfg(test)]
    /// Whether this transfer drops what it has read from the cache.
    pub fn is_dropping(&self) -> bool {
        self.on
    }
}

impl<R: Read + AsFd> Read for ReadBehind<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        if self.on && self.pos - self.dropped >= WINDOW {
            // advice only: a failure costs memory, never data
            let _ = sys::drop_cached(self.file.as_fd(), self.dropped, self.pos - self.dropped);
            self.dropped = self.pos;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::io::{Read, Seek};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 253) as u8).collect()
    }

    #[test]
    fn a_large_file_is_written_back_as_it_goes_and_byte_exact() {
        // removed on drop: a failing test leaves no scratch directory behind
        let tmp = TempDir::new();
        let dir = tmp.path();
        let path = dir.join("f");
        let src = data(MIN as usize + 3 * WINDOW as usize + 12_345);
        let mut file = std::fs::File::create(&path).unwrap();
        let mut w = WriteBehind::new(&mut file, 0, src.len() as u64);
        // uneven pieces, as frames arrive
        for piece in src.chunks(256 * 1024 + 7) {
            w.write_all(piece).unwrap();
        }
        w.flush().unwrap();
        assert!(w.on, "write-behind stays on where the calls exist");
        assert!(
            w.dropped >= src.len() as u64 - 2 * WINDOW && w.dropped > 0,
            "all but the last windows were written back: {}",
            w.dropped
        );
        assert!(std::fs::read(&path).unwrap() == src);
    }

    #[test]
    fn a_resumed_file_is_written_behind_from_its_offset() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let path = dir.join("f");
        let src = data(MIN as usize + WINDOW as usize + 99);
        let head = 1_000_001;
        std::fs::write(&path, &src[..head]).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut w = WriteBehind::new(&mut file, head as u64, (src.len() - head) as u64);
        w.write_all(&src[head..]).unwrap();
        assert!(w.dropped > head as u64 && w.dropped < src.len() as u64);
        let mut back = Vec::new();
        let mut f = std::fs::File::open(&path).unwrap();
        f.rewind().unwrap();
        f.read_to_end(&mut back).unwrap();
        assert!(back == src);
    }

    #[test]
    fn a_cold_file_is_read_behind_and_a_cached_one_is_left_cached() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let path = dir.join("f");
        let src = data(MIN as usize + 2 * WINDOW as usize + 4321);
        std::fs::write(&path, &src).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        let _ = sys::drop_cached(file.as_fd(), 0, 0);
        let pages = |f: &std::fs::File| sys::cached_pages(f.as_fd(), 0, 0);
        let cold = pages(&file).is_ok_and(|n| n == 0);

        let mut r = ReadBehind::new(&file, 0, src.len() as u64);
        // where the kernel can tell (cachestat) and drop (not tmpfs), a cold file is
        // read behind; anywhere else it is read plainly
        assert_eq!(r.is_dropping(), cold);
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert!(back == src);
        if cold {
            let left = pages(&file).unwrap() * 4096;
            assert!(
                left < src.len() as u64 / 2,
                "{left} bytes of {} still cached",
                src.len()
            );
        }

        // just written behind: its last windows are still cached, and it is read behind
        let _ = std::fs::remove_file(&path);
        let mut out = std::fs::File::create(&path).unwrap();
        WriteBehind::new(&mut out, 0, src.len() as u64)
            .write_all(&src)
            .unwrap();
        out.sync_all().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        if cold {
            assert!(ReadBehind::new(&file, 0, src.len() as u64).is_dropping());
        }

        // now cached (read in full without dropping): read as it is, left in the cache
        let mut all = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        let before = pages(&file);
        let mut r = ReadBehind::new(std::fs::File::open(&path).unwrap(), 0, src.len() as u64);
        assert!(!r.is_dropping());
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert!(back == src);
        if let Ok(before) = before {
            assert!(
                pages(&file).unwrap() >= before,
                "nothing cached was dropped"
            );
        }
    }

    #[test]
    fn a_small_file_is_written_plainly() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let mut file = std::fs::File::create(dir.join("f")).unwrap();
        let mut w = WriteBehind::new(&mut file, 0, MIN - 1);
        w.write_all(&data(WINDOW as usize * 2)).unwrap();
        assert!(!w.on && w.dropped == 0 && w.started == 0);
    }

    #[test]
    fn what_cannot_be_written_behind_is_written_plainly() {
        // a pipe has no page cache: sync_file_range refuses it (ESPIPE)
        let (r, mut wr) = std::io::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut r = r;
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        let src = data(WINDOW as usize + 10);
        {
            let mut w = WriteBehind::new(&mut wr, 0, MIN);
            w.write_all(&src).unwrap();
            assert!(!w.on, "turned off, not failed");
        }
        drop(wr);
        assert!(reader.join().unwrap() == src);
    }
}
