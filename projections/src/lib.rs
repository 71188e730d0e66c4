//! Pure projections of Saoma.
