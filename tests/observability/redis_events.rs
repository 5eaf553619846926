//! The `tracing` events of a primitive shared through Redis that cannot
//! reach it: a `WARN` on target `steadfast` at most once a second per
//! instance, carrying how many decisions it has taken without the fleet so
//! far. No server is needed: a `Redis` named by an unset variable fails
//! every round trip at once.
//!
//! The shared primitives report from their background tasks, on the Redis
//! client's own thread, so the events are captured by a global subscriber
//! (one per test binary: this file's), not a per-thread one.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use steadfast::CircuitBreaker;
use steadfast::redis::Redis;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One captured event's target and fields as text.
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("<missing>", String::as_str)
    }
}

type Events = Arc<Mutex<Vec<Captured>>>;

struct Capture(Events);

struct FieldsToText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsToText<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsToText(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

/// Every event of this binary, from every thread, from the first call on.
fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let events = Events::default();
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&events)));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        events
    })
}

/// The captured `WARN`s whose message starts with `message`, for `key`.
fn warnings(message: &str, key: &str) -> Vec<Captured> {
    events()
        .lock()
        .unwrap()
        .iter()
        .filter(|event| {
            event.target == "steadfast"
                && event.field("message").starts_with(message)
                && event.field("key") == key
        })
        .cloned()
        .collect()
}

/// A shared breaker without Redis refreshes its view every 10 ms here, and
/// each refresh is a degraded decision: over 1.6 s, a hundred or more
/// decisions and at most two events (one a second), the first saying it is
/// the first decision, each later one counting more.
#[test]
fn a_shared_breaker_without_redis_warns_at_most_once_a_second_with_the_count() {
    static REDIS: Redis = Redis::from_env("STEADFAST_TEST_SURELY_UNSET_REDIS_URL_EVENTS");
    static DB: CircuitBreaker = CircuitBreaker::new()
        .open_for(Duration::from_millis(100))
        .shared(&REDIS, "events-db");
    events();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1600) {
        if let Ok(permit) = DB.try_acquire() {
            permit.success();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    let decisions = DB.degraded_decisions();
    let warned = warnings("shared circuit breaker degraded", "events-db");
    println!(
        "{} warnings for {decisions} degraded decisions in {elapsed:?}",
        warned.len()
    );
    assert!(decisions >= 10, "{decisions} degraded decisions");
    assert!(!warned.is_empty(), "no warning");
    let most = elapsed.as_secs() + 1;
    assert!(
        warned.len() as u64 <= most,
        "{} warnings in {elapsed:?}",
        warned.len()
    );
    assert_eq!(warned[0].field("degraded_decisions"), "1");
    assert_eq!(warned[0].field("fallback"), "local");
    let counts: Vec<u64> = warned
        .iter()
        .map(|event| event.field("degraded_decisions").parse().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|pair| pair[0] < pair[1]),
        "{counts:?}"
    );
}
