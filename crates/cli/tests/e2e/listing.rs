//! The repository list pages through long lists; lists carry check summaries, a repository's
//! own answer and its history carry every step. Raw requests only for malformed queries.

use crate::harness::*;
use berth_core::Code;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_list_pages_and_carries_summaries() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    for (name, path) in [("Zeta", "team/app.git"), ("alpha", "team/lib.git")] {
        b.register(name, path, "ci").await;
    }
    let all = b.api.list_repositories().await.unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alpha", "Zeta"], "by name, whatever the case");
    // Summaries: the warned codes, no steps.
    let summary = all[0].last_check.as_ref().unwrap();
    assert_eq!(summary.warning_codes, [Code::InsecureTransport], "{all:?}");
    assert!(summary.checks.is_empty(), "{all:?}");
    let one = b.api.get_repository(all[0].id).await.unwrap();
    assert_eq!(one.last_check.as_ref().map(|c| c.checks.len()), Some(berth_core::StepName::ALL.len()), "{one:?}");

    let first = b.api.list_repositories_page(1, 0).await.unwrap();
    let second = b.api.list_repositories_page(1, 1).await.unwrap();
    let past = b.api.list_repositories_page(5, 2).await.unwrap();
    assert_eq!(first.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["alpha"]);
    assert_eq!(second[0].name, "Zeta");
    let status = second[0].last_check.as_ref().map(|c| c.status.as_str());
    assert_eq!(status, Some("warn"), "a page carries its repositories' checks");
    assert!(past.is_empty(), "{past:?}");
    // Raw: queries the typed client cannot send.
    let (s, v) = b.raw_get("/api/v1/repositories?limit=many").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    let (s, v) = b.raw_get(&format!("/api/v1/repositories/{}/checks?before=yesterday", all[0].id)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    b.stop().await;
}
