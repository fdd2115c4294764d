//! Where each value of a bot file sits in its text, by path.
//!
//! Serde reports positions for the errors it finds; validation runs on the
//! typed model afterwards and needs to point at the text too. This index,
//! built from the same parser's events, maps a path such as
//! `integrations[2].credential` to the byte spans of its key and value.

use std::collections::HashMap;
use std::ops::Range;

use serde_saphyr::granit_parser::{Event, Parser, Span};

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

impl From<&str> for Step {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

impl From<&String> for Step {
    fn from(key: &String) -> Self {
        Self::Key(key.clone())
    }
}

impl From<usize> for Step {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// A path into the document: `["integrations", 2, "credential"]`.
pub(crate) type Path = Vec<Step>;

/// Builds a [`Path`] from keys and indices.
macro_rules! doc_path {
    ($($step:expr),* $(,)?) => {
        $crate::locate::Path::from([$($crate::locate::Step::from($step)),*])
    };
}
pub(crate) use doc_path;

/// Bot files nest a handful of levels; deeper input is hostile, and
/// indexing it would cost memory quadratic in its depth.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, Default)]
struct Entry {
    key: Option<Range<usize>>,
    value: Range<usize>,
    /// For an element of a block sequence, where its `-` indicator is.
    dash: Option<usize>,
}

impl Entry {
    /// The whole entry: key (or `-`) through the end of the value.
    fn whole(&self) -> Range<usize> {
        let start = self
            .key
            .as_ref()
            .map(|key| key.start)
            .or(self.dash)
            .unwrap_or(self.value.start);
        start.min(self.value.start)..self.value.end
    }
}

/// The path index of one document.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    text: String,
    entries: HashMap<Path, Entry>,
    line_starts: Vec<usize>,
}

enum Frame {
    Mapping { key: Option<(String, Range<usize>)> },
    Sequence { next: usize },
}

impl Locator {
    /// Indexes `text`; on a syntax error the index holds what came before it.
    pub(crate) fn new(text: &str) -> Self {
        let mut locator = Self {
            text: text.to_owned(),
            entries: HashMap::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(at, _)| at + 1))
                .collect(),
        };
        let mut stack: Vec<(Frame, Path, usize)> = Vec::new();
        let mut key_span: Option<Range<usize>> = None;
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let range = byte_range(text, &span);
            match event {
                Event::Scalar(value, ..) => {
                    if let Some((Frame::Mapping { key }, _, _)) = stack.last_mut()
                        && key.is_none()
                    {
                        *key = Some((value.into_owned(), range));
                        continue;
                    }
                    if let Some(path) = child_path(&mut stack, &mut key_span) {
                        locator.insert(text, path, key_span.take(), range);
                    }
                }
                Event::Alias(_) => {
                    if let Some(path) = child_path(&mut stack, &mut key_span) {
                        locator.insert(text, path, key_span.take(), range);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if stack.len() >= MAX_DEPTH {
                        break;
                    }
                    let path = if stack.is_empty() {
                        Some(Path::new())
                    } else {
                        child_path(&mut stack, &mut key_span)
                    };
                    let Some(path) = path else { continue };
                    locator.insert(text, path.clone(), key_span.take(), range.clone());
                    let frame = if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping { key: None }
                    } else {
                        Frame::Sequence { next: 0 }
                    };
                    stack.push((frame, path, range.start));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some((_, path, start)) = stack.pop()
                        && let Some(entry) = locator.entries.get_mut(&path)
                    {
                        entry.value = start..range.end.max(start);
                    }
                }
                _ => {}
            }
        }
        locator
    }

    /// The text indexed.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|start| *start <= offset)
            .max(1)
    }

    fn insert(&mut self, text: &str, path: Path, key: Option<Range<usize>>, value: Range<usize>) {
        let dash = match path.last() {
            Some(Step::Index(_)) => {
                let before = text[..value.start].trim_end_matches([' ', '\t']);
                before.ends_with('-').then(|| before.len() - 1)
            }
            _ => None,
        };
        self.entries.insert(path, Entry { key, value, dash });
    }

    /// The whole entry (key through value) whose key or value starts at
    /// `offset`, the innermost if several do.
    pub(crate) fn entry_at(&self, offset: usize) -> Option<Range<usize>> {
        self.entries
            .iter()
            .filter(|(_, entry)| {
                entry.value.start == offset || entry.key.as_ref().is_some_and(|k| k.start == offset)
            })
            .max_by_key(|(path, _)| path.len())
            .map(|(_, entry)| entry.whole())
    }

    /// The span of the innermost collection that holds `offset` inside it.
    pub(crate) fn container_of(&self, offset: usize) -> Option<Range<usize>> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.value.start <= offset && offset < entry.value.end)
            .max_by_key(|(path, _)| path.len())
            .map(|(_, entry)| entry.value.clone())
    }

    /// The span of the innermost value that starts at `offset`.
    pub(crate) fn value_at(&self, offset: usize) -> Option<Range<usize>> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.value.start == offset && !entry.value.is_empty())
            .max_by_key(|(path, _)| path.len())
            .map(|(_, entry)| entry.value.clone())
    }

    /// The whole entry of the innermost collection whose value starts at
    /// `offset` (where serde reports a missing field).
    pub(crate) fn enclosing_entry(&self, offset: usize) -> Option<Range<usize>> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.value.start == offset && !entry.value.is_empty())
            .max_by_key(|(path, entry)| (entry.value.len(), std::cmp::Reverse(path.len())))
            .map(|(_, entry)| entry.whole())
    }

    /// The span of the value at `path`, or of its nearest indexed ancestor.
    pub(crate) fn value(&self, path: &[Step]) -> Option<Range<usize>> {
        (0..=path.len())
            .rev()
            .find_map(|len| self.entries.get(&path[..len]))
            .map(|entry| entry.value.clone())
    }

    /// The span of `needle` inside the value at `path`, or of the whole
    /// value when the text there does not spell it out (escapes, folding).
    pub(crate) fn within_value(&self, path: &[Step], needle: &str) -> Option<Range<usize>> {
        let value = self.value(path)?;
        let found = self.text.get(value.clone())?.find(needle);
        Some(found.map_or(value.clone(), |at| {
            value.start + at..value.start + at + needle.len()
        }))
    }

    /// The span of the value at exactly `path`.
    pub(crate) fn exact_value(&self, path: &[Step]) -> Option<Range<usize>> {
        self.entries.get(path).map(|entry| entry.value.clone())
    }

    /// The span of the key at `path` (falling back to its value's span).
    pub(crate) fn key(&self, path: &[Step]) -> Option<Range<usize>> {
        match self.entries.get(path) {
            Some(Entry { key: Some(key), .. }) => Some(key.clone()),
            _ => self.value(path),
        }
    }

    /// The value spans of `fields` in every element of the top-level list
    /// `list`, e.g. every credential's `password`.
    pub(crate) fn values_under<'a>(
        &'a self,
        list: &'a str,
        fields: &'a [&'a str],
    ) -> impl Iterator<Item = Range<usize>> + 'a {
        self.entries
            .iter()
            .filter(move |(path, _)| match path.as_slice() {
                [Step::Key(top), Step::Index(_), Step::Key(field)] => {
                    top == list && fields.contains(&field.as_str())
                }
                _ => false,
            })
            .map(|(_, entry)| entry.value.clone())
    }

    /// The span of key `field` in the innermost mapping that holds `offset`.
    pub(crate) fn key_in_mapping_at(&self, offset: usize, field: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .filter(|(path, entry)| {
                matches!(path.last(), Some(Step::Key(key)) if key == field)
                    && self
                        .entries
                        .get(&path[..path.len() - 1])
                        .is_some_and(|parent| parent.value.contains(&offset))
                    && entry.key.is_some()
            })
            .filter_map(|(path, entry)| {
                let parent = self.entries.get(&path[..path.len() - 1])?;
                Some((parent.value.start, entry.key.clone()?))
            })
            .max_by_key(|(parent_start, _)| *parent_start)
            .map(|(_, key)| key)
    }
}

/// The path of the next child of the innermost container, advancing it.
fn child_path(
    stack: &mut [(Frame, Path, usize)],
    key_span: &mut Option<Range<usize>>,
) -> Option<Path> {
    let (frame, path, _) = stack.last_mut()?;
    let step = match frame {
        Frame::Mapping { key } => {
            let (key, span) = key.take()?;
            *key_span = Some(span);
            Step::Key(key)
        }
        Frame::Sequence { next } => {
            *next += 1;
            *key_span = None;
            Step::Index(*next - 1)
        }
    };
    let mut child = path.clone();
    child.push(step);
    Some(child)
}

fn byte_range(text: &str, span: &Span) -> Range<usize> {
    let start = byte_offset(text, span.start.byte_offset(), span.start.index());
    let end = byte_offset(text, span.end.byte_offset(), span.end.index()).max(start);
    start..end
}

fn byte_offset(text: &str, byte: Option<usize>, char_index: usize) -> usize {
    byte.unwrap_or_else(|| {
        text.char_indices()
            .nth(char_index)
            .map_or(text.len(), |(offset, _)| offset)
    })
    .min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_values() {
        let text = "name: x\nintegrations:\n  - name: a\n    credential: kb\n";
        let locator = Locator::new(text);
        let value = locator
            .value(&doc_path!["integrations", 0, "credential"])
            .expect("indexed");
        assert_eq!(&text[value], "kb");
        let key = locator
            .key(&doc_path!["integrations", 0, "credential"])
            .expect("indexed");
        assert_eq!(&text[key], "credential");
        let outer = locator
            .value(&doc_path!["integrations", 0])
            .expect("indexed");
        assert!(text[outer].starts_with("name: a"));
    }

    #[test]
    fn missing_paths_fall_back_to_ancestors() {
        let text = "{\"a\": {\"b\": 1}}";
        let locator = Locator::new(text);
        let value = locator.value(&doc_path!["a", "zzz"]).expect("ancestor");
        assert_eq!(&text[value], "{\"b\": 1}");
    }
}
