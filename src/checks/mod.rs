//! Pure verdicts from probe facts (stub: filled by the verifier work).
pub mod cli;
