//! A short, deterministic fuzz pass over every reader of attacker input (the same entry points
//! as the cargo-fuzz targets in `fuzz/`, which run far longer: see the README): seeds from
//! `tests/fixtures` and routes.yaml, mutated by a fixed-seed generator. Nothing may panic.

use payglot::fuzz;

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`: flipped, inserted, deleted or repeated bytes, or a cut.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 => v.insert(at, [0xff, b'&', b'=', b'%', b'{', b'"', b'\\', 0][rng.below(8)]),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
        }
    }
    v
}

fn fixtures() -> Vec<Vec<u8>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".md") && name != "cases.json" {
                out.push(std::fs::read(file.path()).unwrap());
            }
        }
    }
    out
}

/// Runs `target` over `rounds` inputs made from `seeds` (each seed also as is).
fn run(name: &str, target: fn(&[u8]), seeds: &[Vec<u8>], rounds: usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    for seed in seeds {
        target(seed);
    }
    for _ in 0..rounds {
        let seed = &seeds[rng.below(seeds.len())];
        target(&mutate(&mut rng, seed));
    }
    for _ in 0..rounds / 10 {
        let random: Vec<u8> = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
        target(&random);
    }
}

/// Every fixture behind each selector byte, so every dialect reads every kind of message.
fn with_selectors(seeds: &[Vec<u8>], selectors: u8) -> Vec<Vec<u8>> {
    seeds.iter().flat_map(|s| (0..selectors).map(move |k| [&[k][..], s].concat())).collect()
}

#[test]
fn callback_readers_never_panic() {
    let seeds: Vec<Vec<u8>> =
        fixtures().iter().flat_map(|f| [[f.as_slice(), &[0xff]].concat(), [&[0xff], f.as_slice()].concat()]).collect();
    run("callback", fuzz::callback, &with_selectors(&seeds, 5), 20_000);
}

#[test]
fn answer_readers_never_panic() {
    let ids: [&[u8]; 4] = [b"21648342529607", b"10000000900000", b"1214987050997427", b"1700000000000"];
    let seeds: Vec<Vec<u8>> =
        fixtures().iter().flat_map(|f| ids.iter().map(move |id| [*id, &[0xff], f.as_slice()].concat())).collect();
    let selected: Vec<Vec<u8>> = seeds
        .iter()
        .flat_map(|s| (0..5u8).flat_map(move |d| (0..8u8).map(move |op| [&[d, op][..], s].concat())))
        .collect();
    run("answer", fuzz::answer, &selected, 20_000);
}

#[test]
fn door_request_readers_never_panic() {
    // 35 selectors: every endpoint of every dialect (five dialects, up to seven endpoints).
    run("door", fuzz::door_request, &with_selectors(&fixtures(), 35), 20_000);
}

#[test]
fn the_merchant_api_reader_never_panics() {
    let body = br#"{"out_trade_no":"T1001","amount":1980,"subject":"Tuition","channel":"alipay","scene":"qr","extra":{"payer_bank_code":"X"}}"#;
    let seeds = vec![
        [b"POST\xff/v1/payments\xff1700000000\xffnonce-0123456789ab\xffabcd\xff".as_slice(), body].concat(),
        b"GET\xff/v1/payments/T%2F1\xff1700000000\xffnonce-0123456789ab\xff00\xff".to_vec(),
        b"POST\xff/v1/payments/T1/refunds\xff-9223372036854775808\xffn\xff\xff{\"out_refund_no\":\"R\",\"amount\":1}"
            .to_vec(),
    ];
    run("merchant", fuzz::merchant_request, &seeds, 20_000);
}

#[test]
fn routes_yaml_never_panics() {
    let demo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.yaml")).unwrap();
    let seeds = vec![demo, b"a: &x [*x, *x]\nb: *x\n".to_vec(), b"listen: [\n".to_vec()];
    run("routes", fuzz::routes_yaml, &seeds, 3_000);
}
