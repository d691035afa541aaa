//! The wire formats spans arrive and leave in: OTLP (protobuf and JSON) and Zipkin v2 JSON,
//! with gzip request bodies inflated under a bound.

pub mod otlp;
pub mod zipkin;

use std::io::Read;

use crate::model::Span;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OTLP/HTTP protobuf (`application/x-protobuf`), what the services export.
    OtlpProtobuf,
    /// OTLP/HTTP JSON (`application/json`).
    OtlpJson,
    /// Zipkin v2 JSON, what Envoy's Zipkin tracer posts.
    ZipkinJson,
}

/// Why a body gave no spans.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not protobuf of an OTLP export request.
    #[error("not an OTLP export request: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// Protobuf whose field runs past the end of the body.
    #[error("not an OTLP export request: a field runs past the end of the body")]
    Truncated,
    /// Not the JSON expected.
    #[error("not valid JSON for this endpoint: {0}")]
    Json(#[from] serde_json::Error),
    /// Not gzip.
    #[error("not valid gzip: {0}")]
    Gzip(std::io::Error),
    /// Inflates past the body limit.
    #[error("inflates past {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// The spans of `body`.
///
/// # Errors
/// A body that is not what `format` says.
pub fn decode(format: Format, body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    Ok(match format {
        Format::OtlpProtobuf => otlp::from_proto(body)?,
        Format::OtlpJson => otlp::from_json(&serde_json::from_slice(body)?),
        Format::ZipkinJson => zipkin::from_json(body)?,
    })
}

/// A gzip body inflated, refusing to grow past `limit` bytes (a small bomb inflates a
/// thousandfold).
///
/// # Errors
/// Not gzip, or more than `limit` bytes once inflated.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut inflated = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(body).take(bound).read_to_end(&mut inflated).map_err(DecodeError::Gzip)?;
    if inflated.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_inflates_within_its_bound_and_a_bomb_is_refused() {
        assert_eq!(gunzip(&gzip(b"[]"), 10).unwrap(), b"[]");
        let bomb = gzip(&vec![0u8; 50 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
        assert!(matches!(gunzip(&bomb, 4 * 1024 * 1024), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(gunzip(b"plain text", 1024), Err(DecodeError::Gzip(_))));
    }

    #[test]
    fn garbage_is_an_error_in_every_format() {
        for format in [Format::OtlpProtobuf, Format::OtlpJson, Format::ZipkinJson] {
            assert!(decode(format, b"\xff\xfe garbage {").is_err(), "{format:?}");
        }
        assert!(decode(Format::OtlpJson, b"{}").unwrap().is_empty());
    }
}
