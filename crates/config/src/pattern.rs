//! Patterns as the product writes them (Conversation Builder, "Patterns"):
//! the whole input must fit; `*` matches any text; `(a|b|c)` are alternates,
//! empty ones allowed (`(thank(|s)|thank you)*`); `|` outside parentheses
//! separates alternates of the whole pattern. Case and the punctuation and
//! whitespace around the input are ignored, and a run of spaces inside the
//! pattern matches any run of whitespace.
//!
//! A pattern compiles once, to a `regex` crate expression (linear time in
//! the input: no pattern and no message can make matching backtrack), built
//! from the pattern with its literal text escaped.

use std::fmt;

/// Compiled patterns are capped so that a bot file cannot make the loader
/// build a huge automaton.
const SIZE_LIMIT: usize = 1 << 20;

/// Characters ignored around the input (and trimmed from around the
/// pattern's own text): whitespace, punctuation and symbols.
const AROUND: &str = r"[\s\p{P}\p{S}]*";

/// Why a pattern does not compile, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The character (counted from 0 in the pattern as written) at fault.
    pub at: usize,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

impl std::error::Error for PatternError {}

/// Translates a pattern into the source of a `regex` crate expression.
fn to_regex(source: &str) -> Result<String, PatternError> {
    let chars: Vec<(usize, char)> = source.chars().enumerate().collect();
    let is_syntax = |c: char| matches!(c, '*' | '(' | ')' | '|');
    let ignorable = |c: char| !c.is_alphanumeric() && !is_syntax(c);
    let start = chars
        .iter()
        .position(|&(_, c)| !ignorable(c))
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|&(_, c)| !ignorable(c))
        .map_or(start, |last| last + 1);
    let mut body = String::new();
    let mut open: Vec<usize> = Vec::new();
    let mut literal = String::new();
    let mut in_space = false;
    let flush = |literal: &mut String, body: &mut String| {
        body.push_str(&regex::escape(literal));
        literal.clear();
    };
    for &(at, c) in &chars[start..end] {
        if c.is_whitespace() {
            if !in_space {
                flush(&mut literal, &mut body);
                body.push_str(r"\s+");
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match c {
            '*' => {
                flush(&mut literal, &mut body);
                body.push_str(".*");
            }
            '(' => {
                flush(&mut literal, &mut body);
                open.push(at);
                body.push_str("(?:");
            }
            '|' => {
                flush(&mut literal, &mut body);
                body.push('|');
            }
            ')' => {
                flush(&mut literal, &mut body);
                if open.pop().is_none() {
                    return Err(PatternError {
                        at,
                        message: "`)` closes no `(`".to_owned(),
                    });
                }
                body.push(')');
            }
            other => literal.push(other),
        }
    }
    flush(&mut literal, &mut body);
    if let Some(&at) = open.last() {
        return Err(PatternError {
            at,
            message: "`(` is never closed".to_owned(),
        });
    }
    Ok(format!("(?is)^{AROUND}(?:{body}){AROUND}$"))
}

/// A pattern compiled when the bot loads.
#[derive(Clone, Debug)]
pub struct CompiledPattern {
    source: String,
    regex: regex::Regex,
}

impl CompiledPattern {
    /// Compiles `source`; a pattern too large to compile is an error too.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let expression = to_regex(source)?;
        crate::count_compilation("pattern");
        let regex = regex::RegexBuilder::new(&expression)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|_| PatternError {
                at: 0,
                message: "the pattern is too large to compile".to_owned(),
            })?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    /// Whether the whole of `input` fits the pattern.
    pub fn matches(&self, input: &str) -> bool {
        self.regex.is_match(input)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(pattern: &str, input: &str) -> bool {
        CompiledPattern::new(pattern)
            .expect("pattern compiles")
            .matches(input)
    }

    #[test]
    fn the_whole_input_must_fit() {
        assert!(fits("hello", "hello"));
        assert!(!fits("hello", "hello there"));
        assert!(!fits("hello", "oh hello"));
        assert!(!fits("hello", "hell"));
    }

    #[test]
    fn a_star_matches_any_text() {
        assert!(fits("*home*", "homes"));
        assert!(fits("*home*", "home run"));
        assert!(fits("*home*", "my home is where the heart is"));
        assert!(fits("*", ""));
        assert!(fits("hi*", "hi\nthere"));
        assert!(!fits("*home*", "house"));
    }

    #[test]
    fn alternates_choose_one_of_several() {
        let p = "I want a pair of (headphones|head phones|earbuds|earphones)";
        assert!(fits(p, "I want a pair of earbuds"));
        assert!(fits(p, "I want a pair of head phones"));
        assert!(!fits(p, "I want a pair of socks"));
        assert!(fits(
            "* (some|a pair of) (headphones|earbuds)*",
            "I need some earbuds now"
        ));
        assert!(fits("yes|yeah", "yeah"));
        assert!(!fits("yes|yeah", "yes yeah"));
    }

    #[test]
    fn empty_alternates_and_nesting() {
        let p = "(thank(|s)|thank you)*";
        for input in ["thank", "thanks", "thank you", "thanks a lot", "Thank you!"] {
            assert!(fits(p, input), "{input}");
        }
        assert!(!fits(p, "no thanks"));
        assert!(fits("order( number|)", "order"));
        assert!(fits("()", ""));
    }

    #[test]
    fn case_and_surrounding_punctuation_and_space_are_ignored() {
        assert!(fits("hello", "  HeLLo!!  "));
        assert!(fits("hello", "¿hello?"));
        assert!(fits("Hello!", "hello"));
        assert!(fits("how are you", "How   are\tyou?"));
        assert!(!fits("hello", "he-llo"));
    }

    #[test]
    fn literal_text_is_escaped() {
        assert!(fits("a.b+c?[x]", "a.b+c?[x]"));
        assert!(!fits("a.b", "axb"));
        assert!(fits("$5 off^", "$5 off^"));
        assert!(fits("5 off", "$5 off^"));
        assert!(fits("a$b", "a$b"));
        assert!(!fits("a$b", "ab"));
        assert!(fits(r"\d", r"\d"));
        assert!(!fits(r"\d", "7"));
    }

    #[test]
    fn a_bad_pattern_says_where() {
        let error = CompiledPattern::new("(gold|platinum").expect_err("unclosed");
        assert_eq!(error.at, 0);
        assert!(error.message.contains("never closed"));
        let error = CompiledPattern::new("gold)").expect_err("unopened");
        assert_eq!(error.at, 4);
        let error = CompiledPattern::new("é(x|(y)").expect_err("inner unclosed");
        assert_eq!(error.at, 1);
    }

    #[test]
    fn a_long_message_is_matched_in_linear_time() {
        let message = "a".repeat(10 * 1024) + "!";
        let started = std::time::Instant::now();
        for pattern in ["*a*a*a*a*b", "(a|aa)*(a|aa)*c", "((a|)|(a|))*x"] {
            assert!(!fits(pattern, &message));
        }
        assert!(fits("(a|aa)*", &message));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
