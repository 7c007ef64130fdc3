//! The only `unsafe` code in fos: thin, safe wrappers over the few libc calls that
//! `std` does not offer.
//!
//! - `getifaddrs`: IPv4 interfaces *with their netmasks* (std has none; the
//!   `local-ip-address` crate has no netmasks and ~30 dependencies).
//! - `pthread_sigmask` + `sigwait`: signals are received by a plain thread, so no
//!   work ever runs inside an async-signal handler.
//! - `openat2(RESOLVE_BENEATH)` and the `*at` family: the sandbox opens user paths
//!   beneath a directory fd in one step, so no path can be swapped between check and use.
//! - `tcgetattr`/`tcsetattr` and `kill(SIGTSTP)`: prompts read key by key, passwords
//!   without echo, the raw mode of the prompt's line editor, Ctrl-Z at a prompt.
//! - `ioctl(TIOCGWINSZ)`: the terminal's width, so progress bars and the edited line fit.
//! - `gethostname`: the default announced server name.
//! - `sync_file_range` + `posix_fadvise`: large incoming files are written behind and
//!   dropped from the page cache as they go (see `writeback`); `cachestat` tells whether
//!   a large file about to be sent was in the cache at all.
//! - `poll`: the legacy data port waits for its one connection without polling.
//! - `setsockopt(TCP_QUICKACK)`: logins of clients that send two small writes with
//!   Nagle on are not held up by a delayed ACK.
//! - `bind` before `connect`: a client socket from a chosen local address (tests);
//!   `recv(MSG_PEEK | MSG_DONTWAIT)`: has a waiting client gone, without reading.
//! - `geteuid`: a local partial download is continued only if this user owns it.
//!
//! Every function here takes and returns safe types (`BorrowedFd`, `OwnedFd`, `CStr`,
//! `io::Result`); nothing outside this module needs to reason about raw pointers.
#![allow(unsafe_code)] // the one module where it is allowed: see the crate lints in Cargo.toml

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a call interrupted by a signal (EINTR) so callers never see it.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One IPv4 address of a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// The interface's address.
    pub addr: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// Whether this is a loopback interface.
    pub loopback: bool,
}

/// Lists the host's IPv4 interface addresses that are up, with their netmasks.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; we free it below exactly once.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs; its pointer fields are null or valid for the same lifetime.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & libc::IFF_UP as libc::c_uint != 0;
        if !up || ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr at least as large as
        // its family requires; we only reinterpret it as sockaddr_in after checking AF_INET.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: family is AF_INET, so both sockaddrs are sockaddr_in; read_unaligned
        // because the kernel's buffer gives no alignment promise for the cast type.
        let (addr, mask) = unsafe {
            (
                std::ptr::read_unaligned(ifa.ifa_addr as *const libc::sockaddr_in),
                std::ptr::read_unaligned(ifa.ifa_netmask as *const libc::sockaddr_in),
            )
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push(Interface {
            name,
            addr: Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
            netmask: Ipv4Addr::from(u32::from_be(mask.sin_addr.s_addr)),
            loopback: ifa.ifa_flags & libc::IFF_LOOPBACK as libc::c_uint != 0,
        });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The system host name, or `None` if it cannot be read.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; one byte is kept back so the
    // result is NUL-terminated even if the name was truncated.
    let ret = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if ret != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The signals a fos process turns into orderly work (shutdown, cancelling a transfer).
pub const SIGINT: i32 = libc::SIGINT;
/// See [`SIGINT`].
pub const SIGTERM: i32 = libc::SIGTERM;
/// The signal `fos-server` takes as "reopen the log file" (after a log rotation).
pub const SIGHUP: i32 = libc::SIGHUP;

fn sigset(signals: &[i32]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only writes within it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &s in signals {
            libc::sigaddset(set.as_mut_ptr(), s);
        }
        set.assume_init()
    }
}

/// Blocks `signals` in the calling thread and every thread it spawns afterwards, so
/// that they are delivered only to a thread waiting in [`wait_signal`]. Call it first
/// thing in `main`, before any other thread exists.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialised sigset; the old mask is not wanted (null).
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Waits until one of `signals` (blocked with [`block_signals`]) arrives; returns it.
pub fn wait_signal(signals: &[i32]) -> io::Result<i32> {
    let set = sigset(signals);
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` is a valid out-pointer.
    let ret = unsafe { libc::sigwait(&set, &mut sig) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(sig)
}

/// Turns terminal echo on `fd` on or off; returns whether it was on before.
/// Fails with an error if `fd` is not a terminal.
pub fn set_echo(fd: BorrowedFd<'_>, on: bool) -> io::Result<bool> {
    let mut t = MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the termios struct on success, and we only read it then.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), t.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful tcgetattr above.
    let mut t = unsafe { t.assume_init() };
    let was = t.c_lflag & libc::ECHO != 0;
    if on {
        t.c_lflag |= libc::ECHO;
    } else {
        t.c_lflag &= !libc::ECHO;
    }
    // SAFETY: `t` is a valid termios obtained from tcgetattr.
    cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) })?;
    Ok(was)
}

/// A terminal's settings, as [`term_mode`] read them; put them back with
/// [`set_term_mode`].
#[derive(Clone, Copy)]
pub struct TermMode(libc::termios);

impl std::fmt::Debug for TermMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TermMode")
    }
}

/// The bytes a terminal's special keys send (`stty -a`); 0 where a key is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermKeys {
    /// Interrupt, usually Ctrl-C.
    pub interrupt: u8,
    /// End of input, usually Ctrl-D.
    pub end: u8,
    /// Suspend, usually Ctrl-Z.
    pub suspend: u8,
    /// Erase the last character, usually Backspace (DEL).
    pub erase: u8,
    /// Erase the line, usually Ctrl-U.
    pub kill: u8,
}

impl TermMode {
    /// The same settings with echo, line editing and the signal keys off: each key
    /// arrives as soon as it is pressed, as a byte, and Ctrl-C, Ctrl-D and Ctrl-Z are
    /// bytes like the others instead of signals or an end of input.
    pub fn key_by_key(&self) -> TermMode {
        let mut t = self.0;
        t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        TermMode(t)
    }

    /// The bytes of the special keys in these settings.
    pub fn keys(&self) -> TermKeys {
        let cc = &self.0.c_cc;
        TermKeys {
            interrupt: cc[libc::VINTR],
            end: cc[libc::VEOF],
            suspend: cc[libc::VSUSP],
            erase: cc[libc::VERASE],
            kill: cc[libc::VKILL],
        }
    }
}

/// The settings of the terminal on `fd`; an error if `fd` is not a terminal.
pub fn term_mode(fd: BorrowedFd<'_>) -> io::Result<TermMode> {
    let mut t = MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the termios struct on success, and we only read it then.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), t.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful tcgetattr above.
    Ok(TermMode(unsafe { t.assume_init() }))
}

/// Applies `mode` to the terminal on `fd` once the output written so far has gone out;
/// with `discard_input`, what was typed but not read yet is thrown away (it was echoed
/// under the old settings), else typed-ahead input is kept.
pub fn set_term_mode(fd: BorrowedFd<'_>, mode: &TermMode, discard_input: bool) -> io::Result<()> {
    let when = if discard_input {
        libc::TCSAFLUSH
    } else {
        libc::TCSADRAIN
    };
    // SAFETY: `mode.0` is a valid termios obtained from tcgetattr.
    retry(|| cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), when, &mode.0) }))?;
    Ok(())
}

/// Suspends this process the way Ctrl-Z does in a shell (SIGTSTP), for a program
/// that reads Ctrl-Z as a byte; returns once it is continued (`fg`). A process that
/// no shell's job control watches (an orphaned process group) is not stopped.
pub fn suspend_self() -> io::Result<()> {
    // SAFETY: kill with our own pid and a valid signal number.
    cvt(unsafe { libc::kill(libc::getpid(), libc::SIGTSTP) })?;
    Ok(())
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with a descriptor a syscall has just returned to us, which
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat2(dir, path, flags, mode)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`:
/// the kernel resolves `path` (symlinks included) and fails with `EXDEV` if any step
/// would leave `dir`. Returns `ENOSYS` where openat2 does not exist (non-Linux, or
/// Linux before 5.6): the caller then walks the path itself.
pub fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        // libc's open_how is non-exhaustive (the kernel may grow it); this is the
        // version-0 layout openat2(2) documents, passed with its own size
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let how = OpenHow {
            flags: (flags | libc::O_CLOEXEC) as u64,
            mode: u64::from(mode),
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        };
        retry(|| {
            // SAFETY: `path` is NUL-terminated and `how` is a valid open_how whose size
            // we pass; the returned descriptor is owned by us alone.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    path.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            if ret < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(owned(ret as RawFd))
            }
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, path, flags, mode);
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: `name` is NUL-terminated; the descriptor returned is ours alone.
        let fd = cvt(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        Ok(owned(fd))
    })
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })?;
    Ok(())
}

/// `unlinkat(dir, name)`, removing a directory when `dir_entry` is set. Never follows
/// a symlink: a link is removed, not its target.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, dir_entry: bool) -> io::Result<()> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `renameat(from_dir, from, to_dir, to)`: atomic replace of `to`. With `no_replace`
/// it fails with `EEXIST` instead of replacing (Linux `renameat2(RENAME_NOREPLACE)`;
/// elsewhere `linkat` + `unlinkat`, which is equally atomic for the target name).
pub fn renameat(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
    no_replace: bool,
) -> io::Result<()> {
    if no_replace {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: both names are NUL-terminated.
            let ret = unsafe {
                libc::renameat2(
                    from_dir.as_raw_fd(),
                    from.as_ptr(),
                    to_dir.as_raw_fd(),
                    to.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            match cvt(ret) {
                Ok(_) => return Ok(()),
                // EINVAL: a filesystem without RENAME_NOREPLACE; fall through to linkat
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        // SAFETY: both names are NUL-terminated.
        cvt(unsafe {
            libc::linkat(
                from_dir.as_raw_fd(),
                from.as_ptr(),
                to_dir.as_raw_fd(),
                to.as_ptr(),
                0,
            )
        })?;
        return unlinkat(from_dir, from, false);
    }
    // SAFETY: both names are NUL-terminated.
    cvt(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
        )
    })?;
    Ok(())
}

/// What [`fstatat`] reports about a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `S_IFMT` bits: see the `is_*` methods.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// The file type bits of a `st_mode` (`S_IFMT`), re-exported so no other module
/// needs libc.
// mode_t differs between platforms (u16 on macOS): the casts are no-ops on Linux only
#[allow(clippy::unnecessary_cast)]
pub mod ftype {
    /// The mask of the type bits.
    pub const MASK: u32 = libc::S_IFMT as u32;
    /// A regular file.
    pub const FILE: u32 = libc::S_IFREG as u32;
    /// A directory.
    pub const DIR: u32 = libc::S_IFDIR as u32;
    /// A symbolic link.
    pub const LINK: u32 = libc::S_IFLNK as u32;
}

/// The `is_*` tests of a stat result, from its `mode` field: one definition for
/// [`Stat`] and [`FileStat`].
macro_rules! type_tests {
    () => {
        /// A regular file.
        pub fn is_file(&self) -> bool {
            self.mode & ftype::MASK == ftype::FILE
        }
        /// A directory.
        pub fn is_dir(&self) -> bool {
            self.mode & ftype::MASK == ftype::DIR
        }
        /// A symbolic link (only seen when not following links).
        pub fn is_symlink(&self) -> bool {
            self.mode & ftype::MASK == ftype::LINK
        }
    };
}

impl Stat {
    type_tests!();
}

/// `fstatat(dir, name)`, following a final symlink only when `follow` is set. An empty
/// `name` stats `dir` itself.
pub fn fstatat(dir: BorrowedFd<'_>, name: &CStr, follow: bool) -> io::Result<Stat> {
    let st = raw_fstatat(dir, name, follow)?;
    // mode_t and time_t differ between platforms: the casts are no-ops on Linux only
    #[allow(clippy::unnecessary_cast)]
    Ok(Stat {
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime: st.st_mtime as i64,
    })
}

/// The `fstatat` both [`fstatat`] and [`lstatat`] make: an empty `name` stats `dir`.
fn raw_fstatat(dir: BorrowedFd<'_>, name: &CStr, follow: bool) -> io::Result<libc::stat> {
    let mut flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated and `st` is written on success only, when we read it.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: initialised by the successful fstatat.
    Ok(unsafe { st.assume_init() })
}

/// `readlinkat(dir, name)`: the target of a symlink, as bytes.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is writable for `buf.len()` bytes; readlinkat writes at most that.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The names in the directory open at `dir` (without `.` and `..`), unsorted.
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    // fdopendir takes ownership of its descriptor, so it gets a duplicate of ours; the
    // duplicate shares the file offset, so start from the beginning.
    let dup = dir.try_clone_to_owned()?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(dup);
    // SAFETY: `raw` is a descriptor we own; on success the DIR stream owns it.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let err = io::Error::last_os_error();
        drop(owned(raw));
        return Err(err);
    }
    // SAFETY: `stream` is a valid DIR* until closedir below.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    let result = loop {
        // readdir reports errors only through errno, so clear it first.
        // SAFETY: errno is thread-local; writing it is always allowed.
        unsafe { *errno_ptr() = 0 };
        // SAFETY: `stream` is a valid DIR*.
        let ent = unsafe { libc::readdir(stream) };
        if ent.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error().unwrap_or(0) == 0 {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: `ent` points to a dirent valid until the next readdir call; d_name is
        // NUL-terminated.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(OsString::from_vec(bytes.to_vec()));
        }
    };
    // SAFETY: `stream` is valid and closed exactly once (closing the duplicate fd too).
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

#[cfg(target_os = "linux")]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__errno_location() }
}

#[cfg(not(target_os = "linux"))]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__error() }
}

/// Converts a name for the `*at` calls; a NUL byte inside is an `InvalidInput` error.
pub fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in name"))
}

/// Errno values the sandbox maps to its own errors.
pub mod errno {
    /// A path step would leave the directory (openat2 `RESOLVE_BENEATH`).
    pub const EXDEV: i32 = libc::EXDEV;
    /// Too many symlinks, or a symlink met with `O_NOFOLLOW`.
    pub const ELOOP: i32 = libc::ELOOP;
    /// The syscall does not exist here.
    pub const ENOSYS: i32 = libc::ENOSYS;
    /// Not a directory.
    pub const ENOTDIR: i32 = libc::ENOTDIR;
    /// Is a directory.
    pub const EISDIR: i32 = libc::EISDIR;
    /// Directory not empty.
    pub const ENOTEMPTY: i32 = libc::ENOTEMPTY;
    /// File exists.
    pub const EEXIST: i32 = libc::EEXIST;
    /// Name too long.
    pub const ENAMETOOLONG: i32 = libc::ENAMETOOLONG;
    /// No space left on device.
    pub const ENOSPC: i32 = libc::ENOSPC;
    /// Disk quota exceeded.
    pub const EDQUOT: i32 = libc::EDQUOT;
    /// Permission denied.
    pub const EACCES: i32 = libc::EACCES;
    /// Operation not permitted.
    pub const EPERM: i32 = libc::EPERM;
    /// Operation not permitted on this kind of file (e.g. rename of a directory into itself).
    pub const EINVAL: i32 = libc::EINVAL;
    /// Not a seekable file (a pipe or socket).
    pub const ESPIPE: i32 = libc::ESPIPE;
    /// Not supported by this file or filesystem.
    pub const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;
    /// No such device: opening a FIFO for writing, without blocking, that nobody reads.
    pub const ENXIO: i32 = libc::ENXIO;
}

/// Open flags the sandbox uses, re-exported so no other module needs libc.
pub mod oflag {
    /// Read only.
    pub const RDONLY: i32 = libc::O_RDONLY;
    /// Write only.
    pub const WRONLY: i32 = libc::O_WRONLY;
    /// Read and write.
    pub const RDWR: i32 = libc::O_RDWR;
    /// Create.
    pub const CREAT: i32 = libc::O_CREAT;
    /// With CREAT: fail if it exists.
    pub const EXCL: i32 = libc::O_EXCL;
    /// Must be a directory.
    pub const DIRECTORY: i32 = libc::O_DIRECTORY;
    /// Fail on a final symlink.
    pub const NOFOLLOW: i32 = libc::O_NOFOLLOW;
    /// Do not block opening a FIFO (harmless on regular files).
    pub const NONBLOCK: i32 = libc::O_NONBLOCK;
    /// Append.
    pub const APPEND: i32 = libc::O_APPEND;
    /// Opening a terminal does not make it the controlling one.
    pub const NOCTTY: i32 = libc::O_NOCTTY;
}

/// Starts write-back of `len` bytes at `offset` of a file; with `wait`, also waits for
/// any write-back of the range already under way and for this one to finish. `ENOSYS`
/// where the call does not exist (non-Linux).
pub fn sync_range(fd: BorrowedFd<'_>, offset: u64, len: u64, wait: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        let (offset, len) = (off_t(offset)?, off_t(len)?);
        // SAFETY: sync_file_range on a valid descriptor with integer arguments.
        retry(|| cvt(unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, len, flags) }))?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, offset, len, wait);
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// Asks the kernel to drop the (clean) cached pages of a file range: written data that
/// will not be read again soon. Advice only.
pub fn drop_cached(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let (offset, len) = (off_t(offset)?, off_t(len)?);
        // SAFETY: posix_fadvise on a valid descriptor with integer arguments; it returns
        // the error number instead of setting errno.
        match unsafe { libc::posix_fadvise(fd.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED) }
        {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, offset, len);
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// How many pages of a file range are in the page cache (`cachestat`, Linux 6.5 and
/// later; `len` 0 means to the end). `ENOSYS` where the call does not exist.
pub fn cached_pages(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        // the generic syscall table's number, the same on every Linux architecture
        const SYS_CACHESTAT: libc::c_long = 451;
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        #[repr(C)]
        #[derive(Default)]
        struct CacheStat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        let range = Range { off: offset, len };
        let mut stat = CacheStat::default();
        // SAFETY: cachestat reads one `Range` and writes one `CacheStat`, both live,
        // properly laid out (repr(C), the kernel's field order) for the call.
        let ret = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                fd.as_raw_fd() as libc::c_uint,
                &range as *const Range,
                &mut stat as *mut CacheStat,
                0 as libc::c_uint,
            )
        };
        if ret == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat.nr_cache)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, offset, len);
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

#[cfg(target_os = "linux")]
fn off_t(n: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Clears `O_NONBLOCK` on a descriptor opened with it.
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
    Ok(())
}

/// Asks the kernel to acknowledge received data at once rather than after the delayed-ACK
/// timer (`TCP_QUICKACK`; Linux clears it again by itself, so callers set it before each
/// read where it matters). A peer that sends two small records in two writes with Nagle
/// on (the Python client's login) holds the second until the first is acknowledged; a
/// delayed ACK then costs it up to 40 ms per login.
pub fn quick_ack(socket: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `socket` is a live descriptor for the call; the option value is a valid
    // c_int whose size is passed alongside it.
    cvt(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Makes the close of `socket` a reset (`SO_LINGER` with a zero timeout): the peer hears
/// of the end at once, even with data of its own still on the way, as it does when a
/// process holding the socket dies with unread input. The test proxy uses it to pass a
/// killed server's reset on to the client.
pub fn reset_on_close(socket: BorrowedFd<'_>) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `socket` is a live descriptor for the call; the option value is a valid
    // `linger` whose size is passed alongside it.
    cvt(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Waits until `fd` is readable (for a listener: a connection is waiting) or `timeout`
/// passes; `Ok(false)` on the timeout. Interrupted waits are resumed with the time left.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // rounded up, so a wait never ends early for want of a millisecond
        let ms = left
            .as_micros()
            .div_ceil(1000)
            .min(libc::c_int::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and the count passed is 1.
        match cvt(unsafe { libc::poll(&mut pfd, 1, ms) }) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What [`lstatat`] reports: the fields that tell whether a file changed (a
/// nanosecond modification time and the inode's change time), and its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Device.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Inode change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
}

impl FileStat {
    type_tests!();
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)` with nanosecond times: a final symlink
/// is described, never followed. An empty `name` describes `dir` itself.
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<FileStat> {
    let st = raw_fstatat(dir, name, false)?;
    // time_t and c_long are i64 on 64-bit Linux only: see `fstatat`
    #[allow(clippy::unnecessary_cast)]
    let ns = |s: libc::time_t, n: libc::c_long| (s as i64).saturating_mul(1_000_000_000) + n as i64;
    #[allow(clippy::unnecessary_cast)] // see `fstatat`
    Ok(FileStat {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
        ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
    })
}

/// Flushes every dirty page and inode of the file system holding `fd` and waits for
/// it (`syncfs`; elsewhere `fsync` of `fd` alone). One call makes a whole batch of
/// files durable.
pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: syncfs on a valid descriptor.
        retry(|| cvt(unsafe { libc::syncfs(fd.as_raw_fd()) }))?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: fsync on a valid descriptor.
        retry(|| cvt(unsafe { libc::fsync(fd.as_raw_fd()) }))?;
        Ok(())
    }
}

/// Copies up to `len` bytes from `src` at `src_off` to `dst` at `dst_off` inside the
/// kernel (`copy_file_range`: on file systems that can, it shares the blocks instead of
/// copying them). Returns the bytes copied (0 at the end of `src`); `ENOSYS`,
/// `EXDEV`, `EINVAL` or `EOPNOTSUPP` where it cannot be used, so the caller copies itself.
pub fn copy_file_range(
    src: BorrowedFd<'_>,
    src_off: u64,
    dst: BorrowedFd<'_>,
    dst_off: u64,
    len: usize,
) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        let mut so = off_t(src_off)?;
        let mut doff = off_t(dst_off)?;
        retry(|| {
            // SAFETY: both descriptors are valid for the call, the offsets are live
            // locals the kernel updates, and no memory of ours is read or written.
            let n = unsafe {
                libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut doff, len, 0)
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (src, src_off, dst, dst_off, len);
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// Bytes a TCP socket has sent (and had acknowledged) and received, from `TCP_INFO`
/// (Linux 4.2 and later): what actually crossed the wire, TLS included. `ENOSYS`
/// elsewhere.
pub fn tcp_bytes(socket: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    {
        let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` is a writable tcp_info of the size passed in `len`, and the
        // kernel writes at most `len` bytes; zeroed first, so fields an older kernel
        // does not fill read as 0.
        cvt(unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        })?;
        // SAFETY: zero-initialised, then (partly) written by the kernel: every byte is set.
        let info = unsafe { info.assume_init() };
        Ok((info.tcpi_bytes_acked, info.tcpi_bytes_received))
    }
    #[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
    {
        let _ = socket;
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// Window-size change: the progress bars re-read the terminal's width.
pub const SIGWINCH: i32 = libc::SIGWINCH;

impl TermMode {
    /// The same settings in the raw mode a line editor needs: bytes arrive one at a
    /// time as typed, without echo; Ctrl-C, Ctrl-Z, Ctrl-S/Q, Ctrl-V and Ctrl-O arrive as
    /// bytes instead of acting on their own; Enter is `\r`. Output processing stays on,
    /// so a `\n` written by anyone still starts a new line.
    pub fn raw(&self) -> TermMode {
        let mut t = self.0;
        t.c_iflag &= !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
        t.c_cflag |= libc::CS8;
        t.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        TermMode(t)
    }
}

/// `(columns, rows)` of the terminal on `fd`; `None` when `fd` is not a terminal or
/// the terminal does not know its size (a pseudo-terminal nobody sized reports 0).
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = MaybeUninit::<libc::winsize>::uninit();
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer on success; we read it
    // only then.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    if ret == -1 {
        return None;
    }
    // SAFETY: initialised by the successful ioctl above.
    let ws = unsafe { ws.assume_init() };
    (ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Whether the peer of a connected socket has closed its end (or the socket has
/// failed), found without reading anything and without blocking: data waiting, or
/// nothing yet, is `false`.
pub fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv() into one valid byte; MSG_PEEK leaves the data queued and
    // MSG_DONTWAIT makes this one call non-blocking without changing the socket.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => !matches!(
            io::Error::last_os_error().kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// A TCP connection to `remote` from the address `local` (port chosen by the kernel),
/// giving up after `timeout`. std can only bind a socket before `connect` for a
/// listener; the tests use this to stand in for a second client host on loopback
/// (127.0.0.2 and the like).
pub fn connect_from(
    local: std::net::IpAddr,
    remote: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    use std::net::SocketAddr;
    let local = SocketAddr::new(local, 0);
    let family = if remote.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket() with integer arguments; the descriptor is owned at once.
    let fd = owned(cvt(unsafe {
        libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
    })?);
    let tv = libc::timeval {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: `tv` is a valid timeval whose size we pass. Linux bounds a blocking
    // connect() by the send timeout.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    let (addr, len) = sockaddr(local);
    // SAFETY: `addr` holds a sockaddr of `len` bytes for this socket's family.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    let (addr, len) = sockaddr(remote);
    // SAFETY: as above. EINTR is not retried: a second connect() would see EALREADY.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINPROGRESS) | Some(libc::EAGAIN) => {
                io::Error::new(io::ErrorKind::TimedOut, "connect timed out")
            }
            _ => e,
        });
    }
    let tcp = std::net::TcpStream::from(fd);
    tcp.set_write_timeout(None)?;
    Ok(tcp)
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    use std::net::SocketAddr;
    // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Asks the kernel to start reading a whole file into the page cache now, in the
/// background (`POSIX_FADV_WILLNEED`): a file about to be read soon. Advice only.
pub fn will_need(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: posix_fadvise on a valid descriptor with integer arguments; it returns
        // the error number instead of setting errno.
        match unsafe { libc::posix_fadvise(fd.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) } {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// The effective user id of this process (a local partial download is continued only
/// if this user owns it).
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail
    unsafe { libc::geteuid() }
}

/// The process's file mode creation mask. Read from `/proc/self/status` where Linux
/// has it (reading it there changes nothing); else with `umask(2)`, which can only be
/// read by setting it, so it is set back at once (a file another thread creates in that
/// instant gets mode `0o022`'s mask: no wider than usual).
pub fn umask() -> u32 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(mask) = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
    {
        return mask;
    }
    // SAFETY: umask cannot fail and touches no memory; the old mask is put back.
    let old = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on macOS
    let old = old as u32;
    old
}

/// Opens the directory at `path` (following a symlink in the path itself, as any
/// command does with the path it is given) as a descriptor to resolve names from.
pub fn open_dir(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)?;
    Ok(OwnedFd::from(dir))
}

/// Opens (creating it, mode 0600) a file that is only ever `flock`ed or rewritten in
/// place, read and write, never through a final symlink: the lock files of the users
/// file, the login records and the sweeper's election.
pub fn open_lock_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Takes `file`'s exclusive lock, trying again every `poll` for at most `wait`; a
/// holder that keeps it longer is a `TimedOut` error that says `why`.
pub fn lock_within(
    file: &std::fs::File,
    wait: std::time::Duration,
    poll: std::time::Duration,
    why: &'static str,
) -> io::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(poll);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, why));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_umask_reads_back_as_set() {
        // the mask of this test process, read the slow way, is what umask() says
        // SAFETY: as in umask(); the mask is restored at once.
        let old = unsafe { libc::umask(0o027) };
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        #[allow(clippy::unnecessary_cast)]
        let expected = old as u32;
        assert_eq!(umask(), expected);
    }

    #[test]
    fn interfaces_include_loopback_with_a_mask() {
        let ifs = interfaces().expect("getifaddrs works on every Unix");
        let lo = ifs
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface exists");
        assert_eq!(lo.addr, Ipv4Addr::LOCALHOST);
        assert_eq!(lo.netmask, Ipv4Addr::new(255, 0, 0, 0));
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(hostname().is_some_and(|h| !h.is_empty()));
    }

    #[test]
    fn no_terminal_has_no_mode_and_no_size() {
        let f = std::fs::File::open("/dev/null").expect("/dev/null opens");
        use std::os::fd::AsFd;
        assert!(term_mode(f.as_fd()).is_err());
        assert_eq!(window_size(f.as_fd()), None);
    }

    #[test]
    fn cstring_refuses_nul() {
        assert!(cstring(b"a\0b").is_err());
        assert_eq!(cstring(b"ab").unwrap().as_bytes(), b"ab");
    }
}
