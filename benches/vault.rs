//! The cost of sealed numbers: what a sign-in adds (the lookup hashes under each data key, then
//! opening the stored number) and what sealing a number costs (sign-up, number change, rotation).
//! Run with `cargo bench --bench vault`; it prints the time per operation with one and with two
//! data keys (the second while a rotation is pending).

use anapars_hub::adapters::vault::{Purpose, Vault};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: u32 = 200_000;

fn per_op(name: &str, mut op: impl FnMut()) {
    for _ in 0..1_000 {
        op();
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        op();
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("{name:<44} {:>8.2} µs", ns / 1000.0);
}

fn main() {
    let number = b"+989121234567";
    let owner = uuid::Uuid::now_v7();
    for keys in [1, 2] {
        let entries: Vec<String> = (0..keys).map(|i| Vault::generate_entry(&format!("k{i}"))).collect();
        let vault = Vault::parse(&entries.join("\n")).expect("keys");
        let sealed = vault.seal(Purpose::Phone, owner.as_bytes(), number);
        println!("with {keys} data key(s):");
        per_op("  seal a number (sign-up, change, rotation)", || {
            black_box(vault.seal(Purpose::Phone, owner.as_bytes(), black_box(number)));
        });
        per_op("  lookup hashes under every key (sign-in)", || {
            black_box(vault.lookups(Purpose::Phone, black_box(number)));
        });
        per_op("  open the stored number (sign-in, me)", || {
            black_box(vault.open(Purpose::Phone, owner.as_bytes(), black_box(&sealed)).expect("opens"));
        });
    }
}
