//! Rule and branch evaluation: template rendering with the encoding of the
//! place a value lands in, custom data fields, rule matching and next
//! actions, over the compiled forms of `patchbay-config`.
//!
//! # Invariant
//! Pure functions over plain data: no I/O, no async, no parsing of the bot
//! file per call (paths with template references are compiled once per
//! distinct rendered text and cached by the caller's [`PathCache`]).
//!
//! # API boundary
//! [`Values`] (what templates and conditions read, [`Variables`] borrowed), [`select_answer_rule`]
//! and [`capture_value`] for a question's answer, [`render`] with
//! [`Place`], [`render_url`] for a request's URL, [`extract_fields`] into
//! [`Fields`], [`select_rule`], [`next_step`] and [`trigger_target`] (by name, or
//! through a [`BotIndex`] made once per bot), and
//! [`xml_to_json`] for XML responses.
#![deny(missing_docs)]

mod answer;
mod fields;
mod flow;
mod render;
mod select;
mod xml;

pub use answer::{Answer, capture_groups, capture_value, picked_choice, select_answer_rule};
pub use fields::{FieldValue, Fields, PathCache, extract_fields};
pub use flow::{
    BotIndex, Position, Step, fallback_start, find_interaction, next_step, trigger_target,
};
pub use render::{Place, RenderError, RenderedUrl, Values, Variables, render, render_url};
pub use select::{condition_holds, select_rule};
pub use xml::xml_to_json;
