//! Name validation throughput, against the IDNA crate's own conversion of
//! the same names as the baseline.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use zonekeeper::names::Zones;

fn names() -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..500 {
        v.push(format!("example-{i}.ru"));
        v.push(format!("EXAMPLE{i}.RU."));
        v.push(format!("пример{i}.рф"));
        v.push(format!("xn--{i}-ctbjbl0a.ru"));
    }
    v
}

fn bench(c: &mut Criterion) {
    let zones = Zones::new(&["ru", "рф"]).expect("zones");
    let input = names();
    let mut g = c.benchmark_group("names");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("baseline_idna_domain_to_ascii", |b| {
        b.iter(|| {
            for n in &input {
                black_box(idna::domain_to_ascii(black_box(n)).ok());
            }
        })
    });
    g.bench_function("parse_domain", |b| {
        b.iter(|| {
            for n in &input {
                black_box(zones.parse_domain(black_box(n)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
