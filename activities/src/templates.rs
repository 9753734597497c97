//! Loading SMS templates from files (being written).
