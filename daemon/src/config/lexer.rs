//! Splitting one 3proxy configuration line into words (3proxy `src/conf.c parsestr`).
//!
//! Words are separated by spaces, tabs and carriage returns (and newlines inside a `$FILE`
//! inlined file). `"..."` quotes a part of a word, possibly empty, and may start or end in
//! the middle of a word (`a"b c"d` is the single word `ab cd`); inside quotes `""` is a
//! literal `"`. An unquoted `$` at the start of a word marks the rest of the word as the name
//! of a file whose content is inlined; the caller reads it. Anywhere else an unquoted `$` is
//! an error, because 3proxy would take it as an inline file too (write `"$"` for a literal
//! dollar, as 3proxy requires).
//!
//! This module does not read files, skip comment lines or know any command: the caller
//! hands it one non-comment line (or an inlined file's text) at a time.

use core::fmt;

/// A problem with the characters of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxError {
    /// A `"` opened a quoted part that the end of the line (or file) did not close.
    UnterminatedQuote,
    /// An unquoted `$` after the start of a word.
    UnquotedDollar,
    /// A `$` with no file name after it.
    EmptyFileName,
    /// More words than the per-line limit (3proxy: 4096), counting inlined files.
    TooManyWords {
        /// The limit.
        limit: usize,
    },
    /// A NUL character (3proxy would silently cut the line there).
    NulCharacter,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxError::UnterminatedQuote => write!(f, "unterminated quote (`\"`)"),
            SyntaxError::UnquotedDollar => write!(
                f,
                "unquoted `$` inside a word (`$FILE` must start a word; quote a literal `$` as `\"$\"`)"
            ),
            SyntaxError::EmptyFileName => write!(f, "`$` without a file name"),
            SyntaxError::TooManyWords { limit } => {
                write!(f, "more than {limit} words on one line")
            }
            SyntaxError::NulCharacter => write!(f, "NUL character in line"),
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Where the text comes from, which decides how `$` and newlines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A configuration line: `$FILE` words are recognised, there is no newline.
    Line,
    /// The content of a `$FILE`: newlines separate words and `$` is an ordinary character
    /// (3proxy does not inline recursively).
    Inline,
}

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text with quotes removed; for an inline-file word, the file name (without `$`).
    pub(crate) text: String,
    /// The word was `$FILE`: its text is a file name whose content replaces it.
    pub(crate) inline_file: bool,
}

fn is_separator(c: char, mode: Mode) -> bool {
    matches!(c, ' ' | '\t' | '\r') || (c == '\n' && mode == Mode::Inline)
}

/// Splits `text` into at most `max_words` words.
pub(crate) fn split(text: &str, mode: Mode, max_words: usize) -> Result<Vec<Word>, SyntaxError> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\0' {
            return Err(SyntaxError::NulCharacter);
        }
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    push_char(&mut current, '"');
                } else {
                    quoted = false;
                }
            } else {
                push_char(&mut current, c);
            }
            continue;
        }
        if is_separator(c, mode) {
            finish(&mut words, &mut current, max_words)?;
        } else if c == '"' {
            quoted = true;
            current.get_or_insert_with(empty_word);
        } else if c == '$' && mode == Mode::Line {
            if current.is_some() {
                return Err(SyntaxError::UnquotedDollar);
            }
            current = Some(Word {
                text: String::new(),
                inline_file: true,
            });
        } else {
            push_char(&mut current, c);
        }
    }
    if quoted {
        return Err(SyntaxError::UnterminatedQuote);
    }
    finish(&mut words, &mut current, max_words)?;
    Ok(words)
}

fn empty_word() -> Word {
    Word {
        text: String::new(),
        inline_file: false,
    }
}

fn push_char(current: &mut Option<Word>, c: char) {
    current.get_or_insert_with(empty_word).text.push(c);
}

fn finish(
    words: &mut Vec<Word>,
    current: &mut Option<Word>,
    max_words: usize,
) -> Result<(), SyntaxError> {
    if let Some(w) = current.take() {
        if w.inline_file && w.text.is_empty() {
            return Err(SyntaxError::EmptyFileName);
        }
        if words.len() >= max_words {
            return Err(SyntaxError::TooManyWords { limit: max_words });
        }
        words.push(w);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split(s, Mode::Line, 100)
            .unwrap()
            .into_iter()
            .map(|w| {
                if w.inline_file {
                    format!("${}", w.text)
                } else {
                    w.text
                }
            })
            .collect()
    }

    #[test]
    fn separators() {
        assert_eq!(texts("a b\tc\r"), ["a", "b", "c"]);
        assert_eq!(texts("  a   b  "), ["a", "b"]);
        assert!(texts("").is_empty());
        assert_eq!(texts("a\nb"), ["a\nb"]);
    }

    #[test]
    fn quotes() {
        assert_eq!(texts(r#"users "a b" c"#), ["users", "a b", "c"]);
        assert_eq!(texts(r#"x"y z"w"#), ["xy zw"]);
        assert_eq!(texts(r#""" a"#), ["", "a"]);
        assert_eq!(texts(r#""say ""hi""""#), [r#"say "hi""#]);
        assert_eq!(
            texts(r#"logformat "-""+_L%C ""%T"" %E""#),
            ["logformat", r#"-"+_L%C "%T" %E"#]
        );
        assert_eq!(texts(r#""test:CR:$1$qwer""#), ["test:CR:$1$qwer"]);
        assert_eq!(
            split(r#"a "b"#, Mode::Line, 10),
            Err(SyntaxError::UnterminatedQuote)
        );
    }

    #[test]
    fn inline_files() {
        assert_eq!(
            texts("users $/etc/passwd x"),
            ["users", "$/etc/passwd", "x"]
        );
        assert_eq!(
            texts(r#"deny * * $"/my list""#),
            ["deny", "*", "*", "$/my list"]
        );
        assert_eq!(
            split("a$b", Mode::Line, 10),
            Err(SyntaxError::UnquotedDollar)
        );
        assert_eq!(
            split("$a$b", Mode::Line, 10),
            Err(SyntaxError::UnquotedDollar)
        );
        assert_eq!(
            split("a $ b", Mode::Line, 10),
            Err(SyntaxError::EmptyFileName)
        );
        assert_eq!(
            split(r#"a $"""#, Mode::Line, 10),
            Err(SyntaxError::EmptyFileName)
        );
        let w = split("a$b\nc \"d e\"", Mode::Inline, 10).unwrap();
        let t: Vec<_> = w.iter().map(|w| (w.text.as_str(), w.inline_file)).collect();
        assert_eq!(t, [("a$b", false), ("c", false), ("d e", false)]);
    }

    #[test]
    fn limits() {
        assert_eq!(split("a b c", Mode::Line, 3).unwrap().len(), 3);
        assert_eq!(
            split("a b c d", Mode::Line, 3),
            Err(SyntaxError::TooManyWords { limit: 3 })
        );
        assert_eq!(split("a\0b", Mode::Line, 3), Err(SyntaxError::NulCharacter));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_respects_limit(s in "[a-z \"$\t\r\n]{0,80}", max in 0usize..6) {
            for mode in [Mode::Line, Mode::Inline] {
                if let Ok(words) = split(&s, mode, max) {
                    proptest::prop_assert!(words.len() <= max);
                }
            }
        }

        #[test]
        fn plain_words_round_trip(words in proptest::collection::vec("[a-z0-9]{1,8}", 0..10)) {
            let line = words.join(" ");
            let got: Vec<String> = split(&line, Mode::Line, 100).unwrap().into_iter().map(|w| w.text).collect();
            proptest::prop_assert_eq!(got, words);
        }

        #[test]
        fn quoting_round_trips(word in "[a-z \"$\t]{0,12}") {
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            let got = split(&quoted, Mode::Line, 10).unwrap();
            proptest::prop_assert_eq!(got.len(), 1);
            proptest::prop_assert_eq!(&got[0].text, &word);
            proptest::prop_assert!(!got[0].inline_file);
        }
    }
}
