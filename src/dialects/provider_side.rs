//! The provider side of a dialect: what a server speaking it does with a merchant's request,
//! sans-IO. A request is read, and verified with the credentials of the account it names, into
//! a `Call`; whoever plays the provider carries it out (the sandbox with its ledger, a front
//! door with payglot's core); the outcome is answered in the dialect's shape, and paid orders
//! are called back in it. Each dialect implements this in its own file; the sandbox and the
//! front doors are the same two generic drivers for all of them.

use super::{Notify, ProviderConfig, ProviderOrder};
use crate::model::{Action, Channel, Scene, TransferStatus};
use std::collections::BTreeMap;

/// A request as the provider receives it, relative to the dialect's base URL.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
    /// The payer's address, as a proxy in front reports it (jings' browser form).
    pub forwarded_for: Option<&'a str>,
}

/// An account the provider serves: its credentials and options, and, at a front door, the
/// channel and scene its requests imply where the dialect's requests do not say.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub account: ProviderConfig,
    pub channel: Option<Channel>,
    pub scene: Option<Scene>,
}

impl Keyed {
    pub fn new(account: ProviderConfig) -> Self {
        Keyed { account, channel: None, scene: None }
    }

    /// One of the account's credentials ("" when absent).
    pub fn credential(&self, name: &str) -> String {
        super::credential(&self.account, name)
    }
}

/// The accounts a provider serves, by the account id its requests carry.
pub type Keys<'a> = &'a dyn Fn(&str) -> Option<Keyed>;

/// A verified request: which account asked, and what.
#[derive(Debug, Clone)]
pub struct Call {
    /// The account id the request names (mch_id, mid, appid, uid, open_id).
    pub account_id: String,
    pub kind: CallKind,
    /// Whether the request carried a signature that was checked (xiaojitong's checkOrder has
    /// none: asking a provider about it is rate limited).
    pub signed: bool,
    /// Request fields the answer repeats (jings' reqtime).
    pub echo: BTreeMap<String, String>,
}

impl Call {
    /// A signed call of `account_id`.
    pub fn new(account_id: impl Into<String>, kind: CallKind) -> Self {
        Call { account_id: account_id.into(), kind, signed: true, echo: BTreeMap::new() }
    }
}

/// How a request names an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The merchant's own order number.
    MerchantNo(String),
    /// The provider's order number.
    ProviderNo(String),
}

#[derive(Debug, Clone)]
pub enum CallKind {
    Create(OrderRequest),
    /// A query; `notify_again` asks for a paid order's callback once more (xxpay executeNotify).
    Query {
        lookup: Lookup,
        notify_again: bool,
    },
    Cancel(Lookup),
    Refund(RefundRequest),
    Balance,
    PaymentMethods,
    /// The payer's identity behind a wallet uid (zhixiao 2.6).
    Identity {
        uid: String,
    },
    /// A campus card link (zhixiao 2.7).
    CardLink {
        school_id: String,
        user_no: String,
    },
    /// A payout (代付, xxpay).
    PayoutCreate(PayoutRequest),
    PayoutQuery(Lookup),
    /// The order listing (mct `order`).
    OrderList,
}

impl CallKind {
    /// The operation's name in metrics, as the merchant API names its own.
    pub fn operation(&self) -> &'static str {
        match self {
            CallKind::Create(_) => "create_payment",
            CallKind::Query { .. } => "query_payment",
            CallKind::Cancel(_) => "close_payment",
            CallKind::Refund(_) => "create_refund",
            CallKind::Balance => "balance",
            CallKind::PaymentMethods => "payment_methods",
            CallKind::Identity { .. } => "identity",
            CallKind::CardLink { .. } => "card_link",
            CallKind::PayoutCreate(_) => "create_payout",
            CallKind::PayoutQuery(_) => "query_payout",
            CallKind::OrderList => "order_list",
        }
    }
}

/// An order as the merchant asked for it.
#[derive(Debug, Clone, Default)]
pub struct OrderRequest {
    pub order_no: String,
    pub amount: i64,
    pub subject: String,
    pub description: String,
    pub channel: Option<Channel>,
    /// The scenes that serve the request, best first: one for those that need the payer's code
    /// or app (barcode, jsapi, miniapp); the URL scenes (qr, h5, web) where any will do.
    pub scenes: Vec<Scene>,
    pub notify_url: String,
    pub return_url: String,
    pub client_ip: Option<String>,
    pub auth_code: Option<String>,
    pub openid: Option<String>,
    /// Fields for whichever provider takes the payment (payglot's create `extra`).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Request fields the dialect's answers and callbacks repeat.
    pub keep: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub lookup: Lookup,
    /// The merchant's refund number (one the dialect makes up where its requests carry none).
    pub refund_no: String,
    pub amount: i64,
    pub reason: Option<String>,
    /// Whether a request with a refund number used before is the same refund, answered again
    /// (the number was made up from the request's bytes), not a duplicate to refuse.
    pub replayable: bool,
}

#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub payout_no: String,
    pub amount: i64,
    pub notify_url: String,
    pub fields: BTreeMap<String, String>,
}

/// What carrying out a call gave.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The order (created, found, or cancelled) and where the payer pays.
    Order(Placed),
    Refund(RefundDone),
    /// The balance in fen.
    Balance(i64),
    /// The provider's own payment methods (the dialect answers its list).
    PaymentMethods,
    Identity(serde_json::Value),
    CardLink(serde_json::Value),
    Payout(PayoutDone),
    /// The listed orders.
    Orders(Vec<ProviderOrder>),
}

#[derive(Debug, Clone)]
pub struct Placed {
    pub order: ProviderOrder,
    /// Where the payer pays: the QR content, a redirect or checkout URL.
    pub pay_url: String,
    /// jsapi / mini-program parameters, when the payer pays in an app.
    pub action: Option<Action>,
}

#[derive(Debug, Clone)]
pub struct RefundDone {
    pub refund_no: String,
    /// The provider's number of the refund.
    pub provider_refund_no: String,
    /// The provider's number of the refunded order.
    pub order_provider_no: String,
    /// The merchant's number of the refunded order.
    pub order_no: String,
    pub amount: i64,
    pub status: TransferStatus,
}

#[derive(Debug, Clone)]
pub struct PayoutDone {
    pub payout_no: String,
    pub provider_payout_no: String,
    pub amount: i64,
    pub status: TransferStatus,
}

/// Why a call was not carried out, in words the dialect maps onto its own codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Fail,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// A field is missing or wrong.
    Invalid,
    NotFound,
    /// The order (or refund) number was used before.
    Duplicate,
    /// The order is not in a state that allows it (paid, not paid, cannot be cancelled).
    State,
    /// More than can be refunded.
    TooMuch,
    /// This provider (or this door) does not offer it.
    NotOffered,
    /// A rate limit said not now.
    Limited,
    Other,
}

impl Failure {
    pub fn new(kind: Fail, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into() }
    }
}

/// A refusal in the provider's own error codes (mct's errcode, xiaojitong's code), before
/// anything is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedRefusal {
    pub code: i64,
    pub message: String,
}

impl CodedRefusal {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        CodedRefusal { code, message: message.into() }
    }
}

/// An HTTP answer of the provider side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn json(body: String) -> Self {
        Answer { status: 200, content_type: "application/json", body }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Answer { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    pub fn html(body: String) -> Self {
        Answer { status: 200, content_type: "text/html; charset=utf-8", body }
    }
}

/// `first`, then the other scenes a payer also reaches through a URL; only `first` for the
/// scenes that need the payer's code or app.
pub fn url_scenes(first: Scene) -> Vec<Scene> {
    let url = [Scene::Qr, Scene::H5, Scene::Web];
    if url.contains(&first) {
        std::iter::once(first).chain(url.into_iter().filter(|s| *s != first)).collect()
    } else {
        vec![first]
    }
}

/// A kept request field: set only when not empty.
pub fn keep(map: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if !value.is_empty() {
        map.insert(name.to_string(), value.to_string());
    }
}

/// One dialect's provider side.
pub trait ProviderSide: Send + Sync {
    /// Reads and verifies a request; an `Err` is the dialect's answer to a request it refuses
    /// before anything is done (bad signature, unknown account, malformed fields).
    fn read(&self, request: &Request<'_>, keys: Keys<'_>, now: i64) -> Result<Call, Answer>;

    /// The answer to a call in the dialect's shape.
    fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, now: i64) -> Answer;

    /// The callback of a paid (or, where the dialect calls back that too, cancelled) order;
    /// `None` when the order asked for none.
    fn notify(&self, keyed: &Keyed, order: &ProviderOrder, now: i64) -> Option<Notify>;

    /// What a merchant integrated with this provider answers to take a callback.
    fn ack_body(&self) -> &'static str;

    /// The prefix of the provider's own order numbers (the sandbox's look).
    fn order_prefix(&self) -> &'static str {
        "P"
    }

    /// Whether the provider asks the payer a few fen more than the order to tell simultaneous
    /// payments of one price apart (xiaojitong's reallyprice).
    fn distinct_payable(&self) -> bool {
        false
    }

    /// Whether an order like this is paid as it is created (barcode: the payer's code is charged).
    fn paid_at_once(&self, _order: &OrderRequest) -> bool {
        false
    }

    /// Whether a query by the merchant's number also finds refund orders (mct's paystatus).
    fn queries_refunds(&self) -> bool {
        false
    }

    /// Whether the provider can cancel this order (mct: barcode orders only).
    fn cancellable(&self, _order: &ProviderOrder) -> Result<(), Failure> {
        Ok(())
    }

    /// The callback of a finished payout, where the dialect has payouts.
    fn payout_notify(&self, _keyed: &Keyed, _payout: &PayoutDone, _notify_url: &str, _now: i64) -> Option<Notify> {
        None
    }

    /// What a simulated provider answers to a question about its users (zhixiao's identity and
    /// card link): document-shaped example data.
    fn simulated(&self, _call: &Call) -> Option<serde_json::Value> {
        None
    }
}
