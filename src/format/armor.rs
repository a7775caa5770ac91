//! PEM armor for documents, and the tolerant search for it in damaged text.
//!
//! Mail clients and editors add a BOM or CRLF, re-wrap or indent lines, quote
//! them with `>`, shorten the dashes of the BEGIN/END lines, or put a greeting
//! around the block. None of that touches the signed bytes, so we look past it.
//! Whatever we find is only base64: the envelope inside is checked strictly.

/// The armor is damaged beyond what transport damage explains.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArmorError(String);

/// Armors bytes as PEM under `label` (LF line ends, 64-column lines).
pub fn encode(label: &str, bytes: &[u8]) -> String {
    let pem = pem::Pem::new(label, bytes);
    pem::encode_config(
        &pem,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// An armored block found in text.
#[derive(Debug)]
pub struct Block {
    /// The label between `BEGIN ` and the dashes.
    pub label: String,
    /// The decoded base64 body.
    pub bytes: Vec<u8>,
}

/// Finds the first `BEGIN NODELOCK …` block in `input`; anything after its
/// END line (another block included) is not read.
///
/// Returns `Ok(None)` when there is no such block at all.
pub fn find_block(input: &[u8]) -> Result<Option<Block>, ArmorError> {
    let text = String::from_utf8_lossy(input);
    // `lines` ends lines at LF and CRLF; a CR anywhere else stays in its line
    // (and so spoils a marker it is in).
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines();
    let label = loop {
        let Some(line) = lines.next() else { return Ok(None) };
        if let Some(label) = marker(line, "BEGIN ") {
            break label;
        }
    };
    let mut body = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if let Some(end) = marker(line, "END ") {
            if end != label {
                return Err(ArmorError(format!(
                    "the block begins as '{label}' but ends as '{end}'"
                )));
            }
            ended = true;
            break;
        }
        let line = line
            .trim()
            .trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        if line.contains(':') {
            continue; // an RFC 1421 header line; nodelock writes none
        }
        // The common line (plain ASCII, no spaces) is copied whole; any
        // other has its whitespace, Unicode's included, taken out.
        if line.is_ascii() && !line.bytes().any(|b| b.is_ascii_whitespace()) {
            body.push_str(line);
        } else {
            body.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    if !ended {
        return Err(ArmorError(format!(
            "the '{label}' block has no END line, so the file is truncated"
        )));
    }
    let mut clean = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        clean.push_str(&String::from_utf8_lossy(chunk));
        clean.push('\n');
    }
    clean.push_str(&format!("-----END {label}-----\n"));
    let pem = pem::parse(clean.as_bytes()).map_err(|_| ArmorError("the base64 body is not valid".into()))?;
    Ok(Some(Block {
        label,
        bytes: pem.into_contents(),
    }))
}

/// If `line` is a `BEGIN`/`END` marker line (at least one dash on each side,
/// possibly indented or quoted), returns its label.
fn marker(line: &str, word: &str) -> Option<String> {
    let line = line
        .trim()
        .trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    let after_dashes = line.trim_start_matches('-');
    let rest = after_dashes.strip_prefix(word)?;
    let label = rest.trim_end_matches('-');
    if after_dashes.len() == line.len() || label.len() == rest.len() {
        return None; // no leading or no trailing dash: prose, not a marker
    }
    let label = label.trim();
    (label.starts_with("NODELOCK") || word == "END ").then(|| label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armored() -> (Vec<u8>, String) {
        let bytes: Vec<u8> = (0..200u8).collect();
        let text = encode("NODELOCK LICENSE", &bytes);
        (bytes, text)
    }

    #[test]
    fn survives_transport_damage() {
        let (bytes, text) = armored();
        let crlf_bom = format!("\u{feff}{}", text.replace('\n', "\r\n"));
        let indented: String = text.lines().map(|l| format!("    {l}\n")).collect();
        let quoted: String = text.lines().map(|l| format!("> {l}\n")).collect();
        let rewrapped = {
            let mut lines = text.lines();
            let begin = lines.next().unwrap();
            let rest: Vec<_> = lines.collect();
            let (end, body) = rest.split_last().unwrap();
            let joined: String = body.concat();
            let wrapped: Vec<String> = joined
                .as_bytes()
                .chunks(50)
                .map(|c| String::from_utf8_lossy(c).into())
                .collect();
            format!("{begin}\n{}\n{end}\n", wrapped.join("\n"))
        };
        let surrounded = format!("Hello,\nhere is your license:\n\n{text}\nRegards,\nSupport\n");
        let short_dashes = text.replace("-----", "----");
        for damaged in [crlf_bom, indented, quoted, rewrapped, surrounded, short_dashes] {
            let block = find_block(damaged.as_bytes()).unwrap().unwrap();
            assert_eq!(block.label, "NODELOCK LICENSE");
            assert_eq!(block.bytes, bytes, "{damaged}");
        }
    }

    #[test]
    fn truncated_block_is_an_armor_error() {
        let (_, text) = armored();
        let cut = &text[..text.len() / 2];
        assert!(matches!(find_block(cut.as_bytes()), Err(ArmorError(_))));
    }

    #[test]
    fn text_without_a_block_is_none() {
        assert!(
            find_block(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap()
                .is_none()
        );
        assert!(find_block(&[0xff, 0xfe, 0x00]).unwrap().is_none());
    }

    #[test]
    fn markers_need_dashes_on_both_sides() {
        let (_, text) = armored();
        let bare = text.replace("-----", "");
        assert!(find_block(bare.as_bytes()).unwrap().is_none(), "{bare}");
        let one_sided = text.replace("LICENSE-----", "LICENSE");
        assert!(find_block(one_sided.as_bytes()).unwrap().is_none());
        let single = text.replace("-----", "-");
        assert!(find_block(single.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn a_cr_inside_a_marker_spoils_it_but_crlf_line_ends_do_not() {
        let (bytes, text) = armored();
        let inner = text.replacen("NODELOCK LICENSE", "NODE\rLOCK LICENSE", 1);
        assert!(find_block(inner.as_bytes()).unwrap().is_none());
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(find_block(crlf.as_bytes()).unwrap().unwrap().bytes, bytes);
    }

    #[test]
    fn the_first_block_wins_and_what_follows_is_not_read() {
        let (bytes, text) = armored();
        let other = encode("NODELOCK LICENSE", b"another");
        let two = format!("{text}\n{other}");
        assert_eq!(find_block(two.as_bytes()).unwrap().unwrap().bytes, bytes);
        let after_damage = format!("{text}\n-----BEGIN NODELOCK LICENSE-----\n!!!!\n");
        assert_eq!(find_block(after_damage.as_bytes()).unwrap().unwrap().bytes, bytes);
    }

    #[test]
    fn base64_padding_is_required() {
        // 200 bytes end in a 2-byte group: one '=' of padding.
        let (_, text) = armored();
        assert!(text.contains("=\n-----END"), "{text}");
        let unpadded = text.replace("=\n-----END", "\n-----END");
        assert!(find_block(unpadded.as_bytes()).is_err());
    }
}
