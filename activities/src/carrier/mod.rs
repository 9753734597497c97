//! SMS carrier adapters (being written).
