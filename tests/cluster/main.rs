//! Multi-node tests: real discoveryd processes replicating over loopback.
