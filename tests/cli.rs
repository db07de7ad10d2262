//! The integrator commands: `payglot sign` reproduces the documents' known-answer vectors
//! without ever printing the key, and `payglot call` drives a sandbox payment.

mod common;

use common::*;
use std::process::Command;

fn payglot(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_payglot")).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn sign_reproduces_the_documents_vectors() {
    let key = "0828e83720fdbe3685a7b94214af04f9";
    let (ok, out) = payglot(&[
        "sign",
        "mct",
        "--key",
        key,
        "data=3304A5EC2CDEB4D12ED3338B5C01BF6B",
        "open_id=87f46f5db1b65f0ac195285f49ee6958",
        "timestamp=1497957842",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("string signed: data=3304A5EC2CDEB4D12ED3338B5C01BF6B&open_id=87f46f5db1b65f0ac195285f49ee6958&open_key=<key>&timestamp=1497957842"), "{out}");
    assert!(
        out.contains("sha1: 013030c4532c00c14ad8b9e47f3382f9ea4a8ed1")
            && out.contains("signature: 915be5aff09f2686870e1d17e93b3542"),
        "{out}"
    );
    assert!(!out.contains(key), "the key is never printed");

    let token = "10665CF54E90822951FE80330E9CF715";
    let (ok, out) = payglot(&[
        "sign",
        "jings",
        "--key",
        token,
        "uid=10000001400000",
        "reqtime=2018-09-02 12:35:06",
        "--verify",
        "c9b922d7dde2c8ad614b998f8d183e84",
    ]);
    assert!(ok && out.contains("verify: matches"), "{out}");
    assert!(!out.contains(token));
    let (ok, out) = payglot(&[
        "sign",
        "jings",
        "--key",
        token,
        "uid=10000001400000",
        "reqtime=2018-09-02 12:35:07",
        "--verify",
        "c9b922d7dde2c8ad614b998f8d183e84",
    ]);
    assert!(!ok && out.contains("does NOT match"), "{out}");

    let (ok, out) =
        payglot(&["sign", "xxpay", "--key", "K3y", "mchId=20001222", "amount=100", "currency=cny", "param1="]);
    assert!(
        ok && out.contains("amount=100&currency=cny&mchId=20001222&key=<key>")
            && out.contains("CE349EFFAF9E5C85A2131D9BD90320DC"),
        "{out}"
    );
    let (ok, out) = payglot(&["sign", "paypal", "--key", "k"]);
    assert!(!ok && out.contains("unknown dialect"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_drives_a_sandbox_payment() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let base = gw.base();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["call", "--merchant", MERCHANT, "--key", MERCHANT_KEY, "--url", &base]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        payglot(&refs)
    };
    let (ok, out) = run(args(&["POST", "/v1/payments", &payment_body("CLI-1", 1234)]));
    assert!(ok && out.starts_with("HTTP 200"), "{out}");
    let json: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    gw.pay_at_sandbox(json["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    let (ok, out) = run(args(&["GET", "/v1/payments/CLI-1"]));
    assert!(ok && out.contains("\"status\":\"succeeded\""), "{out}");
    let (ok, out) = run(args(&["GET", "/v1/payments/nope"]));
    assert!(!ok && out.starts_with("HTTP 404"), "{out}");
}

#[test]
fn sign_takes_the_key_from_a_file_or_the_environment() {
    // xiaojitong's createOrder example (000 lines 692-701), signed with merchant 2's key.
    let key = "6d25c81b7704ab82aafcaf9376e393bc";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let args = ["2", "1648306925", "pay_notify", "0.01", "--verify", "efa416f0e4f6a3573c405d79eba1c7f6"];
    let mut from_file = vec!["sign", "xiaojitong", "--key-file", file.to_str().unwrap()];
    from_file.extend(args);
    let (ok, out) = payglot(&from_file);
    assert!(ok && out.contains("verify: matches"), "{out}");
    assert!(!out.contains(key));

    let mut from_env = vec!["sign", "xiaojitong"];
    from_env.extend(args);
    let out = Command::new(env!("CARGO_BIN_EXE_payglot")).args(&from_env).env("PAYGLOT_KEY", key).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verify: matches"));
    let out = Command::new(env!("CARGO_BIN_EXE_payglot")).args(&from_env).env_remove("PAYGLOT_KEY").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--key-file"));
}
