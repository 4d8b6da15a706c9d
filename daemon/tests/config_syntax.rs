//! Configuration file syntax: comments, quoting, `$FILE` inlining, `include`, `end`, limits,
//! and where errors point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{err_at, ok, parse, parse_in, TempDir};
use std::path::PathBuf;
use triproxy::config::{
    self, ConfigErrorKind, SyntaxError, MAX_INCLUDE_DEPTH, MAX_INLINE_FILE_LEN, MAX_LINE_LEN,
    MAX_WORDS_PER_LINE,
};
use triproxy_policy::acl::{Ace, Action};

fn ports(cfg: &config::Config) -> Vec<u16> {
    cfg.services.iter().map(|s| s.listen.port()).collect()
}

#[test]
fn comments_blank_and_indented_lines_are_skipped() {
    let cfg = ok("# a comment\n\n   socks -p1\n\tsocks -p2\n\r\nsocks -p3\n#socks -p4\n");
    assert_eq!(ports(&cfg), [3]);
    assert_eq!(cfg.services[0].origin, ("test.cfg".to_owned(), 6));
}

#[test]
fn empty_and_comment_only_configs_have_no_services() {
    assert!(ok("").services.is_empty());
    assert!(ok("# nothing\n").services.is_empty());
}

#[test]
fn byte_order_mark_is_skipped() {
    let cfg = ok("\u{feff}socks -p4\n");
    assert_eq!(ports(&cfg), [4]);
    // Only at the very start of a file.
    assert!(matches!(
        err_at("socks\n\u{feff}socks\n", 2),
        ConfigErrorKind::UnknownCommand { .. }
    ));
}

#[test]
fn crlf_line_endings_and_tabs_separate_words() {
    let cfg = ok("socks\t-p5\r\nsocks  -p6 \r\n");
    assert_eq!(ports(&cfg), [5, 6]);
}

#[test]
fn non_utf8_comments_are_fine_but_commands_must_be_utf8() {
    let dir = TempDir::new("utf8");
    // KOI8-R comments (as in 3proxy's Russian example) are skipped unread.
    let p = dir.write(
        "koi8.cfg",
        b"# \xf0\xd2\xc9\xcd\xc5\xd2\nsocks -p7\nsocks -p\xf0\n",
    );
    let e = config::load(&p).unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ConfigErrorKind::NotUtf8);
    assert!(
        e.to_string().ends_with(":3: line is not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn quotes_group_words_and_double_quotes_escape() {
    let cfg = ok("logformat \"- +_L%t \"\"%T\"\"\"\nsocks \"-p8\"\n");
    assert_eq!(cfg.services[0].logformat.as_str(), "- +_L%t \"%T\"");
    assert_eq!(ports(&cfg), [8]);
    // A quoted part inside a word, and an empty quoted word as an argument.
    let cfg = ok("socks -p\"9\"0\n");
    assert_eq!(ports(&cfg), [90]);
    assert!(matches!(
        err_at("socks \"\"\n", 1),
        ConfigErrorKind::UnexpectedArgument { .. }
    ));
    // A quoted `$` is literal.
    let cfg = ok("users \"bob:CL:pa$$\"\nsocks\n");
    assert_eq!(cfg.users.verify(b"bob", b"pa$$"), Ok(()));
}

#[test]
fn quoting_errors_name_the_line() {
    assert_eq!(
        err_at("socks\nusers \"a:CL:b\n", 2),
        ConfigErrorKind::Syntax(SyntaxError::UnterminatedQuote)
    );
    assert_eq!(
        err_at("users a:CL:pa$s\n", 1),
        ConfigErrorKind::Syntax(SyntaxError::UnquotedDollar)
    );
    assert_eq!(
        err_at("\n\nusers $\n", 3),
        ConfigErrorKind::Syntax(SyntaxError::EmptyFileName)
    );
    assert_eq!(
        err_at("socks -p1\0\n", 1),
        ConfigErrorKind::Syntax(SyntaxError::NulCharacter)
    );
}

#[test]
fn inline_file_supplies_words() {
    let dir = TempDir::new("inline");
    dir.write(
        "passwd",
        "alice:CL:one\nbob:CL:two\r\n\n  carol:CL:\"three four\"\n",
    );
    dir.write("sub dir/acl list", "* 127.0.0.1,10.0.0.0/8\n");
    let cfg = parse_in(
        &dir,
        "users $passwd\nallow $\"sub dir/acl list\" * 80\nsocks\n",
    )
    .unwrap();
    assert_eq!(cfg.users.len(), 3);
    assert_eq!(cfg.users.verify(b"carol", b"three four"), Ok(()));
    assert_eq!(
        cfg.services[0].acl,
        [Ace::parse(Action::Allow, &["*", "127.0.0.1,10.0.0.0/8", "*", "80"]).unwrap()]
    );
}

#[test]
fn inline_file_with_absolute_path() {
    let dir = TempDir::new("inline-abs");
    let p = dir.write("ports", "-p4242");
    let text = format!("socks ${}\n", p.display());
    let cfg = config::parse_str(&text, "x", std::path::Path::new("/nonexistent")).unwrap();
    assert_eq!(ports(&cfg), [4242]);
}

#[test]
fn inline_file_is_not_recursive() {
    let dir = TempDir::new("inline-rec");
    dir.write("list", "$other,\"b c\" 127.0.0.1");
    let cfg = parse_in(&dir, "allow $list\nsocks\n").unwrap();
    assert_eq!(
        cfg.services[0].acl,
        [Ace::parse(Action::Allow, &["$other,b c", "127.0.0.1"]).unwrap()]
    );
}

#[test]
fn inline_file_errors_name_the_including_line_and_file() {
    let dir = TempDir::new("inline-err");
    let e = parse_in(&dir, "socks\n\nusers $missing.txt\n").unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("test.cfg", 3));
    let ConfigErrorKind::Read { path, .. } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(path, &dir.path().join("missing.txt"));
    let msg = e.to_string();
    assert!(msg.starts_with("test.cfg:3: cannot read `"), "{msg}");
    assert!(msg.contains("missing.txt"), "{msg}");

    dir.write("big", vec![b'a'; MAX_INLINE_FILE_LEN + 1]);
    let e = parse_in(&dir, "users $big\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(
        matches!(e.kind, ConfigErrorKind::FileTooLarge { limit, .. } if limit == MAX_INLINE_FILE_LEN)
    );

    dir.write("exact", format!("a:CL:{}", "b".repeat(200)).into_bytes());
    assert!(parse_in(&dir, "users $exact\n").is_ok());

    dir.write("latin1", b"caf\xe9:CL:x");
    let e = parse_in(&dir, "users $latin1\n").unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::InlineFileNotUtf8 { .. }),
        "{e}"
    );

    dir.write("openquote", "a \"b");
    let e = parse_in(&dir, "\nallow $openquote\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(
        matches!(
            &e.kind,
            ConfigErrorKind::InlineFileSyntax { error: SyntaxError::UnterminatedQuote, path }
                if path.ends_with("openquote")
        ),
        "{e}"
    );
    assert!(e.to_string().contains("openquote"), "{e}");

    dir.write("empty", "");
    assert_eq!(
        parse_in(&dir, "$empty\n").unwrap_err().to_string(),
        "test.cfg:1: empty command"
    );
}

#[test]
fn word_limit_counts_inlined_words() {
    let dir = TempDir::new("words");
    let many: String = (0..MAX_WORDS_PER_LINE - 1)
        .map(|i| format!("u{i}:CL:p "))
        .collect();
    dir.write("many", &many);
    // `users` + 4095 inlined = 4096 words: accepted.
    let cfg = parse_in(&dir, "users $many\n").unwrap();
    assert_eq!(cfg.users.len(), MAX_WORDS_PER_LINE - 1);
    // One more word on the line is too many.
    let e = parse_in(&dir, "users $many extra:CL:p\n").unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::Syntax(SyntaxError::TooManyWords {
            limit: MAX_WORDS_PER_LINE
        })
    );
    let line = format!("allow{}\n", " *".repeat(MAX_WORDS_PER_LINE));
    assert_eq!(
        err_at(&line, 1),
        ConfigErrorKind::Syntax(SyntaxError::TooManyWords {
            limit: MAX_WORDS_PER_LINE
        })
    );
}

#[test]
fn line_length_limit() {
    let long = format!("socks -p1{}\n", " ".repeat(MAX_LINE_LEN));
    assert_eq!(
        err_at(&format!("socks\n{long}"), 2),
        ConfigErrorKind::LineTooLong {
            limit: MAX_LINE_LEN
        }
    );
    let fits = format!("socks -p1{}\n", " ".repeat(MAX_LINE_LEN - 9));
    assert_eq!(ports(&ok(&fits)), [1]);
}

#[test]
fn end_stops_reading() {
    let cfg = ok("socks -p1\nend\nsocks -p2\nthis is not a command\n");
    assert_eq!(ports(&cfg), [1]);
    assert!(matches!(
        err_at("end now\n", 1),
        ConfigErrorKind::ArgumentCount { .. }
    ));
}

#[test]
fn include_runs_another_file_in_place() {
    let dir = TempDir::new("include");
    dir.write("conf.d/limits.cfg", "# limits\nmaxconn 7\nsocks -p2\n");
    let main = dir.write(
        "main.cfg",
        "socks -p1\ninclude conf.d/limits.cfg\nsocks -p3\n",
    );
    let cfg = config::load(&main).unwrap();
    assert_eq!(ports(&cfg), [1, 2, 3]);
    let maxconns: Vec<u32> = cfg.services.iter().map(|s| s.maxconn).collect();
    assert_eq!(maxconns, [500, 7, 7]);
    let sub = dir.path().join("conf.d/limits.cfg");
    assert_eq!(cfg.services[1].origin, (sub.display().to_string(), 3));
    assert_eq!(cfg.services[2].origin, (main.display().to_string(), 3));
}

#[test]
fn relative_names_are_relative_to_the_naming_file() {
    let dir = TempDir::new("relative");
    dir.write("a/b/inner.cfg", "users $passwd\nlog inner.log\n");
    dir.write("a/b/passwd", "x:CL:y");
    let main = dir.write("a/main.cfg", "include b/inner.cfg\nsocks\n");
    let cfg = config::load(&main).unwrap();
    assert_eq!(cfg.users.verify(b"x", b"y"), Ok(()));
    assert_eq!(
        cfg.services[0].log,
        config::LogTarget::File(dir.path().join("a/b/inner.log"))
    );
}

#[test]
fn end_inside_an_include_only_ends_that_file() {
    let dir = TempDir::new("include-end");
    dir.write("sub.cfg", "socks -p2\nend\nsocks -p99\n");
    let main = dir.write("main.cfg", "include sub.cfg\nsocks -p3\n");
    assert_eq!(ports(&config::load(&main).unwrap()), [2, 3]);
}

#[test]
fn errors_inside_includes_name_the_included_file() {
    let dir = TempDir::new("include-err");
    dir.write("sub.cfg", "socks\n\nbogus\n");
    let main = dir.write("main.cfg", "# x\ninclude sub.cfg\n");
    let e = config::load(&main).unwrap_err();
    let sub = dir.path().join("sub.cfg");
    assert_eq!((PathBuf::from(&e.file), e.line), (sub.clone(), 3));
    assert_eq!(e.included_from, [(main.display().to_string(), 2)]);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: unknown command `bogus` (included from {}:2)",
            sub.display(),
            main.display()
        )
    );
}

#[test]
fn include_errors() {
    let dir = TempDir::new("include-bad");
    let e = parse_in(&dir, "\ninclude nothere.cfg\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(matches!(&e.kind, ConfigErrorKind::Read { path, .. } if path.ends_with("nothere.cfg")));
    assert!(e.to_string().contains("nothere.cfg"), "{e}");
    assert!(matches!(
        err_at("include\n", 1),
        ConfigErrorKind::ArgumentCount { .. }
    ));
    assert!(matches!(
        err_at("include a b\n", 1),
        ConfigErrorKind::ArgumentCount { .. }
    ));
    assert!(matches!(
        err_at("include \"\"\n", 1),
        ConfigErrorKind::EmptyFileName { .. }
    ));
    dir.write("big.cfg", vec![b'#'; config::MAX_CONFIG_FILE_LEN + 1]);
    let e = parse_in(&dir, "include big.cfg\n").unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::FileTooLarge { .. }),
        "{e}"
    );
}

#[test]
fn include_cycles_are_detected() {
    let dir = TempDir::new("cycle");
    dir.write("a.cfg", "include b.cfg\n");
    dir.write("b.cfg", "socks\ninclude ./a.cfg\n");
    let a = dir.path().join("a.cfg");
    let e = config::load(&a).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.file.ends_with("b.cfg"), "{e}");
    assert!(matches!(&e.kind, ConfigErrorKind::IncludeCycle { path } if path.ends_with("a.cfg")));
    assert!(e.to_string().contains("include cycle"), "{e}");

    let selfish = dir.write("self.cfg", "include self.cfg\n");
    let e = config::load(&selfish).unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::IncludeCycle { .. }),
        "{e}"
    );

    // The same file twice in a row is not a cycle.
    dir.write("leaf.cfg", "maxconn 9\n");
    let twice = dir.write("twice.cfg", "include leaf.cfg\ninclude leaf.cfg\nsocks\n");
    assert_eq!(config::load(&twice).unwrap().services[0].maxconn, 9);
}

#[test]
fn include_depth_is_limited() {
    let dir = TempDir::new("depth");
    // f0 includes f1 ... f{n-1} includes f{n}.
    let chain = |n: usize| {
        for i in 0..n {
            dir.write(&format!("f{i}.cfg"), format!("include f{}.cfg\n", i + 1));
        }
        dir.write(&format!("f{n}.cfg"), "socks -p5\n");
        config::load(&dir.path().join("f0.cfg"))
    };
    assert_eq!(ports(&chain(MAX_INCLUDE_DEPTH).unwrap()), [5]);
    let e = chain(MAX_INCLUDE_DEPTH + 1).unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::IncludeTooDeep { limit, .. } if limit == MAX_INCLUDE_DEPTH),
        "{e}"
    );
    assert_eq!(e.included_from.len(), MAX_INCLUDE_DEPTH);
}

#[test]
fn load_reports_unreadable_files_without_a_line() {
    let dir = TempDir::new("load");
    let p = dir.path().join("absent.cfg");
    let e = config::load(&p).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read `", p.display())),
        "{e}"
    );
    let e = config::load(dir.path()).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Read { .. }), "{e}");
}

#[test]
fn first_error_stops_before_later_files_are_opened() {
    let dir = TempDir::new("stop");
    // The include on line 2 would fail too, but line 1 is reported.
    let e = parse_in(&dir, "authnserver 1.2.3.4\ninclude absent.cfg\n").unwrap_err();
    assert_eq!(e.line, 1);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary text never panics. The alphabet has no `/` or `.`, so any `$FILE` or
    /// `include` names a file inside the scratch directory.
    #[test]
    fn arbitrary_text_never_panics(text in "[a-z0-9 \t\r\n\"$#:,*-]{0,200}") {
        let _ = parse(&text);
        let words = [
            "socks", "users", "auth", "allow", "deny", "flush", "internal", "log", "logformat",
            "maxconn", "include", "end", "service", "proxy",
        ];
        let mut line = String::new();
        for (i, w) in text.split(' ').enumerate() {
            line.push_str(words[i % words.len()]);
            line.push(' ');
            line.push_str(w);
            line.push('\n');
        }
        let _ = parse(&line);
    }
}
