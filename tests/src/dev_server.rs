//! A Temporal dev server of a test's own, file-backed, so that the test can kill -9 it and start
//! it again on the same database file (the suite's shared server must never go down).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use temporalio_client::Client;

use crate::time_skipping::{free_port, startup_wait};

/// The `temporal` CLI: `PCN_TEST_TEMPORAL_BIN`, else the one `make test` installs in `.pcn/bin`.
pub fn temporal_bin() -> PathBuf {
    std::env::var("PCN_TEST_TEMPORAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.pcn/bin/temporal"))
        })
}

/// A file-backed dev server on a free port.
pub struct DevServer {
    child: Option<Child>,
    port: u16,
    db_file: PathBuf,
    log_file: PathBuf,
}

impl DevServer {
    /// Starts a server on a fresh database file under the system's temp directory.
    pub async fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("pcn-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dev server directory");
        let mut server = Self {
            child: None,
            port: free_port(),
            db_file: dir.join("temporal.db"),
            log_file: dir.join("temporal.log"),
        };
        server.spawn();
        server.client().await;
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("dev server log");
        let port = self.port;
        let mut command = Command::new(temporal_bin());
        command
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--http-port", &free_port().to_string()])
            .args(["--metrics-port", &free_port().to_string()])
            .arg("--db-filename")
            .arg(&self.db_file)
            .args(["--log-level", "error"]);
        for (name, kind) in pcn_workflows::search::ALL {
            command.args(["--search-attribute", &format!("{name}={kind}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", temporal_bin().display()));
        self.child = Some(child);
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client, once the server answers a namespace call (bounded by the startup wait).
    pub async fn client(&mut self) -> Client {
        let wait = startup_wait();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().expect("dev server status")
            {
                panic!(
                    "the test's Temporal dev server exited ({status}); see {}",
                    self.log_file.display()
                );
            }
            if let Ok(client) =
                pcn_worker::temporal::connect(&self.address(), "default", &crate::payload_codec())
                    .await
                && client
                    .count_workflows("WorkflowType = 'Nothing'", Default::default())
                    .await
                    .is_ok()
            {
                return client;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the test's Temporal dev server on {} did not answer within {wait:?}; see {}",
                self.address(),
                self.log_file.display()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// kill -9: the server dies with whatever it had not written.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same database file and port.
    pub async fn restart(&mut self) -> Client {
        self.kill_9();
        self.spawn();
        self.client().await
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.kill_9();
        let _ = std::fs::remove_dir_all(self.db_file.parent().unwrap_or(&self.db_file));
    }
}
