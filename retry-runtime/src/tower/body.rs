//! A request body the layer can send again: it keeps the chunks the first
//! attempt sent (the same `Bytes`, counted, not copied), up to the layer's
//! caps, and a replay sends them again, then goes on reading the body
//! where the first attempt stopped.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::BoxError;
use super::replay::{BodyReplay, NotReplayed, ReplayPool, Watch};

/// A request body that [`ResilientLayer`](super::ResilientLayer) with
/// [`Http`](super::Http) can send again, whatever it is: a stream of
/// chunks, a file, a `Full`. Wrap the body in it, and give the inner
/// service (a hyper-util `Client<_, ReplayBody<B>>`, say) this type:
///
/// - As the first attempt sends the body, the chunks it reads are kept:
///   the same `Bytes`, reference-counted, not copied. A retry sends them
///   again, then reads on from the body if the first attempt stopped
///   short (a connection reset halfway).
/// - Up to [`max_replay_body`](super::ResilientLayer::max_replay_body)
///   bytes (64 KiB by default) and what the
///   [`ReplayPool`] has room for. A body over either is sent once, with
///   nothing kept (a size hint over the cap is known before anything is
///   read), and a failure of it is not retried: the caller is told
///   ([`NotReplayed`]).
/// - Kept until the call ends: its bytes go back to the pool then.
///
/// Only requests safe to send twice are armed (an idempotent method, or an
/// `Idempotency-Key`); any other body passes through untouched, as does
/// one sent without the layer. A body that is already at its end (a `GET`'s
/// empty body) keeps nothing and costs no allocation.
///
/// The body's chunks must be `Bytes` (hyper's, axum's and
/// http-body-util's bodies are) and the body `Unpin` (`Box::pin` one that
/// is not).
///
/// ```
/// use http_body_util::{BodyExt, Full};
/// use retry_runtime::tower::ReplayBody;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let body = ReplayBody::new(Full::new(bytes::Bytes::from_static(b"{\"amount\":42}")));
/// // Without the layer, it is the body it wraps.
/// let sent = body.collect().await.unwrap().to_bytes();
/// assert_eq!(&sent[..], b"{\"amount\":42}");
/// # }
/// ```
pub struct ReplayBody<B> {
    inner: Inner<B>,
}

enum Inner<B> {
    /// Not armed by a layer: the body itself.
    Plain(B),
    /// At its end: no frame (a replay of a body that was empty).
    Empty,
    /// One attempt's view of the call's shared body.
    Shared {
        shared: Arc<Shared<B>>,
        /// The next data frame this attempt sends, counted from the body's
        /// first.
        next: usize,
        trailers_sent: bool,
    },
}

impl<B> ReplayBody<B> {
    /// Wraps `body`: nothing is kept until a layer arms it.
    pub const fn new(body: B) -> Self {
        ReplayBody {
            inner: Inner::Plain(body),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin + Send + 'static> ReplayBody<B> {
    /// Makes this body keep what it sends, within `replay`'s limits, and
    /// returns a replay of it (sent by the next attempt); `None` if the
    /// body is already one attempt's view of a body kept elsewhere that
    /// lost its chunks.
    pub(crate) fn arm(&mut self, replay: &mut BodyReplay) -> Option<Self> {
        let body = match std::mem::replace(&mut self.inner, Inner::Empty) {
            Inner::Plain(body) if body.is_end_stream() => {
                self.inner = Inner::Plain(body);
                return Some(ReplayBody {
                    inner: Inner::Empty,
                });
            }
            Inner::Plain(body) => body,
            // Armed by a layer outside this one: replay from the same
            // chunks, and answer for the same body.
            shared @ Inner::Shared { .. } => {
                self.inner = shared;
                if let Inner::Shared { shared, .. } = &self.inner {
                    replay.watch(shared.clone());
                }
                return self.again();
            }
            Inner::Empty => return Some(ReplayBody::empty()),
        };
        let max_body = replay.max_body();
        let too_large = u64::try_from(max_body).is_ok_and(|max| body.size_hint().lower() > max);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                chunks: Vec::new(),
                read: 0,
                kept: 0,
                rest: Some(body),
                trailers: None,
                lost: too_large.then_some(Lost::Dropped(NotReplayed::TooLarge { max_body })),
                refused: false,
            }),
            max_body,
            pool: replay.pool(),
        });
        replay.watch(shared.clone());
        self.inner = Inner::Shared {
            shared: shared.clone(),
            next: 0,
            trailers_sent: false,
        };
        Some(ReplayBody {
            inner: Inner::Shared {
                shared,
                next: 0,
                trailers_sent: false,
            },
        })
    }
}

impl<B> ReplayBody<B> {
    const fn empty() -> Self {
        ReplayBody {
            inner: Inner::Empty,
        }
    }

    /// Another replay, from the first chunk; `None` if the body was never
    /// armed or has lost its chunks.
    pub(crate) fn again(&self) -> Option<Self> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Empty => Some(ReplayBody::empty()),
            Inner::Shared { shared, .. } => shared.lock().lost.is_none().then(|| ReplayBody {
                inner: Inner::Shared {
                    shared: shared.clone(),
                    next: 0,
                    trailers_sent: false,
                },
            }),
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.inner {
            Inner::Plain(_) => "plain",
            Inner::Empty => "empty",
            Inner::Shared { .. } => "kept",
        };
        f.debug_struct("ReplayBody").field("state", &state).finish()
    }
}

/// The body of one call, shared by its attempts.
struct Shared<B> {
    state: Mutex<State<B>>,
    max_body: usize,
    pool: &'static ReplayPool,
}

struct State<B> {
    /// The data frames read so far, unless `lost`.
    chunks: Vec<Bytes>,
    /// How many data frames were read from the body, kept or not.
    read: usize,
    /// The bytes in `chunks`, taken from the pool.
    kept: usize,
    /// The body's unread part: `None` once it ended or failed.
    rest: Option<B>,
    trailers: Option<HeaderMap>,
    lost: Option<Lost>,
    /// A retry was refused for want of the chunks.
    refused: bool,
}

#[derive(Clone, Copy)]
enum Lost {
    /// Over a cap: the chunks were let go.
    Dropped(NotReplayed),
    /// The body itself failed.
    Failed,
}

impl<B> Shared<B> {
    /// The state: a panic in the body's `poll_frame` under the lock
    /// leaves it as it was, which is as good as any.
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B> State<B> {
    /// Keeps `data`, read at the head, if it fits both caps; lets every
    /// chunk go if not.
    fn keep(&mut self, data: &Bytes, max_body: usize, pool: &ReplayPool) {
        if self.lost.is_some() {
            return;
        }
        let why = if self.kept.saturating_add(data.len()) > max_body {
            NotReplayed::TooLarge { max_body }
        } else if pool.try_take(data.len()) {
            self.kept += data.len();
            self.chunks.push(data.clone());
            return;
        } else {
            NotReplayed::PoolFull { pool: pool.max() }
        };
        pool.give_back(self.kept);
        self.kept = 0;
        self.chunks = Vec::new();
        self.lost = Some(Lost::Dropped(why));
    }
}

impl<B> Drop for Shared<B> {
    fn drop(&mut self) {
        let kept = self.lock().kept;
        self.pool.give_back(kept);
    }
}

impl<B: Send> Watch for Shared<B> {
    fn replayable(&self) -> Result<(), Option<NotReplayed>> {
        match self.lock().lost {
            None => Ok(()),
            Some(Lost::Dropped(why)) => Err(Some(why)),
            Some(Lost::Failed) => Err(None),
        }
    }

    fn refuse(&self) {
        self.lock().refused = true;
    }

    fn refused(&self) -> Option<NotReplayed> {
        let state = self.lock();
        match (state.refused, state.lost) {
            (true, Some(Lost::Dropped(why))) => Some(why),
            _ => None,
        }
    }
}

impl<B> fmt::Debug for Shared<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Shared")
            .field("read", &state.read)
            .field("kept", &state.kept)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// A replay asked for a chunk that was let go: it cannot happen through
/// the layer, which retries only a body whose chunks are all kept.
#[derive(Debug)]
struct ChunksLost;

impl fmt::Display for ChunksLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("steadfast: a replayed request body lost its kept chunks")
    }
}

impl std::error::Error for ChunksLost {}

/// The body failed in an earlier attempt: a replay cannot finish it.
#[derive(Debug)]
struct BodyFailed;

impl fmt::Display for BodyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("steadfast: the request body failed in an earlier attempt")
    }
}

impl std::error::Error for BodyFailed {}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (shared, next, trailers_sent) = match &mut self.get_mut().inner {
            Inner::Plain(body) => return Pin::new(body).poll_frame(cx).map_err(Into::into),
            Inner::Empty => return Poll::Ready(None),
            Inner::Shared {
                shared,
                next,
                trailers_sent,
            } => (shared, next, trailers_sent),
        };
        let mut state = shared.lock();
        if *next < state.read {
            // Behind the head: a chunk an earlier attempt read.
            let Some(chunk) = state.chunks.get(*next).cloned() else {
                return Poll::Ready(Some(Err(ChunksLost.into())));
            };
            *next += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(rest) = state.rest.as_mut() {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => {
                    state.rest = None;
                    state.lost = Some(Lost::Failed);
                    return Poll::Ready(Some(Err(error.into())));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    return Poll::Ready(Some(Ok(match frame.into_data() {
                        Ok(data) => {
                            state.read += 1;
                            *next += 1;
                            state.keep(&data, shared.max_body, shared.pool);
                            Frame::data(data)
                        }
                        Err(frame) => {
                            if let Some(trailers) = frame.trailers_ref() {
                                state.trailers = Some(trailers.clone());
                            }
                            *trailers_sent = true;
                            frame
                        }
                    })));
                }
                Poll::Ready(None) => state.rest = None,
            }
        }
        if matches!(state.lost, Some(Lost::Failed)) {
            return Poll::Ready(Some(Err(BodyFailed.into())));
        }
        if !*trailers_sent {
            *trailers_sent = true;
            if let Some(trailers) = &state.trailers {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Plain(body) => body.is_end_stream(),
            Inner::Empty => true,
            Inner::Shared {
                shared,
                next,
                trailers_sent,
            } => {
                let state = shared.lock();
                *next >= state.read
                    && state.rest.is_none()
                    && state
                        .lost
                        .is_none_or(|lost| matches!(lost, Lost::Dropped(_)))
                    && (*trailers_sent || state.trailers.is_none())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Plain(body) => body.size_hint(),
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Shared { shared, next, .. } => {
                let state = shared.lock();
                if *next < state.read && state.lost.is_some() {
                    return SizeHint::default();
                }
                let behind: u64 = state
                    .chunks
                    .get(*next..)
                    .unwrap_or_default()
                    .iter()
                    .map(|chunk| chunk.len() as u64)
                    .sum();
                let rest = state
                    .rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(behind));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(behind));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt;

    use super::*;

    /// A body of scripted frames, its size unknown (as a stream's is).
    struct Frames(VecDeque<Result<Frame<Bytes>, &'static str>>);

    impl Frames {
        fn data(chunks: &[&'static str]) -> Self {
            Frames(
                chunks
                    .iter()
                    .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
                    .collect(),
            )
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|frame| frame.map_err(Into::into)))
        }

        /// At most what is left, at least nothing: a stream that knows
        /// its bound, not its length.
        fn size_hint(&self) -> SizeHint {
            let left = self.0.iter().flatten().filter_map(Frame::data_ref);
            let mut hint = SizeHint::new();
            hint.set_upper(left.map(|data| data.len() as u64).sum());
            hint
        }
    }

    /// Arms `body` under these caps: the first attempt's body, a replay,
    /// and what the layer watches.
    fn arm<B: Body<Data = Bytes> + Unpin + Send + 'static>(
        body: B,
        max_body: usize,
        pool: &'static ReplayPool,
    ) -> (ReplayBody<B>, ReplayBody<B>, Option<Arc<dyn Watch>>) {
        let mut first = ReplayBody::new(body);
        let mut replay = BodyReplay::new(max_body, pool);
        let copy = first.arm(&mut replay).expect("a copy");
        (first, copy, replay.into_watch())
    }

    async fn all<B>(body: B) -> Result<Vec<u8>, BoxError>
    where
        B: Body<Data = Bytes, Error = BoxError>,
    {
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn a_replay_sends_what_the_first_sent_and_reads_on_where_it_stopped() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let (mut first, copy, watch) = arm(Frames::data(&["ab", "cd", "ef"]), 1024, &POOL);
        // The first attempt reads one chunk and is dropped (a reset).
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ab");
        drop(first);
        assert_eq!(POOL.buffered(), 2);
        assert_eq!(
            copy.size_hint().lower(),
            2,
            "the kept chunk, and a stream of unknown size"
        );
        let again = copy.again().unwrap();
        assert_eq!(all(again).await.unwrap(), b"abcdef");
        // A third attempt: all of it kept now, its size known.
        let mut third = copy.again().unwrap();
        assert_eq!(third.size_hint().exact(), Some(6));
        for _ in 0..3 {
            assert!(!third.is_end_stream());
            third.frame().await.unwrap().unwrap();
        }
        assert!(third.is_end_stream(), "every chunk sent, no trailers");
        assert!(third.frame().await.is_none());
        assert_eq!(all(copy.again().unwrap()).await.unwrap(), b"abcdef");
        let watch = watch.unwrap();
        assert_eq!(watch.replayable(), Ok(()));
        assert!(format!("{watch:?}").contains("kept: 6"), "{watch:?}");
        assert_eq!(format!("{copy:?}"), r#"ReplayBody { state: "kept" }"#);
        assert_eq!(POOL.buffered(), 6);
        drop((copy, watch, third));
        assert_eq!(POOL.buffered(), 0, "the call's bytes go back when it ends");
    }

    #[tokio::test]
    async fn trailers_are_sent_again() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let mut trailers = HeaderMap::new();
        trailers.insert("checksum", "abc".parse().unwrap());
        let mut frames = Frames::data(&["x"]);
        frames.0.push_back(Ok(Frame::trailers(trailers.clone())));
        let (first, copy, _) = arm(frames, 1024, &POOL);
        let sent = first.collect().await.unwrap();
        assert_eq!(sent.trailers(), Some(&trailers));
        let again = copy.again().unwrap().collect().await.unwrap();
        assert_eq!(again.trailers(), Some(&trailers));
        assert_eq!(&again.to_bytes()[..], b"x");
    }

    #[tokio::test]
    async fn a_body_over_the_cap_keeps_nothing_and_says_so() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let (mut first, copy, watch) = arm(Frames::data(&["abc", "def", "g"]), 5, &POOL);
        first.frame().await.unwrap().unwrap();
        first.frame().await.unwrap().unwrap();
        assert_eq!(
            first.size_hint().upper(),
            Some(1),
            "the first goes on: `g` is left"
        );
        assert_eq!(all(first).await.unwrap(), b"g", "sent whole, once");
        assert_eq!(
            POOL.buffered(),
            0,
            "what was kept before the cap was let go"
        );
        let too_large = NotReplayed::TooLarge { max_body: 5 };
        let watch = watch.unwrap();
        assert_eq!(watch.replayable(), Err(Some(too_large)));
        assert!(copy.again().is_none());
        assert_eq!(watch.refused(), None, "no retry was refused yet");
        watch.refuse();
        assert_eq!(watch.refused(), Some(too_large));
        // A replay made before the chunks were let go cannot finish, nor
        // say how long it is.
        assert_eq!(copy.size_hint().upper(), None);
        let error = all(copy).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "steadfast: a replayed request body lost its kept chunks"
        );
    }

    #[tokio::test]
    async fn a_body_exactly_at_the_cap_is_kept() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let (first, copy, watch) = arm(Frames::data(&["abc", "de"]), 5, &POOL);
        assert_eq!(all(first).await.unwrap(), b"abcde");
        assert_eq!(watch.unwrap().replayable(), Ok(()));
        assert_eq!(all(copy).await.unwrap(), b"abcde");
    }

    #[tokio::test]
    async fn a_size_hint_over_the_cap_is_known_before_a_byte_is_read() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let body = http_body_util::Full::new(Bytes::from_static(b"123456"));
        let (_first, copy, watch) = arm(body, 5, &POOL);
        let too_large = NotReplayed::TooLarge { max_body: 5 };
        assert_eq!(watch.unwrap().replayable(), Err(Some(too_large)));
        assert!(copy.again().is_none());
        let body = http_body_util::Full::new(Bytes::from_static(b"12345"));
        let (_first, _copy, watch) = arm(body, 5, &POOL);
        assert_eq!(
            watch.unwrap().replayable(),
            Ok(()),
            "at the cap is within it"
        );
    }

    #[tokio::test]
    async fn a_full_pool_keeps_nothing_and_says_so() {
        static POOL: ReplayPool = ReplayPool::new(4);
        assert!(POOL.try_take(2));
        let (first, _copy, watch) = arm(Frames::data(&["ab", "c"]), 1024, &POOL);
        assert_eq!(all(first).await.unwrap(), b"abc");
        let full = NotReplayed::PoolFull { pool: 4 };
        assert_eq!(watch.unwrap().replayable(), Err(Some(full)));
        assert_eq!(POOL.buffered(), 2, "the body's bytes were given back");
        POOL.give_back(2);
    }

    #[tokio::test]
    async fn a_body_that_failed_is_not_replayed() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let mut frames = Frames::data(&["ab"]);
        frames.0.push_back(Err("disk gone"));
        let (first, copy, watch) = arm(frames, 1024, &POOL);
        assert!(all(first).await.is_err());
        let watch = watch.unwrap();
        assert_eq!(
            watch.replayable(),
            Err(None),
            "the caller has the body's own error"
        );
        watch.refuse();
        assert_eq!(watch.refused(), None);
        let error = all(copy).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "steadfast: the request body failed in an earlier attempt"
        );
    }

    #[tokio::test]
    async fn an_empty_body_keeps_nothing() {
        static POOL: ReplayPool = ReplayPool::new(1024);
        let (first, copy, watch) = arm(http_body_util::Empty::<Bytes>::new(), 1024, &POOL);
        assert!(watch.is_none(), "nothing to watch");
        assert!(first.is_end_stream() && copy.is_end_stream());
        assert_eq!(copy.size_hint().exact(), Some(0));
        assert!(matches!(copy.again().unwrap().inner, Inner::Empty));
    }

    #[tokio::test]
    async fn a_body_not_armed_is_the_body_it_wraps() {
        let body = ReplayBody::new(Frames::data(&["a", "b"]));
        assert!(body.again().is_none(), "nothing kept, nothing to replay");
        assert_eq!(format!("{body:?}"), r#"ReplayBody { state: "plain" }"#);
        assert!(!body.is_end_stream());
        assert_eq!(all(body).await.unwrap(), b"ab");
    }

    #[tokio::test]
    async fn a_body_armed_twice_is_replayed_from_the_same_chunks() {
        // Two layers, one inside the other.
        static POOL: ReplayPool = ReplayPool::new(1024);
        let (mut first, _copy, outer) = arm(Frames::data(&["ab", "c"]), 1024, &POOL);
        let mut replay = BodyReplay::new(1024, &POOL);
        let inner_copy = first.arm(&mut replay).unwrap();
        assert!(replay.into_watch().is_some());
        assert_eq!(all(first).await.unwrap(), b"abc");
        assert_eq!(all(inner_copy).await.unwrap(), b"abc");
        assert_eq!(outer.unwrap().replayable(), Ok(()));
        assert_eq!(POOL.buffered(), 3, "kept once");
    }
}
