//! HTTP abuse limits with real TCP clients: a slowloris client (headers
//! dripped a byte at a time, or nothing sent at all, or an idle keep-alive
//! connection) is cut off after `http.header_read_timeout`; a client that
//! stops reading answers is cut off after `http.send_timeout`; beyond
//! `http.max_connections` a connection gets 503 and is closed; oversize
//! request heads are refused; shutdown is not held up by idle connections.

use crate::support;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zonekeeper::app::App;
use zonekeeper::clock::SystemClock;
use zonekeeper::config::Config;
use zonekeeper::store::RedbStore;

struct Server {
    addr: SocketAddr,
    app: App,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    tweak(&mut cfg);
    let store = RedbStore::open(&dir.path().join("zk.redb")).unwrap();
    let app = App::new(cfg, Arc::new(store), Arc::new(SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(zonekeeper::http::serve(app.clone(), listener));
    Server {
        addr,
        app,
        task,
        _dir: dir,
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: zk\r\n\r\n";

/// One request on a fresh connection; the raw answer.
async fn get_healthz(addr: SocketAddr) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: zk\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
        .await
        .expect("answered")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Read until the server closes; what it sent and when it closed.
async fn until_closed(mut r: tokio::net::tcp::OwnedReadHalf, limit: Duration) -> (String, Instant) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let res = tokio::time::timeout(limit, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(res.is_ok(), "connection still open after {limit:?}");
    (String::from_utf8_lossy(&out).into_owned(), Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off() {
    let timeout = Duration::from_millis(800);
    let s = start(|c| c.http.header_read_timeout = timeout).await;

    // Headers dripped one byte every 50 ms: never complete in time.
    let started = Instant::now();
    let (r, mut w) = TcpStream::connect(s.addr).await.unwrap().into_split();
    let reader = tokio::spawn(until_closed(r, Duration::from_secs(10)));
    let drip = b"GET /healthz HTTP/1.1\r\nHost: zk\r\nX-Padding: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    for b in drip {
        if reader.is_finished() || w.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answer, closed) = reader.await.unwrap();
    let took = closed - started;
    assert!(took >= timeout.mul_f32(0.9), "closed too early: {took:?}");
    assert!(took < timeout * 4, "closed too late: {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );

    // A client that connects and sends nothing.
    let started = Instant::now();
    let (r, _w) = TcpStream::connect(s.addr).await.unwrap().into_split();
    let (_, closed) = until_closed(r, Duration::from_secs(10)).await;
    let took = closed - started;
    assert!(
        took >= timeout.mul_f32(0.9) && took < timeout * 4,
        "{took:?}"
    );

    // A keep-alive connection: one request answered, then idle → closed.
    let (r, mut w) = TcpStream::connect(s.addr).await.unwrap().into_split();
    w.write_all(HEALTHZ).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = until_closed(r, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("ok\n"), "{answer:?}");
    assert!(closed - started < timeout * 4, "{:?}", closed - started);

    // Complete requests are still served at once.
    let t = Instant::now();
    assert!(get_healthz(s.addr).await.starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < timeout);

    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_answers_503() {
    let s = start(|c| {
        c.http.max_connections = 2;
        c.http.header_read_timeout = Duration::from_secs(5);
    })
    .await;
    let idle1 = TcpStream::connect(s.addr).await.unwrap();
    let idle2 = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let a = get_healthz(s.addr).await;
    assert!(a.starts_with("HTTP/1.1 503"), "{a:?}");
    assert!(a.contains("retry-after: 1"), "{a:?}");
    assert!(a.contains("too many connections"), "{a:?}");
    // A real HTTP client sees the same.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    drop(http);
    // Slots come back when the connections close.
    drop((idle1, idle2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = get_healthz(s.addr).await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a:?}");

    // Shutdown is not held up by an idle connection.
    let _idle = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.app.shutdown().cancel();
    tokio::time::timeout(Duration::from_secs(2), s.task)
        .await
        .expect("serve returns promptly")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_headers_are_refused() {
    let s = start(|_| {}).await;
    // 1 MiB of headers: hyper's head buffer limit answers 431 (or closes)
    // without buffering it all.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: zk\r\n".to_vec();
    for i in 0..16_384 {
        req.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "a".repeat(48)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let (r, mut w) = c.split();
    let write = async {
        let _ = w.write_all(&req).await;
    };
    let read = async {
        let mut out = Vec::new();
        let mut r = r;
        let _ = r.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    let (_, answer) =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
            .await
            .expect("refused promptly");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:?}"
    );
    assert!(get_healthz(s.addr).await.starts_with("HTTP/1.1 200"));
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

/// Slowloris clients holding every slot get cut off after the header
/// timeout, so the cap cannot be held by silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_held_by_silent_clients_come_back() {
    let timeout = Duration::from_millis(800);
    let s = start(|c| {
        c.http.max_connections = 8;
        c.http.header_read_timeout = timeout;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /hea").await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(get_healthz(s.addr).await.starts_with("HTTP/1.1 503"));
    tokio::time::sleep(timeout + Duration::from_millis(500)).await;
    let a = get_healthz(s.addr).await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a:?}");
    for mut c in held {
        let mut out = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut out))
            .await
            .expect("closed by the server");
        assert!(n.is_err() || out.is_empty() || out.starts_with(b"HTTP/1.1 408"));
    }
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}

/// A client that sends requests but never reads the answers is cut off
/// after `http.send_timeout` without progress, and its slot comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_cut_off() {
    let refused = r#"zonekeeper_http_connections_refused_total{reason="send_timeout"}"#;
    let before = support::metric(refused);
    // Long enough that a loaded machine still sees the stalled connection
    // holding the slot before it is cut off.
    let send_timeout = Duration::from_millis(1500);
    let s = start(|c| {
        c.http.max_connections = 1;
        c.http.send_timeout = send_timeout;
    })
    .await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let connected = Instant::now();
    let c = sock.connect(s.addr).await.unwrap();
    let (mut r, mut w) = c.into_split();
    // Pipelined requests whose answers (64 KiB each, 64 MB in all: far
    // more than the socket buffers hold, 4 MiB at most on Linux) are never
    // read. Large answers, so the buffers fill after a few dozen: the stall
    // starts only then, and a pipeline of small answers kept a debug build
    // on a loaded machine busy for most of ten seconds first.
    let writer = tokio::spawn(async move {
        let many = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: zk\r\n\r\n".repeat(1_000);
        let _ = w.write_all(&many).await;
        w
    });
    // Once the server has accepted it, the stalled connection holds the
    // only slot (an answer before that is the healthz of a free slot).
    let addr = s.addr;
    support::eventually(Duration::from_secs(10), "the slot taken", || async move {
        get_healthz(addr)
            .await
            .starts_with("HTTP/1.1 503")
            .then_some(())
    })
    .await;
    // After the send timeout the server closes it: the slot is free again.
    // (Polled gently: busy refusals take CPU from the server while it is
    // still answering the pipeline.)
    let freed = async {
        loop {
            if get_healthz(addr).await.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), freed)
        .await
        .expect("the stalled connection was closed");
    // Not before the stall (which began after the connect) lasted the
    // whole send timeout.
    assert!(
        connected.elapsed() >= send_timeout,
        "{:?}",
        connected.elapsed()
    );
    // The slow reader finds the end of its stream.
    let mut sink = vec![0u8; 1 << 16];
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match r.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "connection still open");
    writer.abort();
    assert!(support::metric(refused) - before >= 1.0);
    s.app.shutdown().cancel();
    s.task.await.unwrap().unwrap();
}
