//! What one exchange with a server yields ([`Reply`], [`Outcome`], one
//! query's [`QueryResult`]) and how an address is shown: the types every
//! part of the prober shares (a leaf: it imports no other part).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// An address as findings and metrics show it: without the port when it
/// is 53.
pub fn show_addr(a: SocketAddr) -> String {
    if a.port() == 53 {
        a.ip().to_string()
    } else {
        a.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// A decoded reply that matched its query (ID, question, source).
#[derive(Debug, Clone)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub aa: bool,
    pub tc: bool,
    pub ra: bool,
    /// The reply carried an OPT record.
    pub edns: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    pub rtt: Duration,
    /// Size on the wire, bytes.
    pub size: usize,
    pub transport: Transport,
}

impl Reply {
    /// Records of `rtype` owned by `name` in the answer section.
    pub fn answer_rdata<'a>(
        &'a self,
        name: &'a Name,
        rtype: RecordType,
    ) -> impl Iterator<Item = &'a RData> + 'a {
        self.answers
            .iter()
            .filter(move |r| r.record_type() == rtype && r.name.eq_ignore_root(name))
            .map(|r| &r.data)
    }
}

/// What became of one exchange.
#[derive(Debug, Clone)]
pub enum Outcome {
    Reply(Reply),
    /// No matching reply before the deadline (after bounded retries).
    Timeout,
    /// Transport error: connection refused, reset, closed early…
    Io(String),
    /// Bytes that are not a DNS message (or not a decodable one).
    Malformed(String),
}

impl Outcome {
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Reply(r) => Some(r),
            _ => None,
        }
    }
    /// Something came back from the server, decodable or not.
    pub fn answered(&self) -> bool {
        matches!(self, Outcome::Reply(_) | Outcome::Malformed(_))
    }
}

/// One query as asked, with the TCP retry made after a truncated UDP reply.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub qname: Name,
    pub qtype: RecordType,
    pub transport: Transport,
    pub edns: bool,
    pub first: Outcome,
    /// The retry, if `first` called for one: the same query without EDNS
    /// after FORMERR/NOTIMP, and/or over TCP after a truncated UDP reply.
    pub fallback: Option<Outcome>,
}

impl QueryResult {
    /// The outcome to judge: the TCP retry if there was one.
    pub fn last(&self) -> &Outcome {
        self.fallback.as_ref().unwrap_or(&self.first)
    }
    pub fn reply(&self) -> Option<&Reply> {
        self.last().reply()
    }
    /// The first reply was truncated UDP.
    pub fn truncated(&self) -> bool {
        self.first.reply().is_some_and(|r| r.tc)
    }
    pub fn answered(&self) -> bool {
        self.first.answered() || self.fallback.as_ref().is_some_and(Outcome::answered)
    }
}
