//! Short codes people read aloud and type: Crockford base32 with a Luhn mod 32
//! check character.
//!
//! The alphabet leaves out I, L, O and U; on input, I and L read as 1 and O as
//! 0, case and dashes do not matter. The check character catches every single
//! wrong character and every swap of two neighbours, before anything else runs.

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The value of one code character, with Crockford's read-alikes.
fn value(c: char) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        other => other,
    };
    ALPHABET.iter().position(|a| *a as char == c).map(|p| p as u32)
}

/// Encodes the first `chars` × 5 bits of `bytes` as base32 characters.
pub fn base32(bytes: &[u8], chars: usize) -> String {
    (0..chars)
        .map(|i| {
            let bit = i * 5;
            let mut v: u32 = 0;
            for k in 0..5 {
                let b = bit + k;
                let set = bytes.get(b / 8).is_some_and(|byte| byte & (0x80 >> (b % 8)) != 0);
                v = (v << 1) | u32::from(set);
            }
            ALPHABET[v as usize] as char
        })
        .collect()
}

/// The Luhn mod 32 check character for `body` (already canonical characters).
pub fn check_char(body: &str) -> char {
    let mut factor = 2;
    let mut sum = 0;
    for c in body.chars().rev() {
        let v = value(c).unwrap_or(0) * factor;
        sum += v / 32 + v % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    ALPHABET[((32 - sum % 32) % 32) as usize] as char
}

/// Canonical characters of a typed code: dashes and spaces dropped, read-alikes
/// mapped. `None` if any other character is not in the alphabet.
pub fn canonical(typed: &str) -> Option<String> {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| value(c).map(|v| ALPHABET[v as usize] as char))
        .collect()
}

/// True when the last character is the right check character for the rest.
pub fn is_valid(canonical: &str) -> bool {
    let mut chars: Vec<char> = canonical.chars().collect();
    match chars.pop() {
        Some(last) if !chars.is_empty() => check_char(&chars.into_iter().collect::<String>()) == last,
        _ => false,
    }
}

/// Groups characters in fours with dashes (`ABCD-EFGH-J`).
pub fn group(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_typo_and_adjacent_swap_is_caught() {
        let body = base32(&[0x5a, 0xc3, 0x11, 0xfe, 0x80, 0x42, 0x99, 0x01], 12);
        let code = format!("{body}{}", check_char(&body));
        assert!(is_valid(&code));
        let chars: Vec<char> = code.chars().collect();
        for i in 0..chars.len() {
            for a in ALPHABET {
                let mut typo = chars.clone();
                if typo[i] == *a as char {
                    continue;
                }
                typo[i] = *a as char;
                assert!(!is_valid(&typo.iter().collect::<String>()));
            }
            if i + 1 < chars.len() && chars[i] != chars[i + 1] {
                let mut swap = chars.clone();
                swap.swap(i, i + 1);
                assert!(!is_valid(&swap.iter().collect::<String>()));
            }
        }
    }

    #[test]
    fn read_alikes_case_and_dashes_do_not_matter() {
        assert_eq!(canonical("ab1o-il").as_deref(), Some("AB1011"));
        assert_eq!(canonical("AB U"), None);
        assert_eq!(group("ABCDEFGHJ"), "ABCD-EFGH-J");
    }
}
