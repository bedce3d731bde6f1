//! Log setup: tracing to stdout, level from `log.level` unless `RUST_LOG` is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// A bare level applies to this server's own logs; the storage engine's internal debug
/// chatter stays at info unless asked for by name (`log.level=debug,sled=debug`).
fn directives_for(level: &str) -> String {
    if level.contains(['=', ',']) {
        level.to_owned()
    } else {
        format!("{level},sled=info")
    }
}

/// The level names a directive may use.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `log.level` value: a level, or a comma-separated list of levels and
/// `target=level` directives. A bare word that is not a level (`inof`) would otherwise be
/// read as a target name, which silently turns off every other log line.
pub fn check_level(value: &str) -> Result<(), String> {
    for directive in value.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(format!("'{directive}' names no target")),
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "'{level}' is not a level (one of {})",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Installs the global subscriber. `level` is a level (`info`) or any `RUST_LOG`-style
/// directive list (`info,discovery::request=debug`). Returns an error message for a
/// directive that does not parse.
pub fn init(level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(&from_env)
            .map_err(|e| format!("invalid RUST_LOG '{from_env}': {e}"))?,
        _ => EnvFilter::try_new(directives_for(level))
            .map_err(|e| format!("invalid log.level '{level}': {e}"))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .try_init()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_levels_and_target_level_directives_pass() {
        for good in [
            "info",
            "DEBUG",
            "warn,discovery::request=debug",
            "debug,sled=debug",
        ] {
            assert_eq!(check_level(good), Ok(()), "{good}");
        }
        for bad in ["inof", "", "info,", "=debug", "sled=loud", "info,verbose"] {
            assert!(check_level(bad).is_err(), "{bad:?}");
        }
    }
}
