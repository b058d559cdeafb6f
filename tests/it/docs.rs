//! The reference in `docs/` stays true: every documented config key is
//! accepted by the real loader with the documented default, every key of
//! the config structs is documented, the API page and the OpenAPI file
//! list the same routes (tests/api.rs checks that the router serves exactly
//! the OpenAPI routes), every command and flag of the binary is documented,
//! and relative links resolve.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use zonekeeper::config::Config;

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `(key, TOML literal, is the default)` of every row of docs/config.md.
fn documented_keys() -> Vec<(String, String, bool)> {
    let mut rows = Vec::new();
    for line in read("docs/config.md").lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let cells: Vec<&str> = rest.split(" | ").collect();
        assert!(cells.len() >= 3, "config.md row without 3 cells: {line}");
        let key = cells[0].trim_end_matches('`').to_string();
        let default = cells[1].trim();
        let literal = default
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("config.md: {key}: no `literal` in the default cell"))
            .to_string();
        rows.push((key, literal, !default.starts_with("none")));
    }
    assert!(rows.len() > 40, "config.md tables not found");
    rows
}

fn toml_for(key: &str, literal: &str) -> String {
    match key.split_once('.') {
        Some((section, k)) => format!("[{section}]\n{k} = {literal}\n"),
        None => format!("{key} = {literal}\n"),
    }
}

/// Every key of the config structs, from the pretty `Debug` of the
/// defaults: top-level fields, and `section.field` inside `…Config`
/// sections.
fn struct_keys() -> BTreeSet<String> {
    let dbg = format!("{:#?}", Config::default());
    let mut keys = BTreeSet::new();
    let mut section: Option<String> = None;
    for line in dbg.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some((k, rest)) = line.trim_start().split_once(": ") else {
            continue;
        };
        if !k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        match indent {
            4 if rest.ends_with("Config {") => section = Some(k.to_string()),
            4 => {
                section = None;
                keys.insert(k.to_string());
            }
            8 => {
                if let Some(s) = &section {
                    keys.insert(format!("{s}.{k}"));
                }
            }
            _ => {}
        }
    }
    keys
}

#[test]
fn every_documented_config_key_exists_with_its_default() {
    let defaults = format!("{:?}", Config::default());
    for (key, literal, is_default) in documented_keys() {
        let text = toml_for(&key, &literal);
        let cfg = Config::from_toml(&text, Path::new("docs/config.md")).unwrap_or_else(|e| {
            panic!("docs/config.md documents `{key}` = {literal}, which the loader refuses: {e}")
        });
        if is_default {
            assert_eq!(
                format!("{cfg:?}"),
                defaults,
                "docs/config.md: the default of `{key}` is not {literal}"
            );
        }
    }
}

#[test]
fn every_config_key_is_documented() {
    let documented: BTreeSet<String> = documented_keys().into_iter().map(|r| r.0).collect();
    let missing: Vec<_> = struct_keys().difference(&documented).cloned().collect();
    assert!(
        missing.is_empty(),
        "config keys without a row in docs/config.md: {missing:?}"
    );
    // The extraction itself works.
    assert!(struct_keys().contains("delegation.test_window"));
    assert!(struct_keys().contains("zones"));
}

/// `METHOD /api/v1/…` pairs in a text.
fn routes_in(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for m in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
        for (i, _) in text.match_indices(&format!("{m} /api/v1/")) {
            let path: String = text[i + m.len() + 1..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"`|)?,".contains(*c))
                .collect();
            out.insert((m.to_string(), path));
        }
    }
    out
}

#[test]
fn api_page_lists_the_openapi_routes() {
    let doc: serde_json::Value = serde_json::from_str(&read("src/api/openapi.json")).unwrap();
    let mut openapi = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            openapi.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(routes_in(&read("docs/api.md")), openapi);
}

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?} --help");
    String::from_utf8(o.stdout).unwrap()
}

/// Subcommand names listed under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn cli_page_documents_every_command_and_flag() {
    let doc = read("docs/cli.md");
    let mut stack: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = stack.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        if !path.is_empty() {
            let cmd = format!("zonekeeper {}", path.join(" "));
            assert!(doc.contains(&cmd), "docs/cli.md does not show `{cmd}`");
        }
        for flag in text
            .split_whitespace()
            .filter(|w| w.starts_with("--") && w.len() > 2)
        {
            let flag: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if flag == "--help" || flag == "--version" {
                continue;
            }
            assert!(
                doc.contains(&flag),
                "docs/cli.md does not mention {flag} (zonekeeper {})",
                path.join(" ")
            );
        }
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            stack.push(p);
        }
        seen += 1;
    }
    assert!(seen > 8, "only {seen} commands found");
}

#[test]
fn relative_links_resolve_and_nothing_points_outside_the_repo() {
    let mut files = vec!["README.md".to_string()];
    for e in std::fs::read_dir("docs").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p.display().to_string());
        }
    }
    for f in &files {
        let text = read(f);
        let dir = Path::new(f).parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|c| *c != ')').collect();
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                dir.join(file).exists(),
                "{f}: link to {target} does not resolve"
            );
        }
        assert!(
            !text.contains("../shared"),
            "{f} points outside the repository"
        );
        assert!(!text.contains("SPEC.md"), "{f} points at SPEC.md");
    }
    let lib = read("src/lib.rs");
    assert!(!lib.contains("SPEC.md"), "src/lib.rs points at SPEC.md");
}

/// Whether `text` holds a merge conflict: a line starting `<<<<<<< `, a
/// later line that is exactly `=======`, and a later one starting
/// `>>>>>>> `. (A bare `=======` alone is a Markdown setext underline.)
fn has_conflict(text: &str) -> bool {
    let (ours, sep, theirs) = ("<".repeat(7) + " ", "=".repeat(7), ">".repeat(7) + " ");
    let mut stage = 0;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        stage = match stage {
            0 if line.starts_with(&ours) => 1,
            1 if line == sep => 2,
            2 if line.starts_with(&theirs) => return true,
            s => s,
        };
    }
    false
}

#[test]
fn no_tracked_file_holds_merge_conflict_markers() {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .output()
        .expect("git must be installed (the test lists the tracked files)");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(files.iter().any(|f| f == "docs/epp.md"), "{files:?}");
    let mut bad = Vec::new();
    for f in &files {
        // Deleted in the work tree, or binary: nothing to merge by line.
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        if has_conflict(&String::from_utf8_lossy(&bytes)) {
            bad.push(f.clone());
        }
    }
    assert!(bad.is_empty(), "merge conflict markers in {bad:?}");
    // The detector itself.
    let m = |s: &str| {
        s.replace('<', &"<".repeat(7))
            .replace('>', &">".repeat(7))
            .replace('=', &"=".repeat(7))
    };
    assert!(has_conflict(&m("a\n< HEAD\nx\n=\ny\n> other\n")));
    assert!(!has_conflict(&m("Title\n=\ntext\n")));
    assert!(!has_conflict(&m("< HEAD\nx\n")));
}

/// Comments, tests and docs point at the repository's own `docs/`, never at
/// the specification the project was started from or at issue numbers the
/// repository does not hold.
#[test]
fn nothing_cites_the_spec_or_issue_numbers() {
    let out = Command::new("git")
        .args([
            "ls-files", "-z", "src", "tests", "benches", "docs", "contrib",
        ])
        .args(["README.md", "SECURITY.md", "CHECKS.md"])
        .output()
        .expect("git must be installed (the test lists the tracked files)");
    assert!(out.status.success());
    let spec = ["SPEC", " §"].concat();
    let issue = |t: &str| {
        t.match_indices("issue ").any(|(i, _)| {
            t[i + 6..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    };
    let mut bad = Vec::new();
    for f in out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let f = String::from_utf8_lossy(f).into_owned();
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue; // not text
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains(&spec) || issue(line) {
                bad.push(format!("{f}:{}: {line}", n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "cites outside the repository:\n{}",
        bad.join("\n")
    );
}
