//! A small DER walker for the few X.509 fields fos needs from a *pinned* certificate:
//! its SubjectPublicKeyInfo (to verify TLS handshake signatures with it) and its
//! validity end (to warn about expiry).
//!
//! It exists because webpki refuses X.509 v1 certificates, which the Python tool's
//! certificate script produces, and a pin must work for exactly those. It does not
//! validate anything: the certificate is trusted because its bytes equal the pin.

/// The parts of a certificate fos uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo<'a> {
    /// X.509 version as written (1, 2 or 3).
    pub version: u8,
    /// The whole SubjectPublicKeyInfo, tag and length included.
    pub spki: &'a [u8],
    /// The contents of the key's AlgorithmIdentifier (OID and parameters, no outer tag),
    /// the form `rustls_pki_types::AlgorithmIdentifier` uses.
    pub key_algorithm: &'a [u8],
    /// The subjectPublicKey BIT STRING contents, without the unused-bits byte.
    pub public_key: &'a [u8],
    /// End of validity, seconds since the epoch (`None` if it does not parse).
    pub not_after: Option<i64>,
}

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None; // indefinite or absurd lengths are not DER
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const VERSION_TAG: u8 = 0xa0;
const BIT_STRING: u8 = 0x03;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Parses the fields fos needs out of a DER certificate.
pub fn parse(der: &[u8]) -> Option<CertInfo<'_>> {
    let (SEQUENCE, cert, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let mut version = 1;
    if rest.first() == Some(&VERSION_TAG) {
        let (_, v, after) = tlv(rest)?;
        let (_, int, _) = tlv(v)?;
        version = int.last().copied()? + 1;
        rest = after;
    }
    let (_, _serial, rest) = tlv(rest)?;
    let (_, _sig_alg, rest) = tlv(rest)?;
    let (_, _issuer, rest) = tlv(rest)?;
    let (SEQUENCE, validity, rest) = tlv(rest)? else {
        return None;
    };
    let (_, _subject, rest) = tlv(rest)?;
    let (SEQUENCE, spki_body, after) = tlv(rest)? else {
        return None;
    };
    let spki = &rest[..rest.len() - after.len()];
    let (SEQUENCE, key_algorithm, bits) = tlv(spki_body)? else {
        return None;
    };
    let (BIT_STRING, key_bits, _) = tlv(bits)? else {
        return None;
    };
    let (&0, public_key) = key_bits.split_first()? else {
        return None;
    };
    let not_after = {
        let (_, _not_before, rest) = tlv(validity)?;
        let (tag, time, _) = tlv(rest)?;
        parse_time(tag, time)
    };
    Some(CertInfo {
        version,
        spki,
        key_algorithm,
        public_key,
        not_after,
    })
}

fn parse_time(tag: u8, t: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            // RFC 5280: YY >= 50 is 19YY, otherwise 20YY
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let num = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (mo, d, h, mi, se) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Howard Hinnant's civil-to-days algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// SHA-256 fingerprint of a DER certificate, as `AB:CD:...` (what `openssl x509
/// -fingerprint -sha256` prints).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20000229000000Z"),
            Some(951_782_400)
        );
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"7001010000Z"), None);
    }

    #[test]
    fn garbage_does_not_parse() {
        assert!(parse(b"").is_none());
        assert!(parse(b"\x30\x84\xff\xff\xff\xff").is_none());
        assert!(parse(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }
}
