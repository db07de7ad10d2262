//! Money is an integer number of fen (`i64`) end to end; yuan strings are parsed and formatted
//! exactly, never through a float.

use std::fmt;

/// The largest amount payglot accepts for one payment, refund or payout: 100 million yuan.
/// Anything above is treated as a mistake, not a payment.
pub const MAX_FEN: i64 = 10_000_000_000;

/// Why a money value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    Empty,
    Negative(String),
    TooManyDecimals(String),
    NotANumber(String),
    TooLarge(String),
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::Empty => write!(f, "amount is empty"),
            MoneyError::Negative(s) => write!(f, "amount {s:?} is negative"),
            MoneyError::TooManyDecimals(s) => {
                write!(f, "amount {s:?} has more than 2 decimals")
            }
            MoneyError::NotANumber(s) => write!(f, "amount {s:?} is not a decimal number"),
            MoneyError::TooLarge(s) => write!(f, "amount {s:?} is larger than {MAX_FEN} fen"),
        }
    }
}

impl std::error::Error for MoneyError {}

/// Parses a yuan string ("0.01", "19.8", "198") into fen, exactly.
pub fn yuan_to_fen(text: &str) -> Result<i64, MoneyError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    if s.starts_with('-') {
        return Err(MoneyError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
        return Err(MoneyError::NotANumber(text.to_string()));
    }
    if frac.len() > 2 {
        return Err(MoneyError::TooManyDecimals(text.to_string()));
    }
    let too_large = || MoneyError::TooLarge(text.to_string());
    let whole_fen = if whole.is_empty() {
        0
    } else {
        whole.parse::<i64>().map_err(|_| too_large())?.checked_mul(100).ok_or_else(too_large)?
    };
    let frac_fen = match frac.len() {
        0 => 0,
        1 => i64::from(frac.as_bytes()[0] - b'0') * 10,
        _ => frac.parse::<i64>().map_err(|_| too_large())?,
    };
    let fen = whole_fen.checked_add(frac_fen).ok_or_else(too_large)?;
    if fen > MAX_FEN {
        return Err(too_large());
    }
    Ok(fen)
}

/// Formats fen as a yuan string with exactly two decimals ("0.01", "19.80").
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses a fen string ("100") as sent by providers that count in fen.
pub fn parse_fen(text: &str) -> Result<i64, MoneyError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    if s.starts_with('-') {
        return Err(MoneyError::Negative(text.to_string()));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::NotANumber(text.to_string()));
    }
    let fen: i64 = s.parse().map_err(|_| MoneyError::TooLarge(text.to_string()))?;
    if fen > MAX_FEN {
        return Err(MoneyError::TooLarge(text.to_string()));
    }
    Ok(fen)
}

/// Checks an amount given in fen by a merchant: positive and not absurd.
pub fn check_amount(fen: i64) -> Result<i64, MoneyError> {
    if fen < 0 {
        Err(MoneyError::Negative(fen.to_string()))
    } else if fen == 0 {
        Err(MoneyError::Empty)
    } else if fen > MAX_FEN {
        Err(MoneyError::TooLarge(fen.to_string()))
    } else {
        Ok(fen)
    }
}

/// How the merchant API says what an amount is.
pub const FEN_RULE: &str = "amounts are integer fen (1980 for 19.80 yuan)";

/// What is wrong with a request's `amount`, in words a merchant's developer reads (the field
/// named, the rule, what was given); `None` when it is a payable amount.
pub fn amount_problem(fen: i64) -> Option<String> {
    match check_amount(fen) {
        Ok(_) => None,
        Err(MoneyError::TooLarge(_)) => {
            Some(format!("amount: {fen} fen is more than {} yuan, the most one payment may be", MAX_FEN / 100))
        }
        Err(_) if fen == 0 => Some(format!("amount: 0 is nothing to pay; {FEN_RULE}, at least 1")),
        Err(_) => Some(format!("amount: {fen} is negative; {FEN_RULE}, at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(yuan_to_fen("0.01"), Ok(1));
        assert_eq!(yuan_to_fen("19.80"), Ok(1980));
        assert_eq!(yuan_to_fen("19.8"), Ok(1980));
        assert_eq!(yuan_to_fen("198"), Ok(19800));
        assert_eq!(yuan_to_fen(".5"), Ok(50));
        assert_eq!(yuan_to_fen("1."), Ok(100));
        assert_eq!(yuan_to_fen("0.07"), Ok(7));
        // 0.29 and 0.57 are the classic float traps: 0.29 * 100 = 28.999999999999996
        assert_eq!(yuan_to_fen("0.29"), Ok(29));
        assert_eq!(yuan_to_fen("0.57"), Ok(57));
    }

    #[test]
    fn refuses_bad_yuan() {
        assert!(matches!(yuan_to_fen("0.001"), Err(MoneyError::TooManyDecimals(_))));
        assert!(matches!(yuan_to_fen("-1.00"), Err(MoneyError::Negative(_))));
        assert!(matches!(yuan_to_fen("abc"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(yuan_to_fen("1e3"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(yuan_to_fen("1.2.3"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(yuan_to_fen("."), Err(MoneyError::NotANumber(_))));
        assert!(matches!(yuan_to_fen(""), Err(MoneyError::Empty)));
        assert!(matches!(yuan_to_fen("99999999999999999999"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(yuan_to_fen("100000000.01"), Err(MoneyError::TooLarge(_))));
        assert_eq!(yuan_to_fen("100000000.00"), Ok(MAX_FEN));
    }

    #[test]
    fn formats_fen_as_yuan() {
        assert_eq!(fen_to_yuan(1), "0.01");
        assert_eq!(fen_to_yuan(1980), "19.80");
        assert_eq!(fen_to_yuan(0), "0.00");
        assert_eq!(fen_to_yuan(-5), "-0.05");
        assert_eq!(fen_to_yuan(i64::MIN), "-92233720368547758.08");
        for fen in [1, 7, 29, 57, 100, 1999, 123456789] {
            assert_eq!(yuan_to_fen(&fen_to_yuan(fen)), Ok(fen));
        }
    }

    #[test]
    fn fen_strings_and_merchant_amounts() {
        assert_eq!(parse_fen("100"), Ok(100));
        assert!(parse_fen("1.5").is_err());
        assert!(parse_fen("-1").is_err());
        assert!(check_amount(0).is_err());
        assert!(check_amount(-1).is_err());
        assert!(check_amount(MAX_FEN + 1).is_err());
        assert_eq!(check_amount(1), Ok(1));
    }
}
