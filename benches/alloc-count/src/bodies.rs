//! What the tower layer holds of a request's body to send it again,
//! counted by the allocator: the most bytes the calling thread held at
//! once during one call, beyond what it held before (`peak_while`).
//!
//! The inner service reads every frame and drops it, as a client writing
//! to a socket does, then answers `503` to the first attempt and `200` to
//! the next. The body is allocated inside the measured call, so a body the
//! caller holds whole counts once: what the layer adds on top of it is the
//! constant the checks bound (`OVERHEAD`), the call's own boxes and state.
//! Feature `bodies`: `cargo run --release --features bodies -- bodies`.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use steadfast::Policy;
use steadfast::tower::{BoxError, Http, NotReplayed, ReplayBody, ResilientLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Report, peak_while};

const KIB: usize = 1024;

/// The layer's default cap on a body it keeps (`max_replay_body`).
const MAX_REPLAY_BODY: usize = 64 * KIB;

/// What one call may hold beyond the body's bytes: the layer's and the
/// service's futures, the request's head, the replay's chunk list.
/// Measured at about 3 KiB (BENCHMARKS.md); the bound leaves room for a
/// dependency's change, and is still far below any copy of a body.
const OVERHEAD: usize = 8 * KIB;

static RETRY: Policy<BoxError> = Policy::new()
    .max_attempts(2)
    .base_delay(Duration::from_millis(1));

/// A body whose bytes are allocated as they are polled, `chunk` at a time
/// (as a body read from a file or a socket is), or all in one frame.
struct Produced {
    left: usize,
    chunk: usize,
}

impl Body for Produced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let len = self.chunk.min(self.left);
        self.left -= len;
        let bytes = Bytes::from(vec![(self.left % 251) as u8; len]);
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

/// Reads each attempt's body to its end, dropping every frame, and
/// records how many bytes each attempt carried.
#[derive(Clone, Default)]
struct Drain {
    attempts: Arc<AtomicUsize>,
    last_len: Arc<AtomicUsize>,
}

impl Service<Request<ReplayBody<Produced>>> for Drain {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReplayBody<Produced>>) -> Self::Future {
        let first = self.attempts.fetch_add(1, Ordering::Relaxed) == 0;
        let last_len = Arc::clone(&self.last_len);
        Box::pin(async move {
            let mut body = pin!(request.into_body());
            let mut len = 0;
            while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                if let Ok(data) = frame?.into_data() {
                    len += data.len();
                }
            }
            last_len.store(len, Ordering::Relaxed);
            let status = if first {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            Ok(Response::builder().status(status).body(())?)
        })
    }
}

struct Sent {
    attempts: usize,
    last_len: usize,
    not_replayed: Option<NotReplayed>,
    peak: usize,
}

/// One PUT of `len` bytes in frames of `chunk`, through the layer with
/// its defaults and `Http`, on `runtime`.
fn put(runtime: &tokio::runtime::Runtime, len: usize, chunk: usize) -> Sent {
    let drain = Drain::default();
    let mut service = ResilientLayer::new(&RETRY)
        .classify(Http)
        .layer(drain.clone());
    let (response, peak) = peak_while(|| {
        runtime.block_on(async {
            poll_fn(|cx| service.poll_ready(cx)).await?;
            let request = Request::put("http://127.0.0.1/upload")
                .header("idempotency-key", "upload-1")
                .body(ReplayBody::new(Produced { left: len, chunk }))?;
            service.call(request).await
        })
    });
    let response = response.expect("the layer answers");
    Sent {
        attempts: drain.attempts.load(Ordering::Relaxed),
        last_len: drain.last_len.load(Ordering::Relaxed),
        not_replayed: response.extensions().get::<NotReplayed>().copied(),
        peak,
    }
}

pub(crate) fn check(report: &mut Report) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    // The first call sizes the runtime's and the pool's lazy state.
    put(&runtime, 32 * KIB, 4 * KIB);

    let mib = KIB * KIB;
    let cases = [
        // Kept and sent again: the chunks themselves, not a copy.
        (
            "a 32 KiB body in 4 KiB frames, retried",
            32 * KIB,
            4 * KIB,
            2,
            32 * KIB,
        ),
        (
            "a 32 KiB body in one frame, retried",
            32 * KIB,
            32 * KIB,
            2,
            32 * KIB,
        ),
        // Over the cap: sent once; what was kept is let go as the body
        // passes the cap, so a stream never holds more than the cap.
        (
            "a 1 MiB body in 16 KiB frames, sent once",
            mib,
            16 * KIB,
            1,
            MAX_REPLAY_BODY + 16 * KIB,
        ),
        // One frame over the cap: the body itself, never kept.
        ("a 1 MiB body in one frame, sent once", mib, mib, 1, mib),
    ];
    for (name, len, chunk, attempts, body_bytes) in cases {
        let sent = put(&runtime, len, chunk);
        let replayed = attempts > 1;
        report.check(
            &format!("tower layer, {name}: attempts"),
            sent.attempts == attempts
                && sent.last_len == len
                && (replayed || sent.not_replayed.is_some()),
            format!(
                "{} attempts, the last carried {} bytes; not replayed: {:?}",
                sent.attempts, sent.last_len, sent.not_replayed
            ),
        );
        report.check(
            &format!("tower layer, {name}: peak memory"),
            sent.peak <= body_bytes + OVERHEAD,
            format!(
                "{} bytes at most at once: {} of body, {} beyond it (bound {OVERHEAD})",
                sent.peak,
                body_bytes,
                sent.peak as isize - body_bytes as isize
            ),
        );
    }
}
