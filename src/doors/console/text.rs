//! The console's words in English and Chinese: one table, looked up by key. A key missing
//! here shows as itself (a test checks every key the pages use is in the table).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The console's language: from the `payglot_lang` cookie (the switch), else the browser's
/// `Accept-Language`, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn other(self) -> (Lang, &'static str, &'static str) {
        match self {
            Lang::En => (Lang::Zh, "zh", "中文"),
            Lang::Zh => (Lang::En, "en", "English"),
        }
    }

    /// The first of zh or en in an `Accept-Language` header, by quality then order.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut tags: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.trim().split(';');
                let tag = pieces.next()?.trim().to_ascii_lowercase();
                let q =
                    pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
                let lang = if tag == "zh" || tag.starts_with("zh-") {
                    Lang::Zh
                } else if tag == "en" || tag.starts_with("en-") {
                    Lang::En
                } else {
                    return None;
                };
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        tags.first().map_or(Lang::En, |t| t.2)
    }

    /// The word for `key` in this language.
    pub fn t(self, key: &'static str) -> &'static str {
        static TABLE: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
        let table = TABLE.get_or_init(|| WORDS.iter().map(|(k, en, zh)| (*k, (*en, *zh))).collect());
        match (table.get(key), self) {
            (Some((en, _)), Lang::En) => en,
            (Some((_, zh)), Lang::Zh) => zh,
            (None, _) => key,
        }
    }
}

/// (key, English, 中文).
pub const WORDS: &[(&str, &str, &str)] = &[
    ("console", "payglot console", "payglot 运维控制台"),
    ("overview", "Overview", "总览"),
    ("payments", "Payments", "支付"),
    ("payment", "Payment", "支付"),
    ("notifications", "Notifications", "通知"),
    ("providers", "Providers & routes", "渠道与路由"),
    ("reconcile", "Reconcile", "对账"),
    ("log_in", "Log in", "登录"),
    ("log_out", "Log out", "退出"),
    ("your_name", "Your name (recorded with every action)", "您的名字（每个操作都会记录）"),
    ("admin_token", "Admin token", "管理令牌"),
    ("login_failed", "That admin token is not the one in routes.yaml.", "管理令牌与 routes.yaml 中的不一致。"),
    ("bad_name", "A name of 1 to 40 letters, digits, spaces or . _ - @", "名字为 1 到 40 个字母、数字、空格或 . _ - @"),
    ("no_token_configured", "No admin_token is configured: the console is open to whoever reaches this listener.", "未配置 admin_token：能访问此端口的人都可以使用控制台。"),
    ("signed_in_as", "Signed in as", "当前操作员"),
    ("last_hour", "Last hour", "最近一小时"),
    ("last_day", "Last 24 hours", "最近 24 小时"),
    ("account", "Provider account", "渠道账户"),
    ("dialect", "Dialect", "接口类型"),
    ("base_url", "Base URL", "接口地址"),
    ("retired", "Retired", "已停用"),
    ("circuit", "Circuit", "熔断"),
    ("recent_calls", "Recent calls", "最近调用"),
    ("error_rate", "Error rate", "错误率"),
    ("latency", "Latency p50 / p95", "延迟 p50 / p95"),
    ("total", "Total", "合计"),
    ("success_rate", "Paid / created", "成功率（已付/创建）"),
    ("status", "Status", "状态"),
    ("pending", "Pending", "待支付"),
    ("succeeded", "Succeeded", "已支付"),
    ("failed", "Failed", "失败"),
    ("closed", "Closed", "已关闭"),
    ("delivered", "Delivered", "已送达"),
    ("outbox", "Notification outbox", "通知队列"),
    ("waiting", "Waiting", "待发送"),
    ("oldest_waiting", "Oldest waiting", "最早待发送"),
    ("seconds_ago", "s ago", "秒前"),
    ("none", "none", "无"),
    ("circuits_open", "Circuits open", "熔断中的渠道"),
    ("last_reload", "Last reload", "最近一次重新加载"),
    ("reload_accepted", "accepted", "成功"),
    ("reload_refused", "refused", "被拒绝"),
    ("no_reload", "none since start; config loaded", "启动后未重新加载；配置加载于"),
    ("config_loaded", "config loaded", "配置加载于"),
    ("requery_backlog", "Requery backlog", "待查询"),
    ("scheduled", "scheduled", "已排期"),
    ("due_now", "due now", "现在到期"),
    ("per_hour", "Payments per hour, last 24 hours", "最近 24 小时每小时支付数"),
    ("filter", "Filter", "筛选"),
    ("clear", "Clear", "清除"),
    ("merchant", "Merchant", "商户"),
    ("any", "any", "全部"),
    ("id_or_out_trade_no", "payment_id or out_trade_no", "payment_id 或商户订单号"),
    ("channel", "Channel", "支付方式"),
    ("scene", "Scene", "场景"),
    ("from", "From", "起"),
    ("to", "To", "止"),
    ("times_in", "Times are Beijing time (UTC+8).", "时间均为北京时间（UTC+8）。"),
    ("created", "Created", "创建时间"),
    ("amount", "Amount", "金额"),
    ("out_trade_no", "out_trade_no", "商户订单号"),
    ("door", "Door", "入口"),
    ("next_page", "Next page", "下一页"),
    ("first_page", "First page", "第一页"),
    ("no_payments", "No payments match.", "没有符合条件的支付。"),
    ("no_such_payment", "No such payment.", "没有这笔支付。"),
    ("timeline", "Timeline", "时间线"),
    ("time", "Time", "时间"),
    ("what", "What", "事件"),
    ("detail", "Detail", "详情"),
    ("refunds", "Refunds", "退款"),
    ("no_refunds", "No refunds.", "没有退款。"),
    ("anomalies", "Anomalies", "异常"),
    ("provider_trade_no", "Provider's order number", "渠道订单号"),
    ("paid", "Paid", "实付"),
    ("refunded", "Refunded", "已退款"),
    ("expires", "Expires", "过期时间"),
    ("merchant_api", "merchant API (/v1)", "商户 API（/v1）"),
    ("ev_created", "created", "创建"),
    ("ev_upstream", "provider call", "调用渠道"),
    ("ev_callback", "callback", "渠道回调"),
    ("ev_notification", "notification to the merchant", "通知商户"),
    ("ev_checkout", "checkout page opened", "打开支付页"),
    ("ev_paid", "paid", "支付完成"),
    ("kind", "Kind", "类型"),
    ("attempts", "Attempts", "尝试次数"),
    ("last_error", "Last error", "最近错误"),
    ("next_attempt", "Next attempt", "下次尝试"),
    ("delivered_at", "Delivered", "送达时间"),
    ("replay", "Send again", "重新发送"),
    ("replay_matching", "Send again every notification of a merchant in a state, created in a time range", "重新发送某商户某状态、某时间段内创建的全部通知"),
    ("replayed", "notification(s) made due again", "条通知已重新排队发送"),
    ("no_events", "No notifications match.", "没有符合条件的通知。"),
    ("merchant_required", "merchant: which merchant's notifications to send again", "merchant：请选择要重新发送哪个商户的通知"),
    ("routes", "Routes", "路由"),
    ("first_rule_wins", "Each merchant's rules are tried in order; the first that holds takes the payment (a split sends each share to its account; fallbacks take a payment the account refused before accepting it).", "每个商户的规则按顺序匹配，第一条成立的规则接收支付（分流按比例发往各账户；备用账户接收被拒绝的支付）。"),
    ("rule", "Rule", "规则"),
    ("when", "When", "条件"),
    ("goes_to", "Goes to", "发往"),
    ("fallback", "Fallback", "备用"),
    ("everything_else", "everything", "全部"),
    ("doors", "Front doors", "兼容入口"),
    ("notify_url", "Notify URL", "通知地址"),
    ("not_called", "not called yet", "尚未调用"),
    ("date", "Day (Beijing)", "日期（北京时间）"),
    ("run", "Run", "运行"),
    ("agreed", "agree", "一致"),
    ("differences", "Differences", "差异"),
    ("no_differences", "No differences.", "没有差异。"),
    ("not_answered", "Not answered by the provider", "渠道未回答"),
    ("settle", "Settle the missed payments", "补记漏掉的支付"),
    ("settled_note", "Settled: missed payments were marked paid and their merchants notified.", "已补记：漏掉的支付已标记为已支付，并通知了商户。"),
    ("reconcile_hint", "Asks the provider about every payment of the account created that day and lists where it and payglot differ. Nothing changes until you press the settle button.", "向渠道查询该账户当天创建的每笔支付，并列出与 payglot 不一致之处。按下补记按钮之前不会改变任何数据。"),
    ("payglot_says", "payglot", "payglot 记录"),
    ("provider_says", "provider", "渠道记录"),
    ("csrf_failed", "This form has expired; open the page again and resend.", "表单已过期，请重新打开页面后再提交。"),
    ("bad_request", "Bad request", "请求有误"),
    ("not_found", "Not found", "未找到"),
    ("store_unavailable", "The store did not answer; try again.", "存储没有响应，请重试。"),
    ("yes", "yes", "是"),
    ("no", "no", "否"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_written_once_in_both_languages() {
        let mut keys: Vec<&str> = WORDS.iter().map(|w| w.0).collect();
        keys.sort();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before, "a key is written twice");
        assert!(WORDS.iter().all(|(_, en, zh)| !en.is_empty() && !zh.is_empty()));
    }

    #[test]
    fn every_key_the_pages_use_is_in_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doors/console");
        let mut used = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("text.rs") {
                continue;
            }
            let source = std::fs::read_to_string(path).unwrap();
            for piece in source.split(".t(\"").skip(1) {
                let key = piece.split('"').next().unwrap();
                assert!(WORDS.iter().any(|w| w.0 == key), "{key:?} is used but not in WORDS");
                used += 1;
            }
        }
        assert!(used > 50, "the pages use the table ({used} uses found)");
    }

    #[test]
    fn accept_language_picks_the_preferred_of_chinese_and_english() {
        assert_eq!(Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,zh;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr-FR, zh-TW;q=0.5"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("en;q=0.2, zh;q=0.7"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::Zh.t("payments"), "支付");
        assert_eq!(Lang::En.t("no such key"), "no such key");
    }
}
