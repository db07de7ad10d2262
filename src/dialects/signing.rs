//! Signing and encoding helpers shared by the dialects: sorted `k=v` strings, md5/sha1 hex,
//! constant-time comparison of signatures, form encoding, and AES (ECB or CBC, PKCS#7).

use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Joins `key=value` pairs with `&`, sorted by key in ASCII order (as a `BTreeMap` iterates),
/// leaving out pairs whose value is empty when `skip_empty` is set.
pub fn sorted_pairs<'a, I>(pairs: I, skip_empty: bool) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !(skip_empty && v.is_empty())).collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    // Sized once (callers append `&key=…`, hence the slack): grown from empty it was copied
    // four or five times.
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>() + 48);
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

/// Whether `ts` is within `window` seconds of `now`; an attacker-chosen `ts` far away (even
/// i64::MIN) is simply outside, never an overflow.
pub fn within_window(now: i64, ts: i64, window: i64) -> bool {
    now.checked_sub(ts).and_then(i64::checked_abs).is_some_and(|d| d <= window)
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
        assert_eq!(back[0], ("params".to_string(), r#"{"a":"b c&d"}"#.to_string()));
        assert_eq!(back[1].1, "中");
    }
}

/// Block modes the AES helpers offer (providers' documents differ, accounts choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AesMode {
    Ecb,
    /// CBC with the given 16-byte IV.
    Cbc([u8; 16]),
}

/// Runs `$body` with `$C` the AES of the key's length (128, 192 or 256 bits).
macro_rules! with_aes {
    ($key:expr, $C:ident => $body:expr) => {
        match $key.len() {
            16 => {
                type $C = aes::Aes128;
                $body
            }
            24 => {
                type $C = aes::Aes192;
                $body
            }
            32 => {
                type $C = aes::Aes256;
                $body
            }
            n => Err(format!("an AES key has 16, 24 or 32 bytes, not {n}")),
        }
    };
}

/// AES with PKCS#5/#7 padding (RustCrypto's `ecb` and `cbc`); the key length picks AES-128,
/// -192 or -256.
pub fn aes_encrypt(key: &[u8], mode: AesMode, plain: &[u8]) -> Result<Vec<u8>, String> {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyInit, KeyIvInit};
    with_aes!(key, C => match mode {
        AesMode::Ecb => ecb::Encryptor::<C>::new_from_slice(key)
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain))
            .map_err(|e| e.to_string()),
        AesMode::Cbc(iv) => cbc::Encryptor::<C>::new_from_slices(key, &iv)
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain))
            .map_err(|e| e.to_string()),
    })
}

/// Reverses `aes_encrypt`; a wrong key or corrupted text shows as bad padding.
pub fn aes_decrypt(key: &[u8], mode: AesMode, cipher_text: &[u8]) -> Result<Vec<u8>, String> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyInit, KeyIvInit};
    if cipher_text.is_empty() || !cipher_text.len().is_multiple_of(16) {
        return Err("ciphertext is not a whole number of AES blocks".into());
    }
    let bad_padding = |_| "bad padding (wrong key or corrupted data)".to_string();
    with_aes!(key, C => match mode {
        AesMode::Ecb => ecb::Decryptor::<C>::new_from_slice(key)
            .map_err(|e| e.to_string())?
            .decrypt_padded_vec_mut::<Pkcs7>(cipher_text)
            .map_err(bad_padding),
        AesMode::Cbc(iv) => cbc::Decryptor::<C>::new_from_slices(key, &iv)
            .map_err(|e| e.to_string())?
            .decrypt_padded_vec_mut::<Pkcs7>(cipher_text)
            .map_err(bad_padding),
    })
}

#[cfg(test)]
mod aes_tests {
    use super::*;

    #[test]
    fn aes_known_answers() {
        // FIPS-197 appendix C.1 / C.3, one block (the padding block follows it).
        let key128 = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let plain = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let out = aes_encrypt(&key128, AesMode::Ecb, &plain).unwrap();
        assert_eq!(hex::encode(&out[..16]), "69c4e0d86a7b0430d8cdb78070b4c55a");
        let key256 = hex::decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
        let out = aes_encrypt(&key256, AesMode::Ecb, &plain).unwrap();
        assert_eq!(hex::encode(&out[..16]), "8ea2b7ca516745bfeafc49904b496089");
        // NIST SP 800-38A F.2.1 CBC-AES128, first block.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap().try_into().unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let out = aes_encrypt(&key, AesMode::Cbc(iv), &plain).unwrap();
        assert_eq!(hex::encode(&out[..16]), "7649abac8119b246cee98e9b12e9197d");
    }

    #[test]
    fn aes_round_trips_and_refuses_wrong_keys() {
        let key = b"AD42F6697B035B7580E4FEF93BE20B4D";
        for mode in [AesMode::Ecb, AesMode::Cbc([7; 16])] {
            for len in [0, 1, 15, 16, 17, 100] {
                let plain = vec![b'x'; len];
                let c = aes_encrypt(key, mode, &plain).unwrap();
                assert_eq!(c.len(), (len / 16 + 1) * 16);
                assert_eq!(aes_decrypt(key, mode, &c).unwrap(), plain);
            }
        }
        let c = aes_encrypt(key, AesMode::Ecb, b"{\"a\":1}").unwrap();
        assert!(aes_decrypt(b"0000000000000000000000000000000X", AesMode::Ecb, &c).is_err());
        assert!(aes_decrypt(key, AesMode::Ecb, &c[..15]).is_err());
        assert!(aes_encrypt(b"short", AesMode::Ecb, b"x").is_err());
    }
}

/// Parses JSON, and failing that the loose JSON some provider documents show: bare keys,
/// single quotes, `;` between fields, `//` comments and trailing commas.
pub fn parse_loose_json(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(strict) => serde_json::from_str(&tighten_json(text)).map_err(|_| format!("not JSON: {strict}")),
    }
}

/// Rewrites loose JSON into strict JSON (see `parse_loose_json`).
fn tighten_json(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                // A string: copy it with double quotes, keeping escapes.
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    } else if chars[i] == '"' {
                        out.push('\\');
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                out.push('"');
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ';' => {
                out.push(',');
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if chars.get(j) == Some(&':') || !matches!(word.as_str(), "true" | "false" | "null") {
                    out.push('"');
                    out.push_str(&word);
                    out.push('"');
                } else {
                    out.push_str(&word);
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Drop commas that end an object or array.
    let mut cleaned = String::with_capacity(out.len());
    let tail: Vec<char> = out.chars().collect();
    for (k, c) in tail.iter().enumerate() {
        if *c == ',' {
            let next = tail[k + 1..].iter().find(|n| !n.is_whitespace());
            if matches!(next, Some('}') | Some(']') | None) {
                continue;
            }
        }
        cleaned.push(*c);
    }
    cleaned
}

#[cfg(test)]
mod loose_json_tests {
    use super::*;

    #[test]
    fn reads_the_documents_loose_examples() {
        let v = parse_loose_json("{\n  ret_code:\"1\";\n  ret_content:\"加密信息\";\n  sign:\"签名\"\n}").unwrap();
        assert_eq!(v["ret_code"], "1");
        assert_eq!(v["sign"], "签名");
        let v = parse_loose_json("{\n  body:'xxx 学生学费',\n  total_fee:\"19800\",\n  pay_type:1,\n  piaoju:{//个人\n  payer_type:1,\n  },\n}").unwrap();
        assert_eq!(v["body"], "xxx 学生学费");
        assert_eq!(v["pay_type"], 1);
        assert_eq!(v["piaoju"]["payer_type"], 1);
        assert_eq!(parse_loose_json(r#"{"a":"it's"}"#).unwrap()["a"], "it's");
        assert!(parse_loose_json("{a:").is_err());
    }
}
