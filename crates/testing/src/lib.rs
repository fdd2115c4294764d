//! Bots tested like code (docs/testing.md): test files of cases
//! ([`TestFile`]), each one turn or several played on one conversation
//! ([`Case::turns`]), run against a local upstream
//! ([`StubUpstream`]) that answers the case's calls over the real transport
//! path (proxy tunnel, TLS with the called host's name, HTTP/1.1 or 2), and
//! recordings of real exchanges with every secret redacted ([`Recorder`],
//! [`Recordings`]).
//!
//! # Invariant
//! No process I/O: the caller reads test files and recordings and writes
//! what a [`Recorder`] kept. A case's calls never leave 127.0.0.1 (the
//! stub is the engine's proxy and its resolver never answers a real
//! address), except a [`Recorder`]'s, which are the point of recording.
//! A recording holds no secret the [`Redactor`] knows of, in any encoding
//! patchbay produces (as it is, JSON-escaped, percent- and form-encoded,
//! base64); nor do a [`CaseOutcome`] and the calls the stub names as
//! unanswered, since both are printed.
//!
//! # API boundary
//! [`TestFile`] with [`Case`] and [`CaseTurn`] (and its schema,
//! [`json_schema`] with [`TEST_FILE_SCHEMA_ID`]), [`run_case`] with
//! [`CaseRecordings`], [`CaseOutcome`], the report functions
//! ([`case_line`], [`summary`], [`junit`]), [`StubUpstream`] with
//! [`Answer`], [`Recorder`], [`Recordings`], [`Redactor`].
#![deny(missing_docs)]

mod check;
mod model;
mod recording;
mod report;
mod run;
mod stub;

pub use model::{
    Case, CaseTurn, Expect, ExpectedMessage, TEST_FILE_SCHEMA_ID, TestFile, TestFileError,
    UpstreamAnswer, json_schema,
};
pub use recording::{REDACTED, Recorder, RecorderError, RecordingError, Recordings, Redactor};
pub use report::{FileOutcome, case_line, diff, junit, summary, totals};
pub use run::{CaseOutcome, CaseRecordings, Mismatch, RunError, run_case, stub_options};
pub use stub::{
    Answer, BoxFuture, StubError, StubRequest, StubResolver, StubResponse, StubUpstream,
};
