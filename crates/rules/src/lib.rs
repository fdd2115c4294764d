//! Rule and branch evaluation: custom data fields, rule matching, next
//! actions and template rendering over the compiled forms of
//! `patchbay-config`.
//!
//! # Invariant
//! Pure functions over plain data: no I/O, no async, no parsing per call.
//!
//! # API boundary
//! Field extraction from a JSON response, rule selection, next-action
//! resolution and template rendering with per-context encoding. Built in
//! issue 7; this crate holds no code until then.
#![deny(missing_docs)]
