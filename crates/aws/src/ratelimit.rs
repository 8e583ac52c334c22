//! Client-side rate limits per (account id, region, bucket), so that crosslink never uses up the
//! AWS request budget the other tools in an account share with it: GCRA token buckets from
//! `governor` at the documented AWS rates, and an adaptive extra delay after AWS says "slow down".
//!
//! Buckets and their defaults (per account and region, as AWS documents them):
//!
//! | bucket                        | operations                                  | rate      | burst |
//! |-------------------------------|---------------------------------------------|-----------|-------|
//! | `ec2-read`                    | EC2 `Describe*`, `Get*`, `List*`, `Search*` | 20/s      | 100   |
//! | `ec2-write`                   | every other EC2 operation, incl. CreateTags | 5/s       | 50    |
//! | `elbv2`                       | every ELBv2 operation                       | 10/s      | 40    |
//! | `apigateway`                  | every API Gateway operation                 | 10/s      | 40    |
//! | `apigateway:CreateDeployment` | and `apigateway` too                        | 1/5s      | 1     |
//! | `apigateway:CreateRestApi`    | and `apigateway` too                        | 1/3s      | 1     |
//! | `apigateway:DeleteRestApi`    | and `apigateway` too                        | 1/30s     | 1     |
//! | `apigateway:PutRestApi`       | and `apigateway` too                        | 1/s       | 1     |
//! | `apigateway:CreateResource`   | and `apigateway` too                        | 5/s       | 1     |
//! | `apigateway:DeleteResource`   | and `apigateway` too                        | 5/s       | 1     |
//! | `apigateway:GetResources`     | and `apigateway` too                        | 5/2s      | 1     |
//! | `sts`                         | every STS operation                         | 10/s      | 20    |
//!
//! The per-operation API Gateway limits are documented as "n per period" without a burst, so
//! their bucket holds one request: requests are spaced evenly and no window of the period ever
//! sees more than about n of them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rand::Rng;
use tokio::time::Instant;

/// The first extra delay after a throttling answer; each further throttle doubles it.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// The largest extra delay (before jitter).
pub const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// After this long without a throttling answer the extra delay is gone.
pub const BACKOFF_QUIET: Duration = Duration::from_secs(30);
/// Jitter stretches each extra delay by up to this fraction, so that callers that were throttled
/// together do not come back together.
const BACKOFF_JITTER: f64 = 0.25;

/// One AWS request budget, shared per account and region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    Ec2Read,
    Ec2Write,
    Elbv2,
    ApiGateway,
    ApiGatewayCreateDeployment,
    ApiGatewayCreateRestApi,
    ApiGatewayDeleteRestApi,
    ApiGatewayPutRestApi,
    ApiGatewayCreateResource,
    ApiGatewayDeleteResource,
    ApiGatewayGetResources,
    Sts,
    Wafv2,
}

impl Bucket {
    pub const ALL: [Bucket; 13] = [
        Bucket::Ec2Read,
        Bucket::Ec2Write,
        Bucket::Elbv2,
        Bucket::ApiGateway,
        Bucket::ApiGatewayCreateDeployment,
        Bucket::ApiGatewayCreateRestApi,
        Bucket::ApiGatewayDeleteRestApi,
        Bucket::ApiGatewayPutRestApi,
        Bucket::ApiGatewayCreateResource,
        Bucket::ApiGatewayDeleteResource,
        Bucket::ApiGatewayGetResources,
        Bucket::Sts,
        Bucket::Wafv2,
    ];

    /// The name used in logs and on the command line, e.g. `ec2-write`.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Ec2Read => "ec2-read",
            Bucket::Ec2Write => "ec2-write",
            Bucket::Elbv2 => "elbv2",
            Bucket::ApiGateway => "apigateway",
            Bucket::ApiGatewayCreateDeployment => "apigateway:CreateDeployment",
            Bucket::ApiGatewayCreateRestApi => "apigateway:CreateRestApi",
            Bucket::ApiGatewayDeleteRestApi => "apigateway:DeleteRestApi",
            Bucket::ApiGatewayPutRestApi => "apigateway:PutRestApi",
            Bucket::ApiGatewayCreateResource => "apigateway:CreateResource",
            Bucket::ApiGatewayDeleteResource => "apigateway:DeleteResource",
            Bucket::ApiGatewayGetResources => "apigateway:GetResources",
            Bucket::Sts => "sts",
            Bucket::Wafv2 => "wafv2",
        }
    }

    /// The documented AWS limit of this bucket.
    pub fn aws_default(self) -> Rate {
        let (per_second, burst) = match self {
            Bucket::Ec2Read => (20.0, 100),
            Bucket::Ec2Write => (5.0, 50),
            Bucket::Elbv2 | Bucket::ApiGateway => (10.0, 40),
            Bucket::ApiGatewayCreateDeployment => (1.0 / 5.0, 1),
            Bucket::ApiGatewayCreateRestApi => (1.0 / 3.0, 1),
            Bucket::ApiGatewayDeleteRestApi => (1.0 / 30.0, 1),
            Bucket::ApiGatewayPutRestApi => (1.0, 1),
            Bucket::ApiGatewayCreateResource | Bucket::ApiGatewayDeleteResource => (5.0, 1),
            Bucket::ApiGatewayGetResources => (5.0 / 2.0, 1),
            // Not documented as tight; crosslink only calls GetCallerIdentity once per session.
            Bucket::Sts => (10.0, 20),
            // Not documented per operation; crosslink makes at most one association change per
            // stage and pass, so a modest bucket suffices.
            Bucket::Wafv2 => (5.0, 10),
        };
        Rate { per_second, burst }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bucket {
    type Err = RateLimitError;

    /// Case-insensitive, so that `apigateway:createdeployment` is accepted too.
    fn from_str(s: &str) -> Result<Bucket, RateLimitError> {
        Bucket::ALL.into_iter().find(|b| b.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let names: Vec<&str> = Bucket::ALL.iter().map(|b| b.name()).collect();
            RateLimitError(format!("unknown rate limit bucket `{}`; the buckets are: {}", s.trim(), names.join(", ")))
        })
    }
}

/// The buckets a request must pass, the operation's own bucket (the slower one) first. Empty for
/// services crosslink does not limit.
pub fn bucket_for(service: &str, operation: &str) -> Vec<Bucket> {
    crate::calls::find(service, operation).map_or_else(|| by_service(service, operation), |c| c.buckets.to_vec())
}

/// The rule the declarations follow (`kinds` tests it), for requests crosslink does not declare:
/// those the SDK sends on its own (`sts:AssumeRole`), as the bench's request log attributes them.
fn by_service(service: &str, operation: &str) -> Vec<Bucket> {
    match service {
        "ec2" => {
            // AWS counts these as non-mutating ("read") actions; everything else is a write.
            let read = ["Describe", "Get", "List", "Search"].iter().any(|p| operation.starts_with(p));
            vec![if read { Bucket::Ec2Read } else { Bucket::Ec2Write }]
        }
        "elbv2" => vec![Bucket::Elbv2],
        "apigateway" => {
            let own = match operation {
                "CreateDeployment" => Some(Bucket::ApiGatewayCreateDeployment),
                "CreateRestApi" => Some(Bucket::ApiGatewayCreateRestApi),
                "DeleteRestApi" => Some(Bucket::ApiGatewayDeleteRestApi),
                "PutRestApi" => Some(Bucket::ApiGatewayPutRestApi),
                "CreateResource" => Some(Bucket::ApiGatewayCreateResource),
                "DeleteResource" => Some(Bucket::ApiGatewayDeleteResource),
                "GetResources" => Some(Bucket::ApiGatewayGetResources),
                _ => None,
            };
            own.into_iter().chain([Bucket::ApiGateway]).collect()
        }
        "sts" => vec![Bucket::Sts],
        "wafv2" => vec![Bucket::Wafv2],
        _ => Vec::new(),
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    fn checked(per_second: f64, burst: u32) -> Result<Rate, RateLimitError> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(RateLimitError(format!("the rate must be a positive number of requests, not {per_second}")));
        }
        // governor counts time in u64 nanoseconds; keep far away from its ~584 years.
        if 1.0 / per_second > 1e9 {
            return Err(RateLimitError(format!("the rate {per_second}/s is too slow")));
        }
        if burst == 0 {
            return Err(RateLimitError("the burst must be at least 1".to_string()));
        }
        Ok(Rate { per_second, burst })
    }

    fn quota(self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        // `checked` keeps the period within governor's range, so this always has a value.
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
    }
}

impl fmt::Display for Rate {
    /// `5/s`, `1/5s`, `2.5/s`, with the burst: `5/s burst 50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = 1.0 / self.per_second;
        if self.per_second < 1.0 && (period - period.round()).abs() < 1e-9 {
            write!(f, "1/{}s burst {}", period.round(), self.burst)
        } else {
            write!(f, "{}/s burst {}", self.per_second, self.burst)
        }
    }
}

/// An invalid rate limit setting (a bucket name, an override, a rate).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateLimitError(String);

/// Which buckets are limited and how; the state lives in `Limiter`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// A bucket that is absent is not limited.
    rates: BTreeMap<Bucket, Rate>,
    /// Whether throttling answers add an extra, growing delay.
    adaptive: bool,
}

impl Default for RateLimits {
    /// A controller must be polite by default: the documented AWS limits.
    fn default() -> RateLimits {
        RateLimits::aws_defaults()
    }
}

impl RateLimits {
    /// Every bucket at its documented AWS limit, with the adaptive slow-down on throttling.
    pub fn aws_defaults() -> RateLimits {
        RateLimits { rates: Bucket::ALL.into_iter().map(|b| (b, b.aws_default())).collect(), adaptive: true }
    }

    /// No limits and no slow-down (tests, benchmarks against an emulator). Buckets can be added
    /// back one by one with `with`.
    pub fn off() -> RateLimits {
        RateLimits { rates: BTreeMap::new(), adaptive: false }
    }

    /// Every rate and burst times `factor`, e.g. 0.5 to use at most half of each AWS budget.
    /// Bursts are rounded and stay at least 1.
    ///
    /// # Panics
    /// If `factor` is not a positive finite number or makes a rate unusably slow.
    pub fn scaled(mut self, factor: f64) -> RateLimits {
        assert!(factor.is_finite() && factor > 0.0, "rate limit scale must be a positive number, not {factor}");
        for rate in self.rates.values_mut() {
            let burst = (f64::from(rate.burst) * factor).round().clamp(1.0, f64::from(u32::MAX)) as u32;
            *rate = Rate::checked(rate.per_second * factor, burst).unwrap_or_else(|e| panic!("{e}"));
        }
        self
    }

    /// Sets one bucket's rate and burst.
    ///
    /// # Panics
    /// If `per_second` is not a positive finite number or `burst` is 0 (parse a `RateOverride` to
    /// get an error instead).
    pub fn with(mut self, bucket: Bucket, per_second: f64, burst: u32) -> RateLimits {
        let rate = Rate::checked(per_second, burst).unwrap_or_else(|e| panic!("{bucket}: {e}"));
        self.rates.insert(bucket, rate);
        self
    }

    /// Removes one bucket's limit.
    pub fn without(mut self, bucket: Bucket) -> RateLimits {
        self.rates.remove(&bucket);
        self
    }

    /// Applies a parsed override. Without its own burst, it keeps the bucket's current burst (1
    /// for a bucket that had no limit).
    pub fn apply(mut self, o: &RateOverride) -> RateLimits {
        let burst = o.burst.or_else(|| self.rates.get(&o.bucket).map(|r| r.burst)).unwrap_or(1);
        self.rates.insert(o.bucket, Rate { per_second: o.per_second, burst });
        self
    }

    /// Turns the adaptive slow-down after throttling answers on or off.
    pub fn adaptive(mut self, on: bool) -> RateLimits {
        self.adaptive = on;
        self
    }

    pub fn is_adaptive(&self) -> bool {
        self.adaptive
    }

    /// The bucket's limit, if it has one.
    pub fn rate(&self, bucket: Bucket) -> Option<Rate> {
        self.rates.get(&bucket).copied()
    }
}

/// One bucket's rate from the command line: `<bucket>=<n>/s` or `<bucket>=<n>/<secs>s`, with an
/// optional `,burst=<n>`, e.g. `ec2-write=2/s`, `apigateway:CreateDeployment=1/10s`,
/// `elbv2=5/s,burst=20`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateOverride {
    pub bucket: Bucket,
    pub per_second: f64,
    /// None keeps the bucket's burst.
    pub burst: Option<u32>,
}

const OVERRIDE_SYNTAX: &str = "expected <bucket>=<n>/s or <bucket>=<n>/<secs>s (optionally followed by ,burst=<n>), \
     e.g. ec2-write=2/s or apigateway:CreateDeployment=1/5s";

impl FromStr for RateOverride {
    type Err = RateLimitError;

    fn from_str(s: &str) -> Result<RateOverride, RateLimitError> {
        let bad = |why: &str| RateLimitError(format!("invalid rate limit `{s}`: {why}; {OVERRIDE_SYNTAX}"));
        let (bucket, rest) = s.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let bucket: Bucket = bucket.parse().map_err(|e: RateLimitError| RateLimitError(format!("`{s}`: {e}")))?;
        let (rate, burst) = match rest.split_once(',') {
            None => (rest, None),
            Some((rate, burst)) => {
                let n =
                    burst.trim().strip_prefix("burst=").ok_or_else(|| bad("after `,` only `burst=<n>` may follow"))?;
                let n: u32 = n.trim().parse().map_err(|_| bad("the burst must be a whole number"))?;
                (rate, Some(n))
            }
        };
        let (count, period) = rate.split_once('/').ok_or_else(|| bad("no `/` in the rate"))?;
        let count: f64 = count.trim().parse().map_err(|_| bad("the number of requests is not a number"))?;
        let period = period.trim().strip_suffix('s').ok_or_else(|| bad("the period must end in `s`"))?;
        let secs: f64 = if period.is_empty() {
            1.0
        } else {
            period.parse().map_err(|_| bad("the period is not a number of seconds"))?
        };
        if !(secs.is_finite() && secs > 0.0) {
            return Err(bad("the period must be a positive number of seconds"));
        }
        let rate = Rate::checked(count / secs, burst.unwrap_or(1)).map_err(|e| bad(&e.0))?;
        Ok(RateOverride { bucket, per_second: rate.per_second, burst })
    }
}

impl fmt::Display for RateOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}/s", self.bucket, self.per_second)?;
        if let Some(b) = self.burst {
            write!(f, ",burst={b}")?;
        }
        Ok(())
    }
}

/// governor's clock over tokio's: the same instants as real time in production, and virtual
/// time under `tokio::time::pause` in tests. (governor's `until_key_ready` sleeps on its own
/// timer, which tokio's paused time does not drive, so `Limiter` sleeps with tokio instead.)
#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// Account id and region.
type Key = (String, String);
type Keyed = RateLimiter<Key, DefaultKeyedStateStore<Key>, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// The extra delay of one (account, region, bucket) after throttling answers.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    delay: Duration,
    last_throttle: Instant,
}

/// The limiter state of one `AwsCloud`: one keyed GCRA limiter per limited bucket (keyed by
/// account id and region), and the adaptive delays.
pub struct Limiter {
    limits: RateLimits,
    buckets: HashMap<Bucket, Keyed>,
    /// Only touched in short synchronous sections, never across an await.
    backoff: Mutex<HashMap<(Key, Bucket), Backoff>>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Limiter {
        let buckets =
            limits.rates.iter().map(|(b, r)| (*b, Keyed::dashmap_with_clock(r.quota(), TokioClock))).collect();
        Limiter { limits, buckets, backoff: Mutex::default() }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Waits until a request in the account and region may pass all `buckets` (in order), after
    /// the adaptive delay if AWS throttled one of them lately. Returns the time spent waiting.
    pub async fn until_ready(&self, account_id: &str, region: &str, buckets: &[Bucket]) -> Duration {
        let start = Instant::now();
        let key: Key = (account_id.to_string(), region.to_string());
        let extra = buckets.iter().map(|b| self.backoff(&key, *b)).max().unwrap_or_default();
        if !extra.is_zero() {
            let jittered = extra.mul_f64(1.0 + rand::rng().random_range(0.0..BACKOFF_JITTER));
            tracing::debug!(account_id, region, ms = jittered.as_millis() as u64, "slowing down after throttling");
            tokio::time::sleep(jittered).await;
        }
        for limiter in buckets.iter().filter_map(|b| self.buckets.get(b)) {
            // governor's own until_key_ready loop, sleeping on tokio's timer.
            while let Err(not_until) = limiter.check_key(&key) {
                tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
            }
        }
        start.elapsed()
    }

    /// AWS answered a request of these buckets with a throttling error: the next requests wait
    /// longer. AWS does not say which limit it hit, so every bucket of the request slows down.
    pub fn throttled(&self, account_id: &str, region: &str, buckets: &[Bucket]) {
        if !self.limits.adaptive {
            return;
        }
        let now = Instant::now();
        let key: Key = (account_id.to_string(), region.to_string());
        let mut state = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        for b in buckets {
            let entry = state.entry((key.clone(), *b)).or_insert(Backoff { delay: Duration::ZERO, last_throttle: now });
            entry.delay = if entry.delay.is_zero() || now.duration_since(entry.last_throttle) >= BACKOFF_QUIET {
                BACKOFF_START
            } else {
                (entry.delay * 2).min(BACKOFF_CAP)
            };
            entry.last_throttle = now;
            tracing::info!(account_id, region, bucket = %b, delay_ms = entry.delay.as_millis() as u64, "AWS throttled");
        }
    }

    /// The current adaptive delay of one bucket (before jitter): zero once it has been quiet for
    /// `BACKOFF_QUIET`.
    pub fn delay(&self, account_id: &str, region: &str, bucket: Bucket) -> Duration {
        self.backoff(&(account_id.to_string(), region.to_string()), bucket)
    }

    fn backoff(&self, key: &Key, bucket: Bucket) -> Duration {
        if !self.limits.adaptive {
            return Duration::ZERO;
        }
        let mut state = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let k = (key.clone(), bucket);
        match state.get(&k) {
            None => Duration::ZERO,
            Some(b) if b.last_throttle.elapsed() >= BACKOFF_QUIET => {
                state.remove(&k);
                Duration::ZERO
            }
            Some(b) => b.delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111111111111";
    const REGION: &str = "eu-west-1";

    #[test]
    fn bucket_mapping() {
        use Bucket::*;
        let cases: &[(&str, &str, &[Bucket])] = &[
            ("ec2", "DescribeVpcs", &[Ec2Read]),
            ("ec2", "DescribeRouteTables", &[Ec2Read]),
            ("ec2", "GetManagedPrefixListEntries", &[Ec2Read]),
            ("ec2", "CreateVpcPeeringConnection", &[Ec2Write]),
            ("ec2", "AcceptVpcPeeringConnection", &[Ec2Write]),
            ("ec2", "CreateRoute", &[Ec2Write]),
            ("ec2", "CreateTags", &[Ec2Write]),
            ("elbv2", "DescribeTags", &[Elbv2]),
            ("elbv2", "CreateLoadBalancer", &[Elbv2]),
            ("apigateway", "GetRestApis", &[ApiGateway]),
            ("apigateway", "PutIntegration", &[ApiGateway]),
            ("apigateway", "CreateDeployment", &[ApiGatewayCreateDeployment, ApiGateway]),
            ("apigateway", "CreateRestApi", &[ApiGatewayCreateRestApi, ApiGateway]),
            ("apigateway", "DeleteRestApi", &[ApiGatewayDeleteRestApi, ApiGateway]),
            ("apigateway", "PutRestApi", &[ApiGatewayPutRestApi, ApiGateway]),
            ("apigateway", "CreateResource", &[ApiGatewayCreateResource, ApiGateway]),
            ("apigateway", "DeleteResource", &[ApiGatewayDeleteResource, ApiGateway]),
            ("apigateway", "GetResources", &[ApiGatewayGetResources, ApiGateway]),
            ("sts", "GetCallerIdentity", &[Sts]),
            ("s3", "ListBuckets", &[]),
        ];
        for (service, operation, want) in cases {
            assert_eq!(bucket_for(service, operation), *want, "{service} {operation}");
        }
    }

    #[test]
    fn bucket_names_round_trip() {
        for b in Bucket::ALL {
            assert_eq!(b.name().parse::<Bucket>(), Ok(b));
            assert_eq!(b.to_string(), b.name());
        }
        assert_eq!("APIGateway:createdeployment".parse::<Bucket>(), Ok(Bucket::ApiGatewayCreateDeployment));
        let e = "ec2-writes".parse::<Bucket>().unwrap_err().to_string();
        assert!(e.contains("unknown rate limit bucket `ec2-writes`") && e.contains("ec2-write,"), "{e}");
    }

    #[test]
    fn defaults_are_the_documented_limits() {
        let l = RateLimits::aws_defaults();
        let rate = |b| l.rate(b).map(|r| (r.per_second, r.burst));
        assert_eq!(rate(Bucket::Ec2Read), Some((20.0, 100)));
        assert_eq!(rate(Bucket::Ec2Write), Some((5.0, 50)));
        assert_eq!(rate(Bucket::Elbv2), Some((10.0, 40)));
        assert_eq!(rate(Bucket::ApiGateway), Some((10.0, 40)));
        assert_eq!(rate(Bucket::ApiGatewayCreateDeployment), Some((0.2, 1)));
        assert_eq!(rate(Bucket::ApiGatewayGetResources), Some((2.5, 1)));
        assert!(l.is_adaptive());
        assert_eq!(RateLimits::default(), l);
        let off = RateLimits::off();
        assert!(Bucket::ALL.iter().all(|b| off.rate(*b).is_none()) && !off.is_adaptive());
        assert_eq!(Bucket::ApiGatewayCreateDeployment.aws_default().to_string(), "1/5s burst 1");
        assert_eq!(Bucket::Ec2Write.aws_default().to_string(), "5/s burst 50");
    }

    #[test]
    fn scaling_and_overriding() {
        let half = RateLimits::aws_defaults().scaled(0.5);
        assert_eq!(half.rate(Bucket::Ec2Write), Some(Rate { per_second: 2.5, burst: 25 }));
        assert_eq!(half.rate(Bucket::ApiGatewayCreateDeployment), Some(Rate { per_second: 0.1, burst: 1 }));
        assert_eq!(half.rate(Bucket::Sts), Some(Rate { per_second: 5.0, burst: 10 }));
        assert!(half.is_adaptive());
        let double = RateLimits::aws_defaults().scaled(2.0);
        assert_eq!(double.rate(Bucket::Elbv2), Some(Rate { per_second: 20.0, burst: 80 }));
        assert_eq!(RateLimits::off().scaled(0.5), RateLimits::off());

        let l = RateLimits::off().with(Bucket::Ec2Write, 2.0, 10);
        assert_eq!(l.rate(Bucket::Ec2Write), Some(Rate { per_second: 2.0, burst: 10 }));
        assert_eq!(l.rate(Bucket::Ec2Read), None);
        assert_eq!(RateLimits::aws_defaults().without(Bucket::Sts).rate(Bucket::Sts), None);

        let o: RateOverride = "ec2-write=2/s".parse().unwrap();
        let l = RateLimits::aws_defaults().apply(&o);
        assert_eq!(l.rate(Bucket::Ec2Write), Some(Rate { per_second: 2.0, burst: 50 }));
        let l = RateLimits::off().apply(&o);
        assert_eq!(l.rate(Bucket::Ec2Write), Some(Rate { per_second: 2.0, burst: 1 }));
        let o: RateOverride = "elbv2=5/s,burst=20".parse().unwrap();
        assert_eq!(RateLimits::off().apply(&o).rate(Bucket::Elbv2), Some(Rate { per_second: 5.0, burst: 20 }));
    }

    #[test]
    #[should_panic(expected = "positive")]
    fn scaling_by_zero_is_refused() {
        let _ = RateLimits::aws_defaults().scaled(0.0);
    }

    #[test]
    fn parsing_overrides() {
        let ok = |s: &str| s.parse::<RateOverride>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("ec2-write=2/s"), RateOverride { bucket: Bucket::Ec2Write, per_second: 2.0, burst: None });
        assert_eq!(
            ok("apigateway:CreateDeployment=1/5s"),
            RateOverride { bucket: Bucket::ApiGatewayCreateDeployment, per_second: 0.2, burst: None }
        );
        assert_eq!(ok("apigateway:GetResources=5/2s").per_second, 2.5);
        assert_eq!(ok("ec2-read=0.5/s").per_second, 0.5);
        assert_eq!(ok("ec2-read=3/1.5s").per_second, 2.0);
        assert_eq!(ok("elbv2=5/s,burst=20").burst, Some(20));
        assert_eq!(ok("ec2-write=2/s").to_string(), "ec2-write=2/s");
        assert_eq!(ok("elbv2=5/s,burst=20").to_string(), "elbv2=5/s,burst=20");

        let err = |s: &str| s.parse::<RateOverride>().unwrap_err().to_string();
        for (input, says) in [
            ("ec2-write", "no `=`"),
            ("ec2-write=2", "no `/`"),
            ("ec2-write=2/m", "must end in `s`"),
            ("ec2-write=x/s", "not a number"),
            ("ec2-write=2/xs", "not a number of seconds"),
            ("ec2-write=0/s", "positive number of requests"),
            ("ec2-write=-1/s", "positive number of requests"),
            ("ec2-write=1/0s", "positive number of seconds"),
            ("ec2-write=1/s,burst=0", "at least 1"),
            ("ec2-write=1/s,burst=a", "whole number"),
            ("ec2-write=1/s,foo=1", "only `burst=<n>`"),
            ("ec2-writes=1/s", "unknown rate limit bucket `ec2-writes`"),
        ] {
            let e = err(input);
            assert!(e.contains(says), "{input}: {e}");
            assert!(e.contains(input), "the message names the input: {e}");
        }
        assert!(err("ec2-write=2").contains("e.g. ec2-write=2/s"));
    }

    /// Makes `n` requests of `operation` one after the other; returns the virtual time it took
    /// and how long the last request waited.
    async fn run(limiter: &Limiter, service: &str, operation: &str, n: usize) -> (Duration, Duration) {
        let start = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..n {
            last = limiter.until_ready(ACCOUNT, REGION, &bucket_for(service, operation)).await;
        }
        (start.elapsed(), last)
    }

    #[tokio::test(start_paused = true)]
    async fn ec2_writes_burst_then_refill() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        let (took, last) = run(&limiter, "ec2", "CreateRoute", 50).await;
        assert_eq!((took, last), (Duration::ZERO, Duration::ZERO), "the burst of 50 passes at once");
        // Ten more at 5/s: the 60th passes (60 - 50) / 5 = 2 s after the first.
        let (took, last) = run(&limiter, "ec2", "CreateTags", 10).await;
        assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100), "{took:?}");
        assert!(last >= Duration::from_millis(199) && last < Duration::from_millis(250), "{last:?}");
        // Other accounts, regions and buckets have budgets of their own.
        for (account, region, op) in [("222222222222", REGION, "CreateRoute"), (ACCOUNT, "us-east-1", "CreateRoute")] {
            assert_eq!(limiter.until_ready(account, region, &bucket_for("ec2", op)).await, Duration::ZERO);
        }
        assert_eq!(limiter.until_ready(ACCOUNT, REGION, &bucket_for("ec2", "DescribeVpcs")).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_writes_are_spread_out() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        let start = Instant::now();
        let waits =
            futures::future::join_all((0..60).map(|_| limiter.until_ready(ACCOUNT, REGION, &[Bucket::Ec2Write]))).await;
        assert_eq!(waits.iter().filter(|w| w.is_zero()).count(), 50);
        assert!(start.elapsed() >= Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn create_deployment_waits_five_seconds() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        let (took, _) = run(&limiter, "apigateway", "CreateDeployment", 1).await;
        assert_eq!(took, Duration::ZERO);
        let (took, waited) = run(&limiter, "apigateway", "CreateDeployment", 1).await;
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_millis(5100), "{waited:?}");
        assert_eq!(took, waited);
        // The service bucket was not held up meanwhile: other operations pass at once.
        assert_eq!(run(&limiter, "apigateway", "GetRestApis", 30).await.0, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn operation_and_service_buckets_both_count() {
        // The service bucket is the tighter one here: CreateResource passes its own 5/s bucket
        // but has to wait for the 1/s service bucket.
        let limiter = Limiter::new(RateLimits::aws_defaults().with(Bucket::ApiGateway, 1.0, 1));
        run(&limiter, "apigateway", "GetRestApis", 1).await;
        let (_, waited) = run(&limiter, "apigateway", "CreateResource", 1).await;
        assert!(waited >= Duration::from_millis(999), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_slows_down_then_decays() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        let buckets = bucket_for("elbv2", "DescribeTags");
        assert_eq!(limiter.until_ready(ACCOUNT, REGION, &buckets).await, Duration::ZERO);

        limiter.throttled(ACCOUNT, REGION, &buckets);
        let waited = limiter.until_ready(ACCOUNT, REGION, &buckets).await;
        // tokio's timer wakes on whole milliseconds: up to 1 ms past the jittered delay.
        let tick = Duration::from_millis(1);
        assert!(waited >= BACKOFF_START && waited <= BACKOFF_START.mul_f64(1.0 + BACKOFF_JITTER) + tick, "{waited:?}");
        // Consecutive throttles double the delay, up to the cap.
        let mut want = BACKOFF_START;
        for _ in 0..8 {
            limiter.throttled(ACCOUNT, REGION, &buckets);
            want = (want * 2).min(BACKOFF_CAP);
            assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::Elbv2), want);
        }
        assert_eq!(want, BACKOFF_CAP);
        let waited = limiter.until_ready(ACCOUNT, REGION, &buckets).await;
        assert!(waited >= BACKOFF_CAP && waited <= BACKOFF_CAP.mul_f64(1.0 + BACKOFF_JITTER) + tick, "{waited:?}");
        // Other accounts and buckets are not slowed down.
        assert_eq!(limiter.until_ready("222222222222", REGION, &buckets).await, Duration::ZERO);
        assert_eq!(limiter.until_ready(ACCOUNT, REGION, &[Bucket::Ec2Read]).await, Duration::ZERO);

        // 30 s after the last throttle (the waits above count too) the delay is gone.
        tokio::time::advance(BACKOFF_QUIET).await;
        assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::Elbv2), Duration::ZERO);
        assert_eq!(limiter.until_ready(ACCOUNT, REGION, &buckets).await, Duration::ZERO);
        // And the next throttle starts over.
        limiter.throttled(ACCOUNT, REGION, &buckets);
        assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::Elbv2), BACKOFF_START);
    }

    #[tokio::test(start_paused = true)]
    async fn just_under_quiet_keeps_the_delay() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        limiter.throttled(ACCOUNT, REGION, &[Bucket::ApiGatewayCreateDeployment, Bucket::ApiGateway]);
        tokio::time::advance(BACKOFF_QUIET - Duration::from_millis(1)).await;
        assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::ApiGateway), BACKOFF_START);
        limiter.throttled(ACCOUNT, REGION, &[Bucket::ApiGateway]);
        assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::ApiGateway), BACKOFF_START * 2);
        assert_eq!(limiter.delay(ACCOUNT, REGION, Bucket::ApiGatewayCreateDeployment), BACKOFF_START);
    }

    #[tokio::test(start_paused = true)]
    async fn off_never_waits() {
        let limiter = Limiter::new(RateLimits::off());
        limiter.throttled(ACCOUNT, REGION, &[Bucket::Ec2Write]);
        assert_eq!(run(&limiter, "ec2", "CreateRoute", 1000).await, (Duration::ZERO, Duration::ZERO));
        assert_eq!(run(&limiter, "apigateway", "CreateDeployment", 10).await, (Duration::ZERO, Duration::ZERO));
    }
}
