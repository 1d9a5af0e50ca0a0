//! The README's tables against the code. The options table is generated from
//! [`FLAGS`](super::config::FLAGS) (`UPDATE_README=1 cargo test --lib readme` rewrites it); the
//! budget table's meanings are written by hand, but every key of `memlimit.toml` must be there
//! once, with its shipped value.

use super::config::options_table;
use crate::core::limits::Limits;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const BEGIN: &str = "<!-- options: generated from FLAGS in src/ops/config.rs; \
                     UPDATE_README=1 cargo test --lib readme -->\n";
const END: &str = "<!-- end of options -->\n";

fn readme() -> String {
    std::fs::read_to_string(README).expect("README.md is readable")
}

#[test]
fn readme_options_table_is_the_flag_table() {
    let text = readme();
    let (before, rest) = text
        .split_once(BEGIN)
        .expect("README.md marks where its options table begins");
    let (table, after) = rest
        .split_once(END)
        .expect("README.md marks where its options table ends");
    let expected = options_table();
    if table == expected {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(README, format!("{before}{BEGIN}{expected}{END}{after}"))
            .expect("README.md is writable");
        return;
    }
    let (line, want) = expected
        .lines()
        .zip(table.lines().chain(std::iter::repeat("")))
        .find(|(want, have)| want != have)
        .map(|(want, have)| (have.to_string(), want.to_string()))
        .unwrap_or_else(|| {
            let extra = table.lines().nth(expected.lines().count()).unwrap_or("");
            (extra.to_string(), "(nothing)".to_string())
        });
    panic!(
        "README.md's options table is not the flag table in src/ops/config.rs \
         (UPDATE_README=1 cargo test --lib readme rewrites it).\n  README: {line}\n  FLAGS:  {want}"
    );
}

#[test]
fn readme_budget_table_has_every_key_with_its_shipped_value() {
    let text = readme();
    let start = text
        .find("| key | default | meaning |")
        .expect("README.md has the budget table");
    let shipped = Limits::shipped();
    let mut seen: Vec<String> = Vec::new();
    for row in text[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let keys: Vec<&str> = cells[1]
            .split(',')
            .map(|k| k.trim().trim_matches('`'))
            .collect();
        let values: Vec<&str> = cells[2].split(',').map(str::trim).collect();
        assert_eq!(keys.len(), values.len(), "one value per key in `{row}`");
        for (key, value) in keys.into_iter().zip(values) {
            let Some(real) = shipped.get(key) else {
                panic!("README.md's budget table names `{key}`, which memlimit.toml has not");
            };
            assert_eq!(
                value,
                real.to_string(),
                "README.md: `{key}` ships as {real}"
            );
            assert!(
                !seen.iter().any(|k| k == key),
                "README.md lists `{key}` twice"
            );
            seen.push(key.to_string());
        }
    }
    let missing: Vec<&str> = Limits::KEYS
        .iter()
        .copied()
        .filter(|key| !seen.iter().any(|k| k == key))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's budget table lacks {missing:?}"
    );
}
