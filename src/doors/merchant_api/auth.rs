//! Merchant request signing: `Payglot-Merchant`, `Payglot-Timestamp` (±300 s),
//! `Payglot-Nonce` (16–64 characters, never twice inside the window) and
//! `Payglot-Signature = hex(HMAC-SHA256(key, timestamp \n nonce \n METHOD \n path_and_query \n body))`.
//! The same HMAC signs outgoing merchant notifications (`core::notify::event_signature`).

use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::dialects::signing::within_window;
use crate::store::Store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length")
}

fn request_mac(key: &str, timestamp: &str, nonce: &str, method: &str, path_and_query: &str, body: &[u8]) -> HmacSha256 {
    let mut m = mac(key);
    for part in [timestamp, nonce, method, path_and_query] {
        m.update(part.as_bytes());
        m.update(b"\n");
    }
    m.update(body);
    m
}

/// The signature of a merchant API request.
pub fn request_signature(
    key: &str,
    timestamp: &str,
    nonce: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    hex::encode(request_mac(key, timestamp, nonce, method, path_and_query, body).finalize().into_bytes())
}

/// The signing headers of one request.
pub struct SignedHeaders<'a> {
    pub merchant: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a request's signature, timestamp and nonce; returns the merchant id.
pub async fn authenticate(
    live: &LiveConfig,
    store: &dyn Store,
    headers: SignedHeaders<'_>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
) -> Result<String, ApiError> {
    let (merchant_id, nonce) = verify(live, headers, method, path_and_query, body, now)?;
    // Only a correctly signed request may use up a nonce.
    let fresh = store.remember_nonce(&merchant_id, &nonce, now, now - 2 * TIMESTAMP_WINDOW_SECS).await?;
    if !fresh {
        return Err(ApiError::invalid_signature("Payglot-Nonce was already used"));
    }
    Ok(merchant_id)
}

/// Everything of `authenticate` but the nonce's first use: (merchant id, nonce).
pub fn verify(
    live: &LiveConfig,
    headers: SignedHeaders<'_>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
) -> Result<(String, String), ApiError> {
    let need = |v: Option<&'_ str>, name: &str| -> Result<String, ApiError> {
        v.map(str::to_string).ok_or_else(|| ApiError::invalid_signature(format!("missing header {name}")))
    };
    let merchant_id = need(headers.merchant, "Payglot-Merchant")?;
    let timestamp = need(headers.timestamp, "Payglot-Timestamp")?;
    let nonce = need(headers.nonce, "Payglot-Nonce")?;
    let signature = need(headers.signature, "Payglot-Signature")?;
    let merchant = live
        .merchant(&merchant_id)
        .ok_or_else(|| ApiError::invalid_signature(format!("unknown merchant {merchant_id:?}")))?;
    let ts: i64 =
        timestamp.parse().map_err(|_| ApiError::invalid_signature("Payglot-Timestamp must be unix seconds"))?;
    if !within_window(now, ts, TIMESTAMP_WINDOW_SECS) {
        return Err(ApiError::invalid_signature(format!(
            "Payglot-Timestamp {ts} is more than {TIMESTAMP_WINDOW_SECS} s from the gateway's clock ({now})"
        )));
    }
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_signature("Payglot-Nonce must be 16 to 64 printable characters"));
    }
    let given =
        hex::decode(signature.trim()).map_err(|_| ApiError::invalid_signature("Payglot-Signature must be hex"))?;
    // verify_slice compares in constant time; during a key rotation either key signs.
    let signed_with =
        |key: &str| request_mac(key, &timestamp, &nonce, method, path_and_query, body).verify_slice(&given).is_ok();
    if !signed_with(merchant.key.expose()) && !merchant.next_key.as_ref().is_some_and(|k| signed_with(k.expose())) {
        return Err(ApiError::invalid_signature("Payglot-Signature does not match the request"));
    }
    Ok((merchant_id, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut m = mac("Jefe");
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let a = request_signature("k", "1", "n", "GET", "/v1/payments/x", b"");
        let b = request_signature("k", "1", "n", "GET", "/v1/payments/y", b"");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        use crate::core::notify::event_signature;
        assert_ne!(event_signature("k", "1", "e", b"{}"), event_signature("k", "2", "e", b"{}"));
    }

    #[test]
    fn timestamp_windows_take_any_i64() {
        assert!(within_window(1000, 1300, 300) && within_window(1000, 700, 300));
        assert!(!within_window(1000, 1301, 300) && !within_window(1000, 699, 300));
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            assert!(!within_window(1_700_000_000, ts, 300), "{ts}");
        }
        assert!(!within_window(i64::MIN, i64::MAX, 300));
    }
}
