//! Random bytes from the operating system's generator (through ring), for salts,
//! temporary names, tokens and the choice of a first server. Nothing here is seeded
//! or kept.

use ring::rand::{SecureRandom, SystemRandom};

/// Fills `buf` from the OS generator; false if it failed (it does not on Linux or the
/// BSDs, but a caller with a harmless fallback may use one).
pub(crate) fn try_fill(buf: &mut [u8]) -> bool {
    SystemRandom::new().fill(buf).is_ok()
}

/// Fills `buf` from the OS generator.
pub(crate) fn fill(buf: &mut [u8]) {
    assert!(
        try_fill(buf),
        "the OS random generator does not fail on Linux or the BSDs"
    );
}

/// `n` random bytes as lowercase hex (`2n` characters), for temporary names and tokens.
pub(crate) fn hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill(&mut buf);
    crate::protocol::command::hex(&buf)
}

/// A random `u64`.
pub(crate) fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_fills_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(u64(), u64());
        let name = hex(6);
        assert_eq!(name.len(), 12);
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
