//! Client library (issue 4, in progress).
