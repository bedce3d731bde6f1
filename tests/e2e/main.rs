//! End-to-end tests: the real `discoveryd` binary, started as a process on loopback and
//! driven over HTTP.
