//! With feature `tracing`, one span per call and one per attempt, the
//! attempts' spans children of their call's:
//!
//! ```text
//! steadfast.call     site = "inventory.reserve"
//! ├─ steadfast.attempt  attempt = 1, hedge = false
//! ├─ steadfast.attempt  attempt = 2, hedge = false   (http.request.resend_count = 1 through the layer with `Http`)
//! └─ steadfast.attempt  attempt = 3, hedge = true
//! ```
//!
//! Both are `DEBUG` spans on the `steadfast` target: a subscriber that
//! keeps `INFO` (the usual production filter) has no interest in them, and
//! a call then pays one level check (an atomic load) and holds no span
//! (BENCHMARKS.md, "Spans"); `steadfast=debug` turns them on. An attempt's
//! span is made only in an enabled call span: a filter that keeps
//! `steadfast.attempt` must keep `steadfast.call` too. The call's span takes the
//! current span as its parent (an `#[instrument]` span around the call);
//! an attempt's span is made inside its call's, so that is its parent
//! whichever span is current when it is made.
//!
//! An attempt's span is entered while the attempt's future is polled (it is
//! [`instrument`](AttemptSpan::instrument)ed, never entered across an
//! await) and while the runtime reports what the attempt led to: its
//! admission and refusal, the breaker's verdict, the retry. What concerns
//! the call (giving up, a hedge sent or refused) is reported in the call's
//! span. Both are entered rather than named as the events' parent: a span a
//! subscriber filtered out then leaves the event in whatever span is
//! current, as it was before these spans existed, where a `parent:` of a
//! disabled span would make it a root.
//!
//! Without the feature every type here is empty and every function does
//! nothing: a call's future is not one byte larger.

use std::future::Future;

/// Whether a `DEBUG` span of ours could be enabled: the check `tracing`'s
/// macros make first, made here before them so that a call a filter above
/// `DEBUG` drops makes no span at all (a disabled span still costs its
/// drop, and with `tracing`'s `log` feature, which a dependency can turn
/// on, more).
#[cfg(feature = "tracing")]
#[inline]
fn debug_enabled() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG
}

/// One attempt's span (`steadfast.attempt`), or nothing.
#[derive(Debug, Clone)]
pub(crate) struct AttemptSpan {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl AttemptSpan {
    /// Runs `f` in the span.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            return span.in_scope(f);
        }
        f()
    }

    /// `attempt`, entering the span each time it is polled (and dropped):
    /// `tracing`'s `Instrumented`, or `attempt` itself when there is no
    /// span (and always without the feature).
    #[inline]
    pub(crate) fn instrument<F: Future>(
        &self,
        attempt: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        #[cfg(feature = "tracing")]
        return match &self.span {
            Some(span) => InSpan::Spanned {
                attempt: tracing::Instrument::instrument(attempt, span.clone()),
            },
            None => InSpan::Plain { attempt },
        };
        #[cfg(not(feature = "tracing"))]
        attempt
    }
}

#[cfg(feature = "tracing")]
pin_project_lite::pin_project! {
    /// An attempt's future in its span, or as it is: a disabled span would
    /// still be entered, left and dropped at every poll.
    #[project = InSpanProjection]
    enum InSpan<F> {
        Spanned { #[pin] attempt: tracing::instrument::Instrumented<F> },
        Plain { #[pin] attempt: F },
    }
}

#[cfg(feature = "tracing")]
impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        match self.project() {
            InSpanProjection::Spanned { attempt } => attempt.poll(cx),
            InSpanProjection::Plain { attempt } => attempt.poll(cx),
        }
    }
}

/// What an attempt's span says of it besides its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first attempt of a round, or of an unhedged call.
    Attempt,
    /// Started beside an attempt still running.
    Hedge,
}

/// A call's spans: its own (`steadfast.call`), and the one of the attempt
/// it is making, if any; `None` where a subscriber has no interest.
#[derive(Debug)]
pub(crate) struct Spans {
    // The attempt's first: it closes before its call's.
    #[cfg(feature = "tracing")]
    attempt: Option<tracing::Span>,
    #[cfg(feature = "tracing")]
    call: Option<tracing::Span>,
    /// The call is an HTTP request of the tower layer: its attempts' spans
    /// carry `http.request.resend_count`.
    #[cfg(all(feature = "tracing", feature = "tower"))]
    http: bool,
}

impl Spans {
    /// A call of `site` starts: its span, in the current one.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn start(site: &'static str) -> Self {
        Spans {
            #[cfg(feature = "tracing")]
            attempt: None,
            #[cfg(feature = "tracing")]
            call: if debug_enabled() {
                Some(tracing::debug_span!(target: "steadfast", "steadfast.call", site))
                    .filter(|span| !span.is_disabled())
            } else {
                None
            },
            #[cfg(all(feature = "tracing", feature = "tower"))]
            http: false,
        }
    }

    /// The call is an HTTP request (the tower layer with `Http`): every
    /// attempt's span, hedges' included, carries
    /// `http.request.resend_count`.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn mark_http(&mut self) {
        #[cfg(feature = "tracing")]
        {
            self.http = true;
        }
    }

    /// The span of the attempt numbered `number`, in the call's span. Not
    /// the call's current attempt: a hedged round keeps its attempts'.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn attempt_span(&self, number: u32, kind: Kind) -> AttemptSpan {
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span: self.new_attempt(number, kind),
        }
    }

    /// The call's attempt numbered `number` starts: its span is the
    /// current attempt's, in which its events are reported.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn begin_attempt(&mut self, number: u32, kind: Kind) {
        #[cfg(feature = "tracing")]
        {
            self.attempt = self.new_attempt(number, kind);
        }
    }

    /// An attempt's span, in the call's, if the call has one.
    #[cfg(feature = "tracing")]
    #[inline]
    fn new_attempt(&self, number: u32, kind: Kind) -> Option<tracing::Span> {
        let call = self.call.as_ref()?;
        #[cfg(feature = "tower")]
        let http = self.http;
        #[cfg(not(feature = "tower"))]
        let http = false;
        Some(call.in_scope(|| attempt_span(number, kind, http))).filter(|span| !span.is_disabled())
    }

    /// A hedged round settled on the attempt of `span`: what follows is
    /// reported in it.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn settle_on(&mut self, span: AttemptSpan) {
        #[cfg(feature = "tracing")]
        {
            self.attempt = span.span;
        }
    }

    /// The attempt is over: its span closes (once its future is dropped).
    #[inline]
    pub(crate) fn end_attempt(&mut self) {
        #[cfg(feature = "tracing")]
        {
            self.attempt = None;
        }
    }

    /// The current attempt's span.
    #[inline]
    pub(crate) fn attempt(&self) -> AttemptSpan {
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span: self.attempt.clone(),
        }
    }

    /// Runs `f` in the current attempt's span.
    #[inline]
    pub(crate) fn in_attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.attempt {
            return span.in_scope(f);
        }
        f()
    }

    /// Runs `f` in the call's span (and out of the attempt's).
    #[inline]
    pub(crate) fn in_call<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.call {
            return span.in_scope(f);
        }
        f()
    }
}

/// A new `steadfast.attempt` span, in the current span (its call's).
#[cfg(feature = "tracing")]
fn attempt_span(number: u32, kind: Kind, http: bool) -> tracing::Span {
    if http {
        // OpenTelemetry's HTTP client spans: "the ordinal number of request
        // resending attempt", recommended "if and only if request was
        // retried", so absent (not 0) on the first; a hedge is a resend.
        tracing::debug_span!(
            target: "steadfast",
            "steadfast.attempt",
            attempt = number,
            hedge = kind == Kind::Hedge,
            http.request.resend_count = number.checked_sub(1).filter(|&resent| resent > 0),
        )
    } else {
        tracing::debug_span!(
            target: "steadfast",
            "steadfast.attempt",
            attempt = number,
            hedge = kind == Kind::Hedge,
        )
    }
}

#[cfg(all(test, not(feature = "tracing")))]
mod tests {
    use super::*;

    #[test]
    fn without_tracing_spans_take_no_room() {
        assert_eq!(size_of::<Spans>(), 0);
        assert_eq!(size_of::<AttemptSpan>(), 0);
    }
}
