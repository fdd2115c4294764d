//! A real `redis-server` for tests: started on a free loopback port in a
//! temporary directory, stopped when dropped. `.ci/run` installs the
//! Debian package; where the binary is absent the tests say so and skip.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl RedisServer {
    /// Starts one; `None`, after saying why on stderr, when `redis-server`
    /// is not installed.
    #[allow(clippy::print_stderr)] // the skip must be visible
    pub fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "SKIPPED: redis-server is not installed (apt-get install redis-server; .ci/run does)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("patchbay-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = spawn(port, &dir);
        Some(Self { child, dir, port })
    }

    /// Kills it and starts it again on the same port and files: what
    /// Redis acknowledged before is there again (append-only file,
    /// written through on every write, as a Redis that keeps conversations
    /// would be configured).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.dir);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops it without closing anything (`SIGSTOP`): connections stay
    /// open, what clients send waits in its socket buffers and runs on
    /// [`RedisServer::resume`] (a Redis stalled by a long command, a fork or
    /// a paused VM).
    pub fn pause(&self) {
        self.send_signal("STOP");
    }

    /// Lets a paused Redis go on (`SIGCONT`).
    pub fn resume(&self) {
        self.send_signal("CONT");
    }

    fn send_signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} redis-server");
    }

    /// Runs one command on a connection of its own and returns the reply:
    /// a status, error or integer line as sent (`+OK`, `:1`), a bulk string's
    /// text, or an array's elements one per line. For tests that look under
    /// the stores (e.g. to corrupt what one keeps).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("send to redis");
        let mut reader = BufReader::new(stream);
        let head = read_line(&mut reader);
        match head.split_at(1) {
            ("$", length) => read_bulk(&mut reader, length),
            ("*", count) => (0..count.parse::<i64>().expect("array length"))
                .map(|_| {
                    let element = read_line(&mut reader);
                    match element.split_at(1) {
                        ("$", length) => read_bulk(&mut reader, length),
                        _ => element,
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => head,
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply from redis");
    line.trim_end().to_owned()
}

/// A bulk string's text; empty for a nil (`$-1`).
fn read_bulk(reader: &mut impl BufRead, length: &str) -> String {
    let Ok(length) = length.parse::<usize>() else {
        return String::new();
    };
    let mut bytes = vec![0; length + 2];
    reader.read_exact(&mut bytes).expect("a bulk reply");
    bytes.truncate(length);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
