//! Merchant API errors: `{"error": {"code", "message", "provider", "provider_code",
//! "provider_message"}}` with the HTTP status DESIGN.md §4 gives each code.

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub provider: Option<String>,
    pub provider_code: Option<String>,
    pub provider_message: Option<String>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), provider: None, provider_code: None, provider_message: None }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(401, "invalid_signature", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "method_not_allowed", message)
    }

    pub fn duplicate(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(409, "invalid_state", message)
    }

    pub fn amount_exceeds_refundable(message: impl Into<String>) -> Self {
        Self::new(422, "amount_exceeds_refundable", message)
    }

    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(429, "rate_limited", message)
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(413, "body_too_large", format!("request body is larger than {limit} bytes"))
    }

    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(408, "request_timeout", format!("the request body did not arrive within {} ms", limit.as_millis()))
    }

    pub fn unsupported(provider: &str, message: impl Into<String>) -> Self {
        Self::new(422, "unsupported_operation", message).with_provider(provider)
    }

    pub fn provider_error(provider: &str, code: &str, message: &str) -> Self {
        let mut e = Self::new(502, "provider_error", format!("provider account {provider} refused the request"));
        e.provider = Some(provider.to_string());
        e.provider_code = Some(code.to_string());
        e.provider_message = Some(message.to_string());
        e
    }

    pub fn provider_unavailable(provider: Option<&str>, message: impl Into<String>) -> Self {
        let mut e = Self::new(503, "provider_unavailable", message);
        e.provider = provider.map(str::to_string);
        e
    }

    pub fn store_unavailable() -> Self {
        Self::new(503, "store_unavailable", "the payment store is unavailable; retry shortly")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal_error", message)
    }

    pub fn with_provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_string());
        self
    }

    pub fn body(&self) -> String {
        json!({"error": {
            "code": self.code,
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
