//! The script runtime: transform scripts and pre/post-process code run on
//! V8 with the `botContext` host API.
//!
//! # Invariant
//! Scripts reach nothing of the host: no I/O, no timers, no modules; every
//! run has a wall-clock and a heap limit, and a run that breaks one ends as
//! an error, never as a crash or `Ok(undefined)`. No state crosses
//! conversations.
//!
//! # API boundary
//! A runtime type that owns the isolates and an async `run` that takes a
//! compiled script and the turn's data and returns what the script did
//! (messages, variable writes, trigger, debug output) as data. Built in
//! issue 6; this crate holds no code until then.
#![deny(missing_docs)]
