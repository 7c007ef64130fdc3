//! How many terminal columns text takes, and shortening text to a number of columns,
//! for the line editor and the progress bars. The width table is deliberately small:
//! combining marks and zero-width characters take no column, East Asian wide and
//! fullwidth characters and the common emoji blocks take two, everything else one. It
//! does not know grapheme clusters (a flag or a family emoji counts as its parts).

/// Columns `c` takes on a terminal (control characters: none; they are never drawn).
pub fn char_width(c: char) -> usize {
    let u = c as u32;
    if c.is_control() || is_zero_width(u) {
        0
    } else if is_wide(u) {
        2
    } else {
        1
    }
}

/// Columns `s` takes on a terminal.
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn is_zero_width(u: u32) -> bool {
    matches!(u,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F | 0xFEFF | 0xE0100..=0xE01EF)
}

fn is_wide(u: u32) -> bool {
    matches!(u,
        0x1100..=0x115F | 0x231A..=0x231B | 0x2329..=0x232A | 0x23E9..=0x23EC
        | 0x25FD..=0x25FE | 0x2614..=0x2615 | 0x2648..=0x2653 | 0x26AA..=0x26AB
        | 0x26BD..=0x26BE | 0x26C4..=0x26C5 | 0x26F2..=0x26F5 | 0x2705 | 0x270A..=0x270B
        | 0x2728 | 0x274C | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x2B1B..=0x2B1C
        | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xA960..=0xA97F | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE10..=0xFE19 | 0xFE30..=0xFE6F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F | 0x1F680..=0x1F6FF | 0x1F900..=0x1F9FF | 0x1FA70..=0x1FAFF
        | 0x20000..=0x2FFFD | 0x30000..=0x3FFFD)
}

/// `s` if it fits in `max` columns; otherwise its start and its end around a `…`, in
/// exactly `max` columns or fewer (the end gets the extra column: it carries the file
/// name's extension).
pub fn shorten_middle(s: &str, max: usize) -> String {
    if str_width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let room = max - 1; // the ellipsis
    let (head_room, tail_room) = (room / 2, room - room / 2);
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > head_room {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > tail_room {
            break;
        }
        used += w;
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(str_width("abc"), 3);
        assert_eq!(str_width("é"), 1);
        assert_eq!(
            str_width("e\u{301}"),
            1,
            "a combining accent takes no column"
        );
        assert_eq!(str_width("日本"), 4);
        assert_eq!(
            str_width("a\u{1b}b"),
            2,
            "control characters are never drawn"
        );
        assert_eq!(str_width("🦀"), 2);
    }

    #[test]
    fn shortening_keeps_both_ends_and_fits() {
        assert_eq!(shorten_middle("short.bin", 20), "short.bin");
        let s = shorten_middle("a-very-long-file-name.tar.gz", 15);
        assert_eq!(s, "a-very-….tar.gz");
        assert_eq!(str_width(&s), 15);
        for max in 0..30 {
            assert!(str_width(&shorten_middle("日本語のファイル名.txt", max)) <= max);
        }
        assert_eq!(shorten_middle("abcdef", 1), "…");
    }
}
