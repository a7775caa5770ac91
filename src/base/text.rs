//! Text from outside (license fields, server messages, ledger rows) made safe
//! to print on a terminal: every control character and every Unicode
//! bidirectional control becomes `?`, so a value can neither move the cursor,
//! recolour the screen, nor reorder what a person reads around it.

/// Characters that change the display order of text around them (Trojan
/// Source, CVE-2021-42574), and the invisible marks that steer them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control and bidi characters replaced by `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_bidi_control(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// [`printable`] of at most `max` characters of `text`, trimmed: for
/// messages from a server, which may be long or padded.
pub fn printable_prefix(text: &str, max: usize) -> String {
    let head: String = text.chars().take(max).collect();
    printable(head.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_marks_become_question_marks() {
        assert_eq!(printable("ok\x1b[2Jx\u{7}"), "ok?[2Jx?");
        assert_eq!(printable("abc\u{202E}fed\u{2066}"), "abc?fed?");
        assert_eq!(printable("Grüße, 測量"), "Grüße, 測量");
    }

    #[test]
    fn prefixes_are_bounded_and_trimmed() {
        assert_eq!(printable_prefix("  refused\n", 100), "refused");
        assert_eq!(printable_prefix("abcdef", 3), "abc");
    }
}
