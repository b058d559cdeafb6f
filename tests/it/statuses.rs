//! The one status model (docs/statuses.md) across every edge: for each
//! domain situation, EPP `domain:info` (Net::EPP), RDAP, WHOIS (the real
//! `whois` client) and the registrar API render the same row of one table,
//! the RFC 8056 mapping. Situations are written into the fixture store at
//! the manual clock's `now`.

use chrono::Duration;
use serde_json::Value;
use zonekeeper::clock::Clock;
use zonekeeper::model::{
    ClientStatus, DelegationRecord, DelegationState, Hold, Nameserver, PendingTransfer,
};
use zonekeeper::names::HostName;

use crate::epp::{start, A, B};
use crate::support::api::{send, token};
use crate::support::epp::code;

/// One row: the situation and what every protocol must show.
struct Row {
    situation: &'static str,
    /// EPP `<domain:status s>` values; also the API's `statuses`.
    epp: &'static [&'static str],
    /// RFC 3915 `rgp:infData` state; also the API's `rgp_status`.
    rgp: Option<&'static str>,
    /// RDAP `status`: RFC 8056's image of `epp` (`active` while in the zone).
    rdap: &'static [&'static str],
    /// WHOIS `state:` (no words for the registrar-change locks).
    whois: &'static str,
}

const TABLE: &[Row] = &[
    Row {
        situation: "plain delegated",
        epp: &["ok"],
        rgp: None,
        rdap: &["active"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "transfer lock",
        epp: &["serverTransferProhibited"],
        rgp: None,
        rdap: &["active", "server transfer prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "registrant lock",
        epp: &["serverDeleteProhibited"],
        rgp: None,
        rdap: &["active", "server delete prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "verification overdue",
        epp: &["inactive", "serverHold"],
        rgp: None,
        rdap: &["inactive", "server hold"],
        whois: "REGISTERED, NOT DELEGATED, UNVERIFIED, VERIFICATION OVERDUE",
    },
    Row {
        situation: "expired in grace",
        epp: &["inactive", "pendingDelete"],
        rgp: Some("redemptionPeriod"),
        rdap: &["inactive", "pending delete", "redemption period"],
        whois: "REGISTERED, NOT DELEGATED, VERIFIED, EXPIRED",
    },
    Row {
        situation: "testing",
        epp: &["inactive", "pendingUpdate"],
        rgp: None,
        rdap: &["inactive", "pending update"],
        whois: "REGISTERED, NOT DELEGATED, VERIFIED, TESTING",
    },
    Row {
        situation: "disputed and expired",
        epp: &[
            "inactive",
            "serverUpdateProhibited",
            "serverTransferProhibited",
            "serverDeleteProhibited",
            "serverRenewProhibited",
        ],
        rgp: None,
        rdap: &[
            "inactive",
            "server update prohibited",
            "server transfer prohibited",
            "server delete prohibited",
            "server renew prohibited",
        ],
        whois: "REGISTERED, NOT DELEGATED, VERIFIED, DISPUTE LOCK",
    },
    Row {
        situation: "pending transfer",
        epp: &["pendingTransfer"],
        rgp: None,
        rdap: &["active", "pending transfer"],
        whois: "REGISTERED, DELEGATED, VERIFIED, PENDING TRANSFER",
    },
    Row {
        situation: "hold",
        epp: &[
            "inactive",
            "serverHold",
            "serverUpdateProhibited",
            "serverTransferProhibited",
            "serverDeleteProhibited",
            "serverRenewProhibited",
        ],
        rgp: None,
        rdap: &[
            "inactive",
            "server hold",
            "server update prohibited",
            "server transfer prohibited",
            "server delete prohibited",
            "server renew prohibited",
        ],
        whois: "REGISTERED, NOT DELEGATED, VERIFIED, HOLD",
    },
    // The sponsor's own statuses (docs/statuses.md "Registrar-set statuses").
    Row {
        situation: "client hold",
        epp: &["inactive", "clientHold"],
        rgp: None,
        rdap: &["inactive", "client hold"],
        whois: "REGISTERED, NOT DELEGATED, VERIFIED, CLIENT HOLD",
    },
    Row {
        situation: "client update prohibited",
        epp: &["clientUpdateProhibited"],
        rgp: None,
        rdap: &["active", "client update prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "client transfer prohibited",
        epp: &["clientTransferProhibited"],
        rgp: None,
        rdap: &["active", "client transfer prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "client delete prohibited",
        epp: &["clientDeleteProhibited"],
        rgp: None,
        rdap: &["active", "client delete prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
    Row {
        situation: "client renew prohibited",
        epp: &["clientRenewProhibited"],
        rgp: None,
        rdap: &["active", "client renew prohibited"],
        whois: "REGISTERED, DELEGATED, VERIFIED",
    },
];

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    s.split(open)
        .skip(1)
        .filter_map(|x| x.split_once(close).map(|(v, _)| v))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn event(v: &Value, action: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    v["events"]
        .as_array()?
        .iter()
        .find(|e| e["eventAction"] == action)
        .and_then(|e| e["eventDate"].as_str())
        .and_then(|t| t.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_status_table_across_epp_rdap_whois_and_api() {
    let env = start(|_| {}).await;
    let now = env.s.clock.now();
    let day = Duration::days(1);
    let names = env.s.domains_of(A, 1000);
    assert!(names.len() >= TABLE.len(), "fixture domains of {A}");
    // Build each situation on its own domain of registrar A, in one
    // transaction: the registration and its delegation record.
    let mut txn = env.s.store().begin().unwrap();
    for (row, name) in TABLE.iter().zip(&names) {
        let mut d = env.s.store().domain(name).unwrap().unwrap();
        d.created = now - day * 400;
        d.paid_till = now + day * 200;
        d.transferred = None;
        d.hold = None;
        d.verification_requested = None;
        d.registration = Default::default();
        d.auth_info = None;
        d.nameservers = ["ns1.example.net", "ns2.example.org"]
            .into_iter()
            .map(|n| Nameserver {
                name: HostName::from_trusted(n.into()),
                addresses: vec![],
            })
            .collect();
        let mut rec = DelegationRecord::undelegated(now - day * 399);
        rec.state = DelegationState::Delegated;
        rec.delegated_at = Some(now - day * 399);
        rec.published = d.nameservers.clone();
        match row.situation {
            "plain delegated" => {}
            "transfer lock" => d.created = now - day * 10,
            "registrant lock" => d.registration.registrant_since = Some(now - day * 10),
            "verification overdue" => d.verification_requested = Some(now - day * 15),
            "expired in grace" => d.paid_till = now - day * 5,
            "testing" => {
                rec = DelegationRecord::undelegated(now - day);
                rec.state = DelegationState::Testing;
                rec.window_start = Some(now - day);
                rec.window_end = Some(now + day * 3);
            }
            "disputed and expired" => {
                d.paid_till = now - day * 5;
                d.nameservers.clear();
                rec = DelegationRecord::undelegated(now - day * 399);
                d.registration.dispute = Some(Hold {
                    since: now - day * 20,
                    reason: "court case".into(),
                });
            }
            "pending transfer" => {
                d.registration.pending_transfer = Some(PendingTransfer {
                    to: B.into(),
                    requested: now - day,
                    auto_approve: now + day * 4,
                })
            }
            "hold" => {
                d.hold = Some(Hold {
                    since: now - day,
                    reason: "court order".into(),
                })
            }
            client if client.starts_with("client ") => {
                let s = row.epp.last().copied().unwrap_or_default();
                let c = ClientStatus::parse(s).expect("a client status");
                d.registration.client_statuses = [c].into();
            }
            other => panic!("no setup for {other}"),
        }
        txn.put_domain(&d).unwrap();
        txn.put_delegation(name, &rec).unwrap();
    }
    txn.commit(now).unwrap();

    let rows: Vec<(&Row, String)> = TABLE.iter().zip(names).collect();
    // EPP domain:info, as the sponsor (RGP shown to the sponsor).
    let e = std::sync::Arc::new(env);
    let infos = {
        let e = e.clone();
        let names: Vec<String> = rows.iter().map(|(_, n)| n.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let mut a = e.logged_in(0);
            names
                .iter()
                .map(|n| {
                    let r = a.cmd(&crate::epp::domain_cmd(
                        "info",
                        &format!("<domain:name>{n}</domain:name>"),
                    ));
                    assert_eq!(code(&r), 1000, "{r}");
                    r
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };
    let tok = token(A);
    for ((row, name), info) in rows.iter().zip(infos) {
        let what = format!("{} ({name})", row.situation);
        // EPP.
        let epp = between(&info, r#"<domain:status s=""#, "\"");
        assert_eq!(epp, row.epp, "EPP {what}: {info}");
        let rgp = between(&info, r#"<rgp:rgpStatus s=""#, "\"");
        assert_eq!(rgp.first().copied(), row.rgp, "RGP {what}: {info}");
        // RDAP.
        let (st, v) = send(e.s.get(&format!("/rdap/domain/{name}"), None)).await;
        assert_eq!(st, 200, "{what}: {v}");
        assert_eq!(strings(&v["status"]), row.rdap, "RDAP {what}");
        let exp = event(&v, "expiration").expect("expiration event");
        match event(&v, "deletion") {
            Some(del) => {
                assert!(row.epp.contains(&"pendingDelete"), "{what}: {v}");
                assert!(del >= exp, "deletion before expiration: {what}: {v}");
                assert_eq!(del, exp + day * 30, "freed at paid_till + grace: {what}");
            }
            None => assert!(!row.epp.contains(&"pendingDelete"), "{what}: {v}"),
        }
        // WHOIS.
        let w = e.whois(name);
        let state = w
            .lines()
            .find_map(|l| l.strip_prefix("state:"))
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        assert_eq!(state, row.whois, "WHOIS {what}: {w}");
        // API.
        let (st, v) = send(e.s.get(&format!("/api/v1/domains/{name}"), Some(&tok))).await;
        assert_eq!(st, 200, "{what}: {v}");
        assert_eq!(strings(&v["statuses"]), row.epp, "API {what}: {v}");
        assert_eq!(v["rgp_status"].as_str(), row.rgp, "API {what}: {v}");
        assert_eq!(
            strings(&v["lock_statuses"]),
            row.rdap[1..],
            "API lock_statuses {what}: {v}"
        );
    }
}
