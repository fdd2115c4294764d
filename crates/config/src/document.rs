//! Other YAML files of patchbay (test files, `*.test.yaml`) read into their
//! own types with the bot loader's diagnostics: file, line and column, the
//! source line with a caret, a "did you mean", several mistakes in one run.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_saphyr::{Error as YamlError, Options};

use crate::diagnostic::{Code, Diagnostic, Report, Severity};
use crate::load::{
    Format, MAX_FILE_BYTES, MAX_REPAIRS, blank_entry, covers_everything, from_yaml_error, key_of,
};
use crate::locate::{Locator, Step};

/// One step of a path into a [`Document`]: a mapping's key or a list's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocStep<'a> {
    /// A key of a mapping.
    Key(&'a str),
    /// An index into a list, from 0.
    Index(usize),
}

impl<'a> From<&'a str> for DocStep<'a> {
    fn from(key: &'a str) -> Self {
        Self::Key(key)
    }
}

impl From<usize> for DocStep<'_> {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// A YAML file read with [`Document::read`]: where each of its values sits,
/// and the diagnostics found so far (those of reading it, then any its
/// owner adds), rendered as a bot file's are by [`Document::into_report`].
#[derive(Debug)]
pub struct Document {
    file: String,
    text: String,
    locator: Locator,
    diagnostics: Vec<Diagnostic>,
}

impl Document {
    /// Reads `text` as a `T`, reporting every mistake it can find as the
    /// bot loader does (after one, it blanks the entry at fault and reads
    /// on). Returns the value only when reading found no error. `file`
    /// names the file in diagnostics.
    pub fn read<T: DeserializeOwned>(file: &str, text: &str) -> (Option<T>, Self) {
        let mut document = Self {
            file: file.to_owned(),
            text: text.to_owned(),
            locator: Locator::default(),
            diagnostics: Vec::new(),
        };
        if text.len() > MAX_FILE_BYTES {
            document.text = String::new();
            document.diagnostics.push(Diagnostic::new(
                Severity::Error,
                Code::TooLarge,
                format!(
                    "the file is {} bytes; patchbay reads at most {MAX_FILE_BYTES}",
                    text.len()
                ),
                0..0,
            ));
            return (None, document);
        }
        if text.trim().is_empty() {
            document.diagnostics.push(Diagnostic::new(
                Severity::Error,
                Code::MissingField,
                "the file is empty",
                0..0,
            ));
            return (None, document);
        }
        document.locator = Locator::new(text);
        let locator = &document.locator;
        let mut repaired = text.to_owned();
        let mut blanked_keys: Vec<(String, usize)> = Vec::new();
        for _ in 0..MAX_REPAIRS {
            let mut options = Options::default();
            options.with_snippet = false;
            let error = match serde_saphyr::from_str_with_options::<T>(&repaired, options) {
                Ok(value) => {
                    let clean = document.diagnostics.is_empty();
                    return (clean.then_some(value), document);
                }
                Err(error) => error,
            };
            let custom = matches!(error.without_snippet(), YamlError::Message { .. });
            let (mut diagnostic, mut repair) =
                from_yaml_error(&error, &repaired, locator, Format::Yaml);
            if custom {
                // The type's own refusal (`case x has both ...`), not a
                // syntax error: said as it is, and the entry it is about
                // blanked so that reading goes on.
                diagnostic.code = Code::InvalidValue;
                if let Some(message) = diagnostic.message.strip_prefix("invalid YAML: ") {
                    diagnostic.message = message.to_owned();
                }
                diagnostic.label = None;
                repair = (diagnostic.span != (0..0))
                    .then(|| locator.enclosing_entry(diagnostic.span.start))
                    .flatten();
                // The caret goes under the first line of what it is about
                // (a whole case would draw as a bracket down the margin).
                let span = &mut diagnostic.span;
                if let Some(first_line) = text.get(span.clone()).and_then(|t| t.lines().next()) {
                    span.end = span.start + first_line.trim_end().len();
                }
            }
            let at = diagnostic.span.start;
            // What a blank left behind is the blanked entry's mistake
            // again: a field it held now missing, or a list it was the
            // only element of now empty where a list belongs.
            let cascade = blanked_keys.iter().any(|(key, key_at)| {
                let container = locator.container_of(*key_at);
                match diagnostic.code {
                    Code::MissingField => {
                        diagnostic.message == format!("missing field `{key}`")
                            && container
                                .is_some_and(|mapping| mapping.start <= at && at <= mapping.end)
                    }
                    Code::InvalidValue => {
                        diagnostic.message.starts_with("expected a ")
                            && container.is_some_and(|list| {
                                at <= list.start
                                    && text.get(at..list.start).is_some_and(|between| {
                                        between.trim_start_matches(':').trim().is_empty()
                                    })
                            })
                    }
                    _ => false,
                }
            });
            if !cascade {
                document.diagnostics.push(diagnostic);
            }
            match repair {
                Some(range) if !range.is_empty() && !covers_everything(&repaired, &range) => {
                    blanked_keys.push((key_of(&repaired[range.clone()]), range.start));
                    blank_entry(&mut repaired, range);
                }
                _ => break,
            }
        }
        (None, document)
    }

    /// The file's name, as given to [`Document::read`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The span of the value at exactly `path`, if the file has one there.
    pub fn value(&self, path: &[DocStep<'_>]) -> Option<Range<usize>> {
        self.locator.exact_value(&steps(path))
    }

    /// The span of the key at exactly `path` (a list element's: its
    /// value), if the file has one there.
    pub fn key(&self, path: &[DocStep<'_>]) -> Option<Range<usize>> {
        let path = steps(path);
        self.locator.exact_value(&path)?;
        self.locator.key(&path)
    }

    /// Adds a diagnostic at the value at `path` (or at the nearest value
    /// above it that the file has, or at its start), for the caller to
    /// give a label and help.
    pub fn add(
        &mut self,
        severity: Severity,
        code: Code,
        path: &[DocStep<'_>],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.locator.value(&steps(path)).unwrap_or(0..0);
        self.diagnostics
            .push(Diagnostic::new(severity, code, message, span));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    /// Whether any diagnostic so far is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|diagnostic| diagnostic.severity == Severity::Error)
    }

    /// The diagnostics found, as a [`Report`] to render or turn into JSON.
    pub fn into_report(self) -> Report {
        Report::new(&self.file, self.text, self.diagnostics)
    }
}

/// `did you mean `x`?` for the candidate closest to `typo`, when it is close
/// enough to be a typo: the bot loader's suggestion, for other files' names.
pub fn did_you_mean<'a>(
    typo: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    crate::suggest::did_you_mean(typo, candidates)
}

fn steps(path: &[DocStep<'_>]) -> Vec<Step> {
    path.iter()
        .map(|step| match step {
            DocStep::Key(key) => Step::Key((*key).to_owned()),
            DocStep::Index(index) => Step::Index(*index),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, try_from = "BTreeMap<String, String>")]
    struct Item {
        #[allow(dead_code)]
        name: String,
    }

    impl TryFrom<BTreeMap<String, String>> for Item {
        type Error = String;

        fn try_from(map: BTreeMap<String, String>) -> Result<Self, String> {
            match map.get("name") {
                Some(name) if name != "bad" => Ok(Self { name: name.clone() }),
                _ => Err("an item needs a good `name`".to_owned()),
            }
        }
    }

    #[test]
    fn reads_and_locates_values() {
        let text = "items:\n  - name: a\n  - name: b\n";
        let (file, document) = Document::read::<File>("f.yaml", text);
        assert_eq!(file.map(|file| file.items.len()), Some(2));
        let span = document
            .value(&[
                DocStep::Key("items"),
                DocStep::Index(1),
                DocStep::Key("name"),
            ])
            .expect("located");
        assert_eq!(&text[span], "b");
        let key = document
            .key(&[
                DocStep::Key("items"),
                DocStep::Index(1),
                DocStep::Key("name"),
            ])
            .expect("located");
        assert_eq!(&text[key], "name");
        assert!(document.value(&[DocStep::Key("nothing")]).is_none());
        assert!(!document.into_report().has_errors());
    }

    #[test]
    fn reports_every_mistake_with_its_place() {
        let text = "itemz: []\nitems:\n  - name: bad\n  - name: good\n";
        let (file, document) = Document::read::<File>("f.yaml", text);
        assert!(file.is_none());
        let report = document.into_report();
        let codes: Vec<_> = report.diagnostics().iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [Code::UnknownField, Code::InvalidValue],
            "{report:?}"
        );
        let rendered = report.render(crate::RenderStyle::Plain);
        assert!(
            rendered.contains("error[unknown-field]: f.yaml:1:1: unknown field `itemz`"),
            "{rendered}"
        );
        assert!(rendered.contains("did you mean `items`?"), "{rendered}");
        assert!(
            rendered.contains("an item needs a good `name`") && !rendered.contains("invalid YAML"),
            "{rendered}"
        );
    }

    #[test]
    fn an_empty_or_broken_file_is_one_error() {
        let (_, document) = Document::read::<File>("f.yaml", "  \n");
        let report = document.into_report();
        assert_eq!(report.diagnostics().len(), 1);
        assert_eq!(report.diagnostics()[0].message, "the file is empty");
        let (_, document) = Document::read::<File>("f.yaml", "items: [\n");
        let report = document.into_report();
        assert_eq!(report.diagnostics()[0].code, Code::Syntax, "{report:?}");
    }
}
