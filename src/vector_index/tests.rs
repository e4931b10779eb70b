#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A seeded xorshift: deterministic vectors without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn vector(&mut self, dims: usize) -> Vec<f32> {
        (0..dims).map(|_| self.next()).collect()
    }
}

fn all(_: u64) -> bool {
    true
}

fn items(n: u64, dims: usize, seed: u64) -> Vec<(u64, Vec<f32>)> {
    let mut rng = Rng(seed);
    (0..n).map(|k| (k, rng.vector(dims))).collect()
}

/// Options whose threshold puts `n` vectors in a graph, with a generous `ef`.
fn graph_options(exact_below: usize) -> IndexOptions {
    IndexOptions {
        exact_below,
        exact_allowed_max: 0,
        expansion_search: 256,
        ..IndexOptions::default()
    }
}

fn keys(found: &[(u64, f32)]) -> Vec<u64> {
    found.iter().map(|(k, _)| *k).collect()
}

#[test]
fn exact_and_graph_agree_on_small_sets() {
    let dims = 32;
    let data = items(2_000, dims, 7);
    let exact = VectorIndex::new(dims).unwrap();
    exact.add_many(&data).unwrap();
    assert!(exact.is_exact());
    let graph = VectorIndex::with_options(dims, graph_options(100)).unwrap();
    graph.add_many(&data).unwrap();
    assert!(!graph.is_exact());
    assert_eq!((exact.len(), graph.len()), (2_000, 2_000));

    let mut rng = Rng(99);
    let (mut hits, mut total) = (0, 0);
    for _ in 0..50 {
        let q = rng.vector(dims);
        let e = exact.search(&q, 10, &all).unwrap();
        let g = graph.search(&q, 10, &all).unwrap();
        assert_eq!(e.len(), 10);
        assert_eq!(g.len(), 10);
        assert!(e.windows(2).all(|w| w[0].1 >= w[1].1), "highest first");
        // The same key has the same similarity on both paths.
        for (key, sim) in &g {
            if let Some((_, s)) = e.iter().find(|(k, _)| k == key) {
                assert!((sim - s).abs() < 1e-4, "{sim} vs {s}");
            }
        }
        let ek = keys(&e);
        hits += keys(&g).iter().filter(|k| ek.contains(k)).count();
        total += 10;
    }
    assert!(hits * 100 >= total * 95, "recall {hits}/{total}");
}

#[test]
fn a_vector_finds_itself_with_similarity_one() {
    for options in [IndexOptions::default(), graph_options(10)] {
        let index = VectorIndex::with_options(16, options).unwrap();
        index.add_many(&items(300, 16, 3)).unwrap();
        let probe = items(300, 16, 3).swap_remove(123).1;
        let scaled: Vec<f32> = probe.iter().map(|x| x * 5.0).collect();
        let found = index.search(&scaled, 1, &all).unwrap();
        assert_eq!(found[0].0, 123);
        assert!((found[0].1 - 1.0).abs() < 1e-5);
        let opposite: Vec<f32> = probe.iter().map(|x| -x).collect();
        let far = index.search(&opposite, 300, &all).unwrap();
        assert_eq!(far.len(), 300);
        let last = far.last().unwrap();
        assert_eq!(last.0, 123);
        assert!((last.1 + 1.0).abs() < 1e-5 && last.1 >= -1.0);
    }
}

#[test]
fn filters_are_respected_and_still_fill_k() {
    let dims = 24;
    let data = items(3_000, dims, 11);
    // Flat; graph walked with the filter; graph answered by the exact scan of allowed keys.
    let walked = IndexOptions {
        exact_allowed_max: 0,
        ..graph_options(500)
    };
    let scanned = IndexOptions {
        exact_allowed_max: 1_000,
        ..graph_options(500)
    };
    for options in [IndexOptions::default(), walked, scanned] {
        let index = VectorIndex::with_options(dims, options).unwrap();
        index.add_many(&data).unwrap();
        let q = Rng(5).vector(dims);
        for modulus in [2u64, 10, 97, 1_500] {
            let allow = move |k: u64| k.is_multiple_of(modulus);
            let found = index.search(&q, 10, &allow).unwrap();
            let allowed = (3_000 / modulus) as usize;
            assert_eq!(found.len(), 10.min(allowed), "modulus {modulus}");
            assert!(found.iter().all(|(k, _)| k.is_multiple_of(modulus)));
        }
        assert!(index.search(&q, 10, &|_| false).unwrap().is_empty());
        // A filter accepting one key finds it.
        assert_eq!(
            keys(&index.search(&q, 5, &|k| k == 2_999).unwrap()),
            vec![2_999]
        );
    }
}

#[test]
fn selective_filters_on_a_graph_are_exact() {
    let dims = 24;
    let data = items(3_000, dims, 13);
    let flat = VectorIndex::new(dims).unwrap();
    flat.add_many(&data).unwrap();
    let graph = VectorIndex::with_options(
        dims,
        IndexOptions {
            exact_allowed_max: 200,
            ..graph_options(500)
        },
    )
    .unwrap();
    graph.add_many(&data).unwrap();
    let allow = |k: u64| k % 50 == 1;
    let mut rng = Rng(17);
    for _ in 0..10 {
        let q = rng.vector(dims);
        assert_eq!(
            keys(&graph.search(&q, 10, &allow).unwrap()),
            keys(&flat.search(&q, 10, &allow).unwrap())
        );
    }
}

#[test]
fn remove_and_replace() {
    for options in [IndexOptions::default(), graph_options(50)] {
        let index = VectorIndex::with_options(8, options).unwrap();
        let data = items(200, 8, 21);
        index.add_many(&data).unwrap();
        let target = &data[42].1;
        assert_eq!(index.search(target, 1, &all).unwrap()[0].0, 42);
        index.remove(42).unwrap();
        index.remove(42).unwrap(); // absent: nothing to do
        assert_eq!(index.len(), 199);
        let found = index.search(target, 199, &all).unwrap();
        assert_eq!(found.len(), 199);
        assert!(found.iter().all(|(k, _)| *k != 42));
        // Replacing moves key 7 onto 42's old vector.
        index.add(7, target).unwrap();
        assert_eq!(index.len(), 199);
        let top = index.search(target, 1, &all).unwrap();
        assert_eq!(top[0].0, 7);
        assert!((top[0].1 - 1.0).abs() < 1e-5);
        // A key given twice in one call keeps its last vector.
        index
            .add_many(&[(500, data[1].1.clone()), (500, data[2].1.clone())])
            .unwrap();
        assert_eq!(index.len(), 200);
        assert_eq!(
            index.search(&data[2].1, 2, &|k| k == 500).unwrap()[0].0,
            500
        );
        assert!((index.search(&data[2].1, 1, &|k| k == 500).unwrap()[0].1 - 1.0).abs() < 1e-5);
    }
}

#[test]
fn crossing_the_threshold_both_ways() {
    let index = VectorIndex::with_options(8, graph_options(100)).unwrap();
    let data = items(150, 8, 31);
    for (key, vector) in &data[..100] {
        index.add(*key, vector).unwrap();
    }
    assert!(index.is_exact());
    index.add(100, &data[100].1).unwrap();
    assert!(!index.is_exact(), "101 vectors: a graph");
    index.add_many(&data[101..]).unwrap();
    assert_eq!(index.len(), 150);
    assert_eq!(index.search(&data[120].1, 1, &all).unwrap()[0].0, 120);
    for key in 0..130 {
        index.remove(key).unwrap();
    }
    assert!(index.is_exact(), "20 vectors: flat again");
    assert_eq!(index.len(), 20);
    assert_eq!(index.search(&data[140].1, 1, &all).unwrap()[0].0, 140);
    assert!(index.memory_bytes() > 0);
}

#[test]
fn bad_input_is_refused() {
    assert!(matches!(VectorIndex::new(0), Err(IndexError::NoDimensions)));
    let index = VectorIndex::new(4).unwrap();
    assert_eq!(index.dims(), 4);
    assert!(matches!(
        index.add(1, &[1.0, 2.0, 3.0]),
        Err(IndexError::Dimensions {
            expected: 4,
            got: 3
        })
    ));
    assert!(matches!(
        index.add(1, &[0.0; 4]),
        Err(IndexError::ZeroVector)
    ));
    assert!(matches!(
        index.add(1, &[1.0, f32::NAN, 0.0, 0.0]),
        Err(IndexError::NotFinite)
    ));
    assert!(matches!(
        index.add(u64::MAX, &[1.0; 4]),
        Err(IndexError::ReservedKey(_))
    ));
    assert!(matches!(
        index.search(&[1.0; 5], 3, &all),
        Err(IndexError::Dimensions {
            expected: 4,
            got: 5
        })
    ));
    assert!(matches!(
        index.search(&[0.0; 4], 3, &all),
        Err(IndexError::ZeroVector)
    ));
    // One bad vector in a batch: nothing is added.
    let batch = vec![(1, vec![1.0; 4]), (2, vec![f32::INFINITY; 4])];
    assert!(matches!(index.add_many(&batch), Err(IndexError::NotFinite)));
    assert!(index.is_empty());
    assert!(index.search(&[1.0; 4], 0, &all).unwrap().is_empty());
    assert!(index.search(&[1.0; 4], 3, &all).unwrap().is_empty());
}

#[test]
fn a_panicking_filter_on_a_graph_is_an_error() {
    let index = VectorIndex::with_options(8, graph_options(50)).unwrap();
    index.add_many(&items(300, 8, 41)).unwrap();
    let boom = |k: u64| -> bool {
        if k.is_multiple_of(3) {
            panic!("filter bug");
        }
        true
    };
    let q = Rng(1).vector(8);
    let result = std::panic::catch_unwind(|| index.search(&q, 5, &boom));
    // The sample may hit the panic first (a plain Rust panic), or the graph walk (an error).
    assert!(matches!(result, Err(_) | Ok(Err(IndexError::Backend(_)))));
    // The index still works.
    assert_eq!(index.search(&q, 5, &all).unwrap().len(), 5);
}

#[test]
fn concurrent_adds_and_searches() {
    let dims = 32;
    let index = Arc::new(VectorIndex::with_options(dims, graph_options(300)).unwrap());
    let data = Arc::new(items(2_000, dims, 51));
    index.add_many(&data[..200]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let searchers: Vec<_> = (0..4)
        .map(|t| {
            let (index, data, done) = (index.clone(), data.clone(), done.clone());
            std::thread::spawn(move || {
                let mut searches = 0usize;
                let mut i = t;
                while !done.load(Ordering::Relaxed) || searches < 10 {
                    let (key, vector) = &data[i % 200];
                    let found = index.search(vector, 5, &all).unwrap();
                    assert_eq!(found[0].0, *key, "a stored vector finds itself: {found:?}");
                    i += 7;
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (index, data) = (index.clone(), data.clone());
            std::thread::spawn(move || {
                for (key, vector) in data[200..].iter().skip(t).step_by(2) {
                    index.add(*key, vector).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for searcher in searchers {
        assert!(searcher.join().unwrap() >= 10);
    }
    assert_eq!(index.len(), 2_000);
    assert!(!index.is_exact());
    // Every key is found by its own vector once the writers are done.
    for (key, vector) in data.iter().step_by(37) {
        assert_eq!(index.search(vector, 1, &all).unwrap()[0].0, *key);
    }
}
