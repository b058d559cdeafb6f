//! An EPP server over the fixture registry (`api_support`), certificates
//! made at run time (rcgen; no key is committed), and the real Perl
//! `Net::EPP::Client` driven line by line through a small script.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of one party.
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the certificate's DER (hex).
    pub sha256: String,
}

fn write(dir: &Path, name: &str, s: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    (p, key, cert.pem())
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Pem {
    use sha2::Digest;
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![eku];
    let cert = p.signed_by(&key, issuer).unwrap();
    Pem {
        cert: write(dir, &format!("{name}.crt"), &cert.pem()),
        key: write(dir, &format!("{name}.key"), &key.serialize_pem()),
        sha256: hex::encode(sha2::Sha256::digest(cert.der().as_ref())),
    }
}

/// The CA, the server's certificate and one client certificate per name;
/// `rogue` is signed by another CA.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server: Pem,
    pub clients: Vec<Pem>,
    pub rogue: Pem,
}

pub fn certs(clients: &[&str]) -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let (p, k, pem) = ca("zonekeeper test registrar CA");
    let ca_path = write(dir.path(), "ca.crt", &pem);
    let issuer = Issuer::new(p, k);
    let server = leaf(
        dir.path(),
        "server",
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let clients = clients
        .iter()
        .map(|c| {
            leaf(
                dir.path(),
                c,
                vec![],
                ExtendedKeyUsagePurpose::ClientAuth,
                &issuer,
            )
        })
        .collect();
    let (rp, rk, _) = ca("someone else's CA");
    let rogue_issuer = Issuer::new(rp, rk);
    let rogue = leaf(
        dir.path(),
        "rogue",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue_issuer,
    );
    Certs {
        dir,
        ca: ca_path,
        server,
        clients,
        rogue,
    }
}

/// The driver: each request is one base64 line in, each answer one line
/// out. `RAWLEN n` sends only a frame header announcing `n` bytes; `WAIT`
/// sends nothing and reads the server's next frame (e.g. a timeout's 2500).
const DRIVER: &str = r#"
use strict; use warnings;
use Net::EPP::Client; use XML::LibXML;
sub enc { return unpack("H*", $_[0]); } sub dec { return pack("H*", $_[0]); }
my ($port, $cert, $key, $ca, $xsd) = @ARGV;
$| = 1;
my $schema = $xsd ? XML::LibXML::Schema->new(location => $xsd) : undef;
sub check { my ($xml) = @_; return '' unless $schema;
  my $doc = eval { XML::LibXML->load_xml(string => $xml) } or return "not well-formed: $@";
  eval { $schema->validate($doc) }; return $@ ? "INVALID: $@" : ''; }
my $epp = Net::EPP::Client->new(host => '127.0.0.1', port => $port, ssl => 1);
my $greeting = eval { $epp->connect(SSL_cert_file => $cert, SSL_key_file => $key,
  SSL_ca_file => $ca, SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'default', Timeout => 10) };
if (!defined $greeting) { print "FAILED ", enc($@ || 'no greeting'), "\n"; exit 0; }
print "OK ", enc($greeting), " ", enc(check($greeting)), "\n";
while (my $line = <STDIN>) {
  chomp $line;
  last if $line eq 'QUIT';
  my $resp;
  if ($line =~ /^RAWLEN (\d+)$/) {
    my $c = $epp->{connection}; print {$c} pack('N', $1); $c->flush;
    $resp = eval { $epp->get_frame };
  } elsif ($line eq 'WAIT') {
    $resp = eval { $epp->get_frame };
  } else {
    my $req = dec($line);
    my $bad = check($req);
    if ($bad ne '' && $req !~ /DOCTYPE|<bogus|urn:example:unknown/) { print "FAILED ", enc("request $bad"), "\n"; next; }
    $resp = eval { $epp->request($req) };
  }
  if (!defined $resp) { print "FAILED ", enc($@ || 'connection closed'), "\n"; next; }
  print "OK ", enc($resp), " ", enc(check($resp)), "\n";
}
"#;

/// One EPP session through `Net::EPP::Client`.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    pub greeting: String,
}

fn b64(s: &str) -> String {
    hex::encode(s)
}

fn unb64(s: &str) -> String {
    String::from_utf8(hex::decode(s.trim()).unwrap()).unwrap()
}

impl Client {
    /// Connect with `pem` (TLS client certificate); `Err` with the
    /// client's message when the connection or greeting fails. With `xsd`,
    /// every request and answer is validated against it (XML::LibXML).
    pub fn connect(
        port: u16,
        certs: &Certs,
        pem: &Pem,
        xsd: Option<&Path>,
    ) -> Result<Client, String> {
        let script = certs.dir.path().join("driver.pl");
        std::fs::write(&script, DRIVER).unwrap();
        let mut child = Command::new("perl")
            .arg(&script)
            .arg(port.to_string())
            .arg(&pem.cert)
            .arg(&pem.key)
            .arg(&certs.ca)
            .arg(xsd.map(|p| p.display().to_string()).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("perl with Net::EPP (libnet-epp-perl) must be installed");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut c = Client {
            child,
            stdin,
            out,
            greeting: String::new(),
        };
        c.greeting = c.answer()?;
        Ok(c)
    }

    fn answer(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let mut parts = line.trim_end().split(' ');
        match parts.next() {
            Some("OK") => {
                let xml = unb64(parts.next().unwrap_or(""));
                let bad = unb64(parts.next().unwrap_or(""));
                assert!(bad.is_empty(), "answer fails the XSD: {bad}\n{xml}");
                Ok(xml)
            }
            Some("FAILED") => Err(unb64(parts.next().unwrap_or(""))),
            _ => Err(format!("driver said: {line}")),
        }
    }

    /// Send one request; the answer (or the client's error).
    pub fn try_send(&mut self, xml: &str) -> Result<String, String> {
        writeln!(self.stdin, "{}", b64(xml)).unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    pub fn send(&mut self, xml: &str) -> String {
        self.try_send(xml)
            .unwrap_or_else(|e| panic!("EPP request failed: {e}\n{xml}"))
    }

    /// Send a frame header announcing `n` bytes and nothing else.
    pub fn raw_len(&mut self, n: u32) -> Result<String, String> {
        writeln!(self.stdin, "RAWLEN {n}").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// Send nothing; the server's next frame, or the client's error when
    /// the server closes without one.
    pub fn next_frame(&mut self) -> Result<String, String> {
        writeln!(self.stdin, "WAIT").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// A `<command>` around `inner` with a clTRID.
    pub fn cmd(&mut self, inner: &str) -> String {
        self.send(&command(inner))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "QUIT");
        let _ = self.child.wait();
    }
}

pub const EPP: &str = "urn:ietf:params:xml:ns:epp-1.0";
pub const DOMAIN: &str = "urn:ietf:params:xml:ns:domain-1.0";
pub const CONTACT: &str = "urn:ietf:params:xml:ns:contact-1.0";
pub const HOST: &str = "urn:ietf:params:xml:ns:host-1.0";

pub fn command(inner: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><epp xmlns="{EPP}"><command>{inner}<clTRID>TEST-{n}</clTRID></command></epp>"#
    )
}

pub fn login(id: &str, pw: &str) -> String {
    format!(
        r#"<login><clID>{id}</clID><pw>{pw}</pw><options><version>1.0</version><lang>en</lang></options><svcs><objURI>{DOMAIN}</objURI><objURI>{CONTACT}</objURI><objURI>{HOST}</objURI><svcExtension><extURI>urn:ietf:params:xml:ns:secDNS-1.1</extURI><extURI>urn:ietf:params:xml:ns:rgp-1.0</extURI></svcExtension></svcs></login>"#
    )
}

/// The result code of an answer.
pub fn code(xml: &str) -> u16 {
    let i = xml.find("result code=\"").expect("a result") + 13;
    xml[i..i + 4].parse().unwrap()
}
