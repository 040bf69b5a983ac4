//! The repository list pages through long lists; lists carry check summaries, a repository's
//! own answer and its history carry every step.

use crate::harness::Berth;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_list_pages_and_carries_summaries() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    for (name, path) in [("Zeta", "team/app.git"), ("alpha", "team/lib.git")] {
        let (s, v) = b.post("/api/v1/repositories", json!({"name": name, "clone_url": b.git.repo_url(path), "credential": "ci"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, all) = b.get("/api/v1/repositories").await;
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "Zeta"], "by name, whatever the case");
    // Summaries: the warned codes, no steps.
    assert_eq!(all[0]["last_check"]["warning_codes"], json!(["insecure_transport"]), "{all}");
    assert!(all[0]["last_check"].get("checks").is_none(), "{all}");
    let (_, one) = b.get(&format!("/api/v1/repositories/{}", all[0]["id"])).await;
    assert_eq!(one["last_check"]["checks"].as_array().map(Vec::len), Some(11), "{one}");

    let (_, first) = b.get("/api/v1/repositories?limit=1").await;
    let (_, second) = b.get("/api/v1/repositories?limit=1&offset=1").await;
    let (_, past) = b.get("/api/v1/repositories?limit=5&offset=2").await;
    assert_eq!(first.as_array().map(|a| a.iter().map(|r| r["name"].clone()).collect::<Vec<_>>()), Some(vec![json!("alpha")]));
    assert_eq!(second[0]["name"], "Zeta");
    assert_eq!(second[0]["last_check"]["status"], "warn", "a page carries its repositories' checks");
    assert_eq!(past, json!([]));
    let (s, v) = b.get("/api/v1/repositories?limit=many").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    let (s, v) = b.get(&format!("/api/v1/repositories/{}/checks?before=yesterday", all[0]["id"])).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    b.stop().await;
}
