//! `execution-plane serve` as a process on the embedded defaults: it starts with no files,
//! prints its address, development key and operator token paths, answers `/healthz` and the
//! operator routes, and stops cleanly on SIGTERM with a verifiable evidence log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Kills the server if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; `(status, body)`.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn verify(log: &Path, extra: &[&str], cwd: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["evidence", "verify"])
        .arg(log)
        .args(extra)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn serve_on_the_embedded_defaults_starts_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let pid = server.0.id();

    let mut stderr_pipe = server.0.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    // Read stdout on a thread so the hang guard applies.
    let stdout = server.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("serve printed no address; stdout so far: {printed:?}"));
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("listening on http://") {
            break url.to_owned();
        }
    };
    // The rest of the start-up block, then the lanes once loaded (no plugin directory: the
    // built-in lanes the default policy serves).
    while !printed.iter().any(|l| l.starts_with("lanes ready in ")) {
        printed.push(lines.recv_timeout(HANG_GUARD).unwrap());
    }
    let ready = printed
        .iter()
        .find(|l| l.starts_with("lanes ready in "))
        .unwrap();
    // The default policy grants no outbound HTTP, so the built-in HTTP, SSE and WebSocket
    // lanes wait for one; jsonrpc holds its HTTP and process grants as optional and is served
    // with neither (its stdio and network transports refused until the operator grants them).
    assert!(ready.ends_with(" ms: jsonrpc"), "{printed:?}");
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("lane not served: lane http (<built-in>/http.wasm)")),
        "{printed:?}"
    );
    let find = |prefix: &str| -> String {
        printed
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {printed:?}"))
            .to_owned()
    };
    let key = dir.path().join(find("development signing key: "));
    let token_file = dir.path().join(find("operator token: "));
    let evidence = dir.path().join(find("evidence log: "));
    let node_key = dir
        .path()
        .join(find("node key (signs the evidence head): "));
    let public_key = find("node public key: ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(node_key, dir.path().join(".execution-plane/node-key.json"));
    assert_ne!(
        node_key, key,
        "the node key is not the development authority key"
    );
    assert!(key.is_file(), "{}", key.display());
    assert!(token_file.is_file(), "{}", token_file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&node_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let trust_store =
        std::fs::read_to_string(dir.path().join(".execution-plane/authority-keys.toml")).unwrap();
    assert!(trust_store.contains("key_id = \"dev\""), "{trust_store}");

    let (status, body) = request(&addr, "GET", "/healthz", &[]);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = request(&addr, "GET", "/v1/node", &[]);
    assert_eq!(status, 200);
    assert!(body.contains(r#""node_id":"node-local""#), "{body}");
    assert!(body.contains(r#""authority_verifier":"#), "{body}");

    let token = std::fs::read_to_string(&token_file).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let (status, _) = request(&addr, "GET", "/v1/lanes", &[]);
    assert_eq!(status, 401);
    let (status, body) = request(&addr, "GET", "/v1/lanes", &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with(r#"{"lanes":"#), "{body}");
    let (status, body) = request(
        &addr,
        "POST",
        "/v1/admin/reload",
        &[("authorization", &bearer)],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"reloaded""#), "{body}");

    // SIGHUP reloads; the server keeps serving.
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let (status, _) = request(&addr, "GET", "/healthz", &[]);
    assert_eq!(status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr_reader.join().unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.iter().any(|l| l.starts_with("stopped: ")), "{rest:?}");
    // JSON logs on stderr, one object per line.
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with('{'), "{stderr}");

    // The head is signed by the key the summary named, checked by its file or its public key.
    for key in [node_key.to_str().unwrap(), public_key.as_str()] {
        let report = verify(&evidence, &["--key", key], dir.path());
        assert!(report.contains("signature verified"), "{report}");
    }
}
