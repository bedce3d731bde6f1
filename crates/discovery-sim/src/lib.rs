//! A simulated Presto/Trino fleet (in progress).
