use hookplane::connectors::standard::decode_secret;
use hookplane::demo::factories::{SignedRequest, standard_request};
use hookplane::domain::Timestamp;
use serde_json::json;

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn server_at(t: Timestamp) -> TestServer {
    let s = TestServer::start_with(Options { clock_at: Some(t), ..Options::default() }).await;
    let (st, body) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "standard", "topic": "test.event", "account": "vector-sender", "name": "vectors", "secret": SECRET }),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert!(body["generated_secret"].is_null());
    s
}

fn vector() -> SignedRequest {
    SignedRequest {
        path: "/ingest/vectors".into(),
        headers: vec![
            ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp".into(), "1614265330".into()),
            ("webhook-signature".into(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into()),
        ],
        body: br#"{"test": 2432232314}"#.to_vec(),
    }
}

#[tokio::test]
async fn the_reference_vector_is_accepted_at_its_time_and_deduplicated() {
    let s = server_at(Timestamp::from_millis(1_614_265_330_000)).await;
    let (st, first) = s.send_json(&vector()).await;
    assert_eq!(st, 200, "{first}");
    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", first["delivery_id"].as_str().unwrap())).await;
    assert_eq!(d["provider_delivery_id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_eq!(d["source"], "standard");
    let (_, again) = s.send_json(&vector()).await;
    assert_eq!(again["duplicate"], true);

    // The id in place of the name works too.
    let mut by_id = vector();
    by_id.path = format!("/ingest/{}", first["subscription_id"].as_str().unwrap());
    assert_eq!(s.send_json(&by_id).await.1["duplicate"], true);
}

#[tokio::test]
async fn stale_tampered_and_foreign_requests_are_refused() {
    let t = Timestamp::from_millis(1_614_265_330_000);
    let s = server_at(t).await;

    s.clock.set(t.plus_millis(301_000));
    let got = s.send_json(&vector()).await;
    assert_problem(&got, 401, "timestamp_out_of_tolerance");
    s.clock.set(t);

    let mut negative = vector();
    negative.headers[2].1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=".into();
    assert_problem(&s.send_json(&negative).await, 401, "signature_invalid");

    let mut tampered = vector();
    tampered.body = br#"{"test": 2432232315}"#.to_vec();
    assert_problem(&s.send_json(&tampered).await, 401, "signature_invalid");

    let other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let foreign = standard_request("vectors", other, "msg_2", t, b"{}".to_vec());
    assert_problem(&s.send_json(&foreign).await, 401, "signature_invalid");

    let mut no_id = vector();
    no_id.headers.remove(0);
    assert_problem(&s.send_json(&no_id).await, 400, "header_missing");
    let mut bad_ts = vector();
    bad_ts.headers[1].1 = "yesterday".into();
    assert_problem(&s.send_json(&bad_ts).await, 400, "header_malformed");
    let mut no_sig = vector();
    no_sig.headers.remove(2);
    assert_problem(&s.send_json(&no_sig).await, 401, "signature_missing");

    let mut elsewhere = vector();
    elsewhere.path = "/ingest/nobody".into();
    assert_problem(&s.send_json(&elsewhere).await, 404, "unknown_subscription");
    assert!(s.all_deliveries("").await.is_empty());
}

#[tokio::test]
async fn a_generated_secret_is_shown_once_and_verifies() {
    let s = TestServer::start().await;
    let (st, created) = s
        .post("/api/v1/subscriptions", json!({"source": "standard", "topic": "invoice.paid", "account": "billing"}))
        .await;
    assert_eq!(st, 201, "{created}");
    let secret = created["generated_secret"].as_str().unwrap();
    assert!(decode_secret(secret).is_ok());
    let name = created["subscription"]["name"].as_str().unwrap();
    let (_, again) = s.get(&format!("/api/v1/subscriptions/{name}")).await;
    assert!(!again.to_string().contains(secret), "never shown again");
    let fp = again["secrets"][0]["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 14);

    let req = standard_request(name, secret, "msg_gen_1", now(), br#"{"type":"invoice.paid"}"#.to_vec());
    let (st, body) = s.send_json(&req).await;
    assert_eq!(st, 200, "{body}");
}
