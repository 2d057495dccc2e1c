//! A scripted HTTP/1.1 server for the OpenWhisk client's tests: each request (method,
//! path with query, headers, body) is answered by a closure with a status and body, by
//! never answering (the connection stays open), by closing the connection (an end of
//! file) or by resetting it (a TCP RST) once the request is read; every
//! request is kept for the test to look at. Keep-alive works, so a client's connection
//! reuse is exercised too. [`FakeServer::start_tls`] serves the same over TLS with a
//! self-signed certificate made by `openssl` (to check certificate verification).
//! Binds to loopback only.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Accepted connection number (1-based): equal numbers mean a reused connection.
    pub connection: u32,
}

impl Request {
    /// A header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer a request.
pub enum Reply {
    /// Status, extra headers, body.
    Answer(u16, Vec<(String, String)>, Vec<u8>),
    /// Keep the connection open and never answer.
    Never,
    /// Close the connection without an answer (the client reads an end of file).
    Close,
    /// Reset the connection (TCP RST: SO_LINGER 0, then close) without an answer.
    Reset,
}

/// A stream the server can reset (abortive close) instead of closing.
trait Resettable {
    /// Arms an abortive close: dropping the stream then sends a TCP RST.
    fn arm_reset(&self);
}

impl Resettable for tokio::net::TcpStream {
    fn arm_reset(&self) {
        // Failing leaves a plain close: the client then sees an end of file instead.
        let _ = self.set_zero_linger();
    }
}

impl Resettable for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn arm_reset(&self) {
        self.get_ref().0.arm_reset();
    }
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply::Answer(
            status,
            vec![("content-type".into(), "application/json".into())],
            serde_json::to_vec(v).unwrap_or_default(),
        )
    }

    /// A text answer.
    pub fn text(status: u16, s: &str) -> Reply {
        Reply::Answer(
            status,
            vec![("content-type".into(), "text/plain".into())],
            s.as_bytes().to_vec(),
        )
    }
}

type Handler = dyn Fn(&Request, &[Request]) -> Reply + Send + Sync;

/// A running fake server (stops when dropped).
pub struct FakeServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// Starts a server on 127.0.0.1 (ephemeral port) answering with `handler`, which
    /// also sees the requests received before this one.
    pub async fn start(
        handler: impl Fn(&Request, &[Request]) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake server");
        let addr = listener.local_addr().expect("fake server address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((s, _)) = listener.accept().await {
                n += 1;
                tokio::spawn(serve(s, n, handler.clone(), reqs.clone()));
            }
        });
        FakeServer {
            addr,
            requests,
            task,
        }
    }

    /// Like [`FakeServer::start`], over TLS with the certificate and key (PEM files)
    /// made by [`self_signed`].
    pub async fn start_tls(
        cert: &Path,
        key: &Path,
        handler: impl Fn(&Request, &[Request]) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("read the certificate")
            .collect::<Result<_, _>>()
            .expect("parse the certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake server");
        let addr = listener.local_addr().expect("fake server address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((s, _)) = listener.accept().await {
                n += 1;
                let (acceptor, handler, reqs) = (acceptor.clone(), handler.clone(), reqs.clone());
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake here.
                    if let Ok(tls) = acceptor.accept(s).await {
                        serve(tls, n, handler, reqs).await;
                    }
                });
            }
        });
        FakeServer {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:port`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Resettable + Unpin>(
    mut s: S,
    conn: u32,
    handler: Arc<Handler>,
    reqs: Arc<Mutex<Vec<Request>>>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default().to_string();
        let mut parts = first.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let start = head_end + 4;
        while buf.len() < start + len {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let req = Request {
            method,
            target,
            headers,
            body: buf[start..start + len].to_vec(),
            connection: conn,
        };
        buf.drain(..start + len);
        let reply = {
            let Ok(mut all) = reqs.lock() else { return };
            let r = handler(&req, &all);
            all.push(req);
            r
        };
        match reply {
            Reply::Never => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Close => return,
            Reply::Reset => {
                s.arm_reset();
                return;
            }
            Reply::Answer(status, headers, body) => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: keep-alive\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                bytes.extend_from_slice(&body);
                if s.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes a self-signed certificate for `localhost` and 127.0.0.1 and its key into
/// `dir` with `openssl`; returns (certificate, key) paths.
pub fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl (the TLS test needs the openssl command)");
    assert!(st.success(), "openssl req failed: {st}");
    (cert, key)
}
