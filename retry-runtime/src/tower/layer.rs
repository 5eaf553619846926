//! The layer: a policy and a classification, applied to a service.

use tower_layer::Layer;

use super::{BoxError, Cloned, Resilient};
use crate::Policy;

/// Applies a [`Policy`] to a tower service: see the [module](super) docs.
///
/// `C` says how requests are replayed and which responses fail:
/// [`Cloned`] by default, `Http` (feature `http`) for HTTP services.
#[derive(Debug)]
pub struct ResilientLayer<C = Cloned> {
    policy: &'static Policy<BoxError>,
    classify: C,
}

impl ResilientLayer {
    /// A layer applying `policy`, replaying requests by `Clone` and taking
    /// every response as a success.
    #[must_use]
    pub const fn new(policy: &'static Policy<BoxError>) -> Self {
        ResilientLayer {
            policy,
            classify: Cloned,
        }
    }
}

impl<C> ResilientLayer<C> {
    /// The same layer, classifying with `classify`, e.g. `Http` (feature
    /// `http`) or [`SendOnce`](super::SendOnce).
    #[must_use]
    pub fn classify<D>(self, classify: D) -> ResilientLayer<D> {
        ResilientLayer {
            policy: self.policy,
            classify,
        }
    }
}

impl<C: Clone> Clone for ResilientLayer<C> {
    fn clone(&self) -> Self {
        ResilientLayer {
            policy: self.policy,
            classify: self.classify.clone(),
        }
    }
}

impl<S, C: Clone> Layer<S> for ResilientLayer<C> {
    type Service = Resilient<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Resilient::new(inner, self.policy, self.classify.clone())
    }
}
