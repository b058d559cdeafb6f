//! Lab zone signing with the real signer of `ldnsutils` (`ldns-keygen`,
//! `ldns-signzone`, `ldns-key2ds`) and the cross-check with a real
//! validator (`ldns-verify-zone -k DS`, no network: without `-S` it does
//! not chase). Under `CI=true` a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TOOLS: [&str; 4] = [
    "/usr/bin/ldns-keygen",
    "/usr/bin/ldns-signzone",
    "/usr/bin/ldns-key2ds",
    "/usr/bin/ldns-verify-zone",
];

/// Are the tools here? Panics under CI when not (never skip silently there).
pub fn tools_present() -> bool {
    let ok = TOOLS.iter().all(|t| Path::new(t).exists());
    if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("ldnsutils (ldns-keygen, ldns-signzone, ldns-verify-zone) are required under CI");
    }
    ok
}

fn run(dir: &Path, cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A key made by `ldns-keygen` in a lab directory.
pub struct Key {
    /// Base name (`K<zone>.+<alg>+<tag>`), relative to the lab directory.
    pub base: String,
    pub dir: PathBuf,
}

impl Key {
    /// The DS of this key with `digest_type` (1 or 2 or 4) in the `--ds`
    /// form `KEYTAG ALG DIGESTTYPE HEX`.
    pub fn ds(&self, digest_type: u8) -> String {
        let flag = match digest_type {
            1 => "-1",
            2 => "-2",
            4 => "-4",
            _ => panic!("digest type {digest_type}"),
        };
        let line = run(
            &self.dir,
            "/usr/bin/ldns-key2ds",
            &["-n", flag, &format!("{}.key", self.base)],
        );
        // "example.ru.\t3600\tIN\tDS\t65452 13 2 55e0…"
        let rdata = line.split("DS").nth(1).expect("DS rdata").trim();
        rdata.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The RDATA of this key's DNSKEY (`FLAGS 3 ALG BASE64`), e.g. for a
    /// CDNSKEY record.
    pub fn dnskey_rdata(&self) -> String {
        let line = self.dnskey();
        let rdata = line.split("DNSKEY").nth(1).expect("DNSKEY rdata").trim();
        rdata.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The DNSKEY record line of this key.
    pub fn dnskey(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.key", self.base)))
            .unwrap()
            .lines()
            .find(|l| l.contains("DNSKEY"))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string()
    }
}

/// A lab directory holding keys and signed zones.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub zone: String,
}

/// How to sign.
#[derive(Default)]
pub struct SignOpts<'a> {
    /// `-i` / `-e` (YYYYMMDD[hhmmss] or epoch seconds).
    pub inception: Option<&'a str>,
    pub expiration: Option<&'a str>,
    /// NSEC3 with this many iterations and salt (hex, "" for none).
    pub nsec3: Option<(u16, &'a str)>,
    /// Extra records added to the zone text before signing.
    pub extra: Vec<String>,
}

impl SignOpts<'static> {
    /// Signatures that expired long ago (valid in January 2020 only).
    pub fn expired() -> Self {
        SignOpts {
            inception: Some("20200101000000"),
            expiration: Some("20200201000000"),
            ..Default::default()
        }
    }

    /// The default signing with one record added to the zone first (a CDS
    /// or CDNSKEY the zone publishes).
    pub fn with_extra(record: String) -> Self {
        SignOpts {
            extra: vec![record],
            ..Default::default()
        }
    }
}

impl Lab {
    pub fn new(zone: &str) -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
            zone: zone.to_string(),
        }
    }

    /// `ldns-keygen -a ALG [-k] ZONE` (KSK with flags 257 when `ksk`).
    pub fn keygen(&self, alg: &str, ksk: bool) -> Key {
        let mut args = vec!["-a", alg];
        if ksk {
            args.push("-k");
        }
        if alg.starts_with("RSA") {
            args.extend(["-b", "2048"]);
        }
        args.push(&self.zone);
        let base = run(self.dir.path(), "/usr/bin/ldns-keygen", &args);
        Key {
            base,
            dir: self.dir.path().to_path_buf(),
        }
    }

    /// Sign `text` with `keys`; returns the signed zone text (and leaves
    /// it in `<file>.signed` for the validator).
    pub fn sign(&self, file: &str, text: &str, keys: &[&Key], o: &SignOpts<'_>) -> String {
        let mut text = text.to_string();
        for e in &o.extra {
            text.push_str(e);
            text.push('\n');
        }
        std::fs::write(self.dir.path().join(file), text).unwrap();
        let mut args: Vec<String> = vec!["-o".into(), self.zone.clone()];
        if let Some(i) = o.inception {
            args.extend(["-i".into(), i.into()]);
        }
        if let Some(e) = o.expiration {
            args.extend(["-e".into(), e.into()]);
        }
        if let Some((it, salt)) = o.nsec3 {
            args.extend(["-n".into(), "-t".into(), it.to_string()]);
            if !salt.is_empty() {
                args.extend(["-s".into(), salt.into()]);
            }
        }
        args.push(file.into());
        for k in keys {
            args.push(k.base.clone());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(self.dir.path(), "/usr/bin/ldns-signzone", &a);
        std::fs::read_to_string(self.dir.path().join(format!("{file}.signed"))).unwrap()
    }

    /// Write a zone file as is (e.g. an unsigned variant) for the validator.
    pub fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join(file), text).unwrap();
    }

    /// The real validator's verdict on a zone file with `ds` (the `--ds`
    /// form) as trust anchor: `ldns-verify-zone -k`, at the current time.
    pub fn validator_accepts(&self, file: &str, ds: &[&str]) -> bool {
        let mut args: Vec<String> = Vec::new();
        for (i, d) in ds.iter().enumerate() {
            let p = self.dir.path().join(format!("anchor{i}.ds"));
            std::fs::write(&p, format!("{}. 3600 IN DS {d}\n", self.zone)).unwrap();
            args.extend(["-k".into(), p.display().to_string()]);
        }
        args.push(self.dir.path().join(file).display().to_string());
        let out = Command::new("/usr/bin/ldns-verify-zone")
            .args(&args)
            .output()
            .expect("ldns-verify-zone");
        out.status.success()
    }
}
