//! The ways into payglot, each turning its requests into the core's use cases and the results
//! back into its own shape: the merchant API (`/v1`), the provider-compatible front doors
//! (`/compat/{dialect}`), provider callbacks (`/callbacks/{account}`), the admin listener, and
//! the payer's checkout page.

pub mod admin;
pub mod callbacks;
pub mod checkout;
pub mod compat;
pub mod console;
pub mod merchant_api;

use crate::core::error::ApiError;
use crate::http::{BodyError, Reply};

/// A body that could not be read, as the merchant API (and every door) answers it.
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(limit) => ApiError::body_too_large(limit),
            BodyError::Timeout(limit) => ApiError::request_timeout(limit),
            BodyError::Read(e) => ApiError::invalid_request(format!("could not read the request body: {e}")),
        }
    }
}

impl Reply {
    /// The JSON error answer of the merchant API (and every door that answers in it).
    pub fn error(e: &ApiError) -> Self {
        crate::http::note_error_code(e.code.as_str());
        Reply { status: e.status, content_type: "application/json", body: e.body() }
    }
}
