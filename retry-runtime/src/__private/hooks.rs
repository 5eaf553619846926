//! The user's expressions, passed through generic functions spanned at the
//! expression: the closure's parameter types are inferred from the
//! function's error type, and a mismatch is reported on the user's tokens.

use std::time::Duration;

use crate::event::RetryEvent;

/// Applies `retry_if` to the error.
#[inline]
pub fn retry_if<E>(error: &E, predicate: impl Fn(&E) -> bool) -> bool {
    predicate(error)
}

/// Applies `breaker_if` to the error.
#[inline]
pub fn breaker_if<E>(error: &E, predicate: impl Fn(&E) -> bool) -> bool {
    predicate(error)
}

/// Applies `retry_after` to the error.
#[inline]
pub fn retry_after<E>(error: &E, suggest: impl Fn(&E) -> Option<Duration>) -> Option<Duration> {
    suggest(error)
}

/// Calls the `on_retry` hook.
#[inline]
pub fn on_retry<E>(event: &RetryEvent<'_, E>, hook: impl Fn(&RetryEvent<'_, E>)) {
    hook(event);
}

/// Applies `fallback` to the final error.
#[inline]
pub fn fallback<T, E>(error: E, fallback: impl FnOnce(E) -> Result<T, E>) -> Result<T, E> {
    fallback(error)
}

/// Applies an async `fallback` (`async |e| ..`, or a closure returning a
/// future) to the final error, in an `async fn` or block.
#[inline]
pub async fn fallback_async<T, E>(
    error: E,
    fallback: impl AsyncFnOnce(E) -> Result<T, E>,
) -> Result<T, E> {
    fallback(error).await
}

/// Calls an async `on_retry` hook and awaits it before the backoff sleep.
#[inline]
pub async fn on_retry_async<E>(
    event: &RetryEvent<'_, E>,
    hook: impl AsyncFnOnce(&RetryEvent<'_, E>),
) {
    hook(event).await;
}
