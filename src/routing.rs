//! Which provider account serves a new payment: the merchant's first matching route, a
//! weighted split decided by the payment_id (so a payment always maps to the same account),
//! then the route's fallbacks in order. Existing payments never come here: they stay with the
//! account that created them.

use crate::config::{MerchantConfig, Route, RouteMatch, RouteTarget};
use crate::model::{Channel, Scene};
use md5::{Digest, Md5};

/// The facts of a new payment that routes match on.
#[derive(Debug, Clone, Copy)]
pub struct PaymentFacts<'a> {
    pub channel: Channel,
    pub scene: Scene,
    pub currency: &'a str,
    pub amount: i64,
}

fn matches(m: &RouteMatch, facts: &PaymentFacts<'_>) -> bool {
    (m.channels.is_empty() || m.channels.contains(&facts.channel))
        && (m.scenes.is_empty() || m.scenes.contains(&facts.scene))
        && m.currency.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(facts.currency))
        && m.min_amount.is_none_or(|lo| facts.amount >= lo)
        && m.max_amount.is_none_or(|hi| facts.amount <= hi)
}

/// A number in 0..100 from the payment_id, the same in every process and every run.
pub fn split_bucket(payment_id: &str) -> u32 {
    let digest = Md5::digest(payment_id.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("md5 has 16 bytes"));
    (n % 100) as u32
}

fn pick<'r>(route: &'r Route, payment_id: &str) -> &'r str {
    match &route.target {
        RouteTarget::One(account) => account,
        RouteTarget::Split(parts) => {
            let bucket = split_bucket(payment_id);
            let mut upper = 0;
            for (account, weight) in parts {
                upper += weight;
                if bucket < upper {
                    return account;
                }
            }
            // Weights add up to 100 (validated), so this is never reached.
            &parts[parts.len() - 1].0
        }
    }
}

/// The accounts to try for a new payment, in order: the chosen one, then its fallbacks.
pub fn candidates(merchant: &MerchantConfig, facts: &PaymentFacts<'_>, payment_id: &str) -> Vec<String> {
    let Some(route) = merchant.routes.iter().find(|r| matches(&r.matches, facts)) else {
        return Vec::new();
    };
    let first = pick(route, payment_id);
    let mut out = vec![first.to_string()];
    for f in &route.fallback {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn merchant(routes: Vec<Route>) -> MerchantConfig {
        MerchantConfig {
            id: "m".into(),
            key: Secret::new("k"),
            next_key: None,
            webhook_keys: Vec::new(),
            notify_url: None,
            allow_private_notify: false,
            routes,
            compat: Default::default(),
        }
    }

    fn facts(channel: Channel, amount: i64) -> PaymentFacts<'static> {
        PaymentFacts { channel, scene: Scene::Qr, currency: "CNY", amount }
    }

    #[test]
    fn first_matching_rule_wins() {
        let m = merchant(vec![
            Route {
                matches: RouteMatch { channels: vec![Channel::Wechat], max_amount: Some(1000), ..Default::default() },
                target: RouteTarget::One("a".into()),
                fallback: vec!["b".into()],
            },
            Route { matches: RouteMatch::default(), target: RouteTarget::One("c".into()), fallback: vec![] },
        ]);
        assert_eq!(candidates(&m, &facts(Channel::Wechat, 500), "P1"), vec!["a", "b"]);
        assert_eq!(candidates(&m, &facts(Channel::Wechat, 5000), "P1"), vec!["c"]);
        assert_eq!(candidates(&m, &facts(Channel::Alipay, 500), "P1"), vec!["c"]);
    }

    #[test]
    fn split_is_deterministic_and_proportional() {
        let m = merchant(vec![Route {
            matches: RouteMatch::default(),
            target: RouteTarget::Split(vec![("a".into(), 90), ("b".into(), 10)]),
            fallback: vec![],
        }]);
        let mut to_b = 0;
        for i in 0..10_000 {
            let id = crate::model::new_payment_id(1_700_000_000 + i);
            let first = candidates(&m, &facts(Channel::Wechat, 1), &id);
            assert_eq!(first, candidates(&m, &facts(Channel::Wechat, 1), &id));
            if first[0] == "b" {
                to_b += 1;
            }
        }
        assert!((800..=1200).contains(&to_b), "b got {to_b} of 10000");
    }
}
