//! DNS I/O against declared nameservers (stub: filled by the verifier work).
