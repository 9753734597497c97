//! The SMS send window (being written).
