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

/// What an answer that is not a nodelock one (a proxy's or captive portal's
/// HTML page, a load balancer's error) says, in at most `max` printable
/// characters: an HTML page's `<title>` (or its text without tags), other
/// bodies as they are. A person reads one line, not a page of markup.
pub fn answer_summary(body: &str, max: usize) -> String {
    let head: String = body.chars().take(64 * 1024).collect();
    let lower = head.to_ascii_lowercase();
    let looks_html = lower.trim_start().starts_with('<')
        && (lower.contains("<html")
            || lower.contains("<!doctype")
            || lower.contains("<body")
            || lower.contains("<title"));
    if !looks_html {
        return printable_prefix(&collapse(&head), max);
    }
    let title = lower.find("<title").and_then(|start| {
        let open_end = start + lower[start..].find('>')? + 1;
        let close = open_end + lower[open_end..].find("</title")?;
        Some(head.get(open_end..close)?.to_owned())
    });
    let text = match title.map(|t| collapse(&t)).filter(|t| !t.is_empty()) {
        Some(title) => title,
        None => collapse(&without_tags(&head)),
    };
    printable_prefix(&format!("an HTML page: {text}"), max)
}

/// `html` with its tags, scripts and styles left out.
fn without_tags(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        let tail = &rest[lt..];
        let lower = tail.get(..8).unwrap_or(tail).to_ascii_lowercase();
        let end_of = |closing: &str| tail.to_ascii_lowercase().find(closing).map(|i| i + closing.len());
        let skip = if lower.starts_with("<script") {
            end_of("</script>")
        } else if lower.starts_with("<style") {
            end_of("</style>")
        } else {
            tail.find('>').map(|i| i + 1)
        };
        match skip {
            Some(n) => rest = &tail[n..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Runs of whitespace as one space, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_page_is_summed_up_by_its_title_or_its_text() {
        let page = "<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title><style>p{}</style></head>\n<body><h1>Bad Gateway</h1></body></html>";
        assert_eq!(answer_summary(page, 200), "an HTML page: 502 Bad Gateway");
        let untitled =
            "<html><script>var x = '<b>';</script><body><p>Please   log in to the\nWi-Fi</p></body></html>";
        assert_eq!(
            answer_summary(untitled, 200),
            "an HTML page: Please log in to the Wi-Fi"
        );
        assert_eq!(answer_summary("upstream  timed out\n", 200), "upstream timed out");
        assert_eq!(
            answer_summary("<html><title>x\u{1b}[2J</title>", 200),
            "an HTML page: x?[2J"
        );
        assert!(
            answer_summary(&format!("<html><title>{}</title>", "a".repeat(500)), 50)
                .chars()
                .count()
                <= 50
        );
    }

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
