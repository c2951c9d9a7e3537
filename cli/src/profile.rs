//! Timing profiles: the election timing, lease margins and hand-over
//! defaults for one kind of network (`node --timing local|lan|wan`), and
//! the figures a node derives from them, printed at its start and in its
//! status. docs/operators.md justifies each profile's numbers.

use raft_election::{Config, Timing};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A kind of network, and the timing that suits it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Every node on one machine (loopback round trips of about 0.2 ms):
    /// the paper's 150–300 ms elections, heartbeats every 50 ms.
    #[default]
    Local,
    /// One data centre (round trips up to a few milliseconds): 1–2 s
    /// elections, heartbeats every 100 ms, as etcd's and hashicorp/raft's
    /// defaults.
    Lan,
    /// Regions apart (round trips up to about 250 ms): 5–10 s elections,
    /// heartbeats every 500 ms, below the 15 s of Kubernetes' leader
    /// election and `consul lock`.
    Wan,
}

impl Profile {
    /// Election timeouts and heartbeat.
    #[must_use]
    pub fn timing(self) -> Timing {
        let ms = Duration::from_millis;
        let (min, max, heartbeat) = match self {
            Self::Local => (150, 300, 50),
            Self::Lan => (1_000, 2_000, 100),
            Self::Wan => (5_000, 10_000, 500),
        };
        Timing {
            election_timeout_min: ms(min),
            election_timeout_max: ms(max),
            heartbeat_interval: ms(heartbeat),
        }
    }

    /// How long before its lease can end a `--run-while-leader` program
    /// gets SIGTERM: room for a lost renewal and a slow process.
    #[must_use]
    pub fn stop_margin(self) -> Duration {
        Duration::from_millis(match self {
            Self::Local => 40,
            Self::Lan => 300,
            Self::Wan => 1_500,
        })
    }

    /// How long after SIGTERM the program gets SIGKILL (less than the margin).
    #[must_use]
    pub fn kill_grace(self) -> Duration {
        Duration::from_millis(match self {
            Self::Local => 20,
            Self::Lan => 150,
            Self::Wan => 750,
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Lan => "lan",
            Self::Wan => "wan",
        })
    }
}

/// How a `--run-while-leader` program is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramTiming {
    /// SIGTERM this long before the lease can end.
    pub stop_margin: Duration,
    /// SIGKILL this long after SIGTERM.
    pub kill_grace: Duration,
    /// On SIGTERM to the node, how long the program may take to finish
    /// while the node keeps leading.
    pub drain_timeout: Duration,
}

/// Every figure a node's timing decides, in milliseconds: printed at its
/// start and served in its status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingFigures {
    /// The profile the defaults came from.
    pub profile: Profile,
    /// Between a leader's heartbeats.
    pub heartbeat_ms: f64,
    /// The shortest election timeout.
    pub election_min_ms: f64,
    /// The longest election timeout.
    pub election_max_ms: f64,
    /// The leader lease (with `--leader-lease`).
    pub lease_ms: Option<f64>,
    /// How far back a leader looks for a majority (with CheckQuorum).
    pub check_quorum_window_ms: Option<f64>,
    /// SIGTERM before the lease can end (with `--run-while-leader`).
    pub stop_margin_ms: Option<f64>,
    /// SIGKILL after SIGTERM (with `--run-while-leader`).
    pub kill_grace_ms: Option<f64>,
    /// The longest drain before a hand-over (with `--run-while-leader`).
    pub drain_timeout_ms: Option<f64>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

impl TimingFigures {
    /// The figures of `config`, from `profile`, with `program`'s if one runs.
    #[must_use]
    pub fn of(profile: Profile, config: &Config, program: Option<ProgramTiming>) -> Self {
        let timing = config.timing();
        Self {
            profile,
            heartbeat_ms: ms(timing.heartbeat_interval),
            election_min_ms: ms(timing.election_timeout_min),
            election_max_ms: ms(timing.election_timeout_max),
            lease_ms: config.lease_duration().map(ms),
            check_quorum_window_ms: config.check_quorum_span().map(ms),
            stop_margin_ms: program.map(|p| ms(p.stop_margin)),
            kill_grace_ms: program.map(|p| ms(p.kill_grace)),
            drain_timeout_ms: program.map(|p| ms(p.drain_timeout)),
        }
    }
}

impl fmt::Display for TimingFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timing {}: heartbeat {} ms, election timeout {}–{} ms",
            self.profile, self.heartbeat_ms, self.election_min_ms, self.election_max_ms
        )?;
        let optional = [
            ("lease", self.lease_ms),
            ("CheckQuorum window", self.check_quorum_window_ms),
            ("stop margin", self.stop_margin_ms),
            ("kill grace", self.kill_grace_ms),
            ("drain timeout", self.drain_timeout_ms),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                write!(f, ", {name} {value:.1} ms")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{ClockDrift, Features, NodeId};

    #[test]
    fn every_profile_is_a_valid_timing_whose_margins_fit_in_its_lease() {
        for profile in [Profile::Local, Profile::Lan, Profile::Wan] {
            let timing = profile.timing();
            timing.validate().expect("a valid timing");
            let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)], timing)
                .unwrap()
                .with_features(Features::default())
                .with_leader_lease(ClockDrift::DEFAULT)
                .unwrap();
            let lease = config.lease_duration().unwrap();
            assert!(profile.kill_grace() < profile.stop_margin(), "{profile}");
            assert!(
                profile.stop_margin() + timing.heartbeat_interval < lease,
                "{profile}: the program would stop at every renewal"
            );
        }
    }

    #[test]
    fn the_local_profile_derives_the_lease_and_window_of_the_paper_timing() {
        let config = Config::new(NodeId(1), [NodeId(1), NodeId(2)], Profile::Local.timing())
            .unwrap()
            .with_leader_lease(ClockDrift::DEFAULT)
            .unwrap();
        let figures = TimingFigures::of(Profile::Local, &config, None);
        assert_eq!(figures.check_quorum_window_ms, Some(150.0));
        let lease = figures.lease_ms.unwrap();
        assert!((lease - 150.0 / 1.1).abs() < 0.01, "{lease}");
        assert!(figures.to_string().contains("lease 136.4 ms"), "{figures}");
    }
}
