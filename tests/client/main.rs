//! Client library and CLI tests against a real discoveryd.
