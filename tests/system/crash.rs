//! kill -9 of the worker in the middle of a daily sweep.
