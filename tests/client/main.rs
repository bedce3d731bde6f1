//! Client library and CLI tests against real `discoveryd` processes on 127.0.0.1: the
//! announcer, the selector, failover between URIs, and every `discovery` subcommand, also
//! against servers with authentication on.
//! Nothing sleeps: conditions are awaited on watch channels or polled with a deadline.

mod announcer;
mod cli;
mod cli_auth;
mod failover;
mod selector;
mod support;
mod why;
