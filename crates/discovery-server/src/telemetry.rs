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
