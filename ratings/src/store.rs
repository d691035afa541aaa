//! Ratings posted with `POST /ratings/{id}`, kept in memory as the original does.
//!
//! Unlike the original the store is bounded: past [`CAPACITY`] products the oldest entry goes,
//! so a client cannot grow the process without limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

/// Most products whose posted ratings are kept.
pub const CAPACITY: usize = 1024;

/// Posted ratings by product id.
#[derive(Debug, Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ratings: HashMap<i64, Value>,
    order: VecDeque<i64>,
}

impl Store {
    /// The ratings posted for `id`, if any.
    pub fn get(&self, id: i64) -> Option<Value> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.ratings.get(&id).cloned()
    }

    /// Keeps `ratings` for `id`, replacing earlier ones.
    pub fn put(&self, id: i64, ratings: Value) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.ratings.insert(id, ratings).is_none() {
            inner.order.push_back(id);
            if inner.order.len() > CAPACITY
                && let Some(oldest) = inner.order.pop_front()
            {
                inner.ratings.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn posted_ratings_replace_earlier_ones() {
        let store = Store::default();
        store.put(1, json!({"Reviewer1": 1}));
        store.put(1, json!({"Reviewer1": 2}));
        assert_eq!(store.get(1), Some(json!({"Reviewer1": 2})));
        assert_eq!(store.get(2), None);
    }

    #[test]
    fn the_store_is_bounded_and_forgets_the_oldest_product() {
        let store = Store::default();
        for id in 0..=CAPACITY as i64 {
            store.put(id, json!(id));
        }
        assert_eq!(store.get(0), None);
        assert_eq!(store.get(1), Some(json!(1)));
        assert_eq!(store.get(CAPACITY as i64), Some(json!(CAPACITY)));
    }
}
