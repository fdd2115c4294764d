//! docs/botcontext.md's table of every `botContext` function is the
//! catalogue (`patchbay_config::BOT_CONTEXT_FUNCTIONS`): the same names,
//! each with its kind, its mark (deprecated, patchbay's own) and a
//! signature of its argument count, and a coverage line whose numbers are
//! the catalogue's. A row missing, extra or of the wrong kind fails here.

use std::collections::BTreeMap;
use std::fs;

use patchbay_config::{
    BOT_CONTEXT_FUNCTIONS, BotContextFunction, Code, Documented, Provision, load,
};

use crate::workspace_root;

/// One row of the table, as written.
#[derive(Debug)]
struct Row {
    name: String,
    deprecated: bool,
    signature: String,
    provision: Provision,
}

/// The doc's text.
fn doc() -> String {
    fs::read_to_string(workspace_root().join("docs/botcontext.md")).expect("docs/botcontext.md")
}

/// A table row's cells, split at `|` but not at an escaped `\|`.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("a cell").push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells.iter().map(|cell| cell.trim().to_owned()).collect()
}

/// The text between the first pair of backticks.
fn code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let length = cell[start..].find('`')?;
    Some(&cell[start..start + length])
}

/// The kind a provision cell names (its first words).
fn provision(cell: &str) -> Option<Provision> {
    [
        ("anywhere", Provision::Anywhere),
        ("platform data (turn attributes)", Provision::PlatformData),
        ("platform action (`actions`)", Provision::PlatformAction),
        ("context service", Provision::ContextService),
        ("NLU (", Provision::Nlu),
        ("patchbay's own", Provision::Patchbay),
    ]
    .into_iter()
    .find(|(words, _)| cell.starts_with(words))
    .map(|(_, provision)| provision)
}

/// The rows of the one table whose header is `| function | signature |
/// how patchbay provides it | ...`.
fn rows(doc: &str) -> Vec<Row> {
    let mut lines = doc.lines();
    let tables = doc
        .lines()
        .filter(|line| line.starts_with("| function | signature |"))
        .count();
    assert_eq!(tables, 1, "docs/botcontext.md has one table of functions");
    let header = lines
        .by_ref()
        .find(|line| line.starts_with("| function | signature |"))
        .expect("the table's header");
    assert_eq!(
        cells(header),
        [
            "function",
            "signature",
            "how patchbay provides it",
            "differences from the product"
        ]
    );
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells = cells(line);
            assert_eq!(cells.len(), 4, "four cells: {line}");
            let name = code(&cells[0])
                .unwrap_or_else(|| panic!("a `name`: {line}"))
                .to_owned();
            let mark = cells[0].replacen(&format!("`{name}`"), "", 1);
            let deprecated = match mark.trim() {
                "" => false,
                "(deprecated)" => true,
                other => panic!("an unknown mark {other:?}: {line}"),
            };
            let signature = code(&cells[1])
                .unwrap_or_else(|| panic!("a `signature`: {line}"))
                .to_owned();
            let provision = provision(&cells[2])
                .unwrap_or_else(|| panic!("an unknown kind {:?}: {line}", cells[2]));
            assert!(!cells[3].is_empty(), "say how it differs, or none: {line}");
            Row {
                name,
                deprecated,
                signature,
                provision,
            }
        })
        .collect()
}

/// The fewest and the most arguments a signature takes: `f(a, b[, c, d])`
/// takes 2 to 4.
fn arity(signature: &str) -> (usize, usize) {
    let open = signature.find('(').expect("a `(`");
    let arguments = signature[open + 1..]
        .strip_suffix(')')
        .expect("a `)` at the end");
    let (required, optional) = arguments.split_once('[').unwrap_or((arguments, ""));
    let count = |text: &str| {
        text.split(',')
            .filter(|argument| !argument.trim_matches([' ', ']']).is_empty())
            .count()
    };
    (count(required), count(required) + count(optional))
}

fn catalogue() -> BTreeMap<&'static str, &'static BotContextFunction> {
    BOT_CONTEXT_FUNCTIONS
        .iter()
        .map(|function| (function.name, function))
        .collect()
}

#[test]
fn the_table_has_every_function_of_the_catalogue_with_its_kind() {
    let rows = rows(&doc());
    let catalogue = catalogue();
    let mut written = BTreeMap::new();
    for row in &rows {
        assert!(
            written.insert(row.name.as_str(), row).is_none(),
            "`{}` has two rows",
            row.name
        );
    }
    let missing: Vec<_> = catalogue
        .keys()
        .filter(|name| !written.contains_key(*name))
        .collect();
    let extra: Vec<_> = written
        .keys()
        .filter(|name| !catalogue.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/botcontext.md misses {missing:?} and has {extra:?}, which the catalogue does not"
    );
    for row in &rows {
        let function = catalogue[row.name.as_str()];
        assert_eq!(
            row.provision, function.provision,
            "`{}`: the doc's kind is not the catalogue's",
            row.name
        );
        assert_eq!(
            row.deprecated,
            function.documented == Documented::Deprecated,
            "`{}`: marked deprecated in the doc and not in the catalogue, or the other way",
            row.name
        );
        assert_eq!(
            row.provision == Provision::Patchbay,
            function.documented == Documented::No,
            "`{}`: patchbay's own in one and not the other",
            row.name
        );
        assert!(
            row.signature.starts_with(&format!("{}(", row.name)),
            "`{}`: its signature is `{}`",
            row.name,
            row.signature
        );
        assert_eq!(
            arity(&row.signature),
            (function.min_args, function.max_args),
            "`{}`: the signature's argument count is not the catalogue's",
            row.signature
        );
    }
}

/// The number written just before `words` in `text`.
fn number_before(text: &str, words: &str) -> usize {
    let at = text
        .find(words)
        .unwrap_or_else(|| panic!("the coverage line says {words:?}"));
    let number: String = text[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("a number before {words:?}"))
}

#[test]
fn the_coverage_line_counts_the_table() {
    let doc = doc();
    let start = doc
        .find("**Coverage: ")
        .expect("a coverage line, `**Coverage: N of M functions on the product's current pages**`");
    let paragraph = &doc[start..start + doc[start..].find("\n\n").expect("its paragraph's end")];
    let paragraph = paragraph.replace('\n', " ");
    let rows = rows(&doc);
    let count = |documented: Documented| {
        BOT_CONTEXT_FUNCTIONS
            .iter()
            .filter(|function| function.documented == documented)
            .count()
    };
    let current_rows = rows
        .iter()
        .filter(|row| !row.deprecated && row.provision != Provision::Patchbay)
        .count();
    assert_eq!(
        number_before(&paragraph, " of "),
        current_rows,
        "{paragraph}"
    );
    assert_eq!(
        number_before(&paragraph, " functions on the product's current pages"),
        count(Documented::Current),
        "{paragraph}"
    );
    assert_eq!(
        number_before(&paragraph, " it deprecates"),
        count(Documented::Deprecated),
        "{paragraph}"
    );
    assert_eq!(
        number_before(&paragraph, " of patchbay's own"),
        count(Documented::No),
        "{paragraph}"
    );
    assert_eq!(
        number_before(&paragraph, " rows"),
        rows.len(),
        "{paragraph}"
    );
    assert_eq!(rows.len(), BOT_CONTEXT_FUNCTIONS.len());
}

/// `check`'s `wrong-argument-count` shows the doc's signature: a script
/// calling every function with one argument too many (and, where it takes
/// any, one too few) gets a warning for each call, labelled with it.
#[test]
fn check_labels_a_wrong_count_with_the_signature_of_the_table() {
    let rows = rows(&doc());
    let catalogue = catalogue();
    let mut script = String::new();
    let mut expected = Vec::new();
    for row in &rows {
        let function = catalogue[row.name.as_str()];
        let mut counts = vec![function.max_args + 1];
        if function.min_args > 0 {
            counts.push(function.min_args - 1);
        }
        for count in counts {
            let arguments = vec!["'x'"; count].join(", ");
            script.push_str(&format!(
                "          botContext.{}({arguments});\n",
                row.name
            ));
            expected.push(row.signature.clone());
        }
    }
    let bot = format!(
        "name: signatures\ndialogs:\n  - name: d\n    interactions:\n      - name: t\n        type: text\n        text: Hello\n        preProcess: |\n{script}"
    );
    let report = match load("signatures.yaml", &bot) {
        Ok(loaded) => loaded.warnings,
        Err(report) => report,
    };
    let labels: Vec<String> = report
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.code == Code::WrongArgumentCount)
        .map(|diagnostic| diagnostic.label.clone().unwrap_or_default())
        .collect();
    assert_eq!(labels.len(), expected.len(), "{labels:#?}");
    for (label, signature) in labels.iter().zip(&expected) {
        assert!(
            label.ends_with(&format!(": `{signature}`")),
            "check shows {label:?}, the doc `{signature}`"
        );
    }
}
