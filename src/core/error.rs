//! Merchant API errors: `{"error": {"code", "message", "provider", "provider_code",
//! "provider_message"}}` with the HTTP status DESIGN.md §4 gives each code.

use serde_json::json;

/// The merchant API's error codes (DESIGN.md §4), each with its HTTP status. Doors match on
/// these, never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidSignature,
    NotFound,
    MethodNotAllowed,
    DuplicateOutTradeNo,
    DuplicateOutRefundNo,
    DuplicateOutPayoutNo,
    InvalidState,
    AmountExceedsRefundable,
    RateLimited,
    BodyTooLarge,
    RequestTimeout,
    UnsupportedOperation,
    ProviderError,
    ProviderUnavailable,
    StoreUnavailable,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::DuplicateOutTradeNo => "duplicate_out_trade_no",
            ErrorCode::DuplicateOutRefundNo => "duplicate_out_refund_no",
            ErrorCode::DuplicateOutPayoutNo => "duplicate_out_payout_no",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::AmountExceedsRefundable => "amount_exceeds_refundable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UnsupportedOperation => "unsupported_operation",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status a merchant API answer with this code has.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidSignature => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::DuplicateOutTradeNo
            | ErrorCode::DuplicateOutRefundNo
            | ErrorCode::DuplicateOutPayoutNo
            | ErrorCode::InvalidState => 409,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::AmountExceedsRefundable | ErrorCode::UnsupportedOperation => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::ProviderError => 502,
            ErrorCode::ProviderUnavailable | ErrorCode::StoreUnavailable => 503,
        }
    }

    /// Whether it says the merchant's number was used before.
    pub fn is_duplicate(self) -> bool {
        matches!(
            self,
            ErrorCode::DuplicateOutTradeNo | ErrorCode::DuplicateOutRefundNo | ErrorCode::DuplicateOutPayoutNo
        )
    }
}

/// An error every door answers with: the code, payglot's message and, where a provider
/// refused, what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub provider: Option<String>,
    pub provider_code: Option<String>,
    pub provider_message: Option<String>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            provider: None,
            provider_code: None,
            provider_message: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidSignature, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MethodNotAllowed, message)
    }

    pub fn duplicate(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code, message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }

    pub fn amount_exceeds_refundable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AmountExceedsRefundable, message)
    }

    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RateLimited, message)
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(ErrorCode::BodyTooLarge, format!("request body is larger than {limit} bytes"))
    }

    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(ErrorCode::RequestTimeout, format!("the request body did not arrive within {} ms", limit.as_millis()))
    }

    pub fn unsupported(provider: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedOperation, message).with_provider(provider)
    }

    pub fn provider_error(provider: &str, code: &str, message: &str) -> Self {
        let mut e = Self::new(ErrorCode::ProviderError, format!("provider account {provider} refused the request"));
        e.provider = Some(provider.to_string());
        e.provider_code = Some(code.to_string());
        e.provider_message = Some(message.to_string());
        e
    }

    pub fn provider_unavailable(provider: Option<&str>, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::ProviderUnavailable, message);
        e.provider = provider.map(str::to_string);
        e
    }

    pub fn store_unavailable() -> Self {
        Self::new(ErrorCode::StoreUnavailable, "the payment store is unavailable; retry shortly")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    pub fn with_provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_string());
        self
    }

    pub fn body(&self) -> String {
        json!({"error": {
            "code": self.code.as_str(),
            "message": self.message,
            "provider": self.provider,
            "provider_code": self.provider_code,
            "provider_message": self.provider_message,
        }})
        .to_string()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failed");
        ApiError::store_unavailable()
    }
}
