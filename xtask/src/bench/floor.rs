//! The HTTP floor: a trivial loopback HTTP/1.1 server (keep-alive, one thread per
//! connection) that answers every request with a fixed activation record, so a suite can
//! show how much of a round trip is the client and HTTP rather than the system measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// A fixed, successful activation record shaped like the platform's.
const RECORD: &str = r#"{"namespace":"guest","name":"noop","version":"0.0.1","subject":"guest","activationId":"0123456789abcdef0123456789abcdef","start":1700000000000,"end":1700000000000,"duration":0,"statusCode":0,"response":{"status":"success","statusCode":0,"success":true,"result":{},"size":2},"logs":[],"annotations":[{"key":"path","value":"guest/noop"},{"key":"waitTime","value":0},{"key":"kind","value":"python:3"},{"key":"timeout","value":false},{"key":"limits","value":{"concurrency":1,"logs":10,"memory":128,"timeout":60000}}],"publish":false}"#;

/// The running server; stopped (and its accept thread joined) on drop.
pub(super) struct FloorServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FloorServer {
    pub(super) fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the floor server")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    std::thread::spawn(move || {
                        let _ = serve(c);
                    });
                }
            }
        });
        Ok(FloorServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one keep-alive connection until the client closes it.
fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{RECORD}",
        RECORD.len()
    );
    let mut line = String::new();
    loop {
        // Request line and headers.
        let mut length = 0usize;
        let mut first = true;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body)?;
        out.write_all(response.as_bytes())?;
    }
}
