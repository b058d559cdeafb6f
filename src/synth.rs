//! Synthetic registries in the import format (docs/import.md): the shipped sample
//! in `fixtures/` and the 1M-domain data sets the benchmarks load.
//! Deterministic for a given seed; addresses are documentation ranges only.

use std::fmt::Write as _;

use rand::{rngs::StdRng, Rng, SeedableRng};
use sha2::{Digest, Sha256};

const SYLLABLES: &[&str] = &[
    "ka", "ro", "mi", "del", "tor", "vek", "sol", "nor", "ba", "zen", "lit", "mar", "pro", "sky",
    "net", "dom", "ser", "vol", "gra", "fin",
];
const CYRILLIC: &[&str] = &[
    "мир",
    "дом",
    "сад",
    "лес",
    "кот",
    "рай",
    "чай",
    "сок",
    "мёд",
    "пир",
    "свет",
    "снег",
    "город",
    "река",
    "море",
];
const FIRST: &[&str] = &[
    "Ivan", "Olga", "Pavel", "Anna", "Sergey", "Elena", "Dmitry", "Maria",
];
const LAST: &[&str] = &[
    "Petrov",
    "Ivanova",
    "Sidorov",
    "Smirnova",
    "Kuznetsov",
    "Popova",
];

/// The API token of sample registrar `handle` (documented in the README).
pub fn sample_token(handle: &str) -> String {
    format!("token-{}", handle.to_lowercase())
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Write a registry of `domains` domains as import JSON.
pub fn generate(domains: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let registrars = ["REGRU-RU", "RUCENTER-RU", "R01-RU", "NAUNET-RU"];
    let contacts = (domains / 2).max(4);
    let mut out = String::with_capacity(domains * 420 + contacts * 400);
    out.push_str("{\n\"registrars\": [\n");
    for (i, h) in registrars.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"handle\":\"{h}\",\"name\":\"Registrar {h} LLC\",\"url\":\"https://{}.example\",\"email\":\"abuse@{}.example\",\"api_token_sha256\":\"{}\"}}",
            if i > 0 { ",\n" } else { "" },
            h.to_lowercase(),
            h.to_lowercase(),
            sha256_hex(&sample_token(h))
        );
    }
    out.push_str("\n],\n\"contacts\": [\n");
    for i in 0..contacts {
        let org = i % 3 == 0;
        let disclose = match i % 4 {
            0 => "[]",
            1 => "[\"email\"]",
            2 => "[\"name\",\"email\",\"phone\"]",
            _ => "[\"name\",\"org\",\"email\",\"phone\",\"address\"]",
        };
        let name = format!("{} {}", FIRST[i % FIRST.len()], LAST[(i / 7) % LAST.len()]);
        let (kind, org_field) = if org {
            ("org", json_str(&format!("OOO Company {i}")))
        } else {
            ("person", "null".to_string())
        };
        let _ = write!(
            out,
            "{}{{\"handle\":\"C{i}-RU\",\"kind\":\"{kind}\",\"name\":{},\"org\":{org_field},\"email\":\"c{i}@mail.example\",\"phone\":\"+7.495{:07}\",\"address\":{{\"street\":[\"Tverskaya {}\"],\"city\":\"Moscow\",\"postal_code\":\"125009\",\"country\":\"RU\"}},\"tax_id\":\"77{:08}\",\"birth_date\":\"1980-01-{:02}\",\"passport\":\"4500 {:06}\",\"disclose\":{disclose},\"registrar\":\"{}\"}}",
            if i > 0 { ",\n" } else { "" },
            json_str(&name),
            i % 10_000_000,
            i % 200 + 1,
            i % 100_000_000,
            i % 28 + 1,
            i % 1_000_000,
            // Domains i and i + contacts name it: the file says whose it is.
            registrars[i % registrars.len()],
        );
    }
    out.push_str("\n],\n\"domains\": [\n");
    for i in 0..domains {
        let idn = i % 10 == 3;
        let mut label = String::new();
        if idn {
            label.push_str(CYRILLIC[rng.random_range(0..CYRILLIC.len())]);
            label.push_str(CYRILLIC[rng.random_range(0..CYRILLIC.len())]);
        } else {
            for _ in 0..rng.random_range(2..4) {
                label.push_str(SYLLABLES[rng.random_range(0..SYLLABLES.len())]);
            }
        }
        // The index keeps names unique.
        let name = if idn {
            format!("{label}{i}.рф")
        } else {
            format!("{label}{i}.ru")
        };
        let registrar = registrars[i % registrars.len()];
        let contact = i % contacts;
        let year = 2015 + (i % 11);
        let created = format!("{year}-{:02}-{:02}T10:00:00Z", i % 12 + 1, i % 28 + 1);
        let paid_till = format!("2027-{:02}-{:02}T10:00:00Z", i % 12 + 1, i % 28 + 1);
        let ns = match i % 20 {
            // Registered, not delegated.
            0 => String::new(),
            // In-bailiwick servers with glue (documentation addresses).
            1..=6 => {
                let a = i % 250 + 1;
                let b = (i / 250) % 250 + 1;
                format!(
                    "{{\"name\":\"ns1.{name}\",\"addresses\":[\"192.0.2.{a}\"]}},{{\"name\":\"ns2.{name}\",\"addresses\":[\"198.51.100.{b}\",\"2001:db8::{:x}\"]}}",
                    i % 65535 + 1
                )
            }
            // A hosting provider's servers.
            _ => {
                let h = i % 7;
                format!("{{\"name\":\"ns1.hosting{h}.example\"}},{{\"name\":\"ns2.hosting{h}.example\"}}")
            }
        };
        let extra = match i % 50 {
            7 => ",\"hold\":true",
            9 => ",\"verification_requested\":\"2026-11-01T00:00:00Z\"",
            11 => ",\"transferred\":\"2026-10-01T00:00:00Z\"",
            _ => "",
        };
        let _ = write!(
            out,
            "{}{{\"name\":{},\"registrar\":\"{registrar}\",\"registrant\":\"C{contact}-RU\",\"admin\":\"C{contact}-RU\",\"tech\":\"C{contact}-RU\",\"created\":\"{created}\",\"paid_till\":\"{paid_till}\",\"nameservers\":[{ns}],\"auth_info\":\"auth-{:x}\"{extra}}}",
            if i > 0 { ",\n" } else { "" },
            json_str(&name),
            rng.random::<u64>()
        );
    }
    out.push_str("\n]\n}\n");
    out
}
