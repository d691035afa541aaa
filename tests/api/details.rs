//! details, against the original's answers.

use crate::helpers::{Canned, Capture, Env, answer, client, env, get, spawn_details};

#[actix_web::test]
async fn details_of_a_book_match_the_original() {
    let details = spawn_details(&Env::new());
    let answer = get(&details.url("/details/0")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["publisher"], "PublisherA");
}

#[actix_web::test]
async fn a_non_numeric_id_gets_the_original_400() {
    let details = spawn_details(&Env::new());
    for path in ["/details/abc", "/details", "/details/", "/details/1x"] {
        let answer = get(&details.url(path)).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.body, r#"{"error":"please provide numeric product id"}"#, "{path}");
    }
}

#[actix_web::test]
async fn health_matches_the_original() {
    let details = spawn_details(&Env::new());
    let answer = get(&details.url("/health")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "Details is healthy");
}

#[actix_web::test]
async fn ids_are_read_like_the_original_from_the_last_segment_for_any_method() {
    let details = spawn_details(&Env::new());
    assert_eq!(get(&details.url("/details/1/2")).await.json()["id"], 2);
    assert_eq!(get(&details.url("/details/0x1A?x=1")).await.json()["id"], 26);
    assert_eq!(get(&details.url("/details/-3")).await.json()["id"], -3);
    let posted = answer(client().post(details.url("/details/5")).send()).await;
    assert_eq!((posted.status, posted.json()["id"].as_i64()), (200, Some(5)));
}

#[actix_web::test]
async fn other_paths_are_not_found() {
    let details = spawn_details(&Env::new());
    for path in ["/detailsfoo", "/", "/reviews/0"] {
        assert_eq!(get(&details.url(path)).await.status, 404, "{path}");
    }
}

#[actix_web::test]
async fn details_v2_builds_the_book_from_the_books_api_and_forwards_headers() {
    let books = Capture::start(Canned::json(
        r#"{"items":[{"volumeInfo":{"authors":["William Shakespeare"],"publishedDate":"2002","printType":"BOOK",
            "pageCount":128,"publisher":"Dover","language":"en",
            "industryIdentifiers":[{"type":"ISBN_10","identifier":"0486424618"},{"type":"ISBN_13","identifier":"9780486424613"}]}}]}"#,
    ));
    let details = spawn_details(&env(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKINFO_BOOKS_URL", &books.app.url("")),
    ]));
    let request = client().get(details.url("/details/4")).insert_header(("x-request-id", "r-1"));
    let answer = answer(request.send()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        r#"{"id":4,"author":"William Shakespeare","year":"2002","type":"paperback","pages":128,"publisher":"Dover","language":"English","ISBN-10":"0486424618","ISBN-13":"9780486424613"}"#
    );
    let received = books.received();
    assert_eq!(
        (received[0].method.as_str(), received[0].path.as_str()),
        ("GET", "/books/v1/volumes?q=isbn:0486424618")
    );
    assert_eq!(received[0].get("x-request-id"), Some("r-1"));
}

#[actix_web::test]
async fn details_v2_answers_400_with_the_reason_when_the_books_api_fails() {
    let books = Capture::start(Canned::status(503));
    let details = spawn_details(&env(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKINFO_BOOKS_URL", &books.app.url("")),
    ]));
    let answer = get(&details.url("/details/0")).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"].as_str().unwrap().contains("503"), "{}", answer.body);
}
