//! The response future: the inner service's response with the fields
//! added, or the layer's own answer, without boxing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::fields::Fields;

pin_project! {
    /// The future of a [`RateLimited`](super::RateLimited) service's call:
    /// the inner service's response with the `RateLimit` fields added, or,
    /// for a refused request, the layer's own answer (ready at once).
    ///
    /// Not boxed: its size is the inner future's and a few words.
    pub struct RateLimitFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        /// Admitted: the inner service answers.
        Inner {
            #[pin]
            future: F,
            fields: Fields,
        },
        /// Answered by the layer; `None` once returned.
        Answered {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B> RateLimitFuture<F, B> {
    pub(super) fn inner(future: F, fields: Fields) -> Self {
        RateLimitFuture {
            state: State::Inner { future, fields },
        }
    }

    pub(super) fn answered(response: Response<B>) -> Self {
        RateLimitFuture {
            state: State::Answered {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for RateLimitFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, fields } => {
                let mut response = ready!(future.poll(cx))?;
                fields.write(response.headers_mut());
                Poll::Ready(Ok(response))
            }
            StateProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("RateLimitFuture polled after it completed"))),
        }
    }
}

impl<F, B> std::fmt::Debug for RateLimitFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitFuture").finish_non_exhaustive()
    }
}
