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
    fn truncated_input_is_malformed_not_a_panic() {
        let bytes = encode(&("hello", vec![1u32, 2, 3])).unwrap();
        for n in 0..bytes.len() {
            assert!(decode::<(String, Vec<u32>)>(&bytes[..n]).is_err());
        }
    }
}
