use super::*;
use proptest::prelude::*;

fn zones() -> Zones {
    Zones::new(&["ru", "рф"]).unwrap()
}

#[test]
fn good_names() {
    let z = zones();
    for (input, want) in [
        ("example.ru", "example.ru"),
        ("EXAMPLE.RU.", "example.ru"),
        ("  Example.Ru  ", "example.ru"),
        ("ya.ru", "ya.ru"),
        ("a1.ru", "a1.ru"),
        ("1c.ru", "1c.ru"),
        ("my-site.ru", "my-site.ru"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai"),
        ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
        ("XN--E1AFMKFD.XN--P1AI.", "xn--e1afmkfd.xn--p1ai"),
        ("президент.рф", "xn--d1abbgf6aiiy.xn--p1ai"),
        ("кто.рф", "xn--j1ail.xn--p1ai"),
        (
            &format!("{}.ru", "a".repeat(63)),
            &format!("{}.ru", "a".repeat(63)),
        ),
    ] {
        assert_eq!(
            z.parse_domain(input).map(|d| d.0),
            Ok(want.to_string()),
            "{input}"
        );
    }
}

#[test]
fn bad_names_name_the_rule() {
    let z = zones();
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        (".", "empty"),
        ("a.ru", "2–63"),
        (&format!("{}.ru", "a".repeat(64)), "2–63"),
        ("-ab.ru", "hyphen"),
        ("ab-.ru", "hyphen"),
        ("ab--cd.ru", "positions 3 and 4"),
        ("xn--abc.ru", "A-label"),
        ("xn--zz-zz.ru", "A-label"),
        ("xn--example-.ru", "hyphen"),
        ("under_score.ru", "LDH"),
        ("sp ace.ru", "LDH"),
        ("example.com", "not in a zone"),
        ("www.example.ru", "second-level"),
        ("ru", "second-level"),
        ("a..ru", "empty label"),
        ("exa\u{0}mple.ru", "LDH"),
        ("☃\u{200d}.ru", "IDNA"),
        ("xn--80ak6aa92e.ru", "LDH names only"),
        ("ex@mple.ru", "LDH"),
    ];
    for (input, rule) in cases {
        let err = z.parse_domain(input).expect_err(input).to_string();
        assert!(err.contains(rule), "{input:?}: {err}");
    }
}

#[test]
fn uppercase_a_label_is_folded_but_noncanonical_rejected() {
    let z = zones();
    // Punycode of "Пример" with an upper-case code point is not canonical.
    let upper = format!("xn--{}.ru", idna::punycode::encode_str("Пример").unwrap());
    assert!(z.parse_domain(&upper).is_err());
}

#[test]
fn hosts() {
    assert_eq!(
        parse_host("NS1.Example.NET.").unwrap().as_str(),
        "ns1.example.net"
    );
    assert_eq!(parse_host("a.b").unwrap().as_str(), "a.b");
    assert!(parse_host("localhost").is_err());
    assert!(parse_host("ns_1.example.net").is_err());
    assert!(parse_host("r3---sn-abc.googlevideo.com").is_ok());
    assert_eq!(
        parse_host("нс1.пример.рф").unwrap().as_str(),
        "xn--1-ytbm.xn--e1afmkfd.xn--p1ai"
    );
    assert!(parse_host(&format!("{}.com", "a.".repeat(130))).is_err());
}

#[test]
fn unicode_display() {
    let d = zones().parse_domain("пример.рф").unwrap();
    assert_eq!(d.to_unicode(), "пример.рф");
    assert_eq!(d.zone(), "xn--p1ai");
    assert_eq!(d.fqdn(), "xn--e1afmkfd.xn--p1ai.");
}

#[test]
fn bailiwick() {
    assert!(is_at_or_below("ns1.example.ru", "example.ru"));
    assert!(is_at_or_below("example.ru", "example.ru"));
    assert!(!is_at_or_below("badexample.ru", "example.ru"));
    assert!(!is_at_or_below("ru", "example.ru"));
}

/// Names seen in the wild, and what the zone policies say.
#[test]
fn real_world_names() {
    let z = Zones::new(&["ru", "рф", "su"]).unwrap();
    for ok in [
        "example.ru",
        "ya.ru",
        "1c.ru",
        "my-site.ru",
        "пример.рф",
        "кто.рф",
        "президент.рф",
        "xn--e1afmkfd.xn--p1ai",
        "лесмёд93.рф",
        "ёлка.рф",
        "2гис.рф",
        "мой-сайт.рф",
        "пример.su",
        "example.su",
    ] {
        z.parse_domain(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let cases: &[(&str, &str)] = &[
        ("xn--ls8h.ru", "LDH names only"), // 💩
        ("☃☃.ru", "LDH names only"),
        ("xn--n3ha.ru", "LDH names only"),     // ☃☃
        ("xn--pple-43d.ru", "LDH names only"), // Cyrillic а + Latin pple
        ("пример.ru", "LDH names only"),
        ("ab--cd.ru", "positions 3 and 4"),
        ("a.ru", "2–63"),
        (
            "я.рф",
            "1 characters long (counted on the U-label); zone рф takes 2–63",
        ),
        ("xn--41a.xn--p1ai", "counted on the U-label"),
        ("☃☃.рф", "IDNA 2008"),
        ("💩💩.рф", "IDNA 2008"),
        ("аpple.рф", "mixes scripts (Cyrillic, Latin)"),
        ("apple.рф", "character table of zone рф"),
        ("straße.рф", "character table"),
        ("ѓоо.рф", "character table"),  // Macedonian ѓ
        ("їжак.рф", "character table"), // Ukrainian ї
        ("аб--вг.рф", "positions 3 and 4 of its U-label"),
        ("xn--pple-43d.su", "mixes scripts"),
        ("☃☃.su", "IDNA 2008"),
        ("x\u{200d}y.su", "IDNA"),
    ];
    for (input, rule) in cases {
        let err = z.parse_domain(input).expect_err(input).to_string();
        assert!(err.contains(rule), "{input:?}: {err}");
    }
}

#[test]
fn tables_parse_and_refuse_nonsense() {
    let ru = NamePolicy::parse_table(RU_TABLE, "ru").unwrap();
    assert_eq!(ru.zone, "ru");
    assert!(!ru.idn && ru.confusables == ConfusableMode::Flag);
    let rf = NamePolicy::parse_table(RF_TABLE, "rf").unwrap();
    assert_eq!(rf.zone, "xn--p1ai");
    assert_eq!((rf.min_len, rf.max_len), (2, 63));
    assert_eq!(rf.confusables, ConfusableMode::Refuse);
    for (bad, why) in [
        ("length 2 63\n", "no 'zone'"),
        ("zone ru\nlength 0 63\n", "length"),
        ("zone ru\nidn maybe\n", "'idn' takes"),
        ("zone ru\nU+0061..U+0041\n", "reversed"),
        ("zone ru\nU+D800\n", "not a code point"),
        ("zone ru\ncolour blue\n", "unknown directive"),
    ] {
        let e = NamePolicy::parse_table(bad, "t").unwrap_err().to_string();
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    // A table replaces the built-in policy of its zone.
    let t = NamePolicy::parse_table("zone ru\nlength 3 10\nidn no\nU+0061..U+007A\n", "t").unwrap();
    let z = Zones::with_tables(&["ru"], &[t]).unwrap();
    assert!(z
        .parse_domain("ab.ru")
        .unwrap_err()
        .to_string()
        .contains("3–"));
    assert!(z
        .parse_domain("a1b.ru")
        .unwrap_err()
        .to_string()
        .contains("table"));
    z.parse_domain("abc.ru").unwrap();
}

#[test]
fn look_alikes() {
    let z = zones();
    let d = |s: &str| z.parse_domain(s).unwrap();
    // б and 6 share a TR39 skeleton.
    assert_eq!(skeleton(&d("сбер.рф")), skeleton(&d("с6ер.рф")));
    let mut set = ConfusableSet::new();
    assert_eq!(set.check_and_add(&z, &d("сбер.рф")), None);
    let hit = set.check_and_add(&z, &d("с6ер.рф")).unwrap();
    assert_eq!(
        (hit.mode, hit.earlier),
        (ConfusableMode::Refuse, d("сбер.рф"))
    );
    assert_eq!(set.check_and_add(&z, &d("пример.рф")), None);
    let hit = set.check_and_add(&z, &d("пример.рф"));
    assert!(hit.is_some(), "the same name twice in a batch");
    // .ru flags (1 looks like l) instead of refusing.
    assert_eq!(set.check_and_add(&z, &d("paypal.ru")), None);
    let hit = set.check_and_add(&z, &d("paypa1.ru")).unwrap();
    assert_eq!(hit.mode, ConfusableMode::Flag);
    assert_eq!(
        confusable_mode(&z, &d("paypal.ru")),
        Some(ConfusableMode::Flag)
    );
    assert_eq!(
        skeleton_index_key(&d("paypal.ru")),
        skeleton_index_key(&d("paypa1.ru"))
    );
    assert_ne!(
        skeleton_index_key(&d("paypal.ru")),
        skeleton_index_key(&d("paypol.ru"))
    );
    let e = confusable_error(&d("с6ер.рф"), d("сбер.рф").as_str()).to_string();
    assert!(e.contains("сбер.рф") && e.contains("TR39"), "{e}");
}

proptest! {
    /// Whatever a zone accepts obeys its table: .ru names are plain LDH
    /// (no xn--), .рф names are Russian letters, digits and hyphen, with
    /// 2–63 characters in the U-label.
    #[test]
    fn accepted_names_obey_their_table(label in prop_oneof![
        "[a-z0-9-]{1,12}",
        "[а-яё0-9-]{1,12}",
        "\\PC{1,8}",
        "xn--[a-z0-9-]{1,12}",
    ], rf in any::<bool>()) {
        let z = zones();
        let input = format!("{label}.{}", if rf { "рф" } else { "ru" });
        if let Ok(d) = z.parse_domain(&input) {
            let head = d.as_str().split('.').next().unwrap();
            if rf {
                let u = to_unicode(head);
                prop_assert!((2..=63).contains(&u.chars().count()), "{}", u);
                prop_assert!(u.chars().all(|c| c == '-' || c.is_ascii_digit() || ('а'..='я').contains(&c) || c == 'ё'), "{}", u);
            } else {
                prop_assert!(!head.starts_with("xn--"));
                prop_assert!(head.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }

    #[test]
    fn russian_labels_accepted_in_rf(label in "[а-яё][а-яё0-9]{1,20}") {
        let z = zones();
        z.parse_domain(&format!("{label}.рф")).unwrap();
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = zones().parse_domain(&s);
        let _ = parse_host(&s);
    }

    #[test]
    fn valid_ldh_labels_accepted_and_idempotent(label in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])") {
        let z = zones();
        let name = format!("{label}.ru");
        let b = label.as_bytes();
        let reserved = b.len() >= 4 && b[2] == b'-' && b[3] == b'-';
        match z.parse_domain(&name) {
            Ok(d) => {
                prop_assert!(!reserved || label.starts_with("xn--"));
                prop_assert_eq!(d.as_str(), name.as_str());
                // Normalisation is idempotent, and upper case folds to the same.
                prop_assert_eq!(z.parse_domain(&d.as_str().to_uppercase()).unwrap(), d);
            }
            Err(e) => prop_assert!(reserved, "{} rejected: {}", name, e),
        }
    }

    #[test]
    fn u_labels_round_trip(label in "[а-яё]{2,20}") {
        let z = zones();
        let d = z.parse_domain(&format!("{label}.рф")).unwrap();
        prop_assert!(d.as_str().starts_with("xn--"));
        prop_assert_eq!(z.parse_domain(d.as_str()).unwrap(), d.clone());
        prop_assert_eq!(d.to_unicode(), format!("{label}.рф"));
    }
}
