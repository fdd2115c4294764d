//! A test file checked as `patchbay check` checks bot files: every mistake
//! with its file, line, column and a caret, in a [`Document`].

use patchbay_engine::config::{Bot, Code, DocStep, Document, Severity, did_you_mean};
use patchbay_engine::rules::find_interaction;

use crate::model::{PathStep, TestFile};

impl TestFile {
    /// Reads a test file's text as `patchbay check` shows it: what
    /// [`TestFile::parse`] refuses, each mistake at its place in the file
    /// (as many as it can find in one reading). The file is returned when
    /// it has no error; `file` names it in diagnostics.
    pub fn check(file: &str, text: &str) -> (Option<Self>, Document) {
        let (parsed, mut document) = Document::read::<Self>(file, text);
        let Some(parsed) = parsed else {
            return (None, document);
        };
        for problem in parsed.problems() {
            let steps: Vec<DocStep<'_>> = problem
                .path
                .iter()
                .map(|step| match step {
                    PathStep::Key(key) => DocStep::Key(key),
                    PathStep::Index(index) => DocStep::Index(*index),
                })
                .collect();
            let code = if problem.duplicate {
                Code::DuplicateName
            } else {
                Code::InvalidValue
            };
            document.add(Severity::Error, code, &steps, problem.message);
        }
        let clean = !document.has_errors();
        (clean.then_some(parsed), document)
    }

    /// Checks the cases against the bot they test: each interaction a turn
    /// starts at (`interaction:`) must be one of the bot's.
    pub fn check_against(&self, bot: &Bot, document: &mut Document) {
        let names: Vec<&str> = bot
            .dialogs
            .iter()
            .flat_map(|dialog| dialog.interactions.iter())
            .map(|interaction| interaction.name.as_str())
            .collect();
        for (c, case) in self.cases.iter().enumerate() {
            for (t, turn) in case.turns.iter().enumerate() {
                let Some(interaction) = &turn.interaction else {
                    continue;
                };
                if find_interaction(bot, interaction).is_some() {
                    continue;
                }
                let mut path = vec![DocStep::Key("cases"), DocStep::Index(c)];
                if case.multi_turn {
                    path.extend([DocStep::Key("turns"), DocStep::Index(t)]);
                }
                path.push(DocStep::Key("interaction"));
                let message = format!(
                    "case `{}`: {}",
                    case.name,
                    case.turn_label(t, &format!("the bot has no interaction `{interaction}`"))
                );
                let diagnostic =
                    document.add(Severity::Error, Code::UnknownInteraction, &path, message);
                diagnostic.label = Some(format!("not an interaction of `{}`", bot.name));
                diagnostic.help = did_you_mean(interaction, names.iter().copied());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use patchbay_engine::config::{Code, RenderStyle};

    use super::*;

    const BOT: &str = r#"name: shop
dialogs:
  - name: main
    interactions:
      - name: look-up
        type: text
        text: Hello
        next: end
"#;

    fn bot() -> Bot {
        patchbay_engine::config::load("shop.yaml", BOT)
            .expect("bot loads")
            .bot
    }

    #[test]
    fn a_good_file_checks_clean_against_its_bot() {
        let text =
            "cases:\n  - name: one\n    interaction: look-up\n    expect: { messages: [Hello] }\n";
        let (file, mut document) = TestFile::check("shop.test.yaml", text);
        let file = file.expect("reads");
        file.check_against(&bot(), &mut document);
        let report = document.into_report();
        assert!(report.diagnostics().is_empty(), "{report:?}");
    }

    #[test]
    fn mistakes_are_shown_where_they_are() {
        let text = r#"cases:
  - name: one
    interaction: look-up
    expect: { mesages: [Hello] }
  - name: two
    bogus: 1
    expect: { next: end }
"#;
        let (file, document) = TestFile::check("shop.test.yaml", text);
        assert!(file.is_none());
        let report = document.into_report();
        let rendered = report.render(RenderStyle::Plain);
        assert!(
            rendered.contains("error[unknown-field]: shop.test.yaml:4:15: unknown field `mesages`"),
            "{rendered}"
        );
        assert!(rendered.contains("did you mean `messages`?"), "{rendered}");
        assert!(
            rendered.contains("error[unknown-field]: shop.test.yaml:6:5: unknown field `bogus`"),
            "{rendered}"
        );
        assert_eq!(report.count(Severity::Error), 2, "{rendered}");
    }

    #[test]
    fn problems_of_a_file_that_reads_have_their_place() {
        let text = r#"cases:
  - name: one
    expect: { next: end }
  - name: one
    turns:
      - message: hi
        upstream: [{ request: "https://x.example.com" }]
"#;
        let (file, document) = TestFile::check("t.test.yaml", text);
        assert!(file.is_none());
        let report = document.into_report();
        let rendered = report.render(RenderStyle::Plain);
        assert!(
            rendered.contains("error[duplicate-name]: t.test.yaml:4:11: two cases are named `one`"),
            "{rendered}"
        );
        assert!(
            rendered.contains("error[invalid-value]: t.test.yaml:7:31: case `one`: turn 1: `request: https://x.example.com` must be `METHOD URL`"),
            "{rendered}"
        );
    }

    #[test]
    fn a_case_that_is_both_forms_is_an_invalid_value_not_a_syntax_error() {
        let text = "cases:\n  - name: confused\n    message: hello\n    expect: { next: end }\n    turns:\n      - message: hello\n";
        let (_, document) = TestFile::check("t.test.yaml", text);
        let report = document.into_report();
        assert_eq!(report.diagnostics().len(), 1, "{report:?}");
        let diagnostic = &report.diagnostics()[0];
        assert_eq!(diagnostic.code, Code::InvalidValue);
        assert!(
            diagnostic
                .message
                .contains("case `confused` has both `turns` and"),
            "{diagnostic:?}"
        );
        assert_eq!(report.position(diagnostic).line, 2, "{diagnostic:?}");
    }

    #[test]
    fn an_unknown_interaction_is_named_with_a_suggestion() {
        let text = "cases:\n  - name: one\n    turns:\n      - interaction: look-upp\n";
        let (file, mut document) = TestFile::check("shop.test.yaml", text);
        file.expect("reads").check_against(&bot(), &mut document);
        let report = document.into_report();
        let rendered = report.render(RenderStyle::Plain);
        assert!(
            rendered.contains("error[unknown-interaction]: shop.test.yaml:4:22: case `one`: turn 1: the bot has no interaction `look-upp`"),
            "{rendered}"
        );
        assert!(rendered.contains("did you mean `look-up`?"), "{rendered}");
    }
}
