//! DS records as registrars declare them (docs/import.md `ds`, docs/cli.md `check --ds`):
//! syntax validation shared by every edge (import, the registrar API, EPP
//! secDNS, the CLI), applied by the registry itself. Which
//! algorithms and digest types the registry *accepts* is a check
//! ([`crate::checks::dnssec`], profile-configurable), not syntax: a DS with
//! a SHA-1 digest is well-formed and is refused by the check.

use serde::Deserialize;

use crate::model::DsRecord;

/// Most DS records per domain: a rollover needs two or three, a few
/// algorithms and digest types at once a handful more.
pub const MAX_DS: usize = 16;

/// Digest length in bytes for the DS digest types of the IANA registry
/// (RFC 4034 §5.1.4, RFC 4509, RFC 5933, RFC 6605, RFC 9558, RFC 9563).
pub fn digest_len(digest_type: u8) -> Option<usize> {
    match digest_type {
        1 => Some(20), // SHA-1
        2 => Some(32), // SHA-256
        3 => Some(32), // GOST R 34.11-94
        4 => Some(48), // SHA-384
        5 => Some(32), // GOST R 34.11-2012 (256-bit)
        6 => Some(32), // SM3
        _ => None,
    }
}

/// A DS record as it comes in (JSON): numbers wide enough that an out-of-range
/// value gets our message, not serde's.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DsIn {
    pub key_tag: i64,
    pub algorithm: i64,
    pub digest_type: i64,
    pub digest: String,
}

impl From<&DsRecord> for DsIn {
    fn from(d: &DsRecord) -> Self {
        Self {
            key_tag: d.key_tag.into(),
            algorithm: d.algorithm.into(),
            digest_type: d.digest_type.into(),
            digest: d.digest.clone(),
        }
    }
}

/// Validate one DS record; errors are `(field, reason)`.
pub fn validate_one(d: &DsIn) -> Result<DsRecord, Vec<(&'static str, String)>> {
    let mut errs = Vec::new();
    let key_tag = u16::try_from(d.key_tag).map_err(|_| {
        (
            "key_tag",
            format!("{} is not a key tag (0-65535)", d.key_tag),
        )
    });
    let algorithm = match u8::try_from(d.algorithm) {
        Ok(0) => Err((
            "algorithm",
            "algorithm 0 is reserved (it only means 'delete' in CDS, RFC 8078)".to_string(),
        )),
        Ok(a @ (1..=16 | 253 | 254)) => Ok(a),
        Ok(a) => Err((
            "algorithm",
            format!("{a} is not an assigned DNSSEC algorithm number"),
        )),
        Err(_) => Err((
            "algorithm",
            format!("{} is not an algorithm number (1-255)", d.algorithm),
        )),
    };
    let digest_type = u8::try_from(d.digest_type)
        .ok()
        .filter(|t| digest_len(*t).is_some())
        .ok_or_else(|| {
            (
                "digest_type",
                format!(
                    "{} is not a known DS digest type (1 SHA-1, 2 SHA-256, 3 GOST, 4 SHA-384, 5 GOST 2012, 6 SM3)",
                    d.digest_type
                ),
            )
        });
    // Whitespace is allowed inside the hex (RFC 4034 §5.3).
    let hex_text: String = d
        .digest
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let digest = if hex_text.is_empty() {
        Err(("digest", "is empty".to_string()))
    } else if hex_text.len() > 256 {
        Err(("digest", "is longer than 128 bytes".to_string()))
    } else {
        match hex::decode(&hex_text) {
            Ok(b) => Ok(b),
            Err(_) => Err(("digest", "is not hexadecimal".to_string())),
        }
    };
    if let (Ok(t), Ok(b)) = (&digest_type, &digest) {
        if let Some(want) = digest_len(*t) {
            if b.len() != want {
                errs.push((
                    "digest",
                    format!(
                        "is {} bytes; digest type {t} needs {want} ({} hex digits)",
                        b.len(),
                        want * 2
                    ),
                ));
            }
        }
    }
    match (key_tag, algorithm, digest_type, digest) {
        (Ok(key_tag), Ok(algorithm), Ok(digest_type), Ok(b)) if errs.is_empty() => Ok(DsRecord {
            key_tag,
            algorithm,
            digest_type,
            digest: hex::encode(b),
        }),
        (a, b, c, d) => {
            errs.extend(a.err());
            errs.extend(b.err());
            errs.extend(c.err());
            errs.extend(d.err());
            Err(errs)
        }
    }
}

/// Validate a declared DS set (import, API). `has_ns`: a DS set needs a
/// delegation to sit next to. Errors are `(field, reason)` with fields
/// like `ds[1].digest`.
pub fn validate_set(ds: &[DsIn], has_ns: bool) -> Result<Vec<DsRecord>, Vec<(String, String)>> {
    let mut errs: Vec<(String, String)> = Vec::new();
    if ds.len() > MAX_DS {
        errs.push(("ds".into(), format!("more than {MAX_DS} DS records")));
        return Err(errs);
    }
    if !ds.is_empty() && !has_ns {
        errs.push((
            "ds".into(),
            "a DS set needs nameservers: declare them first (or with it)".into(),
        ));
    }
    let mut out: Vec<DsRecord> = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        match validate_one(d) {
            Ok(r) => {
                if out.contains(&r) {
                    errs.push((format!("ds[{i}]"), "is declared twice".into()));
                } else {
                    out.push(r);
                }
            }
            Err(e) => errs.extend(e.into_iter().map(|(f, r)| (format!("ds[{i}].{f}"), r))),
        }
    }
    if errs.is_empty() {
        out.sort();
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Parse the presentation form `KEYTAG ALG DIGESTTYPE HEXDIGEST` (docs/cli.md
/// `--ds`); the digest may contain spaces.
pub fn parse_presentation(s: &str) -> Result<DsRecord, String> {
    let mut it = s.split_ascii_whitespace();
    let mut num = |what: &str| -> Result<i64, String> {
        let t = it
            .next()
            .ok_or_else(|| format!("DS '{s}': missing {what} (want KEYTAG ALG DIGESTTYPE HEX)"))?;
        t.parse::<i64>()
            .map_err(|_| format!("DS '{s}': {what} '{t}' is not a number"))
    };
    let key_tag = num("key tag")?;
    let algorithm = num("algorithm")?;
    let digest_type = num("digest type")?;
    let digest: String = it.collect();
    validate_one(&DsIn {
        key_tag,
        algorithm,
        digest_type,
        digest,
    })
    .map_err(|e| {
        let parts: Vec<String> = e.into_iter().map(|(f, r)| format!("{f} {r}")).collect();
        format!("DS '{s}': {}", parts.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(kt: i64, a: i64, t: i64, d: &str) -> DsIn {
        DsIn {
            key_tag: kt,
            algorithm: a,
            digest_type: t,
            digest: d.into(),
        }
    }

    #[test]
    fn validates_lengths_hex_and_numbers() {
        let h32 = "AB".repeat(32);
        let r = validate_one(&ds(12345, 13, 2, &h32)).unwrap();
        assert_eq!(r.digest, "ab".repeat(32));
        assert_eq!(r.to_string(), format!("12345 13 2 {}", "AB".repeat(32)));
        let e = validate_one(&ds(12345, 13, 2, &"ab".repeat(20))).unwrap_err();
        assert!(e[0].1.contains("needs 32"), "{e:?}");
        assert!(validate_one(&ds(12345, 13, 4, &h32)).is_err());
        assert!(validate_one(&ds(12345, 13, 4, &"ab".repeat(48))).is_ok());
        assert!(validate_one(&ds(12345, 13, 1, &"ab".repeat(20))).is_ok());
        assert!(validate_one(&ds(70000, 13, 2, &h32)).is_err());
        assert!(validate_one(&ds(1, 0, 2, &h32)).is_err());
        assert!(validate_one(&ds(1, 300, 2, &h32)).is_err());
        assert!(validate_one(&ds(1, 13, 9, &h32)).is_err());
        assert!(validate_one(&ds(1, 13, 2, "zz")).is_err());
        assert!(validate_one(&ds(1, 13, 2, "")).is_err());
        let all = validate_one(&ds(-1, 0, 0, "x")).unwrap_err();
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn sets_need_nameservers_and_no_duplicates() {
        let h32 = "ab".repeat(32);
        let one = ds(1, 13, 2, &h32);
        assert!(validate_set(std::slice::from_ref(&one), false).is_err());
        assert_eq!(
            validate_set(std::slice::from_ref(&one), true)
                .unwrap()
                .len(),
            1
        );
        let e = validate_set(&[one.clone(), one.clone()], true).unwrap_err();
        assert_eq!(e[0].0, "ds[1]");
        let many = vec![one; MAX_DS + 1];
        assert!(validate_set(&many, true).is_err());
    }

    #[test]
    fn parses_presentation_form() {
        let r = parse_presentation("2371 13 2 AB CD ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd").unwrap();
        assert_eq!(r.key_tag, 2371);
        assert_eq!(r.digest.len(), 64);
        assert!(parse_presentation("2371 13")
            .unwrap_err()
            .contains("digest type"));
        assert!(parse_presentation("x 13 2 ab")
            .unwrap_err()
            .contains("key tag"));
        assert!(parse_presentation("1 13 2 abcd")
            .unwrap_err()
            .contains("needs 32"));
    }
}
