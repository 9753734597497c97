//! Live months on the time-skipping test server.
