//! A NATS JetStream cluster on loopback, started by a test: three `nats-server` processes in
//! temporary directories, on free ports, routed to each other.
//!
//! Port 0 cannot be used for cluster routes (each node must name the others' ports up front),
//! so ports are picked by binding port 0 and releasing it; a start that clashes with another
//! process is retried on new ports. Readiness is polled on each node's monitoring port
//! (`/healthz`) with a deadline, never slept for. Nodes can be killed with SIGKILL and
//! restarted on the same ports and storage. Every process is killed, and the directories
//! removed, when the cluster is dropped, also when a test fails.
//!
//! What it does not do: install nats-server (`.ci/run` does, from the distribution's
//! packages), or use any address but 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::forensic::{self, Pattern};
use crate::DEADLINE;

/// How long a node may take to report healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// How many times a cluster start is tried on new ports.
const PORT_TRIES: usize = 5;

/// One `nats-server` process and the ports and directory it keeps across restarts.
struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A JetStream cluster of `nats-server` processes on 127.0.0.1.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn nats_server() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server is not installed (apt-get install nats-server; .ci/run does)")
}

/// `GET path` on a monitoring port: the body if the answer is 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let ok = reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200");
    let body = reply.split_once("\r\n\r\n")?.1;
    ok.then(|| body.to_owned())
}

/// Whether `GET /healthz` on this port answers 200.
fn healthy(port: u16) -> bool {
    http_get(port, "/healthz").is_some()
}

impl Node {
    fn spawn(&mut self, routes: &str) -> std::io::Result<()> {
        let log = std::fs::File::create(self.dir.join("server.log"))?;
        let child = Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-n", &self.name, "-js"])
            .args(["-p", &self.client_port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(self.dir.join("js"))
            .args(["--cluster_name", "hush-test"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.cluster_port),
            ])
            .args(["--routes", routes])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `/healthz` until it answers 200; `false` if the process exited or the deadline
    /// passed.
    fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while Instant::now() < deadline {
            if healthy(self.monitor_port) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl NatsCluster {
    /// Starts a cluster of `size` nodes and waits until every node reports healthy.
    pub fn start(size: usize) -> NatsCluster {
        for _ in 0..PORT_TRIES {
            if let Some(cluster) = Self::try_start(size) {
                return cluster;
            }
        }
        panic!("could not start a {size}-node NATS cluster on loopback");
    }

    fn try_start(size: usize) -> Option<NatsCluster> {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = (0..size)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                dir: make_dir(dir.path(), i),
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster { nodes, _dir: dir };
        for i in 0..size {
            let routes = cluster.routes(i);
            cluster.nodes[i].spawn(&routes).ok()?;
        }
        for node in &mut cluster.nodes {
            if !node.wait_healthy() {
                eprintln!("nats node {} did not start:\n{}", node.name, node.log());
                return None;
            }
        }
        Some(cluster)
    }

    /// The route URLs of every node but `i`.
    fn routes(&self, i: usize) -> String {
        let others: Vec<String> = (self.nodes.iter().enumerate())
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        others.join(",")
    }

    /// The client URLs of every node, for `--nats`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect()
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its ports and storage, and waits until it reports healthy
    /// (for a JetStream node, that includes having caught up with its streams).
    pub fn restart(&mut self, i: usize) {
        let routes = self.routes(i);
        let node = &mut self.nodes[i];
        node.spawn(&routes).expect("restart nats-server");
        assert!(
            node.wait_healthy(),
            "nats node {} did not come back:\n{}",
            node.name,
            node.log()
        );
    }

    /// Kills every node with SIGKILL: NATS is gone for its clients.
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Starts every killed node again on its ports and storage, all before waiting for any
    /// (a lone node cannot become healthy without a quorum), then waits until each reports
    /// healthy.
    pub fn restart_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                let routes = self.routes(i);
                self.nodes[i].spawn(&routes).expect("restart nats-server");
            }
        }
        for node in &mut self.nodes {
            assert!(
                node.wait_healthy(),
                "nats node {} did not come back:\n{}",
                node.name,
                node.log()
            );
        }
    }

    /// The files under node `i`'s storage directory that hold `pattern`, relative to it.
    pub fn files_holding(&self, i: usize, pattern: &Pattern<'_>) -> Vec<String> {
        let dir = self.storage_dir(i);
        forensic::files_holding(&dir, pattern)
            .into_iter()
            .map(|p| p.strip_prefix(&dir).unwrap_or(&p).display().to_string())
            .collect()
    }

    /// Waits until, on every node, a message file of `stream` holds `pattern`, after showing
    /// that the search can see into each node's storage (nats-server writes its message blocks
    /// shortly after acknowledging, so this polls, failing the test at the deadline).
    pub async fn await_in_stream_files(&self, stream: &str, pattern: &Pattern<'_>) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        for node in 0..self.nodes.len() {
            forensic::assert_can_see(&self.storage_dir(node), pattern);
            while !self
                .files_holding(node, pattern)
                .iter()
                .any(|f| in_stream(f, stream))
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {node} never wrote it"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Waits until no message file of `stream` on any node holds `pattern` (failing the test
    /// at the deadline, naming `what`), and returns, per node, the other files that still do
    /// (the RAFT logs, until NATS compacts them).
    pub async fn await_gone_from_stream_files(
        &self,
        stream: &str,
        pattern: &Pattern<'_>,
        what: &str,
    ) -> Vec<Vec<String>> {
        let mut left = Vec::new();
        for node in 0..self.nodes.len() {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let files = self.files_holding(node, pattern);
                if !files.iter().any(|f| in_stream(f, stream)) {
                    left.push(files);
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {node}'s stream files still hold {what}: {files:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        left
    }

    /// The JetStream storage directory of node `i`, for forensic searches.
    pub fn storage_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("js")
    }

    /// What node `i`'s own replica of `stream` holds, from its `/jsz` report: messages and
    /// last sequence. `None` if the node does not answer or holds no replica.
    pub fn stream_state(&self, i: usize, stream: &str) -> Option<(u64, u64)> {
        let body = http_get(
            self.nodes[i].monitor_port,
            "/jsz?accounts=true&streams=true",
        )?;
        let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
        let accounts = jsz["account_details"].as_array()?;
        let details = accounts
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten();
        let found = details.into_iter().find(|d| d["name"] == stream)?;
        let state = &found["state"];
        Some((state["messages"].as_u64()?, state["last_seq"].as_u64()?))
    }
}

/// Whether `path` (relative to a node's storage directory) is one of `stream`'s own files.
fn in_stream(path: &str, stream: &str) -> bool {
    path.contains(&format!("streams/{stream}/"))
}

fn make_dir(root: &Path, i: usize) -> PathBuf {
    let d = root.join(format!("n{i}"));
    std::fs::create_dir_all(&d).expect("node dir");
    d
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
