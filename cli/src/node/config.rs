//! `node --config FILE` and `--print-config`: the flags read from a TOML
//! file, each key a flag's long name, merged under the command line's.
//!
//! The file is read group by group with serde ([`NodeArgs::from_toml`]),
//! so a value of the wrong type is refused with its line by toml. Serde's
//! `deny_unknown_fields` cannot see through the flattened groups, so
//! unknown keys are found here instead, against the flags clap knows, and
//! refused with their line too.

use super::args::NodeArgs;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use std::collections::BTreeSet;
use std::path::Path;

/// The flags `--config` and `--print-config`, which a file cannot set.
const NOT_IN_FILES: [&str; 3] = ["config", "print-config", "help"];

/// The key of each flag: its long name, or its id for the command.
fn keys() -> BTreeSet<String> {
    NodeArgs::augment_args(clap::Command::new("node"))
        .get_arguments()
        .map(|arg| {
            arg.get_long()
                .map_or_else(|| arg.get_id().to_string(), str::to_owned)
        })
        .filter(|key| !NOT_IN_FILES.contains(&key.as_str()))
        .collect()
}

/// Refuses the first key of `text` that is no flag's, with its line.
fn check_keys(text: &str, path: &Path) -> Result<(), String> {
    let table = toml::de::DeTable::parse(text).map_err(|e| format!("{}: {e}", path.display()))?;
    let known = keys();
    for (key, _) in table.get_ref() {
        if !known.contains(key.get_ref().as_ref()) {
            let line = text[..key.span().start].matches('\n').count() + 1;
            return Err(format!(
                "{}, line {line}: unknown key `{}`: the keys are the long names of \
                 `raft-election node`'s flags, without their dashes",
                path.display(),
                key.get_ref()
            ));
        }
    }
    Ok(())
}

/// `args` with the keys of its `--config` file under the flags given on
/// the command line (`matches`); `args` itself without `--config`.
pub(crate) fn merge(args: NodeArgs, matches: &ArgMatches) -> Result<NodeArgs, String> {
    let Some(path) = args.config.clone() else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
    check_keys(&text, &path)?;
    let in_file = NodeArgs::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = |args: &NodeArgs| {
        toml::Table::try_from(args).map_err(|e| format!("the configuration as TOML: {e}"))
    };
    let mut merged = table(&in_file)?;
    let given = table(&args)?;
    let command = NodeArgs::augment_args(clap::Command::new("node"));
    for arg in command.get_arguments() {
        if matches.value_source(arg.get_id().as_str()) != Some(ValueSource::CommandLine) {
            continue;
        }
        let key = arg
            .get_long()
            .map_or_else(|| arg.get_id().to_string(), str::to_owned);
        match given.get(&key) {
            Some(value) => merged.insert(key, value.clone()),
            None => merged.remove(&key),
        };
    }
    let text = toml::to_string(&merged).map_err(|e| format!("the configuration as TOML: {e}"))?;
    let mut effective = NodeArgs::from_toml(&text).map_err(|e| e.to_string())?;
    effective.config = args.config;
    effective.print_config = args.print_config;
    Ok(effective)
}

/// The effective configuration as a TOML file would say it, every timing
/// figure the profile leaves out filled in.
pub(crate) fn print(args: &NodeArgs) -> Result<String, String> {
    let mut args = args.clone();
    args.timing = args.timing.resolved();
    args.program = args.program.resolved(args.timing.profile);
    toml::to_string(&args).map_err(|e| format!("the configuration as TOML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    /// Parses `flags` as `raft-election node` does, merged with `file`.
    fn node(flags: &[&str], file: Option<&str>) -> Result<NodeArgs, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let mut argv = vec!["node".to_owned()];
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config".to_owned(), path.display().to_string()]);
        }
        argv.extend(flags.iter().map(|&f| f.to_owned()));
        let command = NodeArgs::augment_args(clap::Command::new("node"));
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        let args = NodeArgs::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        merge(args, &matches).map_err(|e| e.replace(&path.display().to_string(), "node.toml"))
    }

    #[test]
    fn a_flag_overrides_the_file_and_the_file_overrides_the_defaults() {
        let file = "id = 2\nheartbeat-ms = 70\ntiming = \"lan\"\npeer = [\"1=localhost:7001\"]\n\
                    features = \"all\"\nverbose = 2\n";
        let args = node(&["--id", "3", "--listen", "127.0.0.1:7003"], Some(file)).unwrap();
        assert_eq!(args.cluster.id, Some(3));
        assert_eq!(args.timing.heartbeat_ms, Some(70));
        assert_eq!(args.timing.profile.to_string(), "lan");
        assert_eq!(args.cluster.peers[0].to_string(), "1=localhost:7001");
        assert_eq!(args.cluster.features, raft_election::Features::ALL);
        assert_eq!(args.log.verbose, 2);
        assert_eq!(args.cluster.cluster_id, 1, "a default neither sets");
        let peers = node(&["--peer", "4=127.0.0.1:7004"], Some(file)).unwrap();
        assert_eq!(
            peers.cluster.peers.len(),
            1,
            "the flag's peers replace the file's"
        );
        assert_eq!(peers.cluster.peers[0].id, 4);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name_and_line() {
        let error = node(&[], Some("id = 1\n\nhearbeat-ms = 70\n")).unwrap_err();
        assert!(
            error.starts_with("node.toml, line 3: unknown key `hearbeat-ms`"),
            "{error}"
        );
        let error = node(&[], Some("id = 1\nconfig = \"other.toml\"\n")).unwrap_err();
        assert!(error.contains("line 2: unknown key `config`"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_line() {
        let error = node(&[], Some("id = 1\nheartbeat-ms = \"fast\"\n")).unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        let error = node(&[], Some("peer = [\"2 127.0.0.1:7002\"]\n")).unwrap_err();
        assert!(error.contains("is not ID=ADDR"), "{error}");
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let args = node(
            &[
                "--id",
                "1",
                "--listen",
                "127.0.0.1:7001",
                "--peer",
                "2=node2:7002",
            ],
            None,
        )
        .unwrap();
        let printed = print(&args).unwrap();
        assert!(printed.contains("election-min-ms = 150"), "{printed}");
        let again = node(&[], Some(&printed)).unwrap();
        assert_eq!(print(&again).unwrap(), printed);
    }

    #[test]
    fn every_key_a_configuration_prints_is_a_flag() {
        let known = keys();
        let table = toml::Table::try_from(node(&[], None).unwrap()).unwrap();
        for key in table.keys() {
            assert!(known.contains(key), "{key} is printed but is no flag");
        }
        for flag in [
            "peer",
            "timing",
            "drain-timeout-ms",
            "status",
            "command",
            "verbose",
        ] {
            assert!(known.contains(flag), "{flag}");
        }
    }
}
