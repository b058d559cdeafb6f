//! Property-based fuzzing of DNS reply handling in the probe engine
//! (cargo-fuzz needs nightly, which this machine does not have).
//! `zonekeeper::probe::judge_reply` is exactly what the engine does with
//! the bytes of every UDP datagram and TCP message it receives; it is fed
//! arbitrary bytes and mutations of the seed corpus in `tests/corpus/dns/`
//! (real NSD replies plus the hostile shapes of `support::dns`).
//!
//! Regenerate the corpus: `cargo test --test fuzz_dns -- --ignored capture_corpus`.

use crate::support;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;
use zonekeeper::probe::{judge_reply, Judged, Transport};

use crate::alloc::largest_alloc;

// --- seeds ------------------------------------------------------------------

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A query as the engine sends it.
fn query(id: u16, name: &str, t: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(n(name), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/dns")
}

/// A seed reply and the query it answers (ID, name, type).
#[derive(Debug, Clone)]
struct Seed {
    file: String,
    bytes: Vec<u8>,
    id: u16,
    qname: Name,
    qtype: RecordType,
}

/// Read and decoded once: the proptest cases below reuse it.
fn corpus() -> Vec<Seed> {
    static CORPUS: std::sync::OnceLock<Vec<Seed>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(read_corpus).clone()
}

fn read_corpus() -> Vec<Seed> {
    let mut v: Vec<Seed> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus/dns")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            // The hostile seeds answer the example.ru SOA query they were
            // built for (some carry another question on purpose); NSD's
            // replies carry the question they answer.
            let (qname, qtype) = if file.starts_with("hostile_") {
                (n("example.ru."), RecordType::SOA)
            } else {
                let m = Message::from_vec(&bytes).unwrap();
                (m.queries[0].name().clone(), m.queries[0].query_type())
            };
            Seed {
                file,
                bytes,
                id,
                qname,
                qtype,
            }
        })
        .collect();
    v.sort_by(|a, b| a.file.cmp(&b.file));
    assert!(v.len() >= 10, "corpus has {} files", v.len());
    v
}

/// Judge as the engine does, and check what must hold for any input.
fn judge(bytes: &[u8], id: u16, qname: &Name, qtype: RecordType) -> Judged {
    let (j, largest) = largest_alloc(|| {
        judge_reply(
            bytes,
            id,
            qname,
            qtype,
            Duration::from_millis(1),
            Transport::Udp,
        )
    });
    // Memory follows the bytes received, never the counts they claim: a
    // decoded record costs a few hundred bytes, and a record takes at least
    // 11 bytes on the wire.
    let bound = 4096 + bytes.len() * 64;
    assert!(
        largest <= bound,
        "{} bytes judged with a {largest}-byte allocation (bound {bound})",
        bytes.len()
    );
    let ours = bytes.len() >= 2 && u16::from_be_bytes([bytes[0], bytes[1]]) == id;
    match &j {
        Judged::Accept(r) => {
            assert!(ours, "accepted a reply with another ID");
            assert_eq!(r.size, bytes.len());
            let m = Message::from_vec(bytes).expect("accepted bytes decode");
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert!(m.queries.len() <= 1);
            if let Some(q) = m.queries.first() {
                assert!(q.name().eq_ignore_root(qname) && q.query_type() == qtype);
            }
        }
        Judged::Malformed { ours: o, .. } => assert_eq!(*o, ours),
        Judged::Mismatch => {}
    }
    j
}

#[test]
fn corpus_seeds_are_judged_as_expected() {
    for s in corpus() {
        let start = thread_cpu_time();
        let j = judge(&s.bytes, s.id, &s.qname, s.qtype);
        let took = thread_cpu_time().saturating_sub(start);
        eprintln!("{}: {} bytes judged in {took:?}", s.file, s.bytes.len());
        // Even the costliest 64 KiB message decodes well inside a probe
        // timeout (debug build; release is ~20× faster).
        assert!(took < Duration::from_secs(1), "{}: {took:?}", s.file);
        let kind = match &j {
            Judged::Accept(_) => "accept",
            Judged::Mismatch => "mismatch",
            Judged::Malformed { .. } => "malformed",
        };
        let want = if s.file.starts_with("nsd_") {
            "accept"
        } else {
            match s.file.as_str() {
                "hostile_oversize.bin" => "accept",
                "hostile_other_name.bin" | "hostile_other_type.bin" | "hostile_other_class.bin" => {
                    "mismatch"
                }
                _ => "malformed",
            }
        };
        assert_eq!(kind, want, "{}: {j:?}", s.file);
    }
}

#[test]
fn header_counts_do_not_size_allocations() {
    // Regression: a 12-byte header claiming 65535 questions made the decoder
    // reserve room for 65535 questions (megabytes) before failing.
    let mut b = vec![0u8; 12];
    b[0..2].copy_from_slice(&7u16.to_be_bytes());
    b[2] = 0x84;
    for i in (4..12).step_by(2) {
        b[i..i + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    }
    let (j, largest) = largest_alloc(|| {
        judge_reply(
            &b,
            7,
            &n("example.ru."),
            RecordType::SOA,
            Duration::ZERO,
            Transport::Tcp,
        )
    });
    assert!(matches!(j, Judged::Malformed { ours: true, .. }), "{j:?}");
    assert!(largest < 4096, "largest allocation {largest} bytes");
}

/// A random edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
    /// A compression pointer written at one place, to another.
    Pointer(prop::sample::Index, prop::sample::Index),
    /// A header count (0–3) set to a value.
    Count(usize, u16),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, 1 << b)),
        (
            any::<prop::sample::Index>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, k)| Edit::Remove(i, k)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Edit::Pointer(a, b)),
        (0usize..4, prop_oneof![0u16..4, any::<u16>()]).prop_map(|(c, v)| Edit::Count(c, v)),
    ]
}

fn apply(b: &mut Vec<u8>, e: &Edit) {
    if b.is_empty() {
        return;
    }
    match e {
        Edit::Set(i, v) => {
            let i = i.index(b.len());
            b[i] = *v;
        }
        Edit::Flip(i, m) => {
            let i = i.index(b.len());
            b[i] ^= m;
        }
        Edit::Insert(i, v) => {
            let i = i.index(b.len() + 1);
            b.splice(i..i, v.iter().copied());
        }
        Edit::Remove(i, k) => {
            let i = i.index(b.len());
            let end = (i + k).min(b.len());
            b.drain(i..end);
        }
        Edit::Truncate(i) => {
            let i = i.index(b.len());
            b.truncate(i);
        }
        Edit::Pointer(at, to) => {
            if b.len() >= 2 {
                let at = at.index(b.len() - 1);
                let to = to.index(b.len()) & 0x3FFF;
                b[at] = 0xC0 | (to >> 8) as u8;
                b[at + 1] = to as u8;
            }
        }
        Edit::Count(c, v) => {
            if b.len() >= 12 {
                let i = 4 + 2 * c;
                b[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

#[test]
fn longest_allowed_chains_decode_quickly() {
    // The costliest message the pointer-hop limit still lets through to the
    // decoder: a chain of exactly MAX_POINTER_HOPS links, then as many
    // records as fit whose owners each start at its end. (Addresses avoid
    // bytes that read as pointers: the limit counts every offset.)
    let q = query(0x2000, "example.ru.", RecordType::SOA, false);
    let mut v = support::dns::reply_head(&q, 0, 0, 0);
    let links = usize::from(zonekeeper::probe::MAX_POINTER_HOPS) - 1;
    let records = (65535 - v.len() - 12 - 2 * links) / 16;
    v = support::dns::reply_head(&q, 1 + records as u16, 0, 0);
    v.extend_from_slice(&[0xC0, 12]);
    v.extend_from_slice(&[0, 10, 0, 1, 0, 0, 0, 0]);
    v.extend_from_slice(&((2 * links) as u16).to_be_bytes());
    let mut prev = 12usize;
    for _ in 0..links {
        let here = v.len();
        v.extend_from_slice(&[0xC0 | (prev >> 8) as u8, prev as u8]);
        prev = here;
    }
    for i in 0..records {
        v.extend_from_slice(&[0xC0 | (prev >> 8) as u8, prev as u8]);
        v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 2, (i % 64) as u8]);
    }
    // This thread's CPU time, not the wall clock: the bound is on the
    // decoder's work, which other jobs on a loaded machine do not change.
    let start = thread_cpu_time();
    let j = judge(&v, 0x2000, &n("example.ru."), RecordType::SOA);
    let took = thread_cpu_time().saturating_sub(start);
    assert!(matches!(j, Judged::Accept(_)), "{j:?}");
    eprintln!("{} bytes at the hop limit judged in {took:?}", v.len());
    assert!(
        took < Duration::from_secs(1),
        "{} bytes took {took:?}",
        v.len()
    );
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Cases per property: small by default so the suite stays fast in a debug
/// build; `ZK_FUZZ_CASES=100000` for a long run (CI's bounded fuzz job).
fn cases() -> u32 {
    std::env::var("ZK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        id in any::<u16>(),
        take_id in any::<bool>(),
    ) {
        let id = if take_id && bytes.len() >= 2 {
            u16::from_be_bytes([bytes[0], bytes[1]])
        } else {
            id
        };
        judge(&bytes, id, &n("example.ru."), RecordType::SOA);
    }

    #[test]
    fn mutated_replies_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let seeds = corpus();
        let s = &seeds[seed.index(seeds.len())];
        let mut b = s.bytes.clone();
        for e in &edits {
            apply(&mut b, e);
        }
        judge(&b, s.id, &s.qname, s.qtype);
    }
}

// --- corpus capture -----------------------------------------------------------

/// Writes `tests/corpus/dns/`: replies of a real NSD to the engine's queries
/// and the hostile shapes. Run by hand (`--ignored`); the files are committed.
#[test]
#[ignore]
fn capture_corpus() {
    use std::net::UdpSocket;
    use support::dns::{FakeZone, Hostile};
    use support::nsd::{random_loopback, Nsd, ZoneSpec};

    let ip = random_loopback();
    let spec = ZoneSpec {
        domain: "example.ru",
        serial: 2026112301,
        rname: "hostmaster.example.ru.",
        ns: vec!["ns1.example.ru".into(), "ns2.example.ru".into()],
        hosts: vec![
            ("ns1.example.ru".into(), ip),
            ("ns2.example.ru".into(), "127.0.0.2".parse().unwrap()),
        ],
    };
    let nsd = Nsd::start(ip, &[("example.ru", spec.render())]);
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let ask = |q: &[u8]| -> Vec<u8> {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(q, nsd.addr).unwrap();
        let mut buf = vec![0u8; 65535];
        let (k, _) = s.recv_from(&mut buf).unwrap();
        buf.truncate(k);
        buf
    };
    let asks: &[(&str, &str, RecordType, bool)] = &[
        ("nsd_soa_edns", "example.ru.", RecordType::SOA, true),
        ("nsd_soa", "example.ru.", RecordType::SOA, false),
        ("nsd_ns", "example.ru.", RecordType::NS, true),
        ("nsd_a", "ns1.example.ru.", RecordType::A, true),
        ("nsd_aaaa_nodata", "ns1.example.ru.", RecordType::AAAA, true),
        ("nsd_nxdomain", "nope.example.ru.", RecordType::A, true),
        ("nsd_refused", "probe.example.com.", RecordType::A, true),
    ];
    for (i, (file, name, t, edns)) in asks.iter().enumerate() {
        let r = ask(&query(0x1000 + i as u16, name, *t, *edns));
        std::fs::write(dir.join(format!("{file}.bin")), r).unwrap();
    }
    let zone = FakeZone::new("example.ru", &["ns1.example.ru", "ns2.example.ru"]);
    let q = query(0x2000, "example.ru.", RecordType::SOA, true);
    for h in Hostile::ALL {
        let name = match h {
            Hostile::Oversize(_) => "oversize".to_string(),
            _ => snake(&format!("{h:?}")),
        };
        std::fs::write(dir.join(format!("hostile_{name}.bin")), h.reply(&q, &zone)).unwrap();
    }
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
