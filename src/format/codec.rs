//! The one module that speaks CBOR.
//!
//! `serde_cbor` is archived upstream (RUSTSEC-2021-0127). Every other module goes
//! through [`encode`] and [`decode`], so replacing the crate (with `ciborium` or
//! `minicbor`) touches this file and nothing else. Decoding is strict: the input
//! must be exactly one CBOR item, with no trailing bytes.

use serde::{Serialize, de::DeserializeOwned};

/// Why a CBOR value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a well-formed CBOR item of the expected shape.
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// A complete item was followed by more bytes, which nothing signed covers.
    #[error("unexpected bytes after the end of the CBOR item")]
    TrailingData,
    /// The value could not be written as CBOR (a bug, not bad input).
    #[error("could not encode CBOR: {0}")]
    Encode(String),
    /// Well-formed, but not in the one encoding nodelock signs (FORMAT.md §2).
    #[error(
        "the payload is not in canonical form (map keys in the documented order, shortest integers, definite lengths, absent rather than null)"
    )]
    NotCanonical,
}

/// Encodes `value` as CBOR, struct fields as text-keyed maps in declaration order.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    serde_cbor::to_vec(value).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes exactly one CBOR item that fills `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut de = serde_cbor::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de).map_err(|e| CodecError::Malformed(e.to_string()))?;
    de.end().map_err(|_| CodecError::TrailingData)?;
    Ok(value)
}

/// Decodes a signed payload and refuses it unless it is exactly the bytes
/// [`encode`] makes of the decoded value: a signature then covers one
/// encoding of one value, and two readers cannot see two different documents
/// in the same signed bytes (no duplicate or reordered keys, no tags, no
/// indefinite lengths, no long-form integers, no `null` for absent fields).
pub fn decode_canonical<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let value: T = decode(bytes)?;
    if encode(&value)? != bytes {
        return Err(CodecError::NotCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&(1u8, "a")).unwrap();
        assert!(decode::<(u8, String)>(&bytes).is_ok());
        bytes.push(0);
        assert!(matches!(
            decode::<(u8, String)>(&bytes),
            Err(CodecError::TrailingData)
        ));
    }

    #[test]
    fn only_the_canonical_encoding_of_a_value_is_accepted() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Doc {
            v: u32,
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            note: Option<String>,
        }
        let doc = Doc {
            v: 1,
            name: "a".into(),
            note: None,
        };
        let canonical = encode(&doc).unwrap();
        assert_eq!(decode_canonical::<Doc>(&canonical).unwrap(), doc);
        // The same value, encoded otherwise: keys reordered, a long-form
        // integer, a null for an absent field, an indefinite-length map.
        let reordered = [0xa2, 0x64, b'n', b'a', b'm', b'e', 0x61, b'a', 0x61, b'v', 0x01];
        let long_int = [
            0xa2, 0x61, b'v', 0x18, 0x01, 0x64, b'n', b'a', b'm', b'e', 0x61, b'a',
        ];
        let null = [
            0xa3, 0x61, b'v', 0x01, 0x64, b'n', b'a', b'm', b'e', 0x61, b'a', 0x64, b'n', b'o', b't', b'e',
            0xf6,
        ];
        let indefinite = [
            0xbf, 0x61, b'v', 0x01, 0x64, b'n', b'a', b'm', b'e', 0x61, b'a', 0xff,
        ];
        for other in [&reordered[..], &long_int, &null, &indefinite] {
            assert_eq!(decode::<Doc>(other).unwrap(), doc, "{other:x?} decodes");
            assert!(matches!(
                decode_canonical::<Doc>(other),
                Err(CodecError::NotCanonical)
            ));
        }
    }

    #[test]
    fn truncated_input_is_malformed_not_a_panic() {
        let bytes = encode(&("hello", vec![1u32, 2, 3])).unwrap();
        for n in 0..bytes.len() {
            assert!(decode::<(String, Vec<u32>)>(&bytes[..n]).is_err());
        }
    }
}
