//! The time-skipping test server, started by the tests themselves with a startup wait that holds
//! on a loaded 2-core machine.
//!
//! The SDK's `TestServerConfig::start_server` gives the server 5 s to answer; a clean-clone run of
//! the suite (a cold build competing for both cores) failed there with `StartupTimeout`. This
//! helper starts the same binary, then waits for a real gRPC connection for
//! [`startup_wait`] (default 180 s, `PCN_TEST_SERVER_STARTUP_SECS`) and says what it waited for
//! when it gives up.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

/// How long a test server may take to answer: `PCN_TEST_SERVER_STARTUP_SECS`, default 180 s.
pub fn startup_wait() -> Duration {
    let secs = std::env::var("PCN_TEST_SERVER_STARTUP_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// A running time-skipping test server; killed when dropped.
pub struct TimeSkippingServer {
    /// `127.0.0.1:<port>`.
    pub target: String,
    child: tokio::process::Child,
}

impl TimeSkippingServer {
    /// Starts the binary named by `PCN_TEST_SERVER_BIN` (installed by `make test`) on a free port
    /// and waits until it accepts a Temporal client connection.
    pub async fn start() -> Self {
        let exe = std::env::var("PCN_TEST_SERVER_BIN")
            .expect("PCN_TEST_SERVER_BIN: `make test` installs the time-skipping test server");
        let port = free_port();
        let child = tokio::process::Command::new(&exe)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("starting the time-skipping test server {exe}: {err}"));
        let target = format!("127.0.0.1:{port}");
        let wait = startup_wait();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let last_error = match tokio::time::timeout(
                Duration::from_secs(10),
                pcn_worker::temporal::connect(&target, "default", &crate::payload_codec()),
            )
            .await
            {
                Ok(Ok(_)) => break,
                Ok(Err(err)) => format!("{err:#}"),
                Err(_) => "connect timed out after 10 s".to_owned(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "the time-skipping test server ({exe}) did not accept a connection on {target} \
                 within {wait:?} (PCN_TEST_SERVER_STARTUP_SECS); last error: {last_error}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { target, child }
    }

    /// Stops the server and waits for the process to end.
    pub async fn shutdown(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
