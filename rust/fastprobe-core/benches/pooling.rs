//! Criterion benchmarks of the pooling kernels over ragged and padded batches of SmolLM2-like shapes.

use criterion::{Criterion, criterion_group, criterion_main};
use fastprobe_core::pooling::{Pooling, pool_padded, pool_ragged};
use ndarray::{Array2, Array3};

fn shapes() -> (Vec<usize>, usize) {
    // 64 prompts of 8..24 tokens, hidden 576 (one SmolLM2 layer of a typical batch).
    ((0..64).map(|i| 8 + (i * 7) % 17).collect(), 576)
}

fn bench_pooling(c: &mut Criterion) {
    let (lens, h) = shapes();
    let n: usize = lens.iter().sum();
    let values = Array2::from_shape_fn((n, h), |(i, j)| ((i * 13 + j) % 97) as f32 * 0.01);
    let mut offsets = vec![0usize];
    for l in &lens {
        offsets.push(offsets.last().unwrap() + l);
    }
    let s = *lens.iter().max().unwrap();
    let hidden = Array3::from_shape_fn((lens.len(), s, h), |(b, t, j)| ((b * 5 + t * 3 + j) % 89) as f32 * 0.01);
    let mask = Array2::from_shape_fn((lens.len(), s), |(b, t)| t >= s - lens[b]);
    for method in [Pooling::LastToken, Pooling::Mean, Pooling::Max] {
        c.bench_function(&format!("ragged/{method}"), |bch| {
            bch.iter(|| pool_ragged(values.view(), &offsets, method).unwrap());
        });
        c.bench_function(&format!("padded/{method}"), |bch| {
            bch.iter(|| pool_padded(hidden.view(), mask.view(), method).unwrap());
        });
    }
}

criterion_group!(benches, bench_pooling);
criterion_main!(benches);
