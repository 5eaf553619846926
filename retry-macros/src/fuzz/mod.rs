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

use proc_macro2::TokenStream;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};
use quote::ToTokens;

use crate::entry::resilient;

mod inputs;

use inputs::{args, item};

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
                text.contains(&function.operation.body.stream().to_string()),
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

/// Arguments valid for every accepted shape, async or sync, and together:
/// fewer attempts than any breaker's threshold (5 by default), and every
/// `base_delay` shorter than every `deadline`.
fn valid_entry() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        (1u32..=4).prop_map(|n| ("max_attempts", format!("max_attempts = {n}"))),
        select(retry_rules::BackoffKind::NAMES)
            .prop_map(|(b, _)| ("backoff", format!("backoff = \"{b}\""))),
        (1u64..=999).prop_map(|n| ("base_delay", format!("base_delay = \"{n}ms\""))),
        select(vec!["\"none\"", "\"full\"", "\"equal\"", "0.5", "1.0", "0.01"])
            .prop_map(|j| ("jitter", format!("jitter = {j}"))),
        (1u64..=100).prop_map(|n| ("deadline", format!("deadline = \"{n}s\""))),
        (1u64..=100).prop_map(|n| ("concurrency", format!("concurrency = {n}"))),
        ((1u32..=1000), select(vec!["s", "min", "h"]))
            .prop_map(|(n, unit)| ("rate_limit", format!("rate_limit = \"{n}/{unit}\""))),
        (1u64..=100).prop_map(|n| ("max_wait", format!("max_wait = \"{n}ms\""))),
        select(vec![
            "circuit_breaker",
            "circuit_breaker(failure_threshold = 5, open_for = \"1s\")",
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
