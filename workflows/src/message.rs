//! SMS message templates and segment counting (being written).
