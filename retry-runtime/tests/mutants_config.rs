//! `.cargo/mutants.toml` records a few equivalent mutants by line, where
//! one function holds the same operator more than once and only one of
//! them is equivalent. A line that moves would silently exclude whatever
//! lands there: each such entry must still point at its operator.

use std::fs;
use std::path::Path;

#[test]
fn by_line_equivalents_point_at_their_operator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = fs::read_to_string(root.join("../.cargo/mutants.toml")).expect("mutants.toml");
    let mut checked = 0;
    for entry in config
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('\''))
    {
        // 'dir/file\.rs:LINE:\d+: replace OP with OTHER in NAME',
        let Some((file, rest)) = entry.trim_start_matches('\'').split_once("\\.rs:") else {
            continue;
        };
        let Some((line, rest)) = rest.split_once(':') else {
            continue;
        };
        let Ok(line) = line.parse::<usize>() else {
            continue; // by pattern (`\d+`), not by line
        };
        // 'dir/file\.rs:LINE:\d+: delete match arm PATTERN in NAME': the
        // line holds the arm.
        if let Some((_, arm)) = rest.split_once("delete match arm ") {
            let pattern = arm.split_once(" in ").map_or(arm, |(pattern, _)| pattern);
            let text = line_of(root, file, line);
            assert!(
                text.trim_start().starts_with(&format!("{pattern} =>")),
                "{file}.rs:{line} no longer holds the arm `{pattern}` ({text:?}): update the line \
                 in .cargo/mutants.toml"
            );
            checked += 1;
            continue;
        }
        // 'dir/file\.rs:LINE:COLUMN: delete ! in NAME': the column holds
        // the `!` (a line may hold several).
        if let Some((column, _)) = rest.split_once(": delete ! in ") {
            let column: usize = column
                .parse()
                .expect("a by-line `delete !` names its column");
            let text = line_of(root, file, line);
            assert_eq!(
                text.chars().nth(column - 1),
                Some('!'),
                "{file}.rs:{line}:{column} no longer holds `!` ({text:?}): update the line in \
                 .cargo/mutants.toml"
            );
            checked += 1;
            continue;
        }
        let operator = rest
            .split_once("replace ")
            .and_then(|(_, rest)| rest.split_once(" with "))
            .map(|(operator, _)| operator.replace('\\', ""))
            .expect("a by-line entry names the operator it replaces");
        let text = line_of(root, file, line);
        assert!(
            text.contains(&format!(" {operator} ")),
            "{file}.rs:{line} no longer holds `{operator}` ({text:?}): update the line in \
             .cargo/mutants.toml"
        );
        checked += 1;
    }
    assert!(
        checked > 0,
        "no by-line entry found: is the parser still right?"
    );
}

fn line_of(root: &Path, file: &str, line: usize) -> String {
    let source = fs::read_to_string(root.join("src").join(format!("{file}.rs")))
        .unwrap_or_else(|error| panic!("{file}.rs: {error}"));
    source
        .lines()
        .nth(line - 1)
        .unwrap_or_else(|| panic!("{file}.rs has no line {line}"))
        .to_owned()
}
