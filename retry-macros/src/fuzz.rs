//! Hostile input to the attribute: a proptest-driven fuzzer over generated
//! token streams, calling the pipeline's entry
//! ([`crate::entry::resilient`]) directly, on the stable toolchain.
//!
//! The attribute's arguments are built from known keys (top-level and
//! `circuit_breaker(...)` ones) and unknown ones, values of every literal
//! kind (integers of any size and sign, with suffixes and radixes, floats
//! including `1e400`, strings with valid and invalid durations, rates and
//! names, unicode, byte/char/C strings, booleans), expressions, arrays,
//! nested lists, `key =` without a value, garbage punctuation, nesting 64
//! deep, and literals wrapped in invisible (`Delimiter::None`) groups as
//! `macro_rules!` substitutions produce. The items are functions of every
//! shape the attribute supports, shapes it rejects, non-functions, and
//! functions with tokens deleted or inserted at random.
//!
//! | property | figure asserted, per case |
//! |---|---|
//! | `any_input_yields_an_expansion_or_errors` | no panic; the output is an expansion that parses as a `syn::File` or contains `compile_error!`; a function keeps its name, signature, visibility and attributes; a non-function is emitted unchanged before the errors; the same input gives the same output |
//! | `valid_configurations_expand_cleanly` | no `compile_error!`; the output parses as one `fn` with the input's signature |
//! | `nesting_512_deep_fits_rustcs_stack` | 4 shapes nested 512 deep expand or error on an 8 MiB stack |
//!
//! 2000 cases each by default, from a fixed seed (a few seconds). A longer
//! pass, or another sequence:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p retry-macros fuzz
//! PROPTEST_CASES=100000 PROPTEST_RNG_SEED=7 cargo test --release -p retry-macros fuzz
//! ```
//!
//! Failures are shrunk and printed, not persisted: paste a printed input
//! into a unit test to keep it.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};
use quote::ToTokens;

use crate::args::{Args, BreakerArgs};
use crate::entry::resilient;

/// 2000 cases from a fixed seed, unless `PROPTEST_CASES` /
/// `PROPTEST_RNG_SEED` say otherwise.
fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2000;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5EED_F422);
    }
    config.failure_persistence = None;
    config.max_shrink_iters = 2048;
    config
}

// ---------------------------------------------------------------- arguments

fn known_key() -> impl Strategy<Value = String> {
    let keys: Vec<&str> = Args::KEYS
        .iter()
        .chain(BreakerArgs::KEYS)
        .copied()
        .collect();
    select(keys).prop_map(str::to_owned)
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => known_key(),
        // Typos and strangers.
        2 => "[a-z_][a-z0-9_]{0,14}",
        1 => select(vec![
            "r#type", "r#crate", "self", "Self", "super", "_", "é", "ключ", "max_attempts_",
            "MAX_ATTEMPTS", "maxAttempts", "circuit_breakers", "timeout2",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A Rust string literal (the `Debug` form of a `str` is one).
fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            // durations, good and bad
            "100ms", "2s", "1m30s", "0s", "0ns", "1h", "1d", "20s", "1us", "1y", "", " ", "5",
            "5.5", "ms", "-1s", "1 s", "1s1s", "18446744073709551616s",
            "99999999999999999999999999h", "１０ms", "∞", "\u{0}", "1e3s", "1..2s", "1.5s",
            "1m 30s", "+1s", "0x10s", "1ms\n",
            // backoff, jitter, budget names
            "exponential", "fixed", "linear", "fibonacci", "none", "full", "equal",
            "decorrelated", "expo", "Exponential", "off", "on",
            // rates
            "10/s", "0/s", "-1/min", "1/h", "1/d", "/s", "10/", "10//s", "4294967296/s",
            "1.5/s", "10 / s", "600/min", "1/hour", "N/s",
            // names and paths
            "billing.charge", "::steadfast", "steadfast", "::", "a::b::", "crate", "1abc",
            "self::x", "Ω::λ",
        ])
        .prop_map(|s| format!("{s:?}")),
        1 => "\\PC{0,16}".prop_map(|s| format!("{s:?}")),
        1 => select(vec![r##"r#"raw"#"##, r#"b"bytes""#, r#"br"x""#, r#"c"cstr""#, r#""\u{1F600}s""#])
            .prop_map(str::to_owned),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i128>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        3 => select(vec![
            "0", "-0", "1", "3", "-1", "0x10", "0b1", "0o7", "1_000", "3u8", "3i64", "255u8",
            "1usize", "1e3", "1.5", "-1.5", "0.0", "-0.0", "1e400", "-1e400", "1.0f32", "1f64",
            "2.", "1e-400", "0.2", "1.0000000000000002", "4294967296", "4294967295",
            "18446744073709551616", "340282366920938463463374607431768211455",
            "340282366920938463463374607431768211456",
            "99999999999999999999999999999999999999999999999999",
            "b'x'", "'x'", "'\\u{1F600}'", "true", "false",
        ])
        .prop_map(str::to_owned),
        3 => string_literal(),
    ]
}

/// Values that are not literals: expressions, arrays, paths.
fn expression() -> impl Strategy<Value = String> {
    select(vec![
        "|e| true",
        "|_: &E| Some(std::time::Duration::from_secs(1))",
        "|e| match e { E::A => Ok(1), other => Err(other) }",
        "|event| println!(\"{}\", event.attempt())",
        "&POOL",
        "&crate::POOL",
        "&&POOL",
        "POOL",
        "foo()",
        "a.b",
        "[Io, Timeout]",
        "[Io, a::B, ::c::D, <T as X>::V, 1, \"x\"]",
        "[]",
        "[[Io]]",
        "[Io; 3]",
        "{ 1 }",
        "async {}",
        "loop {}",
        "(1, 2)",
        "1 + 2",
        "!true",
        "-\"1s\"",
        "- -1",
        "-(-1)",
        "(3)",
        "(((\"1s\")))",
        "if a { b } else { c }",
        "x = y",
        "Io",
        "::std::io::ErrorKind::TimedOut",
        "unsafe { X }",
        "return",
        "break 'a",
        "..",
        "1..2",
        "&mut POOL",
        "Box::leak(Box::new(Bulkhead::new(1)))",
    ])
    .prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![4 => literal(), 2 => expression()]
}

/// Tokens that belong nowhere in an attribute's arguments.
fn garbage() -> impl Strategy<Value = String> {
    select(vec![
        "=", "==", "=>", "::", ";", "#", "$", "@", "?", "..", "...", "&&", "||", "->", "<-", ",",
        ",,", "'a", "#[x]", "#!", "~", "<", ">", "<>", "()", "[]", "{}", "!", "%", "^", "*", "fn",
        "struct", "'static", "_", "r#", "a b c",
    ])
    .prop_map(str::to_owned)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![12 => Just(", "), 1 => Just(" "), 1 => Just("; "), 1 => Just(",, "), 1 => Just(" = ")]
}

fn join(entries: Vec<String>, separators: Vec<&'static str>, trailing: bool) -> String {
    let mut out = String::new();
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(separators.get(i % separators.len().max(1)).unwrap_or(&", "));
        }
        out.push_str(entry);
    }
    if trailing && !out.is_empty() {
        out.push(',');
    }
    out
}

/// One argument: `key = value`, a bare `key`, `key(...)`, `key =`, a
/// stray value or garbage; lists nest.
fn entry() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        8 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => key(),
        1 => key().prop_map(|k| format!("{k} =")),
        1 => value(),
        1 => garbage(),
        1 => (key(), value(), value()).prop_map(|(k, v, w)| format!("{k} = {v} = {w}")),
        1 => (key(), key(), value()).prop_map(|(k, j, v)| format!("{k}::{j} = {v}")),
        1 => (key(), garbage(), value()).prop_map(|(k, g, v)| format!("{k} {g} {v}")),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            (
                key(),
                prop::collection::vec(inner.clone(), 0..5),
                separator(),
                any::<bool>()
            )
                .prop_map(|(k, items, sep, trailing)| format!(
                    "{k}({})",
                    join(items, vec![sep], trailing)
                )),
            (key(), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(k, items)| format!("{k} = [{}]", items.join(", "))),
            (key(), inner).prop_map(|(k, item)| format!("{k} = ({item})")),
        ]
    })
}

/// Nesting far deeper than anyone writes.
fn deep() -> impl Strategy<Value = String> {
    (1usize..=64, known_key(), 0..4usize).prop_map(|(depth, key, shape)| match shape {
        0 => format!("{}1{}", format!("{key}(").repeat(depth), ")".repeat(depth)),
        1 => format!("{key} = {}Io{}", "[".repeat(depth), "]".repeat(depth)),
        2 => format!("{key} = {}\"1s\"{}", "(".repeat(depth), ")".repeat(depth)),
        _ => format!("{key} = {}1", "-".repeat(depth)),
    })
}

/// The tokens inside `#[resilient(...)]`, as text.
fn args_text() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => (
            prop::collection::vec(entry(), 0..8),
            prop::collection::vec(separator(), 1..4),
            any::<bool>()
        )
            .prop_map(|(entries, seps, trailing)| join(entries, seps, trailing)),
        1 => deep(),
        1 => (deep(), prop::collection::vec(entry(), 0..3))
            .prop_map(|(deep, mut rest)| {
                rest.push(deep);
                rest.join(", ")
            }),
    ]
}

/// Wraps literals (or, with `everything`, every token) in invisible groups,
/// as a `macro_rules!` `$x:literal` / `$e:expr` substitution delivers them.
fn invisible(tokens: TokenStream, mask: u64, depth: u32) -> TokenStream {
    tokens
        .into_iter()
        .enumerate()
        .map(|(i, tree)| {
            let pick = mask.rotate_left(depth.wrapping_mul(7).wrapping_add(i as u32)) & 1 == 1;
            match tree {
                TokenTree::Group(group) => {
                    let mut inner = Group::new(
                        group.delimiter(),
                        invisible(group.stream(), mask, depth + 1),
                    );
                    inner.set_span(group.span());
                    TokenTree::Group(inner)
                }
                TokenTree::Literal(_) if pick => {
                    TokenTree::Group(Group::new(Delimiter::None, tree.into_token_stream()))
                }
                other => other,
            }
        })
        .collect()
}

fn args() -> impl Strategy<Value = TokenStream> {
    (args_text(), prop::option::weighted(0.2, any::<u64>())).prop_filter_map(
        "arguments must lex as tokens",
        |(text, mask)| {
            let tokens: TokenStream = text.parse().ok()?;
            Some(match mask {
                Some(mask) => invisible(tokens, mask, 0),
                None => tokens,
            })
        },
    )
}

// ---------------------------------------------------------------- items

/// Functions of every shape the attribute accepts, and some it rejects.
const FUNCTIONS: &[&str] = &[
    "async fn NAME() -> Result<(), E> { Ok(()) }",
    "fn NAME(x: u32) -> Result<u32, E> { Ok(x) }",
    "pub(crate) async fn NAME<'a, T: Clone>(&self, x: &'a T, y: impl AsRef<str>) -> Result<&'a T, E> where T: Send { Ok(x) }",
    "async fn NAME(&mut self) -> io::Result<()> { Ok(()) }",
    "fn NAME(self) -> std::result::Result<u8, Box<dyn std::error::Error>> { Ok(1) }",
    "#[doc = \"x\"] #[inline] pub async fn NAME() -> Result<(), E> { return Err(E); }",
    "/// Docs.\n#[must_use] pub fn NAME(a: &str, b: &mut [u8]) -> Result<String, E> { let _ = b; Ok(a.to_owned()) }",
    "fn NAME<const N: usize>(a: [u8; N]) -> Result<[u8; N], E> { Ok(a) }",
    "async fn NAME(mut v: Vec<u8>, (a, b): (u8, u8), _: u8) -> Result<(), E> { v.push(a + b); Ok(()) }",
    "pub async fn NAME(url: &str) -> Result<Vec<u8>, FetchError> { let r = get(url).await?; Ok(r) }",
    "async unsafe fn NAME() -> Result<Self, E> { todo!() }",
    "fn NAME() -> Result<(), E> where Self: Sized { Err(E::A)? }",
    "async fn NAME() -> Result<impl Sized, E> { Ok(1) }",
    "fn NAME() -> anyhow::Result<()> { Ok(()) }",
    "fn NAME() -> Result<Result<(), A>, B> { Ok(Ok(())) }",
    // rejected: not a Result, const, extern, track_caller, impl Future
    "fn NAME() -> u8 { 1 }",
    "fn NAME() {}",
    "const fn NAME() -> Result<(), E> { Ok(()) }",
    "extern \"C\" fn NAME() -> Result<(), E> { Ok(()) }",
    "#[track_caller] fn NAME() -> Result<(), E> { Ok(()) }",
    "fn NAME() -> impl Future<Output = Result<(), E>> { async { Ok(()) } }",
    "fn NAME(...) -> Result<(), E> { Ok(()) }",
    "fn NAME() -> Result { Ok(()) }",
    "fn NAME() -> Result<> { Ok(()) }",
    "fn NAME() -> ! { loop {} }",
];

const NOT_FUNCTIONS: &[&str] = &[
    "struct S;",
    "enum E { A }",
    "impl S { fn f() -> Result<(), E> { Ok(()) } }",
    "trait T { fn f() -> Result<(), E>; }",
    "fn NAME() -> Result<(), E>;",
    "mod m {}",
    "use a::b;",
    "static X: u8 = 1;",
    "macro_rules! m { () => {} }",
    "",
    "{ }",
    "#[x]",
    "fn",
    "let x = 1;",
    "1 + 2",
    "async {}",
    "fn NAME",
    "async fn NAME -> Result<(), E> {}",
    "fn NAME() -> Result<(), E> { let = ; }",
    "fn NAME() -> Result<(), E> { Ok(()) } fn other() {}",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,10}",
        1 => select(vec!["r#type", "r#fn", "_private", "é", "fetch", "NAME", "main", "new"])
            .prop_map(str::to_owned),
    ]
}

/// Deletes or inserts a token somewhere (maybe inside a group).
fn mutate(tokens: TokenStream, ops: &[(u8, u16, String)], depth: usize) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, (kind, at, insert)) in ops.iter().enumerate() {
        if i % 3 != depth % 3 || trees.is_empty() {
            continue;
        }
        let at = usize::from(*at) % trees.len();
        match kind % 4 {
            0 => {
                trees.remove(at);
            }
            1 => {
                let extra: TokenStream = insert.parse().unwrap_or_default();
                trees.splice(at..at, extra);
            }
            _ => {
                if let TokenTree::Group(group) = &trees[at] {
                    let inner = mutate(group.stream(), ops, depth + 1);
                    let mut replaced = Group::new(group.delimiter(), inner);
                    replaced.set_span(group.span());
                    trees[at] = TokenTree::Group(replaced);
                }
            }
        }
    }
    trees.into_iter().collect()
}

fn item() -> impl Strategy<Value = TokenStream> {
    let template = prop_oneof![
        4 => select(FUNCTIONS),
        1 => select(NOT_FUNCTIONS),
    ];
    let edits = prop::collection::vec(
        (any::<u8>(), any::<u16>(), prop_oneof![garbage(), literal()]),
        0..4,
    );
    (template, name(), prop::option::weighted(0.25, edits)).prop_filter_map(
        "the item must lex as tokens",
        |(template, name, edits)| {
            let tokens: TokenStream = template.replace("NAME", &name).parse().ok()?;
            Some(match edits {
                Some(edits) => mutate(tokens, &edits, 0),
                None => tokens,
            })
        },
    )
}

// ---------------------------------------------------------------- properties

fn error_count(output: &str) -> usize {
    output.matches("compile_error").count()
}

fn as_fn(item: &syn::Item) -> Option<&syn::ItemFn> {
    match item {
        syn::Item::Fn(function) => Some(function),
        _ => None,
    }
}

fn tokens_of(value: &impl ToTokens) -> String {
    value.to_token_stream().to_string()
}

/// The expansion, or the errors, for one input, checked.
fn check(args: TokenStream, item: TokenStream) -> Result<(), TestCaseError> {
    let output = resilient(args.clone(), item.clone());
    let text = output.to_string();
    prop_assert_eq!(
        &text,
        &resilient(args, item.clone()).to_string(),
        "the same input gave a different output"
    );
    let errors = error_count(&text);
    let file = syn::parse2::<syn::File>(output);
    let body_kept_raw = match syn::parse2::<crate::item::Function>(item.clone()) {
        // A body that does not parse is spliced as it is, for rustc to
        // report; everything around it must still be what it was.
        Ok(function) if syn::parse2::<syn::ItemFn>(item.clone()).is_err() => {
            prop_assert!(
                text.contains(&function.body.stream().to_string()),
                "the body was not kept as written:\n{text}"
            );
            true
        }
        _ => false,
    };
    prop_assert!(
        errors > 0 || file.is_ok() || body_kept_raw,
        "no error, and the expansion does not parse: {:?}\n{}",
        file.err(),
        text
    );
    if body_kept_raw {
        return Ok(());
    }
    match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(input) => {
            // The function is kept whatever was wrong with the arguments.
            let file = match file {
                Ok(file) => file,
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "a function's output does not parse: {error}\n{text}"
                    )));
                }
            };
            let kept: Vec<&syn::ItemFn> = file
                .items
                .iter()
                .filter_map(as_fn)
                .filter(|f| f.sig.ident == input.sig.ident)
                .collect();
            prop_assert_eq!(
                kept.len(),
                1,
                "`fn {}` is not in the output once:\n{}",
                input.sig.ident,
                text
            );
            let output_fn = kept[0];
            prop_assert_eq!(
                tokens_of(&output_fn.sig),
                tokens_of(&input.sig),
                "the signature changed"
            );
            prop_assert_eq!(
                tokens_of(&output_fn.vis),
                tokens_of(&input.vis),
                "the visibility changed"
            );
            let attrs: Vec<String> = output_fn.attrs.iter().map(tokens_of).collect();
            for attr in &input.attrs {
                prop_assert!(attrs.contains(&tokens_of(attr)), "lost {}", tokens_of(attr));
            }
            // Everything else in the output is an error.
            let others = file.items.len() - 1;
            prop_assert!(
                others <= errors,
                "{others} extra items but {errors} errors:\n{text}"
            );
        }
        Err(_) => {
            // Not a function (or a broken one): kept as written, with an error.
            prop_assert!(
                errors > 0,
                "a non-function passed without an error:\n{text}"
            );
            prop_assert!(
                text.starts_with(&item.to_string()),
                "the item was not kept as written:\n{}\n--- became ---\n{}",
                item,
                text
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_input_yields_an_expansion_or_errors(args in args(), item in item()) {
        check(args, item)?;
    }
}

// ---------------------------------------------------------------- valid input

/// Arguments valid for every accepted shape, async or sync.
fn valid_entry() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        (1u32..=1000).prop_map(|n| ("max_attempts", format!("max_attempts = {n}"))),
        select(vec!["\"exponential\"", "\"fixed\"", "\"linear\"", "\"fibonacci\"", "\"none\""])
            .prop_map(|b| ("backoff", format!("backoff = {b}"))),
        (1u64..=1000).prop_map(|n| ("base_delay", format!("base_delay = \"{n}ms\""))),
        select(vec!["\"none\"", "\"full\"", "\"equal\"", "0.5", "1.0", "0.01"])
            .prop_map(|j| ("jitter", format!("jitter = {j}"))),
        (1u64..=100).prop_map(|n| ("deadline", format!("deadline = \"{n}s\""))),
        (1u64..=100).prop_map(|n| ("concurrency", format!("concurrency = {n}"))),
        ((1u32..=1000), select(vec!["s", "min", "h"]))
            .prop_map(|(n, unit)| ("rate_limit", format!("rate_limit = \"{n}/{unit}\""))),
        (1u64..=100).prop_map(|n| ("max_wait", format!("max_wait = \"{n}ms\""))),
        select(vec![
            "circuit_breaker",
            "circuit_breaker(failure_threshold = 3, open_for = \"1s\")",
            "circuit_breaker(failure_rate = 0.5, window = 20, min_calls = 10, half_open_probes = 2)",
            "circuit_breaker = &BREAKER",
        ])
        .prop_map(|b| ("circuit_breaker", b.to_owned())),
        Just(("budget", "budget = \"off\"".to_owned())),
        Just(("budget", "budget = &BUDGET".to_owned())),
        Just(("retry_if", "retry_if = |e| e.is_transient()".to_owned())),
        Just(("on_retry", "on_retry = |event| log(event)".to_owned())),
        Just(("fallback", "fallback = |e| Err(e)".to_owned())),
        Just(("name", "name = \"billing.charge\"".to_owned())),
        Just(("crate", "crate = \"::steadfast\"".to_owned())),
    ]
}

const VALID_FUNCTIONS: &[&str] = &[
    "async fn NAME() -> Result<(), E> { Ok(()) }",
    "fn NAME(x: u32) -> Result<u32, E> { Ok(x) }",
    "pub(crate) async fn NAME<'a, T: Clone>(&self, x: &'a T, y: impl AsRef<str>) -> Result<&'a T, E> where T: Send { Ok(x) }",
    "async fn NAME(&mut self) -> io::Result<()> { Ok(()) }",
    "#[doc = \"x\"] #[inline] pub async fn NAME() -> Result<(), E> { return Err(E); }",
    "fn NAME<const N: usize>(a: [u8; N]) -> Result<[u8; N], E> { Ok(a) }",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_configurations_expand_cleanly(
        entries in prop::collection::vec(valid_entry(), 0..8),
        template in select(VALID_FUNCTIONS),
        name in "[a-z][a-z0-9_]{0,10}".prop_filter("not a keyword", |n| syn::parse_str::<syn::Ident>(n).is_ok()),
    ) {
        // One value per key: duplicates are (rightly) errors.
        let mut seen = std::collections::BTreeSet::new();
        let args: Vec<String> = entries
            .into_iter()
            .filter(|(key, _)| seen.insert(*key))
            .map(|(_, entry)| entry)
            .collect();
        // `max_wait` needs something to wait for.
        let args: Vec<String> = if seen.contains("max_wait")
            && !seen.contains("concurrency")
            && !seen.contains("rate_limit")
        {
            args.into_iter().filter(|a| !a.starts_with("max_wait")).collect()
        } else {
            args
        };
        let args: TokenStream = args.join(", ").parse().unwrap();
        let item: TokenStream = template.replace("NAME", &name).parse().unwrap();
        let output = resilient(args.clone(), item.clone());
        let text = output.to_string();
        prop_assert_eq!(error_count(&text), 0, "`#[resilient({})]` rejected:\n{}", args, text);
        let expanded: syn::ItemFn = syn::parse2(output)
            .map_err(|e| TestCaseError::fail(format!("not one fn: {e}\n{text}")))?;
        let input: syn::ItemFn = syn::parse2(item).unwrap();
        prop_assert_eq!(tokens_of(&expanded.sig), tokens_of(&input.sig));
    }
}

/// Nesting 512 deep, on the 8 MiB stack rustc runs proc macros on, expands
/// or errors without overflowing. (syn parses expressions recursively: at an
/// unoptimised build's ~10 KiB per level, nested arrays or parentheses
/// overflow 8 MiB somewhere between 600 and 800 levels, which is why the
/// fuzzer's own nesting stops at 64.)
#[test]
fn nesting_512_deep_fits_rustcs_stack() {
    const DEPTH: usize = 512;
    let inputs = [
        format!("{}1{}", "circuit_breaker(".repeat(DEPTH), ")".repeat(DEPTH)),
        format!("retry_on = {}Io{}", "[".repeat(DEPTH), "]".repeat(DEPTH)),
        format!("max_attempts = {}1{}", "(".repeat(DEPTH), ")".repeat(DEPTH)),
        format!("max_attempts = {}1", "-".repeat(DEPTH)),
    ];
    for text in inputs {
        let worker = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let args: TokenStream = text.parse().unwrap();
                let item: TokenStream = "async fn f() -> Result<(), E> { Ok(()) }".parse().unwrap();
                let output = resilient(args, item).to_string();
                assert!(output.contains("fn f"), "{output}");
            })
            .unwrap();
        worker.join().unwrap();
    }
}
