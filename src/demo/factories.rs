//! Realistic provider payloads and correctly signed requests, seeded so a run can be repeated. The demo
//! scenarios, the tests, the benchmark and `send-test` all draw from here.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::connectors::{shopify, standard};
use crate::domain::Timestamp;

const FIRST: [&str; 12] =
    ["Jon", "Ana", "Priya", "Kenji", "Fatima", "Lars", "Chloé", "Mateo", "Aisha", "Noah", "Yuki", "Omar"];
const LAST: [&str; 12] =
    ["Snow", "García", "Patel", "Tanaka", "Haddad", "Nielsen", "Dubois", "Rossi", "Okafor", "Smith", "Sato", "Khan"];
const CITIES: [(&str, &str, &str); 6] = [
    ("Ottawa", "ON", "CA"),
    ("Berlin", "BE", "DE"),
    ("Austin", "TX", "US"),
    ("Lyon", "ARA", "FR"),
    ("Osaka", "27", "JP"),
    ("Leeds", "ENG", "GB"),
];
const PRODUCTS: [(&str, &str, &str); 8] = [
    ("Merino Crew Sock", "SOCK-MER-01", "18.00"),
    ("Canvas Tote", "TOTE-CNV-02", "32.00"),
    ("Ceramic Pour-Over", "CER-POUR-03", "45.00"),
    ("Wool Beanie", "HAT-WOOL-04", "28.50"),
    ("Linen Apron", "APR-LIN-05", "39.00"),
    ("Enamel Mug", "MUG-ENM-06", "16.00"),
    ("Leather Card Case", "CARD-LTH-07", "55.00"),
    ("Beeswax Candle", "CND-BEE-08", "22.00"),
];

/// A request as a provider would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Seeded payload generator.
pub struct Factory {
    rng: StdRng,
    next_id: u64,
}

impl Factory {
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), next_id: 5_100_000_000_000 + seed % 1_000 * 1_000_000 }
    }

    fn id(&mut self) -> u64 {
        self.next_id += self.rng.random_range(1..50);
        self.next_id
    }

    pub fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
            (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
        )
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn person(&mut self) -> (String, String, String) {
        let first = self.pick(&FIRST);
        let last = self.pick(&LAST);
        let n: u16 = self.rng.random_range(1..999);
        let email = format!("{}.{}{n}@example.com", ascii(first), ascii(last));
        (first.to_owned(), last.to_owned(), email)
    }

    fn address(&mut self, first: &str, last: &str) -> Value {
        let (city, province, country) = self.pick(&CITIES);
        let number: u16 = self.rng.random_range(1..2000);
        json!({
            "first_name": first, "last_name": last, "name": format!("{first} {last}"),
            "address1": format!("{number} Market Street"), "address2": null, "city": city,
            "province_code": province, "country_code": country, "zip": format!("{:05}", u32::from(number) * 37 % 99_999),
            "phone": format!("+1-555-01{:02}", number % 100), "company": null,
        })
    }

    fn customer(&mut self, at: Timestamp) -> Value {
        let (first, last, email) = self.person();
        let id = self.id();
        json!({
            "id": id, "email": email, "first_name": first, "last_name": last, "state": "enabled",
            "created_at": at.plus_millis(-86_400_000 * 30).to_rfc3339(), "updated_at": at.to_rfc3339(),
            "verified_email": true, "tax_exempt": false, "currency": "USD", "tags": "",
            "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
            "default_address": self.address(&first, &last),
            "email_marketing_consent": { "state": "subscribed", "opt_in_level": "single_opt_in" },
        })
    }

    /// An `orders/create` payload of 2–4 KB, in the shape of the REST Order resource.
    pub fn shopify_order(&mut self, order_number: u64, at: Timestamp) -> Vec<u8> {
        let id = self.id();
        let customer = self.customer(at);
        let first = customer["first_name"].as_str().unwrap_or_default().to_owned();
        let last = customer["last_name"].as_str().unwrap_or_default().to_owned();
        let lines = self.rng.random_range(1..=3);
        let mut subtotal = 0.0f64;
        let line_items: Vec<Value> = (0..lines)
            .map(|_| {
                let (title, sku, price) = self.pick(&PRODUCTS);
                let qty: u32 = self.rng.random_range(1..4);
                subtotal += price.parse::<f64>().unwrap_or(0.0) * f64::from(qty);
                let line_id = self.id();
                json!({
                    "id": line_id, "admin_graphql_api_id": format!("gid://shopify/LineItem/{line_id}"),
                    "title": title, "name": title, "sku": sku, "quantity": qty, "price": price,
                    "vendor": "Hookplane Demo Goods", "product_id": self.id(), "variant_id": self.id(),
                    "requires_shipping": true, "taxable": true, "fulfillment_status": null, "grams": 250,
                    "price_set": { "shop_money": { "amount": price, "currency_code": "USD" } },
                })
            })
            .collect();
        let tax = (subtotal * 0.08 * 100.0).round() / 100.0;
        let total = subtotal + tax + 5.0;
        let created = at.to_rfc3339();
        let order = json!({
            "id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
            "name": format!("#{order_number}"), "number": order_number.saturating_sub(1000), "order_number": order_number,
            "email": customer["email"], "contact_email": customer["email"], "phone": null,
            "created_at": created, "updated_at": created, "processed_at": created,
            "currency": "USD", "presentment_currency": "USD", "financial_status": "paid", "fulfillment_status": null,
            "subtotal_price": format!("{subtotal:.2}"), "total_tax": format!("{tax:.2}"),
            "total_price": format!("{total:.2}"), "total_discounts": "0.00", "taxes_included": false,
            "total_weight": 250 * lines, "test": false, "confirmed": true, "buyer_accepts_marketing": true,
            "source_name": "web", "gateway": "shopify_payments", "payment_gateway_names": ["shopify_payments"],
        });
        let billing = self.address(&first, &last);
        let shipping = self.address(&first, &last);
        let rest = json!({
            "token": self.uuid().replace('-', ""), "checkout_token": self.uuid().replace('-', ""),
            "customer_locale": "en", "tags": "", "note": null, "note_attributes": [],
            "order_status_url": format!("https://hookplane-demo.myshopify.com/orders/{}/authenticate", self.uuid()),
            "line_items": line_items,
            "shipping_lines": [{ "title": "Standard", "price": "5.00", "code": "STANDARD", "source": "shopify" }],
            "tax_lines": [{ "title": "Sales tax", "rate": 0.08, "price": format!("{tax:.2}") }],
            "discount_codes": [], "refunds": [], "fulfillments": [],
            "billing_address": billing, "shipping_address": shipping,
            "client_details": { "browser_ip": "203.0.113.7", "accept_language": "en-US,en;q=0.9", "user_agent": "Mozilla/5.0" },
            "customer": customer,
        });
        // Two literals: one json! this large exceeds the macro recursion limit.
        let (Value::Object(mut order), Value::Object(rest)) = (order, rest) else { unreachable!("object literals") };
        order.extend(rest);
        Value::Object(order).to_string().into_bytes()
    }

    pub fn shopify_product(&mut self, at: Timestamp) -> Vec<u8> {
        let (title, sku, price) = self.pick(&PRODUCTS);
        let id = self.id();
        let variant = self.id();
        json!({
            "id": id, "admin_graphql_api_id": format!("gid://shopify/Product/{id}"), "title": title,
            "body_html": format!("<p>{title}, made in small batches.</p>"), "vendor": "Hookplane Demo Goods",
            "product_type": "Goods", "handle": title.to_lowercase().replace(' ', "-"), "status": "active",
            "created_at": at.plus_millis(-86_400_000 * 90).to_rfc3339(), "updated_at": at.to_rfc3339(),
            "published_at": at.plus_millis(-86_400_000 * 89).to_rfc3339(), "tags": "demo, handmade",
            "variants": [{ "id": variant, "title": "Default Title", "price": price, "sku": sku, "taxable": true,
                           "inventory_quantity": self.rng.random_range(0..200), "updated_at": at.to_rfc3339() }],
            "options": [{ "name": "Title", "values": ["Default Title"] }], "images": [],
        })
        .to_string()
        .into_bytes()
    }

    pub fn shopify_customer(&mut self, at: Timestamp) -> Vec<u8> {
        self.customer(at).to_string().into_bytes()
    }

    /// The mandatory compliance topics: `customers/data_request`, `customers/redact`, `shop/redact`.
    pub fn shopify_compliance(&mut self, topic: &str, shop: &str) -> Vec<u8> {
        let shop_id = 548_380_009u64;
        let (_, _, email) = self.person();
        let customer_id = self.id();
        let body = match topic {
            "shop/redact" => json!({ "shop_id": shop_id, "shop_domain": shop }),
            "customers/redact" => json!({
                "shop_id": shop_id, "shop_domain": shop,
                "customer": { "id": customer_id, "email": email, "phone": null },
                "orders_to_redact": [self.id(), self.id()],
            }),
            _ => json!({
                "shop_id": shop_id, "shop_domain": shop, "orders_requested": [self.id()],
                "customer": { "id": customer_id, "email": email, "phone": null },
                "data_request": { "id": self.rng.random_range(1000..9999) },
            }),
        };
        body.to_string().into_bytes()
    }

    /// A Zoho CRM notification-channel callback body.
    pub fn zoho_notification(
        &mut self,
        module: &str,
        operation: &str,
        channel_id: &str,
        token: &str,
        at: Timestamp,
    ) -> Vec<u8> {
        let n = self.rng.random_range(1..=3);
        let ids: Vec<String> = (0..n).map(|_| format!("57257670{:011}", self.id() % 100_000_000_000)).collect();
        let (first, last, email) = self.person();
        let affected_values: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "record_id": id, "values": { "Email": email, "Last_Name": last, "First_Name": first } }))
            .collect();
        json!({
            "server_time": at.millis(), "query_params": {}, "module": module,
            "resource_uri": format!("https://www.zohoapis.com/crm/v7/{module}"), "ids": ids,
            "affected_fields": [{ "First_Name": true }, { "Email": true }], "affected_values": affected_values,
            "operation": operation, "channel_id": channel_id, "token": token,
        })
        .to_string()
        .into_bytes()
    }

    /// A Zoho Books invoice webhook body (a workflow webhook with a JSON default payload).
    pub fn zoho_invoice(&mut self, at: Timestamp) -> Vec<u8> {
        let (first, last, email) = self.person();
        let amount = f64::from(self.rng.random_range(2_000..90_000u32)) / 100.0;
        json!({
            "invoice": {
                "invoice_id": format!("46000000{:07}", self.id() % 10_000_000),
                "invoice_number": format!("INV-{:06}", self.rng.random_range(1..999_999)),
                "date": at.to_rfc3339()[..10], "status": "sent", "currency_code": "USD",
                "total": amount, "balance": amount,
                "customer_name": format!("{first} {last}"), "email": email,
            }
        })
        .to_string()
        .into_bytes()
    }

    /// A Standard Webhooks event from a billing service.
    pub fn standard_event(&mut self, kind: &str, at: Timestamp) -> Vec<u8> {
        let (_, _, email) = self.person();
        json!({
            "type": kind, "timestamp": at.to_rfc3339(),
            "data": {
                "invoice_id": format!("in_{}", self.uuid().replace('-', "")), "customer_email": email,
                "amount_cents": self.rng.random_range(500..50_000), "currency": "usd",
            }
        })
        .to_string()
        .into_bytes()
    }
}

fn ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphabetic).collect::<String>().to_lowercase()
}

/// A Shopify delivery signed with `secret`, with the classic headers.
pub fn shopify_request(
    topic: &str,
    shop: &str,
    body: Vec<u8>,
    secret: &[u8],
    webhook_id: &str,
    at: Timestamp,
) -> SignedRequest {
    let hmac = shopify::sign(&body, secret);
    SignedRequest {
        path: "/shopify/webhook".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-shopify-topic".into(), topic.into()),
            ("x-shopify-hmac-sha256".into(), hmac),
            ("x-shopify-shop-domain".into(), shop.into()),
            ("x-shopify-api-version".into(), "2025-10".into()),
            ("x-shopify-webhook-id".into(), webhook_id.into()),
            ("x-shopify-event-id".into(), format!("{webhook_id}-evt")),
            ("x-shopify-triggered-at".into(), at.to_rfc3339()),
        ],
        body,
    }
}

/// A Zoho CRM notification (the token is in the body).
pub fn zoho_channel_request(body: Vec<u8>) -> SignedRequest {
    SignedRequest {
        path: "/zoho/incoming".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

/// A Zoho workflow webhook with a shared token in `header`.
pub fn zoho_token_request(subscription: &str, header: &str, token: &str, body: Vec<u8>) -> SignedRequest {
    SignedRequest {
        path: format!("/zoho/incoming/{subscription}"),
        headers: vec![("content-type".into(), "application/json".into()), (header.to_ascii_lowercase(), token.into())],
        body,
    }
}

/// A Standard Webhooks message signed with a `whsec_` secret.
pub fn standard_request(subscription: &str, secret: &str, msg_id: &str, at: Timestamp, body: Vec<u8>) -> SignedRequest {
    let key = standard::decode_secret(secret).unwrap_or_default();
    let ts = at.seconds();
    SignedRequest {
        path: format!("/ingest/{subscription}"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), msg_id.into()),
            ("webhook-timestamp".into(), ts.to_string()),
            ("webhook-signature".into(), standard::sign(msg_id, ts, &body, &key)),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_realistic_and_repeatable() {
        let at = Timestamp::from_millis(1_790_000_000_000);
        let a = Factory::new(7).shopify_order(1042, at);
        let b = Factory::new(7).shopify_order(1042, at);
        assert_eq!(a, b, "same seed, same payload");
        assert!((2_000..=4_500).contains(&a.len()), "order body is {} bytes", a.len());
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["name"], "#1042");
        assert!(v["customer"]["email"].as_str().unwrap().ends_with("@example.com"));
    }

    #[test]
    fn signed_requests_verify() {
        let at = Timestamp::from_millis(1_790_000_000_000);
        let req = shopify_request("orders/create", "a.myshopify.com", b"{}".to_vec(), b"hush", "w1", at);
        assert_eq!(req.header("X-Shopify-Hmac-Sha256"), Some(shopify::sign(b"{}", b"hush").as_str()));
        let secret = standard::generate_secret();
        let req = standard_request("billing", &secret, "msg_1", at, b"{}".to_vec());
        let pairs: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let parsed = standard::read_request(pairs.as_slice()).unwrap();
        let key = standard::decode_secret(&secret).unwrap();
        assert_eq!(parsed.verify(&req.body, &[&key], at, 300), Ok(0));
    }
}
