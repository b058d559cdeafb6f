//! The DNS message of a probe: the query built, the reply judged (ID,
//! question, source, size and compression bounds), TCP framing read.
//! The exchanges themselves are [`super::exchange`]'s.

use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::answer::{Reply, Transport};

/// EDNS(0) UDP payload size we advertise (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest DNS message accepted (the TCP length prefix bounds it anyway).
pub const MAX_MESSAGE: usize = 65535;

pub(super) struct Question<'a> {
    pub name: &'a Name,
    pub qtype: RecordType,
    pub edns: bool,
    pub rd: bool,
    /// EDNS DO bit (RFC 3225): ask for DNSSEC records.
    pub dnssec_ok: bool,
}

pub(super) fn build(q: &Question<'_>, id: u16) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = q.rd;
    let mut query = Query::query(q.name.clone(), q.qtype);
    query.set_query_class(DNSClass::IN);
    m.add_query(query);
    if q.edns {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        e.set_version(0);
        e.set_dnssec_ok(q.dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().map_err(|e| format!("cannot encode query: {e}"))
}

/// What the engine makes of the bytes received for one query.
#[derive(Debug)]
pub enum Judged {
    /// The reply to this query.
    Accept(Box<Reply>),
    /// Not the reply to this query (wrong ID, not a response, other
    /// question): ignore it and keep waiting.
    Mismatch,
    /// Undecodable. `ours` when the first two bytes carry our ID.
    Malformed { why: String, ours: bool },
}

/// Smallest wire size of a question (root name, type, class) and of a
/// resource record (root name, type, class, TTL, RDLENGTH).
const MIN_QUESTION: usize = 5;
const MIN_RECORD: usize = 11;
const HEADER: usize = 12;

/// Header counts that cannot fit in `bytes`: such a message is malformed
/// whatever follows, and the decoder would size buffers from the counts.
fn counts_overflow(bytes: &[u8]) -> Option<String> {
    let rest = bytes.len().checked_sub(HEADER)?;
    let count = |i: usize| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let need = qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD;
    (need > rest).then(|| {
        format!(
            "header counts ({qd} questions, {an}+{ns}+{ar} records) need at least {} bytes, message has {}",
            need + HEADER,
            bytes.len()
        )
    })
}

/// Most compression pointers followed while decoding one name. A name has
/// at most 127 labels (255 bytes), so an honest encoder never needs more;
/// the decoder itself bounds only the direction of pointers, and a 64 KiB
/// message of records whose owners sit at the end of an 8000-link backward
/// chain takes seconds of CPU to decode.
pub const MAX_POINTER_HOPS: u8 = 128;

/// A name in `bytes` whose decoding would follow more than
/// [`MAX_POINTER_HOPS`] pointers. Every offset that could start a pointer is
/// checked (names hide in RDATA of many types), in one pass that skips at
/// most a name's worth of labels per offset: `hops[p]` is the number of
/// pointers followed from a pointer at `p`, and a pointer's target lies
/// before it, so it is known when `p` is reached. Counting also follows
/// pointer-like bytes that are not names, so it can only over-count; that
/// matters only near the limit, far beyond any honest encoder's chains
/// (one or two links).
fn pointer_chain_too_long(bytes: &[u8]) -> Option<String> {
    let mut hops = vec![0u8; bytes.len()];
    for p in 0..bytes.len().saturating_sub(1) {
        if bytes[p] & 0xC0 != 0xC0 {
            continue;
        }
        let target = usize::from(u16::from_be_bytes([bytes[p] & 0x3F, bytes[p + 1]]));
        if target >= p {
            // The decoder refuses forward and self pointers outright.
            hops[p] = 1;
            continue;
        }
        // Skip the labels at the target (at most a name's worth, all before
        // `p`) to the pointer, if any, that continues the name.
        let mut i = target;
        let mut next = 0;
        for _ in 0..128 {
            let Some(&l) = bytes.get(i) else { break };
            if l == 0 || i >= p {
                break;
            }
            if l & 0xC0 == 0xC0 {
                next = hops[i];
                break;
            }
            if l & 0xC0 != 0 {
                break;
            }
            i += 1 + usize::from(l);
        }
        hops[p] = next.saturating_add(1);
        if hops[p] > MAX_POINTER_HOPS {
            return Some(format!(
                "compression pointer at offset {p} starts a chain of more than {MAX_POINTER_HOPS} pointers"
            ));
        }
    }
    None
}

/// Pure: what the probe engine does with the bytes received for a query
/// with `id`, `qname`, `qtype` (class IN). Both transports go through it.
pub fn judge_reply(
    bytes: &[u8],
    id: u16,
    qname: &Name,
    qtype: RecordType,
    rtt: Duration,
    transport: Transport,
) -> Judged {
    let ours = bytes.len() >= 2 && u16::from_be_bytes([bytes[0], bytes[1]]) == id;
    if let Some(why) = counts_overflow(bytes) {
        return Judged::Malformed { why, ours };
    }
    if let Some(why) = pointer_chain_too_long(bytes) {
        return Judged::Malformed { why, ours };
    }
    // The decoder is not expected to panic, but bytes from the network must
    // never take the process down.
    let decoded = std::panic::catch_unwind(|| Message::from_vec(bytes));
    let msg = match decoded {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return Judged::Malformed {
                why: format!("undecodable {} bytes: {e}", bytes.len()),
                ours,
            }
        }
        Err(_) => {
            return Judged::Malformed {
                why: format!("undecodable {} bytes", bytes.len()),
                ours,
            }
        }
    };
    let md = &msg.metadata;
    if md.id != id || md.message_type != MessageType::Response {
        return Judged::Mismatch;
    }
    let question_ok = match msg.queries.as_slice() {
        [one] => {
            one.name().eq_ignore_root(qname)
                && one.query_type() == qtype
                && one.query_class() == DNSClass::IN
        }
        // RFC 1035 lets error replies (FORMERR…) omit the question.
        [] => md.response_code != ResponseCode::NoError,
        _ => false,
    };
    if !question_ok {
        return Judged::Mismatch;
    }
    Judged::Accept(Box::new(Reply {
        rcode: md.response_code,
        aa: md.authoritative,
        tc: md.truncation,
        ra: md.recursion_available,
        edns: msg.edns.is_some(),
        answers: msg.answers,
        authorities: msg.authorities,
        additionals: msg.additionals,
        rtt,
        size: bytes.len(),
        transport,
    }))
}

pub(super) fn judge(
    bytes: &[u8],
    id: u16,
    q: &Question<'_>,
    rtt: Duration,
    transport: Transport,
) -> Judged {
    judge_reply(bytes, id, q.name, q.qtype, rtt, transport)
}

/// Reads exactly `n` bytes. The buffer grows with the bytes that actually
/// arrive (a 64 KiB length prefix followed by silence or a slow drip costs
/// no 64 KiB up front) and never past `n` (`read_to_end` would double it to
/// 128 KiB for a 64 KiB message).
pub(super) async fn read_message<R: AsyncRead + Unpin>(
    s: &mut R,
    n: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < n {
        let want = (n - buf.len()).min(chunk.len());
        let k = s.read(&mut chunk[..want]).await?;
        if k == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if buf.capacity() - buf.len() < k {
            // Double, but never past the announced length: len + k <= n,
            // and twice a capacity of at least 4096 covers another chunk.
            let target = (buf.capacity() * 2).max(chunk.len()).min(n);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn ptr(at: usize) -> [u8; 2] {
        [0xC0 | (at >> 8) as u8, at as u8]
    }

    /// A header, then `links` pointers each to the one before (the first to
    /// offset 12, a root label).
    fn chain(links: usize) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.push(0);
        let mut prev = 12;
        for _ in 0..links {
            let here = v.len();
            v.extend_from_slice(&ptr(prev));
            prev = here;
        }
        v
    }

    #[test]
    fn pointer_chains_up_to_the_limit_pass() {
        assert_eq!(
            pointer_chain_too_long(&chain(usize::from(MAX_POINTER_HOPS))),
            None
        );
        assert!(pointer_chain_too_long(&chain(usize::from(MAX_POINTER_HOPS) + 1)).is_some());
        assert!(pointer_chain_too_long(&chain(8000)).is_some());
    }

    #[test]
    fn labels_between_pointers_count_the_pointers_only() {
        // "a" + pointer, repeated: each hop reads one label then follows.
        let mut v = vec![0u8; 12];
        v.push(0);
        let mut prev = 12;
        for _ in 0..200 {
            let here = v.len();
            v.extend_from_slice(&[1, b'a']);
            v.extend_from_slice(&ptr(prev));
            prev = here;
        }
        assert!(pointer_chain_too_long(&v).is_some());
        assert_eq!(pointer_chain_too_long(&v[..12 + 1 + 4 * 100]), None);
    }

    #[tokio::test]
    async fn read_message_never_holds_more_than_the_message() {
        for n in [0usize, 1, 100, 4096, 4097, 40_000, MAX_MESSAGE] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            // A reader that returns a few bytes at a time, like a slow peer.
            let (mut w, mut r) = tokio::io::duplex(97);
            let send = data.clone();
            let writer = tokio::spawn(async move { w.write_all(&send).await });
            let got = read_message(&mut r, n).await.unwrap();
            writer.await.unwrap().unwrap();
            assert_eq!(got, data);
            assert!(
                got.capacity() <= n.max(1),
                "{n}: capacity {}",
                got.capacity()
            );
        }
        // Fewer bytes than announced, then end of stream.
        let (mut w, mut r) = tokio::io::duplex(64);
        w.write_all(&[1, 2, 3]).await.unwrap();
        drop(w);
        let e = read_message(&mut r, 10).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn self_and_forward_pointers_are_left_to_the_decoder() {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&ptr(12));
        v.extend_from_slice(&ptr(20));
        assert_eq!(pointer_chain_too_long(&v), None);
        assert_eq!(pointer_chain_too_long(&[]), None);
        assert_eq!(pointer_chain_too_long(&[0xC0]), None);
    }
}
