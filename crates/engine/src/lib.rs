//! The engine: composes config, credentials, transport, script and rules
//! into one turn of a conversation.
//!
//! # Invariant
//! Thin: it orders the steps of spec section 3 and owns no policy of its
//! own. Conversation state is a plain value passed in and returned.
//!
//! # API boundary
//! `Engine::run_turn(state, start, message)` and `Engine::invoke(integration,
//! state)`. Built in issue 7; this crate holds no code until then.
#![deny(missing_docs)]
