//! Work payglot does by itself, outside any request: delivering the outbox (`delivery`),
//! asking providers about what is not final (`requery`), and reconciling a day (`reconcile`).

pub mod delivery;
pub mod reconcile;
pub mod requery;
