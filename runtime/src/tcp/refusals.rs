//! Refused connections: counted per cause, and logged with a rate limit
//! per cause and remote address (governor's keyed limiter), so that no
//! remote party can flood the log. A cause and address get
//! [`LINES_AT_ONCE`] lines, then one per [`LINE_INTERVAL`]; what the limit
//! held back is reported as one "suppressed N more" line, when the limit
//! lets the next line through or at the next flush, every [`LINE_INTERVAL`].

use crate::record_log::{ConnectionEnded, Refusal, Suppressed, log_connection, log_suppressed};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Lines a cause and address may log at once.
pub const LINES_AT_ONCE: u32 = 3;

/// After those, one line per this interval per cause and address; also how
/// often what was held back is reported.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Causes and addresses tracked at once. Beyond it (an attacker with many
/// addresses) the refusals of one cause count under the unspecified
/// address `::` until the next flush forgets the idle ones.
const MAX_KEYS: usize = 1024;

type Key = (Refusal, IpAddr);

/// A transport's refusals: the counts and the rate-limited log.
#[derive(Debug)]
pub(crate) struct Refusals {
    counts: [AtomicU64; Refusal::ALL.len()],
    limiter: DefaultKeyedRateLimiter<Key>,
    /// Lines held back since the key's last line, per key.
    suppressed: Mutex<BTreeMap<Key, u64>>,
}

impl Default for Refusals {
    fn default() -> Self {
        let burst = NonZeroU32::new(LINES_AT_ONCE).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(LINE_INTERVAL)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            counts: Default::default(),
            limiter: RateLimiter::keyed(quota),
            suppressed: Mutex::default(),
        }
    }
}

impl Refusals {
    /// Counts the refusal of `ended` for `cause`, and logs it unless its
    /// cause and address have used up their lines.
    pub(crate) fn refuse(&self, cause: Refusal, ended: &ConnectionEnded) {
        self.counts[cause.index()].fetch_add(1, Ordering::Relaxed);
        let mut key = (cause, ended.address.ip());
        if self.limiter.len() >= MAX_KEYS {
            key.1 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        }
        let mut suppressed = self.suppressed.lock().unwrap_or_else(|e| e.into_inner());
        if self.limiter.check_key(&key).is_ok() {
            if let Some(count) = suppressed.remove(&key) {
                log_suppressed(&Suppressed {
                    cause,
                    address: key.1,
                    count,
                });
            }
            drop(suppressed);
            log_connection(ended);
        } else if suppressed.len() < MAX_KEYS || suppressed.contains_key(&key) {
            *suppressed.entry(key).or_default() += 1;
        }
    }

    /// Reports every key's held-back lines, one line each, and lets the
    /// limiter forget keys it no longer limits.
    pub(crate) fn flush(&self) {
        let held = std::mem::take(&mut *self.suppressed.lock().unwrap_or_else(|e| e.into_inner()));
        for ((cause, address), count) in held {
            log_suppressed(&Suppressed {
                cause,
                address,
                count,
            });
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Refusals so far, per cause (every cause, zeros included).
    pub(crate) fn counts(&self) -> BTreeMap<Refusal, u64> {
        Refusal::ALL
            .into_iter()
            .map(|cause| (cause, self.counts[cause.index()].load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_log::ConnectionEnd;

    #[test]
    fn every_refusal_is_counted_but_a_flood_from_one_address_logs_a_few_lines() {
        let refusals = Refusals::default();
        let ended = |address: &str| ConnectionEnded {
            address: address.parse().unwrap(),
            peer: None,
            end: ConnectionEnd::Refused(Refusal::BadFrame),
            reason: "garbage".into(),
        };
        for _ in 0..1000 {
            refusals.refuse(Refusal::BadFrame, &ended("127.0.0.9:4000"));
        }
        refusals.refuse(Refusal::BadFrame, &ended("127.0.0.8:4000"));
        refusals.refuse(Refusal::Stalled, &ended("127.0.0.9:4000"));
        let counts = refusals.counts();
        assert_eq!(counts[&Refusal::BadFrame], 1001);
        assert_eq!(counts[&Refusal::Stalled], 1);
        assert_eq!(counts[&Refusal::UnknownAddress], 0);
        let held = refusals.suppressed.lock().unwrap().clone();
        let key = (Refusal::BadFrame, "127.0.0.9".parse().unwrap());
        assert_eq!(
            held,
            BTreeMap::from([(key, 1000 - u64::from(LINES_AT_ONCE))])
        );
        refusals.flush();
        assert!(refusals.suppressed.lock().unwrap().is_empty());
    }
}
