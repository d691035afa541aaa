//! The HTML pages: `/productpage` (the book, its details and reviews) and `/` (the index).

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Data;
use askama::Template;
use bookinfo_http::{RequestContext, Upstream, UpstreamClient};
use bookinfo_wire::details::Book;
use bookinfo_wire::reviews::{Rating as RatingAnswer, Reviews};

use crate::{DETAILS, RATINGS, REVIEWS};
use serde_json::Value;

use crate::backend::Backend;
use crate::product::{PRODUCTS, Product};
use crate::session::{RoutedUsers, Session};

/// Shown when details fails.
pub const DETAILS_UNAVAILABLE: &str = "Sorry, product details are currently unavailable for this book.";
/// Shown when reviews fails.
pub const REVIEWS_UNAVAILABLE: &str = "Sorry, product reviews are currently unavailable for this book.";

/// `/productpage`.
#[derive(Template)]
#[template(path = "productpage.html")]
pub struct ProductPage {
    user: Option<String>,
    routed_users: Data<RoutedUsers>,
    product: &'static Product,
    details: Result<BookView, &'static str>,
    reviews: Result<ReviewsView, &'static str>,
}

/// `GET /productpage`: always 200; a failed upstream shows its error section instead.
pub async fn product_page(
    ctx: RequestContext,
    session: Session,
    routed_users: Data<RoutedUsers>,
    backend: Data<Backend>,
) -> HttpResponse {
    let product = &PRODUCTS[0];
    let id = product.id.to_string();
    // details and reviews are independent: ask both at once.
    let (details, reviews) = tokio::join!(backend.details(&ctx, &id), async {
        backend.flood(&ctx, &id).await;
        backend.reviews(&ctx, &id).await
    });
    let page = ProductPage {
        user: signed_in(&session),
        routed_users,
        product,
        details: details.map(|book| BookView::from(&book)).map_err(|_| DETAILS_UNAVAILABLE),
        reviews: reviews.map(ReviewsView::from).map_err(|_| REVIEWS_UNAVAILABLE),
    };
    tracing::info_span!("render productpage").in_scope(|| html(&page))
}

/// A page as `text/html`; it depends on who is signed in, so caches keep one per cookie.
fn html(page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::VARY, "Cookie"))
            .body(html),
        Err(err) => {
            // Rendering only fails if writing to a String does; nothing a request can cause.
            tracing::error!(error = %err, "cannot render a page");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// An empty user name counts as signed out on the page (as in the original), though it is
/// still sent upstream.
fn signed_in(session: &Session) -> Option<String> {
    session.user().filter(|user| !user.is_empty()).map(str::to_owned)
}

/// The details table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    isbn_10: String,
    publisher: String,
    pages: String,
    kind: String,
    language: String,
}

impl From<&Book> for BookView {
    fn from(book: &Book) -> Self {
        let text = |value: &Value| match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        Self {
            isbn_10: text(&book.isbn_10),
            publisher: text(&book.publisher),
            pages: text(&book.pages),
            kind: text(&book.kind),
            language: text(&book.language),
        }
    }
}

/// The reviews section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewsView {
    podname: String,
    clustername: Option<String>,
    reviews: Vec<ReviewView>,
}

/// One review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewView {
    reviewer: String,
    text: String,
    rating: Rating,
}

/// What a review shows above its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rating {
    /// Stars (v2, v3).
    Stars(StarsView),
    /// The ratings service did not answer.
    Unavailable,
    /// Nothing (v1, or zero stars).
    Hidden,
}

/// Filled and empty stars out of five, in a colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarsView {
    filled: usize,
    empty: usize,
    color: String,
}

impl From<Reviews> for ReviewsView {
    fn from(answer: Reviews) -> Self {
        Self {
            podname: answer.podname,
            // reviews reports an unset cluster name as the string "null".
            clustername: Some(answer.clustername).filter(|name| name != "null"),
            reviews: answer
                .reviews
                .into_iter()
                .map(|review| ReviewView {
                    reviewer: review.reviewer,
                    text: review.text,
                    rating: review.rating.map_or(Rating::Hidden, Rating::of),
                })
                .collect(),
        }
    }
}

impl Rating {
    /// As the original template: stars when there are some, else the error when there is one.
    fn of(answer: RatingAnswer) -> Self {
        match answer {
            RatingAnswer::Stars { stars, color } if stars != 0 => {
                let filled = stars.clamp(0, 5) as usize;
                Rating::Stars(StarsView { filled, empty: 5 - filled, color: css_color(Some(&color)) })
            }
            RatingAnswer::Error { .. } => Rating::Unavailable,
            RatingAnswer::Stars { .. } => Rating::Hidden,
        }
    }
}

/// The colour becomes part of a class name (`text-red-500`): only a plain word is kept.
fn css_color(color: Option<&str>) -> String {
    match color {
        Some(c) if !c.is_empty() && c.len() <= 20 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            c.to_ascii_lowercase()
        }
        _ => "black".to_owned(),
    }
}

/// `/` and `/index.html`.
#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    user: Option<String>,
    routed_users: Data<RoutedUsers>,
    services: Vec<ServiceRow>,
}

/// One row of the index's service table.
pub struct ServiceRow {
    name: &'static str,
    address: String,
    calls: &'static str,
}

/// `GET /` and `GET /index.html`: the services and where this productpage finds them.
pub async fn index(
    session: Session,
    routed_users: Data<RoutedUsers>,
    client: Data<UpstreamClient>,
) -> HttpResponse {
    let address =
        |u: Upstream| client.upstreams().endpoint(u).map(|e| e.base().to_owned()).unwrap_or_default();
    html(&IndexPage {
        user: signed_in(&session),
        routed_users,
        services: vec![
            ServiceRow { name: "details", address: address(DETAILS), calls: "" },
            ServiceRow { name: "reviews", address: address(REVIEWS), calls: "ratings (v2, v3)" },
            ServiceRow { name: "ratings", address: address(RATINGS), calls: "" },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(answer: Value) -> ReviewsView {
        ReviewsView::from(serde_json::from_value::<Reviews>(answer).unwrap())
    }

    #[test]
    fn stars_follow_the_original_template_rules() {
        let reviews = view(json!({"id": "0", "podname": "reviews-v3", "clustername": "null", "reviews": [
            {"reviewer": "A", "text": "a", "rating": {"stars": 4, "color": "red"}},
            {"reviewer": "B", "text": "b", "rating": {"error": "Ratings service is currently unavailable"}},
            {"reviewer": "C", "text": "c", "rating": {"stars": 0, "color": "red"}},
            {"reviewer": "D", "text": "d"},
            {"reviewer": "E", "text": "e", "rating": {"stars": 9, "color": "\"><script>"}},
        ]}));
        assert_eq!(reviews.clustername, None);
        let ratings: Vec<_> = reviews.reviews.iter().map(|r| r.rating.clone()).collect();
        assert_eq!(
            ratings,
            [
                Rating::Stars(StarsView { filled: 4, empty: 1, color: "red".into() }),
                Rating::Unavailable,
                Rating::Hidden,
                Rating::Hidden,
                Rating::Stars(StarsView { filled: 5, empty: 0, color: "black".into() }),
            ]
        );
    }

    #[test]
    fn the_details_table_shows_any_json_as_text() {
        let mut book = Book::comedy_of_errors(0);
        book.publisher = Value::Null;
        let view = BookView::from(&book);
        assert_eq!((view.pages.as_str(), view.publisher.as_str()), ("200", ""));
        assert_eq!(view.isbn_10, "1234567890");
    }
}
