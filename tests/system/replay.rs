//! Replay of saved workflow histories.
