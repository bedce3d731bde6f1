//! Deployment tests: the airlift-style launcher and the local-cluster script.
