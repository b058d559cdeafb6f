//! Property-based fuzzing of name normalisation (`names::parse_host`,
//! `Zones::parse_domain`) beyond the unit proptests in `src/names.rs`: for
//! any input that is accepted, the normal form is a fixed point, its
//! Unicode form normalises back to it, and it is plain lower-case LDH
//! within DNS limits. `ZK_FUZZ_CASES=N` for a longer run (default 2000).

use proptest::prelude::*;
use zonekeeper::names::{parse_host, Zones};

fn cases() -> u32 {
    std::env::var("ZK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn zones() -> Zones {
    Zones::new(&["ru", "рф", "su"]).unwrap()
}

/// Labels of every kind that trips normalisers: LDH, hyphens in odd places,
/// punycode prefixes, Cyrillic and mixed scripts, case and width variants,
/// IDNA-mapped characters (ß, final sigma, full-width dot), emoji.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9-]{1,20}",
        "[а-яёА-ЯЁ0-9-]{1,15}",
        "xn--[a-z0-9-]{0,20}",
        prop::sample::select(vec![
            "ß",
            "ς",
            "İ",
            "ǅ",
            "ﬀ",
            "Ａ",
            "ａｂｃ",
            "①",
            "\u{200d}",
            "\u{00ad}",
            "😀",
            "a\u{0301}",
            "xn--",
            "xn--80ak6aa92e",
            "xn--p1ai",
            "-",
            "--",
            "a-",
            "-a",
            "ab--c",
        ])
        .prop_map(String::from),
        "\\PC{1,8}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 1..5),
        prop::sample::select(vec![
            ".ru",
            ".RU.",
            ".рф",
            ".РФ",
            ".xn--p1ai",
            ".su",
            "",
            "。ru",
            "．ru",
        ]),
    )
        .prop_map(|(l, z)| format!("{}{z}", l.join(".")))
}

fn plain_ldh(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn accepted_domains_have_a_stable_normal_form(s in name()) {
        let z = zones();
        if let Ok(d) = z.parse_domain(&s) {
            prop_assert!(plain_ldh(d.as_str()), "{:?} -> {:?}", s, d.as_str());
            prop_assert_eq!(z.parse_domain(d.as_str()), Ok(d.clone()), "{:?}", s);
            prop_assert_eq!(z.parse_domain(&d.to_unicode()), Ok(d.clone()), "{:?}", s);
            prop_assert_eq!(z.parse_domain(&d.as_str().to_uppercase()), Ok(d.clone()), "{:?}", s);
        }
    }

    #[test]
    fn accepted_hosts_have_a_stable_normal_form(s in name()) {
        if let Ok(h) = parse_host(&s) {
            prop_assert!(plain_ldh(h.as_str()), "{:?} -> {:?}", s, h.as_str());
            prop_assert_eq!(parse_host(h.as_str()), Ok(h.clone()), "{:?}", s);
            prop_assert_eq!(parse_host(&h.to_unicode()), Ok(h.clone()), "{:?}", s);
        }
    }
}

#[test]
fn the_generator_reaches_accepted_names() {
    // The properties above only say something about accepted inputs.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let z = zones();
    let (mut domains, mut hosts) = (0, 0);
    for _ in 0..1000 {
        let s = name().new_tree(&mut runner).unwrap().current();
        domains += usize::from(z.parse_domain(&s).is_ok());
        hosts += usize::from(parse_host(&s).is_ok());
    }
    eprintln!("accepted of 1000: {domains} domains, {hosts} hosts");
    // The zone policies (no IDN under .ru, the .рф table, one script per
    // label) refuse more of the generated names than plain syntax did.
    assert!(
        domains >= 30 && hosts >= 100,
        "{domains} domains, {hosts} hosts"
    );
}
