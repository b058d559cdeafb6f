//! The verifier against hostile nameservers on loopback: compression loops,
//! oversize and costly replies, TCP length prefixes followed by silence,
//! slow-drip TCP, floods of datagrams, answers to another question. Each
//! pairs one good server with one hostile one and asserts that the check
//! ends within its timeout bound, reports the hostile server (never a pass
//! for it) and stays within memory bounds.

use crate::support;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use support::check::*;
use support::dns::{
    frame, good_reply, Behaviour, FakeServer, FakeZone, Hostile, TcpHostile, UdpReplies,
};
use support::nsd::two_loopbacks;
use zonekeeper::model::{CheckReport, Verdict};
use zonekeeper::probe::MAX_MESSAGE;

// --- memory: live bytes and the largest single allocation ----------------
//
// Counted per thread (crate::alloc): the engine runs on the test's own
// (current-thread) runtime, the hostile servers on a separate runtime, so
// only the engine's allocations are measured and tests may run in parallel.

/// The hostile servers' runtime, apart from the engine's threads.
static SERVERS: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

const TIMEOUT: Duration = Duration::from_millis(600);
/// A query can take its timeout, then an EDNS fallback and a TCP retry.
const BOUND: Duration = Duration::from_millis(600 * 3 + 700);

fn zone(ip1: IpAddr, ip2: IpAddr) -> FakeZone {
    FakeZone::new("example.ru", &["ns1.example.ru", "ns2.example.ru"])
        .host("ns1.example.ru", ip1)
        .host("ns2.example.ru", ip2)
}

struct Run {
    report: CheckReport,
    took: Duration,
    /// Growth of live heap bytes above the level before the check.
    peak_growth: usize,
    /// Largest single allocation during the check.
    largest: usize,
    /// Queries the hostile server received.
    hits: usize,
}

/// ns1 behaves; ns2 answers UDP with `udp` and TCP as `tcp` (both given
/// the zone with the servers' real addresses).
async fn run(
    udp: impl FnOnce(&FakeZone) -> UdpReplies,
    tcp: impl FnOnce(FakeZone) -> TcpHostile,
) -> Run {
    let (ip1, ip2) = two_loopbacks();
    let (ip1, ip2) = (IpAddr::V4(ip1), IpAddr::V4(ip2));
    let z = zone(ip1, ip2);
    let (udp, tcp) = (udp(&z), tcp(z.clone()));
    let (good, bad) = SERVERS
        .spawn(async move {
            (
                FakeServer::start_on(ip1, z, Behaviour::default()).await,
                FakeServer::start_hostile(ip2, udp, tcp).await,
            )
        })
        .await
        .unwrap();
    let targets = vec![
        target("ns1.example.ru", &[good.addr]),
        target("ns2.example.ru", &[bad.addr]),
    ];
    let v = verifier(TIMEOUT);
    let d = domain("example.ru");
    let base = crate::alloc::reset();
    let start = Instant::now();
    let report = v.check_targets(&d, &targets).await;
    let took = start.elapsed();
    let heap = crate::alloc::now();
    let r = Run {
        report,
        took,
        peak_growth: (heap.peak - base).max(0) as usize,
        largest: heap.largest,
        hits: bad.hits.load(Ordering::Relaxed),
    };
    eprintln!(
        "took {:?}, peak heap growth {} bytes, largest allocation {} bytes, {} hostile hits, findings {:?}",
        r.took,
        r.peak_growth,
        r.largest,
        r.hits,
        ids(&r.report)
    );
    r
}

/// Ids of the warning/error findings about ns2 (the hostile one).
fn ns2_ids(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity >= zonekeeper::model::Severity::Warning)
        .filter(|f| f.server.as_deref() == Some("ns2.example.ru"))
        .map(|f| f.id.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// What holds for every hostile server: bounded time and memory, a failing
/// verdict that names ns2 with one of `any_of`, and ns1 still judged good.
#[track_caller]
fn assert_contained(r: &Run, any_of: &[&str]) {
    assert!(r.took < BOUND, "check took {:?} (bound {BOUND:?})", r.took);
    // No buffer beyond one maximal message (the UDP receive buffer).
    assert!(
        r.largest <= MAX_MESSAGE + 2,
        "largest allocation {} bytes",
        r.largest
    );
    assert!(
        r.peak_growth < 4 << 20,
        "heap grew by {} bytes during the check",
        r.peak_growth
    );
    assert_eq!(r.report.verdict, Verdict::Fail, "{:?}", r.report.findings);
    let got = ns2_ids(&r.report);
    assert!(
        any_of.iter().any(|want| got.iter().any(|g| g == want)),
        "ns2 findings {got:?}, want one of {any_of:?}"
    );
    let ns1 = r
        .report
        .servers
        .iter()
        .find(|s| s.name == "ns1.example.ru")
        .unwrap();
    assert!(ns1.reachable);
    assert!(r.hits > 0, "the hostile server was never asked");
}

fn udp_shape(h: Hostile, z: &FakeZone) -> UdpReplies {
    let z = z.clone();
    Arc::new(move |q: &[u8]| vec![h.reply(q, &z)])
}

fn tcp_shape(h: Hostile, z: FakeZone) -> TcpHostile {
    TcpHostile::raw(move |q: &[u8]| frame(&h.reply(q, &z)))
}

/// Both transports answer every query with shape `h`.
async fn both(h: Hostile) -> Run {
    run(|z| udp_shape(h, z), move |z| tcp_shape(h, z)).await
}

fn good_udp(z: &FakeZone) -> UdpReplies {
    let z = z.clone();
    Arc::new(move |q: &[u8]| vec![good_reply(q, &z)])
}

// --- compression loops --------------------------------------------------------

#[tokio::test]
async fn pointer_to_self_is_malformed() {
    let r = both(Hostile::PointerToSelf).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn pointer_pair_is_malformed() {
    let r = both(Hostile::PointerPair).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn forward_pointer_chain_is_malformed() {
    let r = both(Hostile::ForwardChain).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn long_backward_chain_over_tcp_is_refused_quickly() {
    // Regression: this 64 KiB message took seconds of CPU to decode (the
    // decoder follows ~8000 pointers per owner name), blocking the worker.
    let r = run(good_udp, |z| tcp_shape(Hostile::LongBackwardChain, z)).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
    // Decoding is not the bottleneck: well under one timeout.
    assert!(r.took < TIMEOUT * 2, "{:?}", r.took);
}

// --- malformed and oversize -------------------------------------------------------

#[tokio::test]
async fn counts_beyond_the_message_are_malformed() {
    let r = both(Hostile::CountsTooLarge).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn header_claiming_65535_records_is_malformed() {
    let r = both(Hostile::HeaderOnlyMaxCounts).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn truncated_messages_are_malformed() {
    let r = both(Hostile::Truncated).await;
    assert_contained(&r, &["MALFORMED_REPLY"]);
}

#[tokio::test]
async fn oversize_replies_stay_within_the_message_cap() {
    // 60 000-byte answers over UDP (far above the 1232 advertised) and a
    // maximal 64 KiB one over TCP: accepted or not, bounded.
    let udp = |z: &FakeZone| {
        let z = z.clone();
        Arc::new(move |q: &[u8]| vec![Hostile::Oversize(60_000).reply(q, &z)]) as UdpReplies
    };
    let r = run(udp, |z| tcp_shape(Hostile::Oversize(65_000), z)).await;
    assert!(r.took < BOUND, "{:?}", r.took);
    assert!(r.peak_growth < 4 << 20, "heap grew {}", r.peak_growth);
    // The replies are valid DNS: ns2 answers (the zone data is correct).
    let ns2 = r
        .report
        .servers
        .iter()
        .find(|s| s.name == "ns2.example.ru")
        .unwrap();
    assert!(ns2.reachable);
}

// --- TCP: lying length prefixes and slow drips ----------------------------------

#[tokio::test]
async fn tcp_64k_length_then_silence_times_out_without_a_64k_buffer() {
    let r = run(good_udp, |_| {
        TcpHostile::raw(|_q: &[u8]| u16::MAX.to_be_bytes().to_vec())
    })
    .await;
    assert_contained(&r, &["TCP"]);
    let f = r.report.findings.iter().find(|f| f.id == "TCP").unwrap();
    assert!(f.message.contains("time"), "{}", f.message);
    assert!(r.took >= TIMEOUT, "{:?}", r.took);
}

#[tokio::test]
async fn tcp_length_longer_than_the_message_times_out() {
    let r = run(good_udp, move |z| {
        TcpHostile::raw(move |q: &[u8]| {
            let mut v = u16::MAX.to_be_bytes().to_vec();
            v.extend_from_slice(&good_reply(q, &z));
            v
        })
    })
    .await;
    // The server then holds the connection: the 64 KiB never arrive.
    assert_contained(&r, &["TCP"]);
}

#[tokio::test]
async fn slow_drip_tcp_is_cut_at_the_timeout() {
    let r = run(good_udp, move |z| TcpHostile::Raw {
        reply: Arc::new(move |q: &[u8]| frame(&good_reply(q, &z))),
        // ~100 bytes at one per 25 ms: about four timeouts' worth.
        drip: Some(Duration::from_millis(25)),
    })
    .await;
    assert_contained(&r, &["TCP"]);
    assert!(r.took >= TIMEOUT, "{:?}", r.took);
}

/// A TCP reply of `k` framed copies of the good answer with wrong IDs.
fn wrong_id_stream(z: FakeZone, k: u32) -> TcpHostile {
    TcpHostile::raw(move |q: &[u8]| {
        let mut out = Vec::new();
        let mut good = good_reply(q, &z);
        let id = u16::from_be_bytes([q[0], q[1]]);
        for i in 0..k {
            good[0..2].copy_from_slice(&(id ^ (i as u16 | 1)).to_be_bytes());
            out.extend_from_slice(&frame(&good));
        }
        out
    })
}

#[tokio::test]
async fn tcp_stream_of_wrong_id_messages_times_out() {
    let r = run(
        |_| Arc::new(|_q: &[u8]| Vec::new()) as UdpReplies,
        |z| wrong_id_stream(z, 2000),
    )
    .await;
    assert_contained(&r, &["RESPONSIVE"]);
}

#[tokio::test]
async fn endless_tcp_stream_is_cut_at_the_timeout() {
    // ~5 MB of decodable messages, more than the engine gets through in one
    // timeout: the deadline must fire while data keeps arriving.
    let r = run(
        |_| Arc::new(|_q: &[u8]| Vec::new()) as UdpReplies,
        |z| wrong_id_stream(z, 50_000),
    )
    .await;
    assert_contained(&r, &["RESPONSIVE"]);
}

// --- UDP floods ---------------------------------------------------------------------

fn wrong_ids(q: &[u8], z: &FakeZone, k: u16) -> Vec<Vec<u8>> {
    let good = good_reply(q, z);
    let id = u16::from_be_bytes([q[0], q[1]]);
    (1..=k)
        .map(|i| {
            let mut d = good.clone();
            d[0..2].copy_from_slice(&(id ^ i).to_be_bytes());
            d
        })
        .collect()
}

#[tokio::test]
async fn wrong_id_flood_then_the_answer_is_accepted() {
    let udp = |z: &FakeZone| {
        let z = z.clone();
        Arc::new(move |q: &[u8]| {
            let mut v = wrong_ids(q, &z, 100);
            v.push(good_reply(q, &z));
            v
        }) as UdpReplies
    };
    let r = run(udp, TcpHostile::Good).await;
    assert!(r.took < BOUND, "{:?}", r.took);
    // The real answer is found among the noise: ns2 is a good server.
    assert_report(&r.report, Verdict::Pass, &[]);
}

#[tokio::test]
async fn only_wrong_ids_is_unresponsive() {
    let udp = |z: &FakeZone| {
        let z = z.clone();
        Arc::new(move |q: &[u8]| wrong_ids(q, &z, 300)) as UdpReplies
    };
    let r = run(udp, |_| TcpHostile::NeverRead).await;
    assert_contained(&r, &["RESPONSIVE"]);
}

#[tokio::test]
async fn garbage_flood_is_malformed() {
    let udp = |_: &FakeZone| {
        Arc::new(|q: &[u8]| {
            (0..200u16)
                .map(|i| {
                    let mut d: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
                    // Half carry our ID, half do not.
                    if i % 2 == 0 {
                        d[0..2].copy_from_slice(&q[0..2]);
                    }
                    d
                })
                .collect()
        }) as UdpReplies
    };
    let r = run(udp, |_| TcpHostile::NeverRead).await;
    assert_contained(&r, &["MALFORMED_REPLY", "RESPONSIVE"]);
}

// --- answers to another question --------------------------------------------------

#[tokio::test]
async fn answers_for_another_name_are_ignored() {
    let r = both(Hostile::OtherName).await;
    assert_contained(&r, &["RESPONSIVE"]);
}

#[tokio::test]
async fn answers_for_another_type_are_ignored() {
    let r = both(Hostile::OtherType).await;
    assert_contained(&r, &["RESPONSIVE"]);
}

#[tokio::test]
async fn answers_for_another_class_are_ignored() {
    let r = both(Hostile::OtherClass).await;
    assert_contained(&r, &["RESPONSIVE"]);
}
