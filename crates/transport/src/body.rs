//! Reading and decoding response bodies within their limits.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::error::Error;

/// Reads the whole body, refusing it as soon as it passes `limit` bytes.
pub(crate) async fn read_limited(
    body: Incoming,
    headers: &HeaderMap,
    limit: usize,
    host: &str,
) -> Result<Bytes, Error> {
    let too_large = || Error::TooLarge {
        host: host.to_owned(),
        what: "body",
        limit,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(Error::Protocol {
            host: host.to_owned(),
            reason: format!("the body broke off: {}", innermost(error.as_ref())),
        }),
    }
}

/// Decodes a gzip, deflate or br body into at most `limit` bytes, so a
/// small compressed body cannot expand without bound. Other encodings are
/// left as they are. The headers then describe the decoded body.
pub(crate) fn decode(
    body: Bytes,
    headers: &mut HeaderMap,
    limit: usize,
    host: &str,
) -> Result<Bytes, Error> {
    let Some(encoding) = headers
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase())
    else {
        return Ok(body);
    };
    let reader: Box<dyn Read + '_> = match encoding.as_str() {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        // "deflate" is zlib-wrapped per RFC 9110; some servers send it raw.
        "deflate" if body.first().is_some_and(|byte| byte & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(&body[..]))
        }
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(&body[..])),
        "br" => Box::new(brotli_decompressor::Decompressor::new(&body[..], 4096)),
        _ => return Ok(body),
    };
    let mut decoded = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| Error::Protocol {
            host: host.to_owned(),
            reason: format!("the {encoding} body cannot be decoded: {error}"),
        })?;
    if decoded.len() > limit {
        return Err(Error::TooLarge {
            host: host.to_owned(),
            what: "decompressed body",
            limit,
        });
    }
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    Ok(Bytes::from(decoded))
}

/// The most specific message in an error's chain.
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
