//! Inbound rate limits by key (features `tower` + `http`): the layer a
//! server puts in front of its handlers.

mod fields;
mod future;

use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Keyed, RateLimiter};
use fields::Fields;
pub use future::RateLimitFuture;

/// Limits incoming requests by a key taken from each request (a tenant, an
/// API key, a client address), one [`RateLimiter`] per key from a
/// [`Keyed`] map: local to this process, or shared by every replica
/// through Redis (feature `redis`, [`RateLimiter::shared_as`](crate::RateLimiter)).
///
/// A request whose limiter has a token goes on to the inner service; one
/// whose limiter has none is answered at once with `429 Too Many Requests`
/// and a `Retry-After`, without calling the inner service. The layer never
/// waits for a token: an inbound limit sheds load, it does not queue it.
///
/// ```
/// use http::{Request, Response, StatusCode, request::Parts};
/// use retry_runtime::tower::RateLimitLayer;
/// use retry_runtime::{Keyed, RateLimiter};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// // Two requests a minute per tenant; the factory is given the tenant,
/// // so a plan could set each one's limit.
/// static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|_tenant| RateLimiter::per_minute(2));
///
/// fn tenant_of(request: &Parts) -> Option<String> {
///     let tenant = request.headers.get("x-tenant")?.to_str().ok()?;
///     Some(tenant.to_owned())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handler = service_fn(|_: Request<String>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(String::from("hello")))
/// });
/// let service = RateLimitLayer::new(&PER_TENANT, tenant_of).layer(handler);
/// let from = |tenant: &str| Request::builder().header("x-tenant", tenant).body(String::new()).unwrap();
///
/// let first = service.clone().oneshot(from("acme")).await.unwrap();
/// assert_eq!(first.status(), StatusCode::OK);
/// assert_eq!(first.headers()["ratelimit-policy"], r#""default";q=2;w=60"#);
/// assert_eq!(first.headers()["ratelimit"], r#""default";r=1;t=30"#);
///
/// let _second = service.clone().oneshot(from("acme")).await.unwrap();
/// let third = service.clone().oneshot(from("acme")).await.unwrap();
/// assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(third.headers()["retry-after"], "30");
/// assert_eq!(third.headers()["ratelimit"], r#""default";r=0;t=30"#);
///
/// // Another tenant has a bucket of its own.
/// let other = service.clone().oneshot(from("globex")).await.unwrap();
/// assert_eq!(other.status(), StatusCode::OK);
///
/// // No tenant: refused, unless `.keyless(..)` gives such requests a bucket.
/// let anonymous = service.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(anonymous.status(), StatusCode::BAD_REQUEST);
/// # }
/// ```
///
/// With axum, as a layer of the router (`axum::body::Body` is the body):
///
/// ```text
/// let app = Router::new()
///     .route("/orders", get(orders))
///     .layer(RateLimitLayer::new(&PER_TENANT, tenant_of).keyless(&ANONYMOUS));
/// ```
///
/// # The key
///
/// The key function reads the request's head ([`Parts`]: method, URI,
/// headers, extensions), as axum's `FromRequestParts` extractors do, and
/// returns the key, or `None` when the request has none. It runs on every
/// request, before anything else; keep it to header lookups and the like.
/// Keys come from the traffic, so the map must be bounded: a [`Keyed`]
/// keeps at most `max_keys` (10,000 by default) and evicts the least
/// recently used, and a shared limiter hashes untrusted keys into its
/// Redis name. For a client's address, read axum's
/// `ConnectInfo<SocketAddr>` from the extensions; behind a proxy, the
/// address the proxy says it forwarded for (and only from a proxy you
/// trust).
///
/// # Requests without a key
///
/// A request for which the key function returns `None` is never let
/// through unlimited:
///
/// - by default it is answered `400 Bad Request` (empty body, no
///   `RateLimit` fields), without calling the inner service: a request
///   that cannot say who it is for cannot be counted against anyone;
/// - with [`keyless`](RateLimitLayer::keyless), all such requests share
///   one limiter of their own, and are limited like any key (fields,
///   `429` and all). It is a separate limiter, not an entry of the map,
///   so no key a request sends can land in the keyless bucket, or the
///   other way round.
///
/// # The response fields
///
/// Every response of a limited request, admitted or refused, carries the
/// fields of the IETF httpapi working group's
/// [draft-ietf-httpapi-ratelimit-headers-11](https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/11/)
/// (May 2026), structured fields (RFC 9651) with one policy named
/// `"default"`, from the limiter's [`quota`](RateLimiter::quota) as of the
/// request's admission:
///
/// | field | value | from |
/// |---|---|---|
/// | `RateLimit-Policy` | `"default";q=100;w=1` | `q`: the burst; `w`: the seconds an empty bucket takes to fill, rounded up (at least 1) |
/// | `RateLimit` (admitted) | `"default";r=99;t=1` | `r`: tokens left; `t`: seconds until the bucket is full again, rounded up |
/// | `RateLimit` (refused) | `"default";r=0;t=3` | `r = 0`; `t` the same as `Retry-After`, which the draft (section 6) says should not point before the end of the window `t` describes |
/// | `Retry-After` (refused) | `3` | seconds until the next token, rounded up, at least 1 |
///
/// Rounding is always up, so a client that waits what it is told is not
/// refused for coming a fraction of a second early. The fields replace any
/// of the same names the inner service set. For a limiter shared through
/// Redis, `r` and `t` are this replica's view of the fleet's bucket (see
/// [`Quota`](crate::Quota)).
///
/// A refused request's response is `429` with an empty body, made with
/// the response body type's `Default` (axum's `Body`, `String`,
/// `http_body_util::Empty` and `Full` all have one): that is the bound on
/// the inner service's response body.
///
/// # Readiness
///
/// `poll_ready` is the inner service's; the limiter is consulted in
/// `call`, where the request (and so its key) is known. A refused request
/// leaves the inner service ready and uncalled, as any middleware that
/// answers on its own does.
///
/// # Shared limiters
///
/// With a `Keyed` whose factory makes shared limiters
/// (`RateLimiter::per_second(100).shared_as(&REDIS, format!("tenant:{tenant}"))`),
/// each decision is the shared limiter's `check`: tokens come from this
/// replica's lease, with no round trip for most requests. The first request
/// of a key new to this replica waits for the first answer from Redis
/// (once per instance, bounded by twice the Redis timeout plus 10 ms,
/// on the calling thread), rather than being refused with the fleet far
/// under its limit; when Redis is down, each decision follows the
/// limiter's `when_redis_fails`. A request that finds the lease empty
/// while its top-up is still on its way to Redis is refused with
/// `Retry-After: 1`, though the fleet may have tokens left: requests for
/// one key that come faster than the lease is topped up (a lease per
/// round trip) see some of these.
pub struct RateLimitLayer<K: 'static, F> {
    limits: &'static Keyed<K, RateLimiter>,
    key: F,
    keyless: Option<&'static RateLimiter>,
}

impl<K, F> RateLimitLayer<K, F>
where
    F: Fn(&Parts) -> Option<K>,
{
    /// A layer limiting each request by the limiter `limits` holds for the
    /// key `key` returns; a request without a key is answered `400` (see
    /// [`keyless`](Self::keyless) to limit such requests instead).
    ///
    /// ```
    /// use retry_runtime::tower::RateLimitLayer;
    /// use retry_runtime::{Keyed, RateLimiter};
    ///
    /// static PER_KEY: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(10));
    ///
    /// let layer = RateLimitLayer::new(&PER_KEY, |request| {
    ///     let key = request.headers.get("x-api-key")?;
    ///     Some(String::from_utf8_lossy(key.as_bytes()).into_owned())
    /// });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn new(limits: &'static Keyed<K, RateLimiter>, key: F) -> Self {
        RateLimitLayer {
            limits,
            key,
            keyless: None,
        }
    }

    /// Limits requests without a key by `limiter`, one bucket they all
    /// share, instead of answering them `400`.
    ///
    /// ```
    /// use retry_runtime::tower::RateLimitLayer;
    /// use retry_runtime::{Keyed, RateLimiter};
    ///
    /// static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(100));
    /// // Every request without a tenant, together: 10 a second.
    /// static ANONYMOUS: RateLimiter = RateLimiter::per_second(10);
    ///
    /// let layer = RateLimitLayer::new(&PER_TENANT, |request| {
    ///     Some(request.headers.get("x-tenant")?.to_str().ok()?.to_owned())
    /// })
    /// .keyless(&ANONYMOUS);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn keyless(mut self, limiter: &'static RateLimiter) -> Self {
        self.keyless = Some(limiter);
        self
    }
}

impl<K, F: Clone> Clone for RateLimitLayer<K, F> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limits: self.limits,
            key: self.key.clone(),
            keyless: self.keyless,
        }
    }
}

impl<K, F> fmt::Debug for RateLimitLayer<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limits", self.limits)
            .field("keyless", &self.keyless)
            .finish_non_exhaustive()
    }
}

impl<S, K, F: Clone> Layer<S> for RateLimitLayer<K, F> {
    type Service = RateLimited<S, K, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limits: self.limits,
            key: self.key.clone(),
            keyless: self.keyless,
        }
    }
}

/// A service wrapped by [`RateLimitLayer`]: see there.
pub struct RateLimited<S, K: 'static, F> {
    inner: S,
    limits: &'static Keyed<K, RateLimiter>,
    key: F,
    keyless: Option<&'static RateLimiter>,
}

impl<S, K, F> RateLimited<S, K, F> {
    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, F: Clone> Clone for RateLimited<S, K, F> {
    fn clone(&self) -> Self {
        RateLimited {
            inner: self.inner.clone(),
            limits: self.limits,
            key: self.key.clone(),
            keyless: self.keyless,
        }
    }
}

impl<S: fmt::Debug, K, F> fmt::Debug for RateLimited<S, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimited")
            .field("inner", &self.inner)
            .field("limits", self.limits)
            .field("keyless", &self.keyless)
            .finish_non_exhaustive()
    }
}

impl<S, K, F, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimited<S, K, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
    K: Hash + Eq + Clone,
    F: Fn(&Parts) -> Option<K>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RateLimitFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let decision = match ((self.key)(&parts), self.keyless) {
            (Some(key), _) => decide(&self.limits.get(&key)),
            (None, Some(limiter)) => decide(limiter),
            (None, None) => return RateLimitFuture::answered(answer(StatusCode::BAD_REQUEST)),
        };
        match decision {
            Ok(fields) => {
                let future = self.inner.call(Request::from_parts(parts, body));
                RateLimitFuture::inner(future, fields)
            }
            Err(fields) => {
                let mut response = answer(StatusCode::TOO_MANY_REQUESTS);
                fields.write(response.headers_mut());
                RateLimitFuture::answered(response)
            }
        }
    }
}

/// Takes a token from `limiter`: the fields of an admitted request, or
/// those of a refused one.
fn decide(limiter: &RateLimiter) -> Result<Fields, Fields> {
    match limiter.check() {
        Ok(()) => Ok(Fields::admitted(limiter.quota())),
        Err(not_until) => {
            let wait = not_until.wait_time_from(Instant::now());
            Err(Fields::refused(limiter.quota(), wait))
        }
    }
}

/// The layer's own answer: `status`, no body.
fn answer<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}
