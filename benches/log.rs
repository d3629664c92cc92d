//! The log's hot paths: batch encode/decode, appends through `PartitionWriter` (rolls and
//! retention included), sequential reads through `PartitionReader`, and the whole produce path
//! in process (a file of keyed lines through `pipeline::run` into an 8-partition topic).
//!
//! `cargo bench --bench log` (add `-- --quick` for a fast pass).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spool::record::Header;
use spool::store::batch::{compress_batch, Batch, BatchBuilder};
use spool::store::compression::{Compression, Compressor, Decompressor};
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
        let mut decompressor = Decompressor::default();
        group.bench_function(BenchmarkId::new("decode", &label), |b| {
            b.iter(|| {
                let batch = Batch::parse(black_box(&bytes)).expect("valid batch");
                let mut total = 0usize;
                for r in batch.records(&mut decompressor).expect("valid records") {
                    total += r.expect("valid record").value.map_or(0, <[u8]>::len);
                }
                black_box(total)
            })
        });
        // The same batch compressed: decompressed into one reused buffer, then decoded.
        for codec in [Compression::Lz4, Compression::Zstd] {
            let mut compressed = Vec::new();
            compress_batch(&bytes, codec, &mut Compressor::default(), &mut compressed)
                .expect("compress");
            group.bench_function(BenchmarkId::new(format!("decode-{codec}"), &label), |b| {
                b.iter(|| {
                    let batch = Batch::parse(black_box(&compressed)).expect("valid batch");
                    let mut total = 0usize;
                    for r in batch.records(&mut decompressor).expect("valid records") {
                        total += r.expect("valid record").value.map_or(0, <[u8]>::len);
                    }
                    black_box(total)
                })
            });
        }
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
                        .poll::<StoreError, _>(10_000, |r: spool::record::RecordRef<'_>| {
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
                .poll::<StoreError, _>(1, |r: spool::record::RecordRef<'_>| {
                    first = Some(r.offset);
                    Ok(())
                })
                .expect("poll");
            assert_eq!(first, Some((total / 2) as i64));
        })
    });
    group.finish();
}

/// `spool produce -K : --fsync never` without the process: 100,000 lines of 100 bytes with
/// 10,000 distinct keys, from a file, into a new 8-partition topic each time.
fn produce(c: &mut Criterion) {
    use spool::produce::input::Input;
    use spool::produce::partitioner::Strategy;
    use spool::produce::pipeline::{self, InputFormat, PipelineOptions, RecordOptions, Route};
    use spool::produce::producer::{Producer, ProducerConfig};

    let lines = 100_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let input_path = tmp.path().join("input");
    let mut input = Vec::with_capacity(lines * 101);
    for i in 0..lines {
        input.extend_from_slice(format!("user-{:06}:{:010}-", i % 10_000, i).as_bytes());
        input.resize(input.len() + 77, b'v');
        input.push(b'\n');
    }
    std::fs::write(&input_path, &input).expect("input");
    let options = PipelineOptions {
        format: InputFormat::Lines,
        record: RecordOptions {
            key_separator: Some(b":".to_vec()),
            ..RecordOptions::default()
        },
        route: Route::Strategy(Strategy::Murmur2),
        linger: std::time::Duration::ZERO,
    };
    let config = ProducerConfig {
        sync: SyncPolicy::Never,
        ..ProducerConfig::default()
    };
    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("pipeline", format!("{lines}x100B")), |b| {
        b.iter_batched(
            || {
                let store_dir = tempfile::tempdir_in(tmp.path()).expect("store dir");
                let store = spool::store::Store::open(store_dir.path()).expect("store");
                let topic = store
                    .create_topic("bench", 8, Default::default())
                    .expect("topic");
                (store_dir, topic)
            },
            |(store_dir, topic)| {
                let mut input = Input::file(&input_path, b"\n").expect("input");
                let mut producer = Producer::new(topic, config);
                pipeline::run(
                    &mut input,
                    &mut producer,
                    &options,
                    1 << 20,
                    &mut |_, _| {},
                    &|| false,
                )
                .expect("pipeline");
                let summary = producer.close().expect("close");
                assert_eq!(summary.records, lines as u64);
                store_dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, codec, append, read, produce);
criterion_main!(benches);
