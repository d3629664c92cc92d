//! The log's hot paths: batch encode/decode, appends through `PartitionWriter` (rolls and
//! retention included), and sequential reads through `PartitionReader`.
//!
//! `cargo bench --bench log` (add `-- --quick` for a fast pass).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spool::record::Header;
use spool::store::batch::{Batch, BatchBuilder};
use spool::store::{LogConfig, PartitionReader, PartitionWriter, StoreError, SyncPolicy};

const VALUE_LEN: usize = 100;

fn key(i: usize) -> Vec<u8> {
    format!("user-{:06}", i % 10_000).into_bytes()
}

/// One batch of `n` keyed records of 100 bytes, as the producer builds it.
fn build_batch(builder: &mut BatchBuilder, n: usize, value: &[u8], headers: &[Header]) {
    builder.reset();
    for i in 0..n {
        builder.push(
            1_700_000_000_000 + i as i64,
            Some(&key(i)),
            Some(value),
            headers,
        );
    }
    builder.finish();
}

fn codec(c: &mut Criterion) {
    let value = vec![b'v'; VALUE_LEN];
    let mut group = c.benchmark_group("batch");
    for &(n, with_headers) in &[(1usize, false), (100, false), (1000, false), (1000, true)] {
        let headers = if with_headers {
            vec![Header {
                key: b"trace-id".to_vec(),
                value: Some(b"0123456789abcdef".to_vec()),
            }]
        } else {
            Vec::new()
        };
        let mut builder = BatchBuilder::new(Vec::new());
        build_batch(&mut builder, n, &value, &headers);
        let size = builder.size();
        let label = format!("{n}x{VALUE_LEN}B{}", if with_headers { "+h" } else { "" });
        group.throughput(Throughput::Bytes(size as u64));
        let keys: Vec<Vec<u8>> = (0..n).map(key).collect();
        group.bench_function(BenchmarkId::new("encode", &label), |b| {
            b.iter(|| {
                builder.reset();
                for (i, k) in keys.iter().enumerate() {
                    builder.push(
                        1_700_000_000_000 + i as i64,
                        Some(k),
                        Some(&value),
                        &headers,
                    );
                }
                black_box(builder.finish().len())
            })
        });
        let mut encoded = BatchBuilder::new(Vec::new());
        build_batch(&mut encoded, n, &value, &headers);
        let bytes = encoded.into_bytes();
        group.bench_function(BenchmarkId::new("decode", &label), |b| {
            b.iter(|| {
                let batch = Batch::parse(black_box(&bytes)).expect("valid batch");
                let mut total = 0usize;
                for r in batch.records() {
                    total += r.expect("valid record").value.map_or(0, <[u8]>::len);
                }
                black_box(total)
            })
        });
    }
    group.finish();
}

fn partition_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let dir = tmp.path().join("0");
    std::fs::create_dir_all(&dir).expect("partition dir");
    dir
}

fn append(c: &mut Criterion) {
    let value = vec![b'v'; VALUE_LEN];
    let mut group = c.benchmark_group("append");
    // 64 MiB segments and 256 MiB retention: long runs roll and delete instead of filling disk.
    let config = LogConfig {
        segment_bytes: 64 << 20,
        retention_bytes: Some(256 << 20),
        ..LogConfig::default()
    };
    for &records in &[1usize, 100, 1000] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = partition_dir(&tmp);
        let mut writer = PartitionWriter::open(&dir, config, SyncPolicy::Never).expect("writer");
        let mut builder = BatchBuilder::new(Vec::new());
        build_batch(&mut builder, records, &value, &[]);
        let mut batch = builder.into_bytes();
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(
            BenchmarkId::new("writer", format!("{records}x{VALUE_LEN}B")),
            |b| {
                b.iter(|| {
                    black_box(
                        writer
                            .append(&mut batch, 1_700_000_000_000)
                            .expect("append")
                            .last_offset,
                    )
                })
            },
        );
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let value = vec![b'v'; VALUE_LEN];
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = partition_dir(&tmp);
    let config = LogConfig {
        segment_bytes: 8 << 20,
        ..LogConfig::default()
    };
    let mut writer = PartitionWriter::open(&dir, config, SyncPolicy::Never).expect("writer");
    let mut builder = BatchBuilder::new(Vec::new());
    let batches = 200;
    let per_batch = 1000;
    let mut bytes = 0u64;
    for _ in 0..batches {
        build_batch(&mut builder, per_batch, &value, &[]);
        let mut batch = builder.finish().to_vec();
        bytes += batch.len() as u64;
        writer
            .append(&mut batch, 1_700_000_000_000)
            .expect("append");
    }
    let total = (batches * per_batch) as u64;
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);
    group.bench_function(
        BenchmarkId::new("reader", format!("{total}x{VALUE_LEN}B")),
        |b| {
            b.iter(|| {
                let mut reader = PartitionReader::open(&dir, 0).expect("reader");
                let mut seen = 0u64;
                let mut sum = 0usize;
                loop {
                    let polled = reader
                        .poll::<StoreError, _>(10_000, |r| {
                            sum += r.value.map_or(0, <[u8]>::len);
                            Ok(())
                        })
                        .expect("poll");
                    seen += polled.delivered as u64;
                    if polled.at_end {
                        break;
                    }
                }
                assert_eq!(seen, total);
                black_box(sum)
            })
        },
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("seek-middle", |b| {
        b.iter(|| {
            let mut reader = PartitionReader::open(&dir, (total / 2) as i64).expect("reader");
            let mut first = None;
            reader
                .poll::<StoreError, _>(1, |r| {
                    first = Some(r.offset);
                    Ok(())
                })
                .expect("poll");
            assert_eq!(first, Some((total / 2) as i64));
        })
    });
    group.finish();
}

criterion_group!(benches, codec, append, read);
criterion_main!(benches);
