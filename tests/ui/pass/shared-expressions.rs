//! The shared keys take any expression of the function: a place named at
//! each step (`&self.budget` borrows `self` only while a step uses it, so
//! the body may still call `&mut self` methods), or a computation evaluated
//! once per call, whose temporaries live until the call ends.

use std::sync::LazyLock;

use steadfast::{Bulkhead, Keyed, RateLimiter, RetryBudget, resilient, retry};

static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(100));
static POOLS: Keyed<String, Bulkhead> = Keyed::new(|_| Bulkhead::new(4));
static LAZY: LazyLock<RateLimiter> = LazyLock::new(|| RateLimiter::per_second(100));

struct Client {
    budget: RetryBudget,
    sent: u32,
}

impl Client {
    fn bump(&mut self) -> u32 {
        self.sent += 1;
        self.sent
    }

    #[resilient(budget = &self.budget)]
    fn send(&mut self) -> Result<u32, std::io::Error> {
        Ok(self.bump())
    }

    #[resilient(budget = &self.budget)]
    async fn send_async(&mut self) -> Result<u32, std::io::Error> {
        Ok(self.bump())
    }
}

#[resilient(rate_limit = &PER_TENANT.get(tenant), concurrency = &POOLS.get(tenant))]
async fn per_tenant(tenant: &str) -> Result<usize, std::io::Error> {
    Ok(tenant.len())
}

#[resilient(rate_limit = &PER_TENANT.get(tenant), concurrency = &*POOLS.get(tenant))]
fn per_tenant_blocking(tenant: &str) -> Result<usize, std::io::Error> {
    Ok(tenant.len())
}

#[resilient(rate_limit = &*LAZY, concurrency = quota)]
async fn lazy(quota: &Bulkhead) -> Result<usize, std::io::Error> {
    Ok(quota.available())
}

fn spawnable<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let mut client = Client {
        budget: RetryBudget::new(),
        sent: 0,
    };
    assert_eq!(client.send().unwrap(), 1);
    assert_eq!(client.send_async().await.unwrap(), 2);
    assert_eq!(spawnable(per_tenant("acme")).await.unwrap(), 4);
    assert_eq!(per_tenant_blocking("acme").unwrap(), 4);
    assert_eq!(spawnable(lazy(&Bulkhead::new(2))).await.unwrap(), 1);
    let tenant = String::from("globex");
    let n = retry!(rate_limit = &PER_TENANT.get(&tenant); async {
        Ok::<_, std::io::Error>(tenant.len())
    })
    .await;
    assert_eq!(n.unwrap(), 6);
}
