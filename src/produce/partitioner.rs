//! Choosing a record's partition, as Kafka's producer does.
//!
//! A keyed record goes to `toPositive(murmur2(key)) % partitions`, exactly the partition Java's
//! `BuiltInPartitioner` picks, so keys land where a Kafka client would put them. A keyless record
//! goes to a "sticky" partition that changes each time a batch is sent (KIP-480), which keeps
//! batches large without skewing the spread over time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c.
#[inline]
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let (words, tail) = data.split_at(data.len() & !3);
    for c in words.chunks_exact(4) {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The last one to three bytes, as Kafka's switch falls through them.
    match *tail {
        [a, b, c] => h ^= u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16,
        [a, b] => h ^= u32::from(a) | u32::from(b) << 8,
        [a] => h ^= u32::from(a),
        _ => {}
    }
    if !tail.is_empty() {
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// `x % d` for 32-bit `x` by a multiplication instead of a division (a division costs tens of
/// cycles, once per record): Lemire, Kaser and Kurz, "Faster remainder by direct computation"
/// (2019), exact for every `x` and every `d > 0`.
#[derive(Debug, Clone, Copy)]
struct FastMod {
    m: u64,
    d: u32,
}

impl FastMod {
    fn new(d: u32) -> FastMod {
        assert!(d > 0, "modulo by zero");
        // 2^64 / d rounded up; wraps to 0 for d = 1, for which every remainder is 0.
        FastMod {
            m: (u64::MAX / u64::from(d)).wrapping_add(1),
            d,
        }
    }

    #[inline]
    fn rem(self, x: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(x));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

/// How records without an explicit partition are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Keyed: murmur2 of the key. Keyless: sticky, changing with every batch.
    #[default]
    Murmur2,
    /// Every record to the next partition in turn, key or not.
    RoundRobin,
    /// Every record to a random partition, key or not.
    Random,
}

/// Error from a `--partitioner-cmd` process.
#[derive(Debug, thiserror::Error)]
pub enum PartitionerError {
    #[error("cannot start partitioner command '{cmd}'")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("partitioner command '{cmd}' failed while talking to it")]
    Io {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("partitioner command '{cmd}' exited or closed its output instead of answering")]
    Closed { cmd: String },
    #[error(
        "partitioner command '{cmd}' answered {answer:?}; expected a partition number from 0 to {}",
        partitions - 1
    )]
    BadAnswer {
        cmd: String,
        answer: String,
        partitions: i32,
    },
}

/// Picks partitions for records.
#[derive(Debug)]
pub struct Partitioner {
    partitions: i32,
    modulo: FastMod,
    strategy: Strategy,
    sticky: i32,
    next_round_robin: i32,
    rng: u64,
}

impl Partitioner {
    pub fn new(strategy: Strategy, partitions: i32) -> Partitioner {
        let seed = u64::from_le_bytes(
            crate::store::fsutil::random_bytes()[..8]
                .try_into()
                .expect("8"),
        );
        let mut p = Partitioner {
            partitions,
            modulo: FastMod::new(partitions.max(1) as u32),
            strategy,
            sticky: 0,
            next_round_robin: 0,
            rng: seed | 1,
        };
        p.sticky = p.random_partition();
        p.next_round_robin = p.random_partition();
        p
    }

    #[inline(always)]
    pub fn partition(&mut self, key: Option<&[u8]>) -> i32 {
        match (self.strategy, key) {
            (Strategy::Murmur2, Some(key)) => {
                // partition_for_key, without its division.
                self.modulo.rem((murmur2(key) & 0x7fff_ffff) as u32) as i32
            }
            (Strategy::Murmur2, None) => self.sticky,
            (Strategy::RoundRobin, _) => {
                let p = self.next_round_robin;
                self.next_round_robin = (p + 1) % self.partitions;
                p
            }
            (Strategy::Random, _) => self.random_partition(),
        }
    }

    /// Whether a record with this key goes to the sticky partition (keyless, murmur2): such a
    /// record that would not fit the sticky partition's batch should start a batch on the next
    /// sticky partition instead, as Kafka's producer does (`onNewBatch`).
    #[inline]
    pub fn is_sticky(&self, key: Option<&[u8]>) -> bool {
        self.strategy == Strategy::Murmur2 && key.is_none()
    }

    /// Called when a batch of `partition` was sent: keyless records move on to another
    /// partition, as Kafka's sticky partitioner does.
    pub fn batch_sent(&mut self, partition: i32) {
        if partition == self.sticky && self.partitions > 1 {
            let step = 1 + (self.next_random() % (self.partitions as u64 - 1)) as i32;
            self.sticky = (self.sticky + step) % self.partitions;
        }
    }

    fn random_partition(&mut self) -> i32 {
        (self.next_random() % self.partitions as u64) as i32
    }

    /// xorshift64*: plenty for spreading records, and no dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 16
    }
}

/// A long-lived process that answers one partition per `<key>\t<partition count>` line.
#[derive(Debug)]
pub struct CommandPartitioner {
    cmd: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    partitions: i32,
    line: String,
    request: Vec<u8>,
}

impl CommandPartitioner {
    pub fn spawn(cmd: &str, partitions: i32) -> Result<CommandPartitioner, PartitionerError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| PartitionerError::Spawn {
                cmd: cmd.to_owned(),
                source,
            })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(CommandPartitioner {
            cmd: cmd.to_owned(),
            child,
            stdin,
            stdout,
            partitions,
            line: String::new(),
            request: Vec::new(),
        })
    }

    /// Asks for the partition of a record with `key` (a null key is sent as an empty key).
    pub fn partition(&mut self, key: Option<&[u8]>) -> Result<i32, PartitionerError> {
        // A command that exited (or closed its input) makes our write fail with EPIPE. That is
        // reported as "closed", never as an io::Error of kind BrokenPipe, which the CLI takes
        // for its own stdout's reader going away and would turn into a silent exit 0.
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                PartitionerError::Closed {
                    cmd: self.cmd.clone(),
                }
            } else {
                PartitionerError::Io {
                    cmd: self.cmd.clone(),
                    source,
                }
            }
        };
        self.request.clear();
        self.request.extend_from_slice(key.unwrap_or_default());
        self.request.push(b'\t');
        self.request
            .extend_from_slice(self.partitions.to_string().as_bytes());
        self.request.push(b'\n');
        self.stdin.write_all(&self.request).map_err(io)?;
        self.stdin.flush().map_err(io)?;
        self.line.clear();
        let n = self
            .stdout
            .read_line(&mut self.line)
            .map_err(|source| PartitionerError::Io {
                cmd: self.cmd.clone(),
                source,
            })?;
        if n == 0 {
            return Err(PartitionerError::Closed {
                cmd: self.cmd.clone(),
            });
        }
        let answer = self.line.trim();
        match answer.parse::<i32>() {
            Ok(p) if (0..self.partitions).contains(&p) => Ok(p),
            _ => Err(PartitionerError::BadAnswer {
                cmd: self.cmd.clone(),
                answer: answer.to_owned(),
                partitions: self.partitions,
            }),
        }
    }
}

impl Drop for CommandPartitioner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(
                murmur2(data),
                expected,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    /// Kafka's `Utils.murmur2` transcribed as it is written (a switch that falls through the
    /// last bytes), for keys of every tail length.
    fn kafka_murmur2(data: &[u8]) -> i32 {
        let (m, r) = (0x5bd1_e995u32, 24);
        let length = data.len();
        let mut h = 0x9747_b28cu32 ^ length as u32;
        for i in 0..length / 4 {
            let i4 = i * 4;
            let mut k = u32::from(data[i4])
                | u32::from(data[i4 + 1]) << 8
                | u32::from(data[i4 + 2]) << 16
                | u32::from(data[i4 + 3]) << 24;
            k = k.wrapping_mul(m);
            k ^= k >> r;
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let tail = length & !3;
        let rest = length % 4;
        if rest == 3 {
            h ^= u32::from(data[tail + 2]) << 16;
        }
        if rest >= 2 {
            h ^= u32::from(data[tail + 1]) << 8;
        }
        if rest >= 1 {
            h ^= u32::from(data[tail]);
            h = h.wrapping_mul(m);
        }
        h ^= h >> 13;
        h = h.wrapping_mul(m);
        h ^= h >> 15;
        h as i32
    }

    proptest::proptest! {
        #[test]
        fn murmur2_matches_kafkas_algorithm_for_every_length(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            proptest::prop_assert_eq!(murmur2(&key), kafka_murmur2(&key));
        }
    }

    #[test]
    fn keys_are_stable_and_keyless_records_stick_until_a_batch_is_sent() {
        let mut p = Partitioner::new(Strategy::Murmur2, 8);
        assert_eq!(
            p.partition(Some(b"foobar")),
            (-790_332_482i32 & 0x7fff_ffff) % 8
        );
        let first = p.partition(None);
        assert_eq!(p.partition(None), first);
        p.batch_sent(first);
        assert_ne!(p.partition(None), first);
    }

    #[test]
    fn fast_modulo_is_exact() {
        let divisors = [
            1u32,
            2,
            3,
            7,
            8,
            10,
            12,
            100,
            1000,
            65_535,
            1 << 20,
            i32::MAX as u32,
        ];
        let mut x: u32 = 0x1234_5678;
        for d in divisors {
            let f = FastMod::new(d);
            for special in [0, 1, d - 1, d, d.wrapping_add(1), u32::MAX, i32::MAX as u32] {
                assert_eq!(f.rem(special), special % d, "{special} % {d}");
            }
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(f.rem(x), x % d, "{x} % {d}");
            }
        }
        let mut p = Partitioner::new(Strategy::Murmur2, 12);
        for i in 0..1000 {
            let key = format!("user-{i}");
            assert_eq!(
                p.partition(Some(key.as_bytes())),
                partition_for_key(key.as_bytes(), 12)
            );
        }
    }

    #[test]
    fn round_robin_cycles() {
        let mut p = Partitioner::new(Strategy::RoundRobin, 3);
        let a = p.partition(Some(b"k"));
        assert_eq!(p.partition(Some(b"k")), (a + 1) % 3);
        assert_eq!(p.partition(None), (a + 2) % 3);
    }

    #[test]
    fn command_partitioner_answers_and_refuses_nonsense() {
        let mut ok = CommandPartitioner::spawn("while read k n; do echo 2; done", 3).unwrap();
        assert_eq!(ok.partition(Some(b"x")).unwrap(), 2);
        let mut bad = CommandPartitioner::spawn("while read k n; do echo 7; done", 3).unwrap();
        assert!(matches!(
            bad.partition(None),
            Err(PartitionerError::BadAnswer { .. })
        ));
        let mut gone = CommandPartitioner::spawn("true", 3).unwrap();
        assert!(gone.partition(None).is_err());
    }
}
