//! The inbound layers' shared parts: the request, the handler and the
//! two key functions, for `benches/inbound.rs` and the callgrind driver
//! (`examples/instructions.rs`), which both include this file by path.

#![allow(dead_code)] // each includer uses a different part

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::task::{Context, Poll};

use axum::body::Body;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response};
use tower::Service;
use tower_governor::GovernorError;
use tower_governor::key_extractor::KeyExtractor;

pub(crate) const TENANT: HeaderName = HeaderName::from_static("x-tenant");

/// The request every contender is given: a GET with the tenant's header.
#[inline(always)]
pub(crate) fn request() -> Request<Body> {
    let mut request = Request::new(Body::empty());
    request
        .headers_mut()
        .insert(TENANT, HeaderValue::from_static("tenant-42"));
    request
}

/// The handler both layers wrap: an empty 200, ready at once.
#[derive(Clone, Copy)]
pub(crate) struct Handler;

impl Service<Request<Body>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        black_box(&request);
        ready(Ok(Response::new(Body::empty())))
    }
}

/// Our key: the `x-tenant` header as a `String`.
pub(crate) fn tenant_of(request: &Parts) -> Option<String> {
    Some(request.headers.get(TENANT)?.to_str().ok()?.to_owned())
}

/// tower_governor's: the same.
#[derive(Clone, Copy)]
pub(crate) struct Tenant;

impl KeyExtractor for Tenant {
    type Key = String;

    fn extract<T>(&self, request: &Request<T>) -> Result<String, GovernorError> {
        let tenant = request.headers().get(TENANT);
        let tenant = tenant.and_then(|t| t.to_str().ok());
        tenant
            .map(str::to_owned)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}
