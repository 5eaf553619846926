//! With feature `tracing`, one span per call and one per attempt, the
//! attempts' spans children of their call's:
//!
//! ```text
//! steadfast.call     site = "inventory.reserve"
//! ├─ steadfast.attempt  attempt = 1, hedge = false
//! ├─ steadfast.attempt  attempt = 2, hedge = false   (http.request.resend_count = 1 with `Http`)
//! └─ steadfast.attempt  attempt = 3, hedge = true
//! ```
//!
//! Both are `DEBUG` spans on the `steadfast` target: a subscriber that
//! keeps `INFO` (the usual production filter) has no interest in them, and
//! a call then pays a level check per span and nothing more (BENCHMARKS.md,
//! "Spans"); `steadfast=debug` turns them on. The call's span takes the
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

/// One attempt's span (`steadfast.attempt`), or nothing.
#[derive(Debug, Clone)]
pub(crate) struct AttemptSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl AttemptSpan {
    /// Runs `f` in the span.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.span.enter();
        f()
    }

    /// `attempt`, entering the span each time it is polled (and dropped):
    /// `tracing`'s `Instrumented`, or without the feature `attempt` itself.
    #[inline]
    pub(crate) fn instrument<F: Future>(
        &self,
        attempt: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        #[cfg(feature = "tracing")]
        return tracing::Instrument::instrument(attempt, self.span.clone());
        #[cfg(not(feature = "tracing"))]
        attempt
    }
}

/// What an attempt's span says of it besides its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first attempt of a round, or of an unhedged call.
    Attempt,
    /// Started beside an attempt still running.
    Hedge,
    /// An HTTP request sent by the tower layer: its span carries
    /// `http.request.resend_count` (never a hedge: the layer does not hedge).
    Http,
}

/// A call's spans: its own (`steadfast.call`), and the one of the attempt
/// it is making, if any.
#[derive(Debug)]
pub(crate) struct Spans {
    // The attempt's first: it closes before its call's.
    #[cfg(feature = "tracing")]
    attempt: tracing::Span,
    #[cfg(feature = "tracing")]
    call: tracing::Span,
}

impl Spans {
    /// A call of `site` starts: its span, in the current one.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn start(site: &'static str) -> Self {
        Spans {
            #[cfg(feature = "tracing")]
            attempt: tracing::Span::none(),
            #[cfg(feature = "tracing")]
            call: tracing::debug_span!(target: "steadfast", "steadfast.call", site),
        }
    }

    /// The span of the attempt numbered `number`, in the call's span. Not
    /// the call's current attempt: a hedged round keeps its attempts'.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn attempt_span(&self, number: u32, kind: Kind) -> AttemptSpan {
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span: self.call.in_scope(|| attempt_span(number, kind)),
        }
    }

    /// The call's attempt numbered `number` starts: its span is the
    /// current attempt's, in which its events are reported.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn begin_attempt(&mut self, number: u32, kind: Kind) {
        #[cfg(feature = "tracing")]
        {
            self.attempt = self.call.in_scope(|| attempt_span(number, kind));
        }
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
            self.attempt = tracing::Span::none();
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
        let _entered = self.attempt.enter();
        f()
    }

    /// Runs `f` in the call's span (and out of the attempt's).
    #[inline]
    pub(crate) fn in_call<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.call.enter();
        f()
    }
}

/// A new `steadfast.attempt` span, in the current span (its call's).
#[cfg(feature = "tracing")]
fn attempt_span(number: u32, kind: Kind) -> tracing::Span {
    match kind {
        Kind::Attempt | Kind::Hedge => tracing::debug_span!(
            target: "steadfast",
            "steadfast.attempt",
            attempt = number,
            hedge = kind == Kind::Hedge,
        ),
        // OpenTelemetry's HTTP client spans: "the ordinal number of request
        // resending attempt", recommended "if and only if request was
        // retried", so absent (not 0) on the first.
        Kind::Http => tracing::debug_span!(
            target: "steadfast",
            "steadfast.attempt",
            attempt = number,
            hedge = false,
            http.request.resend_count = number.checked_sub(1).filter(|&resent| resent > 0),
        ),
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
