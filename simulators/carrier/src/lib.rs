//! SMS carrier simulator (being written).
