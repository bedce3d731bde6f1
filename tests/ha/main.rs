//! High-availability tests: several discoveryd behind a real nginx, with a simulated Presto/Trino fleet.
