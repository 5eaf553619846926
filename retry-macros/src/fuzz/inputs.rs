//! The fuzzer's inputs: attribute arguments and items, valid and hostile.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::sample::select;
use quote::ToTokens;

use crate::args::{Args, BreakerArgs, HedgeArgs, Keys};
// ---------------------------------------------------------------- arguments

fn known_key() -> impl Strategy<Value = String> {
    let keys: Vec<&str> = Args::KEYS
        .iter()
        .chain(BreakerArgs::KEYS)
        .chain(HedgeArgs::KEYS)
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

pub(super) fn args() -> impl Strategy<Value = TokenStream> {
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

pub(super) fn item() -> impl Strategy<Value = TokenStream> {
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
