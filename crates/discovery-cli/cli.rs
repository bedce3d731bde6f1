//! Command-line syntax of `discovery`: global options, subcommands, their help and
//! examples. Parsing only; [`crate::commands`] runs them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Token;

pub const DEFAULT_URI: &str = "http://127.0.0.1:8411";

#[derive(Debug, Parser)]
#[command(
    name = "discovery",
    version,
    about = "Inspect and change what a discovery server (discoveryd, airlift discovery) holds",
    after_help = "Examples:\n  \
        discovery services                                   everything the cluster knows, with ages\n  \
        discovery lookup presto-coordinator --property http  the coordinator's URI, for scripts\n  \
        discovery --uri http://disc-1:8411,http://disc-2:8411 watch presto\n  \
        DISCOVERY_URI=http://disc-1:8411 discovery store dump dynamic\n  \
        discovery --token \"$WRITE_TOKEN\" static add --type ldap --property url=ldap://dir:389\n  \
        DISCOVERY_TOKEN=\"$READ_TOKEN\" discovery cluster status\n  \
        discovery why worker-9                               why a node is (not) listed\n  \
        discovery --shared-secret-file /etc/trino/shared-secret announce --node-id gw-1 --type presto-gateway\n\n\
        Authentication (for servers with internal-communication.shared-secret or\n\
        discovery.operator-tokens-file):\n  \
        --token sends 'Authorization: Bearer TOKEN' on every request: an operator token\n  \
        (role read: store dump, cluster status, why; write: static add/rm) or an internal\n  \
        JWT.\n  \
        --shared-secret-file signs announce and unannounce with a token for the node id\n  \
        (X-Trino-Internal-Bearer, as a Trino node does), even when --token is given; every\n  \
        other request carries --token if given, else a token signed with the secret for\n  \
        'discovery-cli', which the server accepts wherever an operator token is needed.\n  \
        A 401 or 403 prints the server's reason and what to pass.\n\n\
        Exit status: 0 ok, 1 nothing matched (or a partial answer; why: the node is not\n\
        listed), 2 usage error, 3 server or connection error, the server's refusals (400,\n\
        401, 403...) included."
)]
pub struct Cli {
    /// Discovery server URI [env: DISCOVERY_URI] [default: http://127.0.0.1:8411]; repeat
    /// the flag or separate with commas to fail over to the next server when one is down.
    #[arg(long, global = true, value_delimiter = ',', value_name = "URI")]
    pub uri: Vec<String>,

    /// Environment of the cluster (node.environment) [env: DISCOVERY_ENVIRONMENT].
    /// Lookups answered for another environment are refused; announcements carry it.
    /// Default: the server's own.
    #[arg(long, global = true, value_name = "ENV")]
    pub environment: Option<String>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Time allowed for each request, e.g. 500ms, 10s, 1m.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Bearer token sent as 'Authorization: Bearer TOKEN' on every request: an operator
    /// token of the server's discovery.operator-tokens-file, or an internal JWT. Beats
    /// --shared-secret-file, except on announce's and unannounce's own request. Empty:
    /// none. Prefer the variable: a flag shows in the process list.
    // `allow_hyphen_values`: a token may start with '-' (base64url), and clap's "did you
    // mean" tip for a rejected value would quote it.
    #[arg(
        long,
        global = true,
        env = "DISCOVERY_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true,
        value_parser = parse_token,
        value_name = "TOKEN"
    )]
    pub token: Option<Token>,

    /// File holding the cluster's internal-communication.shared-secret (one trailing
    /// newline is ignored). announce and unannounce sign the node's request with a
    /// 5-minute token for its node id; without --token, every other request carries a
    /// token signed for 'discovery-cli'.
    #[arg(
        long,
        global = true,
        env = "DISCOVERY_SHARED_SECRET_FILE",
        value_name = "PATH"
    )]
    pub shared_secret_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Fills what the command line left out from the environment variables, then the
    /// defaults. (By hand rather than with clap's `env`, which `--token` uses: an empty
    /// variable counts as unset, `DISCOVERY_URI` is a trimmed comma list, and their help
    /// lines state variable and default together.)
    pub fn apply_environment(&mut self, var: impl Fn(&str) -> Option<String>) {
        if self.uri.is_empty() {
            self.uri = match var("DISCOVERY_URI").filter(|v| !v.trim().is_empty()) {
                Some(list) => list.split(',').map(|u| u.trim().to_owned()).collect(),
                None => vec![DEFAULT_URI.to_owned()],
            };
        }
        if self.environment.is_none() {
            self.environment = var("DISCOVERY_ENVIRONMENT").filter(|v| !v.trim().is_empty());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List services (dynamic and static) with their node, address and age.
    #[command(after_help = "Examples:\n  \
        discovery services                       every service\n  \
        discovery services presto                all presto services, any pool\n  \
        discovery services presto general        presto services in pool general\n  \
        discovery services --output json\n\n\
        AGE is the time since the node last announced (from the dynamic store); static\n\
        services show '-'. Exits 1 when a TYPE was given and nothing matches.")]
    Services(ServicesArgs),

    /// Print one property of the services of a type, one value per line, for scripts.
    #[command(after_help = "Examples:\n  \
        presto --server \"$(discovery lookup presto-coordinator --property http)\"\n  \
        discovery lookup presto --pool etl --property http\n  \
        discovery lookup presto                  a table of the matching services\n\n\
        Exits 1 when no service matches (or none has the property).")]
    Lookup(LookupArgs),

    /// Announce a node's services once (PUT /v1/announcement/{nodeId}).
    #[command(after_help = "Examples:\n  \
        discovery announce --node-id gw-1 --type presto-gateway --property http=http://10.0.0.7:8080\n  \
        discovery announce --node-id gw-1 --type jmx --id 0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01\n  \
        discovery announce --file node.json       a PUT body, as airlift clients send it\n  \
        discovery --shared-secret-file /etc/trino/shared-secret announce --node-id gw-1 --type presto-gateway\n\n\
        Without --id the service id is derived from --node-id and --type (a UUID v5), so\n\
        announcing the same node again keeps its id.\n\
        The announcement replaces everything the node announced before and expires after\n\
        the server's discovery.max-age (30 s by default) unless announced again.\n\
        Prints the service id(s). A server with discovery.announcement.authentication=required\n\
        takes it signed with --shared-secret-file (a token for the node id, as Trino sends)\n\
        or with a write --token.")]
    Announce(AnnounceArgs),

    /// Remove a node's announcement at once (DELETE /v1/announcement/{nodeId}).
    #[command(after_help = "Examples:\n  \
        discovery unannounce --node-id gw-1\n  \
        discovery unannounce --file node.json    the file's nodeId\n  \
        discovery --shared-secret-file /etc/trino/shared-secret unannounce --node-id gw-1\n\n\
        Signed like announce: --shared-secret-file or a write --token.")]
    Unannounce(UnannounceArgs),

    /// Add, list or remove static services (operator-managed, never expire).
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        discovery static add --type hive-metastore --property thrift=thrift://10.0.0.9:9083\n  \
        discovery static list\n  \
        discovery static rm 5f0f6b8e-2a51-4a0c-a0f7-0a0c9f1c2b11\n\n\
        'discovery static <command> --help' shows each command's options and examples."
    )]
    Static(StaticCommand),

    /// Show the raw store entries, decoded.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        discovery store dump                both stores\n  \
        discovery store dump dynamic        node announcements, tombstones included\n  \
        discovery store dump static --output json\n\n\
        'discovery store dump --help' explains the columns."
    )]
    Store(StoreCommand),

    /// Print changes to the services of a type and pool as they happen, until Ctrl-C.
    #[command(after_help = "Examples:\n  \
        discovery watch presto-coordinator        tell me when the coordinator moves\n  \
        discovery watch presto etl --output json  one JSON object per line\n  \
        discovery watch presto --count 1          exit after the first change\n\n\
        Lines: '=' initial service, '+' added, '-' removed, '~' changed. --count counts\n\
        changed services (one per '+', '-' or '~' line; with --output json, per service\n\
        in added/removed/changed), not refreshes. While the server\n\
        is unreachable the last list is kept and a note goes to stderr.")]
    Watch(WatchArgs),

    /// Why a node is or is not listed: what this server holds for it and why its recent
    /// announcements were refused.
    #[command(after_help = "Examples:\n  \
        discovery why worker-9\n  \
        discovery --uri http://disc-2:8411 why worker-9     what disc-2 saw\n  \
        DISCOVERY_TOKEN=\"$READ_TOKEN\" discovery why worker-9 --output json\n\n\
        Prints one or two sentences, e.g. 'worker-9 is not listed: its last 5 announcements\n\
        were refused: environment mismatch, expected production, provided prod (last at\n\
        12:03:04 UTC from 10.0.0.7)'. Refusals and who delivered the last announcement are\n\
        what the server asked saw (its memory of the last 8 refusals per node id; ask the\n\
        server the node announces to); whether it is listed and when it expires are the\n\
        same on every server. With authentication on, needs a read --token (or\n\
        --shared-secret-file).\n\n\
        Exit status: 0 listed, 1 not listed, 2 usage error (not a node id), 3 server or\n\
        connection error.")]
    Why(WhyArgs),

    /// The discovery cluster as a whole: every node, its readiness and replication.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        discovery cluster status\n  \
        discovery --uri http://disc-1:8411 cluster status --output json\n\n\
        'discovery cluster status --help' explains the columns and the exit status."
    )]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Every node of the cluster (the server given with --uri and the peers from its
    /// service inventory): reachable, ready, entries, whether its replicas agree.
    #[command(after_help = "Examples:\n  \
        discovery cluster status\n  \
        discovery --uri http://disc-1:8411 cluster status --output json\n  \
        discovery --shared-secret-file /etc/discovery/shared-secret cluster status\n\n\
        DYNAMIC and STATIC count live entries (not expired, not deleted); TOMBSTONES\n\
        counts the deletes each store keeps (dynamic+static) until garbage collection.\n\
        AGREES compares each node's store digests with those of the first node: equal\n\
        digests mean identical replicas. The dynamic store changes with every\n\
        announcement, so under load a 'dynamic differs' can be momentary; the static\n\
        store must agree. QUEUED and FAILURES are the first node's pushes towards\n\
        that peer. Exits 1 (degraded) when a node is unreachable or not ready, when the\n\
        static stores differ, or when the inventory cannot be read. With authentication\n\
        on, every node is asked with the same --token or --shared-secret-file (a read\n\
        token suffices).")]
    Status,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The node id, as in the node's PUT /v1/announcement/{nodeId} (Trino: node.id).
    #[arg(value_name = "NODE_ID")]
    pub node_id: String,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Service type, e.g. presto.
    #[arg(value_name = "TYPE")]
    pub service_type: Option<String>,
    /// Pool, e.g. general (needs TYPE).
    pub pool: Option<String>,
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Service type, e.g. presto-coordinator.
    #[arg(value_name = "TYPE")]
    pub service_type: String,
    /// Pool to look in.
    #[arg(long, default_value = "general")]
    pub pool: String,
    /// Print this property of each service (e.g. http) instead of a table.
    #[arg(long, value_name = "NAME")]
    pub property: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// Node id (the path of the PUT). Default with --file: the file's nodeId.
    #[arg(long)]
    pub node_id: Option<String>,
    /// Service type.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "file")]
    pub service_type: Option<String>,
    /// Pool of the node.
    #[arg(long, default_value = "general", conflicts_with = "file")]
    pub pool: String,
    /// Location of the node (the server defaults it to /somewhere/<node-id>).
    #[arg(long, conflicts_with = "file")]
    pub location: Option<String>,
    /// A service property; repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property, conflicts_with = "file")]
    pub properties: Vec<(String, String)>,
    /// Service id (a UUID); default: one derived from the node id and the type, the same
    /// on every run, so announcing again keeps the id.
    #[arg(long, value_parser = parse_service_id, conflicts_with = "file")]
    pub id: Option<String>,
    /// Read the announcement from a JSON file in the PUT body format
    /// ({"environment", "nodeId", "pool", "location", "services": [{"id", "type", "properties"}]}).
    #[arg(long, value_name = "FILE", conflicts_with = "service_type")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnannounceArgs {
    /// Node id to remove.
    #[arg(long, required_unless_present = "file")]
    pub node_id: Option<String>,
    /// Take the node id from an announcement file's nodeId.
    #[arg(long, value_name = "FILE", conflicts_with = "node_id")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StaticCommand {
    /// Add a static service; prints its id (generated by the server).
    #[command(after_help = "Examples:\n  \
        discovery static add --type hive-metastore --property thrift=thrift://10.0.0.9:9083\n  \
        discovery static add --file metastore.json   a POST body\n  \
        id=$(discovery static add --type ldap --pool auth --property url=ldap://dir:389)\n  \
        DISCOVERY_TOKEN=\"$WRITE_TOKEN\" discovery static add --type ldap --property url=ldap://dir:389\n\n\
        With discovery.operator-tokens-file set, needs a token with role write (--token)\n\
        or --shared-secret-file; a read token gets 403.")]
    Add(StaticAddArgs),

    /// List the static services.
    #[command(after_help = "Examples:\n  \
        discovery static list\n  \
        discovery static list --output json")]
    List,

    /// Remove static services by id. Exits 1 if one of them did not exist.
    #[command(
        visible_alias = "delete",
        after_help = "Examples:\n  \
        discovery static rm 5f0f6b8e-2a51-4a0c-a0f7-0a0c9f1c2b11\n  \
        discovery static list --output json | jq -r '.services[].id' | xargs discovery static rm\n  \
        discovery --token \"$WRITE_TOKEN\" static rm 5f0f6b8e-2a51-4a0c-a0f7-0a0c9f1c2b11\n\n\
        Needs a write token like static add."
    )]
    Rm(StaticRmArgs),
}

#[derive(Debug, Args)]
pub struct StaticAddArgs {
    /// Service type.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "file")]
    pub service_type: Option<String>,
    /// Pool.
    #[arg(long, default_value = "general", conflicts_with = "file")]
    pub pool: String,
    /// Location (the server defaults it to /somewhere/<id>).
    #[arg(long, conflicts_with = "file")]
    pub location: Option<String>,
    /// A service property; repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property, conflicts_with = "file")]
    pub properties: Vec<(String, String)>,
    /// Read the service from a JSON file in the POST body format
    /// ({"environment", "type", "pool", "location", "properties"}).
    #[arg(long, value_name = "FILE", conflicts_with = "service_type")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StaticRmArgs {
    /// Service ids (UUIDs).
    #[arg(required = true, value_parser = parse_service_id, value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Every raw entry, tombstones and expired ones included, with keys and values decoded.
    #[command(after_help = "Examples:\n  \
        discovery store dump                both stores\n  \
        discovery store dump dynamic        node announcements: key = node id\n  \
        discovery store dump static --output json\n  \
        DISCOVERY_TOKEN=\"$READ_TOKEN\" discovery store dump\n\n\
        EXPIRES shows when a dynamic entry stops being served ('never' for static\n\
        services, '-' for tombstones); times are the writing server's clock. With\n\
        authentication on, needs a read (or write) --token or --shared-secret-file.")]
    Dump(StoreDumpArgs),
}

#[derive(Debug, Args)]
pub struct StoreDumpArgs {
    /// Which store; default both.
    #[arg(value_parser = ["dynamic", "static"])]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Service type.
    #[arg(value_name = "TYPE")]
    pub service_type: String,
    /// Pool.
    #[arg(default_value = "general")]
    pub pool: String,
    /// Exit after this many changes: services added, removed or changed (a refresh that
    /// moves a coordinator counts 2, its '+' and its '-').
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Never fails: a rejected value would be quoted in clap's error. [`crate::auth`] checks
/// the token and says what is wrong without quoting it.
fn parse_token(text: &str) -> Result<Token, std::convert::Infallible> {
    Ok(Token::new(text))
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

fn parse_service_id(text: &str) -> Result<String, String> {
    if discovery_client::types::is_service_id(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{text}' is not a service id: expected a UUID such as 0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01"
        ))
    }
}

/// A positive duration in airlift's syntax (`500ms`, `10s`, `2m`, the same parser as the
/// server's configuration), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(
            text.parse()
                .map_err(|_| format!("'{text}' is too long a duration"))?,
        )
    } else {
        discovery_client::types::units::parse_duration(text)?
    };
    if duration.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_properties_ids_and_durations() {
        assert_eq!(
            parse_property("http=http://h:1=2"),
            Ok(("http".into(), "http://h:1=2".into()))
        );
        assert!(parse_property("=x").is_err());
        assert!(parse_property("novalue").is_err());
        assert!(parse_service_id("0B6C6A2E-3F5E-4A43-9D2E-6F3A3F0F6A01").is_ok());
        assert!(parse_service_id("x").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn uris_come_from_repeated_flags_or_comma_lists() {
        let cli = Cli::try_parse_from([
            "discovery",
            "--uri",
            "http://a:1,http://b:2",
            "--uri",
            "http://c:3",
            "services",
        ])
        .unwrap();
        assert_eq!(cli.uri, ["http://a:1", "http://b:2", "http://c:3"]);
    }

    #[test]
    fn credentials_are_global_flags_and_never_debug_printed() {
        let cli = Cli::try_parse_from([
            "discovery",
            "store",
            "dump",
            "--token",
            "-w-0123456789abcdef",
            "--shared-secret-file",
            "/etc/secret",
        ])
        .unwrap();
        assert_eq!(cli.token, Some(Token::new("-w-0123456789abcdef")));
        assert_eq!(cli.shared_secret_file, Some(PathBuf::from("/etc/secret")));
        assert!(!format!("{cli:?}").contains("0123456789"), "{cli:?}");
    }

    #[test]
    fn flags_beat_environment_variables_which_beat_defaults() {
        let vars = |name: &str| match name {
            "DISCOVERY_URI" => Some("http://e:1, http://f:2".to_owned()),
            "DISCOVERY_ENVIRONMENT" => Some("prod".to_owned()),
            _ => None,
        };
        let mut from_env = Cli::try_parse_from(["discovery", "services"]).unwrap();
        from_env.apply_environment(vars);
        assert_eq!(from_env.uri, ["http://e:1", "http://f:2"]);
        assert_eq!(from_env.environment.as_deref(), Some("prod"));

        let mut flags = Cli::try_parse_from([
            "discovery",
            "--uri",
            "http://a:1",
            "--environment",
            "test",
            "services",
        ])
        .unwrap();
        flags.apply_environment(vars);
        assert_eq!(flags.uri, ["http://a:1"]);
        assert_eq!(flags.environment.as_deref(), Some("test"));

        let mut defaults = Cli::try_parse_from(["discovery", "services"]).unwrap();
        defaults.apply_environment(|_| None);
        assert_eq!(defaults.uri, [DEFAULT_URI]);
        assert_eq!(defaults.environment, None);
    }
}
