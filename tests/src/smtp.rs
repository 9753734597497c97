//! A real SMTP server on loopback for the report-mail tests: it speaks the protocol a mail relay
//! speaks (greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT;
//! commands out of order get 503, unknown ones 500) and keeps every message it accepted with its
//! envelope. It is no kinder than a real one: it can answer the next transactions with a
//! temporary failure (451 after the whole message was transmitted, or 421 at the greeting,
//! closing the connection), and it can stop listening so connections are refused.
//!
//! [`Part`] reads a received message's MIME structure far enough for the tests: headers, the
//! parts of multiparts, and bodies decoded from base64 or quoted-printable.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message the server accepted (answered 250 to its DATA).
#[derive(Debug, Clone)]
pub struct Received {
    /// The reverse path of `MAIL FROM:<…>`.
    pub mail_from: String,
    /// The forward paths of `RCPT TO:<…>`.
    pub rcpt_to: Vec<String>,
    /// The message as transmitted, dot-unstuffed, CRLF line ends, without the final `.`.
    pub data: Vec<u8>,
}

/// How the server fails the next transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `451 4.3.0` after the message was transmitted (DATA's end): nothing accepted.
    AfterData,
    /// `421 4.3.2` instead of the greeting, then the connection is closed.
    AtGreeting,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    failures: VecDeque<Failure>,
    transactions: u64,
}

/// The SMTP server. Dropping it stops it.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SmtpSink {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("smtp port");
        let addr = listener.local_addr().expect("smtp addr");
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Self {
            addr,
            state,
            accept: Mutex::new(Some(task)),
        }
    }

    /// `smtp://127.0.0.1:<port>` (plain SMTP, for `PCN_SMTP_URL`).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("smtp state").received.clone()
    }

    /// Transactions that reached the end of DATA (accepted or failed).
    pub fn transactions(&self) -> u64 {
        self.state.lock().expect("smtp state").transactions
    }

    /// The next `n` connections (or transactions) fail as `failure` says.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = self.state.lock().expect("smtp state");
        state.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Failures still to come.
    pub fn failures_left(&self) -> usize {
        self.state.lock().expect("smtp state").failures.len()
    }

    /// Stops listening: connections are refused (the port is closed) until [`Self::listen`].
    pub fn refuse_connections(&self) {
        if let Some(task) = self.accept.lock().expect("accept task").take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn listen(&self) {
        self.refuse_connections();
        // The aborted task drops its listener on its next poll; wait until the port is free.
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&self.state)));
        *self.accept.lock().expect("accept task") = Some(task);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().ok().and_then(|mut task| task.take()) {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = session(socket, state).await;
        });
    }
}

/// One SMTP session (RFC 5321's order of commands).
async fn session(socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let greeting_fails = {
        let mut s = state.lock().expect("smtp state");
        if s.failures.front() == Some(&Failure::AtGreeting) {
            s.failures.pop_front();
            true
        } else {
            false
        }
    };
    if greeting_fails {
        write
            .write_all(b"421 4.3.2 sink.test Service not available, try again later\r\n")
            .await?;
        return write.shutdown().await;
    }
    write
        .write_all(b"220 sink.test ESMTP test sink\r\n")
        .await?;
    let mut greeted = false;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        let reply: Vec<u8> = if upper.starts_with("EHLO ") {
            greeted = true;
            from = None;
            to.clear();
            b"250-sink.test greets you\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n".to_vec()
        } else if upper.starts_with("HELO ") {
            greeted = true;
            from = None;
            to.clear();
            b"250 sink.test\r\n".to_vec()
        } else if upper.starts_with("MAIL FROM:") {
            if !greeted {
                b"503 5.5.1 EHLO/HELO first\r\n".to_vec()
            } else if from.is_some() {
                b"503 5.5.1 nested MAIL command\r\n".to_vec()
            } else {
                from = Some(path(&text["MAIL FROM:".len()..]));
                b"250 2.1.0 Ok\r\n".to_vec()
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                b"503 5.5.1 need MAIL command\r\n".to_vec()
            } else {
                to.push(path(&text["RCPT TO:".len()..]));
                b"250 2.1.5 Ok\r\n".to_vec()
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                b"503 5.5.1 need RCPT command\r\n".to_vec()
            } else {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut read).await?;
                let mut s = state.lock().expect("smtp state");
                s.transactions += 1;
                let fails = s.failures.front() == Some(&Failure::AfterData);
                let reply = if fails {
                    s.failures.pop_front();
                    b"451 4.3.0 Temporary failure, try again later\r\n".to_vec()
                } else {
                    s.received.push(Received {
                        mail_from: from.clone().unwrap_or_default(),
                        rcpt_to: to.clone(),
                        data,
                    });
                    format!("250 2.0.0 Ok: queued as {}\r\n", s.received.len()).into_bytes()
                };
                from = None;
                to.clear();
                reply
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            b"250 2.0.0 Ok\r\n".to_vec()
        } else if upper == "NOOP" {
            b"250 2.0.0 Ok\r\n".to_vec()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return write.shutdown().await;
        } else {
            b"500 5.5.2 Error: command not recognized\r\n".to_vec()
        };
        write.write_all(&reply).await?;
    }
}

/// `<a@b> SIZE=…` → `a@b`.
fn path(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(start), Some(end)) if start < end => arg[start + 1..end].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// The message after `354`, up to the line `.`, with leading dots unstuffed.
async fn read_data(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}

/// One MIME entity: its headers (names lower-cased, folded lines joined) and its body.
#[derive(Debug, Clone)]
pub struct Part {
    /// `(name, value)` in order.
    pub headers: Vec<(String, String)>,
    /// The raw body (still transfer-encoded).
    pub body: Vec<u8>,
}

impl Part {
    /// Parses a message or a part.
    pub fn parse(raw: &[u8]) -> Self {
        let text = raw;
        let split = find(text, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| find(text, b"\n\n").map(|i| (i, 2)));
        let (head, body) = match split {
            Some((i, n)) => (&text[..i], &text[i + n..]),
            None => (text, &b""[..]),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in String::from_utf8_lossy(head).lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_vec(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lower-cased, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("text/plain")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// A parameter of a header (`boundary`, `filename`), unquoted.
    pub fn param(&self, header: &str, name: &str) -> Option<String> {
        let value = self.header(header)?;
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
        })
    }

    /// The parts of a multipart entity (empty for a leaf).
    pub fn parts(&self) -> Vec<Part> {
        let Some(boundary) = self.param("content-type", "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let body = String::from_utf8_lossy(&self.body).into_owned();
        body.split(&delimiter)
            .skip(1)
            .take_while(|chunk| !chunk.starts_with("--"))
            .map(|chunk| Part::parse(chunk.trim_start_matches(['\r', '\n']).as_bytes()))
            .collect()
    }

    /// Every leaf below this entity, depth first.
    pub fn leaves(&self) -> Vec<Part> {
        let parts = self.parts();
        if parts.is_empty() {
            return vec![self.clone()];
        }
        parts.iter().flat_map(Part::leaves).collect()
    }

    /// The body with its transfer encoding (base64, quoted-printable) undone.
    pub fn decoded(&self) -> Vec<u8> {
        let encoding = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => {
                let compact: Vec<u8> = self
                    .body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("valid base64 body")
            }
            "quoted-printable" => quoted_printable(&self.body),
            _ => self.body.clone(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'=' if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if body.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < body.len() => {
                let hex = std::str::from_utf8(&body[i + 1..i + 3]).unwrap_or("3F");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}
