//! Signing and encoding helpers shared by the dialects: sorted `k=v` strings, md5/sha1 hex,
//! and constant-time comparison of signatures.

use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Joins `key=value` pairs with `&`, sorted by key in ASCII order (as a `BTreeMap` iterates),
/// leaving out pairs whose value is empty when `skip_empty` is set.
pub fn sorted_pairs<'a, I>(pairs: I, skip_empty: bool) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(_, v)| !(skip_empty && v.is_empty()))
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Lowercase hex md5.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Lowercase hex sha1.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// Compares two signatures in constant time (for equal lengths).
pub fn same_signature(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Compares two hex signatures in constant time, ignoring hex case, since providers differ
/// in the case they print.
pub fn same_hex_signature(expected: &str, given: &str) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    let a: Vec<u8> = expected.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let b: Vec<u8> = given.bytes().map(|b| b.to_ascii_lowercase()).collect();
    a.ct_eq(&b).into()
}

/// Parses an `application/x-www-form-urlencoded` body or query string into pairs.
pub fn parse_form(data: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(data).into_owned().collect()
}

/// Encodes pairs as an `application/x-www-form-urlencoded` body.
pub fn encode_form<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_pairs_sort_and_skip() {
        let s = sorted_pairs([("b", "2"), ("a", "1"), ("c", ""), ("B", "x")], true);
        assert_eq!(s, "B=x&a=1&b=2");
        let s = sorted_pairs([("b", "2"), ("c", "")], false);
        assert_eq!(s, "b=2&c=");
    }

    #[test]
    fn digests_match_known_answers() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn mct_known_answer_from_design() {
        // DESIGN.md §2: the mct document's own vector.
        let s = "data=3304A5EC2CDEB4D12ED3338B5C01BF6B&open_id=87f46f5db1b65f0ac195285f49ee6958&open_key=0828e83720fdbe3685a7b94214af04f9&timestamp=1497957842";
        let sha = sha1_hex(s.as_bytes());
        assert_eq!(sha, "013030c4532c00c14ad8b9e47f3382f9ea4a8ed1");
        assert_eq!(md5_hex(sha.as_bytes()), "915be5aff09f2686870e1d17e93b3542");
    }

    #[test]
    fn signature_comparison() {
        assert!(same_signature("ABC", "ABC"));
        assert!(!same_signature("ABC", "abc"));
        assert!(!same_signature("ABC", "ABCD"));
        assert!(same_hex_signature("ABCdef", "abcDEF"));
        assert!(!same_hex_signature("abc", "abd"));
    }

    #[test]
    fn form_round_trip() {
        let body = encode_form([("params", r#"{"a":"b c&d"}"#), ("x", "中")]);
        let back = parse_form(body.as_bytes());
        assert_eq!(
            back[0],
            ("params".to_string(), r#"{"a":"b c&d"}"#.to_string())
        );
        assert_eq!(back[1].1, "中");
    }
}
