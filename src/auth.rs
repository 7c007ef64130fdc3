//! The users file (`user_credentials.txt`): `user:secret` per line, as the Python tool
//! writes it, where `secret` is either a plain-text password (still accepted, with a
//! warning, for drop-in use) or a PHC string
//! `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (standard base64, no padding).
//!
//! Verification is constant-time, and every failed check costs one PBKDF2 run, whether
//! the user exists or not, so timing does not reveal user names. Rewrites of the file
//! are atomic (temp file + rename) and keep its permissions.
//!
//! This module does not throttle; the server does (see `server::limits`).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use ring::pbkdf2;

/// PBKDF2 iterations for new hashes (OWASP's recommendation for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Largest iteration count accepted from a users file (bounds the CPU one login costs).
pub const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const PHC_ID: &str = "$pbkdf2-sha256$";
/// Largest users file read, in bytes.
const MAX_FILE: u64 = 16 << 20;

/// Errors of the credentials layer.
#[derive(Debug)]
pub enum Error {
    /// The users file could not be read or written.
    Io(PathBuf, io::Error),
    /// The user name is not of the allowed form.
    BadUsername(String),
    /// The password is empty or contains a character the file format cannot hold.
    BadPassword(&'static str),
    /// The user's line cannot be rewritten by the server.
    NotRewritable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::BadUsername(u) => write!(
                f,
                "invalid user name {:?}: use [A-Za-z0-9_][A-Za-z0-9._-]{{0,63}}",
                crate::log::escape(u)
            ),
            Error::BadPassword(why) => write!(f, "invalid password: {why}"),
            Error::NotRewritable(why) => write!(f, "cannot change this password: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Whether `name` is an acceptable user name: `[A-Za-z0-9_][A-Za-z0-9._-]{0,63}`, and
/// never `.` or `..` (which the pattern already excludes by its first character).
pub fn valid_username(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// A stored secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A plain-text password (legacy files).
    Plain(String),
    /// A PBKDF2-HMAC-SHA256 hash.
    Pbkdf2 {
        /// Iteration count.
        iterations: NonZeroU32,
        /// Salt.
        salt: Vec<u8>,
        /// Derived key.
        hash: Vec<u8>,
    },
}

impl fmt::Debug for Secret {
    // never print a password or a hash, even in debug output
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(..)"),
            Secret::Pbkdf2 { iterations, .. } => write!(f, "Secret::Pbkdf2(i={iterations})"),
        }
    }
}

impl Secret {
    /// Parses the secret part of a line: a PHC pbkdf2-sha256 string or plain text.
    /// A malformed PHC string is an error, not a plain password.
    pub fn parse(s: &str) -> Result<Secret, &'static str> {
        let Some(rest) = s.strip_prefix(PHC_ID) else {
            if s.starts_with('$') {
                return Err("unsupported hash format (only $pbkdf2-sha256$)");
            }
            return Ok(Secret::Plain(s.to_string()));
        };
        let mut parts = rest.split('$');
        let (Some(params), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed $pbkdf2-sha256$ string");
        };
        let iterations = params
            .strip_prefix("i=")
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|&i| i <= MAX_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or("bad iteration count")?;
        let salt = b64_decode(salt).ok_or("bad salt encoding")?;
        let hash = b64_decode(hash).ok_or("bad hash encoding")?;
        if salt.len() < 8 || hash.len() != HASH_LEN {
            return Err("bad salt or hash length");
        }
        Ok(Secret::Pbkdf2 {
            iterations,
            salt,
            hash,
        })
    }

    /// Hashes `password` with a fresh 16-byte random salt.
    pub fn hash(password: &str, iterations: u32) -> Secret {
        let mut salt = vec![0u8; SALT_LEN];
        crate::random::fill(&mut salt);
        Secret::hash_with_salt(password, iterations, salt)
    }

    fn hash_with_salt(password: &str, iterations: u32, salt: Vec<u8>) -> Secret {
        let iterations = NonZeroU32::new(iterations.max(1)).expect("max(1) is non-zero");
        let mut hash = vec![0u8; HASH_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Secret::Pbkdf2 {
            iterations,
            salt,
            hash,
        }
    }

    /// The form written to the users file.
    pub fn to_phc(&self) -> Option<String> {
        match self {
            Secret::Plain(_) => None,
            Secret::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => Some(format!(
                "{PHC_ID}i={iterations}${}${}",
                b64_encode(salt),
                b64_encode(hash)
            )),
        }
    }

    /// Constant-time check of `password` against this secret.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Secret::Plain(p) => ring_eq(p.as_bytes(), password.as_bytes()),
            Secret::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA256,
                *iterations,
                salt,
                password.as_bytes(),
                hash,
            )
            .is_ok(),
        }
    }
}

/// Constant-time equality (length is not secret).
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    // hash both sides first so the comparison is over equal lengths and does not
    // reveal the stored password's length
    let ha = ring::digest::digest(&ring::digest::SHA256, a);
    let hb = ring::digest::digest(&ring::digest::SHA256, b);
    let mut diff = 0u8;
    for (x, y) in ha.as_ref().iter().zip(hb.as_ref()) {
        diff |= x ^ y;
    }
    diff == 0
}

/// One loaded user.
#[derive(Debug, Clone)]
pub struct User {
    /// User name.
    pub name: String,
    /// Stored secret.
    pub secret: Secret,
}

/// A parsed users file, with the warnings found while parsing it.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: Vec<User>,
    /// Human-readable problems (refused lines, duplicates), with line numbers.
    pub warnings: Vec<String>,
}

impl Users {
    /// Parses the text of a users file. Blank lines and `#` comments are skipped; bad
    /// lines are refused with a warning naming the line number.
    pub fn parse(text: &str) -> Users {
        let mut users = Users::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let n = i + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, secret)) = line.split_once(':') else {
                users.warnings.push(format!(
                    "line {n}: refused: no ':' between user and password"
                ));
                continue;
            };
            if !valid_username(name) {
                users.warnings.push(format!(
                    "line {n}: refused: invalid user name {:?} (allowed: [A-Za-z0-9_][A-Za-z0-9._-]{{0,63}})",
                    crate::log::escape(name)
                ));
                continue;
            }
            if users.get(name).is_some() {
                users
                    .warnings
                    .push(format!("line {n}: refused: duplicate user {name:?}"));
                continue;
            }
            match Secret::parse(secret) {
                Ok(secret) => users.users.push(User {
                    name: name.to_string(),
                    secret,
                }),
                Err(why) => users.warnings.push(format!("line {n}: refused: {why}")),
            }
        }
        users
    }

    /// Reads and parses a users file.
    pub fn load(path: &Path) -> Result<Users, Error> {
        let io_err = |e| Error::Io(path.to_path_buf(), e);
        let file = fs::File::open(path).map_err(io_err)?;
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(file, MAX_FILE), &mut text).map_err(io_err)?;
        Ok(Users::parse(&text))
    }

    /// Looks a user up.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The users whose password is stored in plain text.
    pub fn plain_text_users(&self) -> Vec<&str> {
        self.users
            .iter()
            .filter(|u| matches!(u.secret, Secret::Plain(_)))
            .map(|u| u.name.as_str())
            .collect()
    }

    /// How many users there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The iteration count a failed check should cost: that of the file's first hash,
    /// so that unknown users and plain-text users take as long as hashed ones (files
    /// are expected to use one iteration count throughout, as `passwd` writes them).
    fn decoy_iterations(&self) -> u32 {
        self.users
            .iter()
            .find_map(|u| match &u.secret {
                Secret::Pbkdf2 { iterations, .. } => Some(iterations.get()),
                Secret::Plain(_) => None,
            })
            // only plain-text users: checking them costs next to nothing, so the decoy
            // must not either
            .unwrap_or(1)
    }

    /// Checks a login. Every call that fails, and every plain-text check, runs one
    /// PBKDF2 derivation, so the answer takes the same time whether the user exists.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        let decoy = || {
            let _ = Secret::hash_with_salt(password, self.decoy_iterations(), vec![0u8; SALT_LEN]);
        };
        match self.get(name) {
            // the derivation inside verify is the cost every other branch imitates
            Some(User {
                secret: s @ Secret::Pbkdf2 { .. },
                ..
            }) => s.verify(password),
            Some(User {
                secret: s @ Secret::Plain(_),
                ..
            }) => {
                decoy();
                s.verify(password)
            }
            None => {
                decoy();
                false
            }
        }
    }
}

/// The users file of a running server: re-read when it changes on disk (so
/// `fos-server passwd` and hand edits take effect at the next login), and rewritten
/// atomically by `passwd`.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    state: Mutex<(Users, Option<Stamp>)>,
}

impl UserStore {
    /// Loads `path`.
    pub fn open(path: &Path) -> Result<UserStore, Error> {
        let users = Users::load(path)?;
        let stamp = stamp(path);
        Ok(UserStore {
            path: path.to_path_buf(),
            state: Mutex::new((users, stamp)),
        })
    }

    /// The current users (re-read if the file changed).
    pub fn current(&self) -> Users {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.path);
        if now != state.1 {
            // a file being rewritten can be briefly missing: keep the old list then
            if let Ok(users) = Users::load(&self.path) {
                *state = (users, now);
            }
        }
        state.0.clone()
    }

    /// Verifies a login against the current file.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        self.current().verify(name, password)
    }

    /// Changes `name`'s password after checking the old one. The check, the read of
    /// the file and its rewrite are one step under the users file's lock
    /// ([`lock_users`]), which every server sharing the file and `fos-server passwd`
    /// take, so concurrent changes (for different users, through different servers)
    /// are all kept, and the old password is checked against the file as it is.
    /// Users whose line the server cannot rewrite (file not writable) get
    /// [`Error::NotRewritable`].
    pub fn change_password(&self, name: &str, old: &str, new: &str) -> Result<bool, Error> {
        // a cheap refusal first, without the lock: most wrong passwords stop here
        if !self.verify(name, old) {
            return Ok(false);
        }
        // the file's lock excludes this server's other threads too (each takes it on
        // its own descriptor), and logins meanwhile keep reading the cached users
        let changed = rewrite_line(&self.path, name, new, DEFAULT_ITERATIONS, |users| {
            users.verify(name, old)
        });
        changed.map_err(|e| match e {
            Error::Io(_, io) if io.kind() == io::ErrorKind::PermissionDenied => {
                Error::NotRewritable("the server may not write the users file".into())
            }
            other => other,
        })
    }
}

/// What tells a rewritten users file from the one read: modification time, length
/// and inode.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(path).ok()?;
    // the inode too: a rewrite renames a new file into place, and two rewrites within
    // one timestamp tick may leave the same length
    Some((md.modified().ok()?, md.len(), md.ino()))
}

/// How long a change of the users file waits for another one to finish.
const USERS_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Takes the users file's lock: an exclusive `flock` on `.NAME.lock` beside it (made
/// on first use), held until the returned file is dropped. The users file itself is
/// replaced by a rename on every change, so it cannot carry the lock. Waits at most
/// [`USERS_LOCK_WAIT`] for a holder to finish.
pub fn lock_users(path: &Path) -> io::Result<fs::File> {
    let (dir, name) = dir_and_name(path)?;
    let file = crate::sys::open_lock_file(&dir.join(format!(".{}.lock", name.to_string_lossy())))?;
    crate::sys::lock_within(
        &file,
        USERS_LOCK_WAIT,
        std::time::Duration::from_millis(20),
        "another change of the users file has held its lock for 30 s",
    )?;
    Ok(file)
}

/// The directory `path` is in (`.` for a bare name) and its file name.
fn dir_and_name(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    Ok((dir, name))
}

/// Adds or replaces `user`'s line in the users file at `path` with a fresh hash of
/// `password`, atomically (temp file + rename), keeping the file's permissions; a new
/// file gets mode 0600. Other lines, comments included, are kept as they were. The
/// read and the rewrite happen under the file's lock ([`lock_users`]).
pub fn set_password(path: &Path, user: &str, password: &str, iterations: u32) -> Result<(), Error> {
    rewrite_line(path, user, password, iterations, |_| true).map(drop)
}

/// Under the users file's lock: reads it, and if `check` accepts what it holds,
/// replaces `user`'s line with a fresh hash of `password` (see [`set_password`]).
/// Returns whether `check` accepted.
fn rewrite_line(
    path: &Path,
    user: &str,
    password: &str,
    iterations: u32,
    check: impl FnOnce(&Users) -> bool,
) -> Result<bool, Error> {
    if !valid_username(user) {
        return Err(Error::BadUsername(user.to_string()));
    }
    if password.is_empty() {
        return Err(Error::BadPassword("empty"));
    }
    if password.contains(['\n', '\r']) {
        return Err(Error::BadPassword("contains a line break"));
    }
    let io_err = |e| Error::Io(path.to_path_buf(), e);
    let _lock = lock_users(path).map_err(io_err)?;
    let (old, mode) = match fs::read_to_string(path) {
        Ok(text) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io_err)?.permissions().mode() & 0o7777;
            (text, mode)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), 0o600),
        Err(e) => return Err(io_err(e)),
    };
    if !check(&Users::parse(&old)) {
        return Ok(false);
    }
    let line = format!(
        "{user}:{}",
        Secret::hash(password, iterations)
            .to_phc()
            .expect("a hash has a PHC form")
    );
    let mut out = String::with_capacity(old.len() + line.len() + 1);
    let mut replaced = false;
    for l in old.lines() {
        let is_user = l.trim().split_once(':').is_some_and(|(n, _)| n == user);
        if is_user && !replaced {
            out.push_str(&line);
            replaced = true;
        } else if is_user {
            continue; // a duplicate line would shadow nothing but confuse readers
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(&line);
        out.push('\n');
    }
    write_atomic(path, out.as_bytes(), mode).map_err(io_err)?;
    Ok(true)
}

/// Writes `data` to `path` through a temporary file in the same directory and a
/// rename, with permission bits `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let (dir, name) = dir_and_name(path)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        crate::random::hex(6)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // the rename itself must reach the disk for the change to survive a crash
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `fos-server passwd USER`: reads the new password (twice without echo on a
/// terminal, once from standard input otherwise) and writes the user's hashed line.
pub fn passwd_command(path: &Path, user: &str, iterations: u32) -> Result<(), crate::Error> {
    use std::io::IsTerminal;
    if !valid_username(user) {
        return Err(Error::BadUsername(user.to_string()).into());
    }
    let password = if io::stdin().is_terminal() {
        let first = crate::term::read_secret(&format!("new password for {user}: "))?;
        if crate::term::read_secret("again: ")? != first {
            return Err(crate::Error::Usage(
                "the passwords differ; nothing changed".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        io::BufRead::read_line(&mut io::stdin().lock(), &mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    set_password(path, user, &password, iterations)?;
    eprintln!("fos-server: password for {user} set in {}", path.display());
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 without padding (the PHC string format's encoding).
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes [`b64_encode`]'s output; padding, other alphabets and stray bits are refused.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let vals: Vec<u32> = s
        .bytes()
        .map(|c| B64.iter().position(|&b| b == c).map(|v| v as u32))
        .collect::<Option<_>>()?;
    if vals.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(vals.len() * 3 / 4);
    for chunk in vals.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | v << (18 - 6 * i));
        let bytes = chunk.len() - 1;
        // canonical form: the unused low bits of the last character are zero
        if n & ((1 << (8 * (3 - bytes))) - 1) != 0 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["u", "u2", "_x", "a.b-c_d", &"a".repeat(64)] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".x",
            "-x",
            "a/b",
            "a b",
            "a:b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 test vectors, padding removed
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64_encode(raw.as_bytes()), enc);
            assert_eq!(b64_decode(enc).unwrap(), raw.as_bytes());
        }
        assert!(b64_decode("Zg==").is_none());
        assert!(b64_decode("Zh").is_none(), "non-canonical trailing bits");
        assert!(b64_decode("Z").is_none());
        assert!(
            b64_decode("Zm9-").is_none(),
            "url-safe alphabet is not PHC's"
        );
    }

    #[test]
    fn pbkdf2_fixed_vector() {
        // PBKDF2-HMAC-SHA256, password "password", salt "salt", 1 and 4096 iterations
        // (RFC 7914 section 11 lists the 1-iteration 64-byte output; first 32 bytes here)
        let s = Secret::hash_with_salt("password", 1, b"salt".to_vec());
        let Secret::Pbkdf2 { hash, .. } = &s else {
            unreachable!()
        };
        assert_eq!(
            crate::protocol::command::hex(hash),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        let s = Secret::hash_with_salt("password", 4096, b"salt".to_vec());
        let Secret::Pbkdf2 { hash, .. } = &s else {
            unreachable!()
        };
        assert_eq!(
            crate::protocol::command::hex(hash),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn phc_format_is_pinned() {
        let s = Secret::hash_with_salt("pw", 1000, (0u8..16).collect());
        let phc = s.to_phc().unwrap();
        assert!(
            phc.starts_with("$pbkdf2-sha256$i=1000$AAECAwQFBgcICQoLDA0ODw$"),
            "{phc}"
        );
        assert_eq!(
            phc.rsplit('$').next().unwrap().len(),
            43,
            "32 bytes unpadded"
        );
        let back = Secret::parse(&phc).unwrap();
        assert_eq!(back, s);
        assert!(back.verify("pw"));
        assert!(!back.verify("pW"));
        for bad in [
            "$pbkdf2-sha256$i=0$AAECAwQFBgcICQoLDA0ODw$AAAA",
            "$pbkdf2-sha256$AAECAwQFBgcICQoLDA0ODw$x",
            "$pbkdf2-sha256$i=10$AAECAwQFBgcICQoLDA0ODw$AAAA",
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        ] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_file() {
        let text =
            "# demo\nu:p\n\nbad name:x\nu:dup\nnocolon\n..:x\nt:$pbkdf2-sha256$i=2$bad\nw:a:b\n";
        let users = Users::parse(text);
        assert_eq!(users.len(), 2);
        assert!(users.verify("u", "p"));
        assert!(!users.verify("u", "dup"));
        assert!(users.verify("w", "a:b"), "password may contain ':'");
        assert!(!users.verify("nobody", "p"));
        let lines: Vec<_> = users
            .warnings
            .iter()
            .map(|w| w.split(':').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            vec!["line 4", "line 5", "line 6", "line 7", "line 8"]
        );
        assert_eq!(users.plain_text_users(), vec!["u", "w"]);
    }

    #[test]
    fn set_password_rewrites_atomically_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = crate::testutil::TempDir::new();
        let path = t.path().join("users.txt");
        set_password(&path, "new", "pw1", 10).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, "# keep me\nu:p\nnew:old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        set_password(&path, "new", "pw2", 10).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# keep me\nu:p\nnew:$pbkdf2-sha256$i=10$"),
            "{text}"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let users = Users::load(&path).unwrap();
        assert!(users.verify("new", "pw2") && users.verify("u", "p"));
        let mut names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![".users.txt.lock", "users.txt"],
            "no temp file left, only the lock beside the file"
        );
        assert!(set_password(&path, "../x", "pw", 10).is_err());
        assert!(set_password(&path, "x", "", 10).is_err());
    }

    #[test]
    fn store_rereads_a_changed_file() {
        let t = crate::testutil::TempDir::new();
        let path = t.path().join("users.txt");
        fs::write(&path, "u:p\n").unwrap();
        let store = UserStore::open(&path).unwrap();
        assert!(store.verify("u", "p"));
        fs::write(&path, "u:p2\nv:q\n").unwrap();
        assert!(store.verify("u", "p2") && store.verify("v", "q"));
        assert!(store.change_password("v", "q", "r").unwrap());
        assert!(!store.change_password("v", "q", "s").unwrap());
        assert!(store.verify("v", "r"));
    }

    #[test]
    fn concurrent_changes_through_two_stores_are_all_kept() {
        // two servers sharing one users file: each change reads, checks and rewrites
        // under the file's lock, so neither overwrites the other's
        let t = crate::testutil::TempDir::new();
        let path = t.path().join("users.txt");
        let names: Vec<String> = (0..6).map(|i| format!("user{i}")).collect();
        let text: String = names.iter().map(|n| format!("{n}:old\n")).collect();
        fs::write(&path, text).unwrap();
        let stores = [
            UserStore::open(&path).unwrap(),
            UserStore::open(&path).unwrap(),
        ];
        std::thread::scope(|scope| {
            for (i, name) in names.iter().enumerate() {
                let store = &stores[i % 2];
                scope.spawn(move || {
                    // the hash of a new password is computed between the read and the
                    // write: that is where a change without the lock loses another
                    assert!(
                        store
                            .change_password(name, "old", &format!("new{i}"))
                            .unwrap()
                    );
                });
            }
        });
        let users = Users::load(&path).unwrap();
        for (i, name) in names.iter().enumerate() {
            assert!(
                users.verify(name, &format!("new{i}")),
                "{name}'s change was lost"
            );
        }
    }
}
