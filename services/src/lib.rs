//! The edges of Saoma.
