//! The use cases every door shares, with no HTTP in them: payments (create, query, close),
//! refunds, payouts, asking a provider account (`ask`), applying a provider's verified word
//! (`settle`), and the callbacks a front door's school gets (`notify`). Errors are the API
//! error every door renders in its own shape.

pub mod ask;
pub mod error;
pub mod notify;
pub mod payments;
pub mod payouts;
pub mod refunds;
pub mod settle;
