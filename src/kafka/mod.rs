//! The Kafka-cluster target (`spool -b HOST:PORT ...`): spool's operations on a real Kafka
//! cluster through librdkafka (the `rdkafka` crate).
//!
//! [`Cluster`] is what `-b`, `-X`, `--command-config`, `--cluster-timeout` and `-v` resolve to:
//! it hands out librdkafka client configs and clients whose logs go to stderr only with `-v`
//! (otherwise they are swallowed: a command's errors are its own `error:` line), and maps
//! librdkafka's errors to [`ClusterError`], whose messages name the cluster. Every request is
//! bounded by the cluster timeout, so an unreachable cluster is one clear error, never a hang.
//!
//! Nothing here touches the local store. The operations themselves live beside their local
//! twins (see [`crate::target`]); this module holds what they share.

pub mod consume;
pub mod group_admin;
pub mod group_consumer;
pub mod groups;
pub mod offsets;
pub mod produce;
pub mod properties;
pub mod topics;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

/// The default bound of every request to the cluster (`--cluster-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a Kafka cluster: what `-b`, `-X`, `--command-config`, `--cluster-timeout` and
/// `-v` say.
#[derive(Debug, Clone, Default)]
pub struct ClusterSettings {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// librdkafka properties from `-X KEY=VALUE`, in order; they win over the command config.
    pub properties: Vec<(String, String)>,
    /// A Java properties file of client settings (`--command-config`), as Kafka's tools take.
    pub command_config: Option<PathBuf>,
    /// Bound of each request; [`DEFAULT_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
    /// Route librdkafka's logs to stderr.
    pub verbose: bool,
}

/// A Kafka cluster, as the target of spool's commands.
#[derive(Clone)]
pub struct Cluster {
    brokers: String,
    properties: Vec<(String, String)>,
    timeout: Duration,
    log: LogRouting,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Properties may hold passwords: only their names are shown.
        f.debug_struct("Cluster")
            .field("brokers", &self.brokers)
            .field(
                "properties",
                &self.properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Cluster {
    /// Resolves the settings: reads the command config and checks every property with
    /// librdkafka, so a misspelt `-X` fails before anything is sent. Connects to nothing.
    pub fn new(settings: ClusterSettings) -> Result<Cluster, ClusterError> {
        let brokers = settings.brokers.trim().to_string();
        if brokers.is_empty() || brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(ClusterError::Config(format!(
                "expected -b HOST:PORT[,HOST:PORT...], not {:?}",
                settings.brokers
            )));
        }
        let mut properties = Vec::new();
        if let Some(path) = &settings.command_config {
            properties.extend(properties::read_command_config(path)?);
        }
        properties.extend(settings.properties);
        let cluster = Cluster {
            brokers,
            properties,
            timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
            log: LogRouting::new(settings.verbose),
        };
        cluster
            .client_config()
            .create_native_config()
            .map_err(|e| ClusterError::Config(format!("{e}")))?;
        Ok(cluster)
    }

    /// The bootstrap servers, as given.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The bound of each request to the cluster.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The librdkafka config every client of this cluster starts from: bootstrap servers,
    /// `--command-config`, `-X` (in that order, later wins) and the log level. Create clients
    /// with [`Cluster::context`] (or a context that forwards to [`LogRouting`]) so their logs
    /// go where `-v` says.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.set_log_level(if self.log.verbose {
            RDKafkaLogLevel::Debug
        } else {
            RDKafkaLogLevel::Error
        });
        config
    }

    /// Where this cluster's clients send their logs and errors.
    pub fn log_routing(&self) -> LogRouting {
        self.log.clone()
    }

    /// A client context for admin clients and plain consumers.
    pub fn context(&self) -> ClusterContext {
        ClusterContext {
            log: self.log.clone(),
        }
    }

    /// An admin client.
    pub fn admin(&self) -> Result<AdminClient<ClusterContext>, ClusterError> {
        self.create(&self.client_config())
    }

    /// A consumer without a group (assign mode), with `extra` properties on top of the
    /// cluster's.
    pub fn consumer(
        &self,
        extra: &[(&str, &str)],
    ) -> Result<BaseConsumer<ClusterContext>, ClusterError> {
        self.create(&self.consumer_config(extra))
    }

    /// The settings of a consumer that commits nothing by itself, with `extra` over them.
    fn consumer_config(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.client_config();
        // No group.id: an assign-mode consumer needs no group, and without one librdkafka
        // never looks for a group coordinator (which a cluster's ACLs may refuse).
        config.set("enable.auto.commit", "false");
        config.set("enable.auto.offset.store", "false");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config
    }

    /// A consumer for reading backlogs: [`Cluster::consumer`] with [`BACKLOG_FETCH`] where the
    /// user's `-X` does not set those properties.
    pub fn backlog_consumer(
        &self,
        extra: &[(&str, &str)],
    ) -> Result<BaseConsumer<ClusterContext>, ClusterError> {
        let mut config = self.consumer_config(extra);
        set_unless_given(&mut config, &BACKLOG_FETCH);
        self.create(&config)
    }

    /// Creates any client with [`Cluster::context`].
    pub fn create<T: FromClientConfigAndContext<ClusterContext>>(
        &self,
        config: &ClientConfig,
    ) -> Result<T, ClusterError> {
        config
            .create_with_context(self.context())
            .map_err(|e| ClusterError::Config(e.to_string()))
    }

    /// Admin options bounded by the cluster timeout.
    pub fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// The cluster's metadata (of one topic, or of all), fetched through `consumer`. This is
    /// also how an operation learns that the cluster is unreachable: the error names the
    /// bootstrap servers and the last connection failure librdkafka reported.
    pub fn metadata<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: Option<&str>,
    ) -> Result<Metadata, ClusterError> {
        consumer.fetch_metadata(topic, self.timeout).map_err(|e| {
            // librdkafka queues its logs and errors for the next poll: serve them, so the
            // error can say why the cluster could not be reached.
            for _ in 0..100 {
                if consumer.poll(Duration::ZERO).is_none() {
                    break;
                }
            }
            self.error("fetch metadata", e)
        })
    }

    /// Maps a librdkafka error of the operation `what` (e.g. "create topic orders").
    pub fn error(&self, what: &str, e: KafkaError) -> ClusterError {
        let code = e.rdkafka_error_code().or(match &e {
            KafkaError::AdminOp(code) => Some(*code),
            _ => None,
        });
        match code {
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::TimedOutQueue
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SSL,
            ) => self.unreachable(),
            Some(code) => ClusterError::Refused {
                what: what.to_string(),
                code,
            },
            None => ClusterError::Request {
                what: what.to_string(),
                source: e,
            },
        }
    }

    /// The error for a cluster that did not answer within the timeout, with the last
    /// connection failure librdkafka reported (refused, unresolvable, TLS, SASL).
    pub fn unreachable(&self) -> ClusterError {
        ClusterError::Unreachable {
            brokers: self.brokers.clone(),
            timeout: humantime::format_duration(self.timeout).to_string(),
            detail: self
                .log
                .last_error()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
        }
    }
}

/// Where librdkafka's logs and global errors go: to stderr with `-v`, else nowhere. The last
/// error is kept either way, for the message of an unreachable cluster.
#[derive(Clone)]
pub struct LogRouting {
    verbose: bool,
    last_error: Arc<Mutex<Option<String>>>,
}

impl LogRouting {
    fn new(verbose: bool) -> LogRouting {
        LogRouting {
            verbose,
            last_error: Arc::default(),
        }
    }

    /// A log line of librdkafka (`ClientContext::log`).
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if self.verbose {
            eprintln!("librdkafka: {} {facility}: {message}", level_name(level));
        }
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            // "[thrd:HOST:PORT/bootstrap]: HOST:PORT/bootstrap: Connect to ... failed: ..."
            let message = message.split_once("]: ").map_or(message, |(_, m)| m);
            self.remember(message, false);
        }
    }

    /// A global error of librdkafka (`ClientContext::error`).
    pub fn error(&self, error: KafkaError, reason: &str) {
        if self.verbose {
            eprintln!("librdkafka: error: {error}: {reason}");
        }
        // "1/1 brokers are down" says less than the failure that brought them down.
        let generic = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        if reason.is_empty() {
            self.remember(&error.to_string(), generic);
        } else {
            self.remember(reason, generic);
        }
    }

    fn remember(&self, message: &str, generic: bool) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if generic && last.is_some() {
            return;
        }
        // librdkafka's "(after 1ms in state CONNECT, 1 identical error(s) suppressed)".
        let message = match message.rfind(" (after ") {
            Some(i) if message.ends_with(')') => &message[..i],
            _ => message,
        };
        *last = Some(message.to_string());
    }

    /// The last error librdkafka reported, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn level_name(level: RDKafkaLogLevel) -> &'static str {
    match level {
        RDKafkaLogLevel::Emerg => "emerg",
        RDKafkaLogLevel::Alert => "alert",
        RDKafkaLogLevel::Critical => "crit",
        RDKafkaLogLevel::Error => "error",
        RDKafkaLogLevel::Warning => "warning",
        RDKafkaLogLevel::Notice => "notice",
        RDKafkaLogLevel::Info => "info",
        RDKafkaLogLevel::Debug => "debug",
    }
}

/// The client context of admin clients and plain consumers: logs and errors through
/// [`LogRouting`].
#[derive(Clone)]
pub struct ClusterContext {
    log: LogRouting,
}

impl ClusterContext {
    /// Where this context sends logs.
    pub fn log_routing(&self) -> &LogRouting {
        &self.log
    }
}

impl ClientContext for ClusterContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason)
    }
}

impl ConsumerContext for ClusterContext {}

/// Errors of operations on a Kafka cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Kafka cluster at {brokers} within {timeout}{detail}")]
    Unreachable {
        brokers: String,
        timeout: String,
        /// `: ` and the last connection failure, or nothing.
        detail: String,
    },
    /// A bad `-b`, `-X` or `--command-config` property (a usage error).
    #[error("bad Kafka client settings: {0}")]
    Config(String),
    #[error("cannot read --command-config {}: {source}", path.display())]
    CommandConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cluster answered with an error code.
    #[error("{what}: {}", describe_code(*code))]
    Refused {
        what: String,
        code: RDKafkaErrorCode,
    },
    /// librdkafka failed otherwise.
    #[error("{what}")]
    Request {
        what: String,
        #[source]
        source: KafkaError,
    },
    /// A record the cluster did not acknowledge.
    #[error("line {line}: the record was not delivered to {topic}/{partition} on the Kafka cluster at {brokers}: {cause}{}", if *failed > 1 { format!(" ({failed} records failed in all)") } else { String::new() })]
    Delivery {
        line: u64,
        topic: String,
        partition: i32,
        brokers: String,
        cause: String,
        failed: u64,
    },
    /// Kafka's header keys are strings.
    #[error("line {line}: header key {key:?} is not UTF-8, and a Kafka cluster takes header keys as strings")]
    BadHeader { line: u64, key: String },
    #[error("topic '{topic}' does not exist on the Kafka cluster at {brokers}")]
    TopicNotFound { topic: String, brokers: String },
    #[error(
        "partition {partition} of topic '{topic}' does not exist on the Kafka cluster at {brokers}"
    )]
    PartitionNotFound {
        topic: String,
        partition: i32,
        brokers: String,
    },
}

impl ClusterError {
    /// Whether the error is a bad command line or setting (exit 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, ClusterError::Config(_))
    }

    /// The error code the cluster answered with, if it answered with one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            ClusterError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// librdkafka's text for an error code ("Broker: Topic already exists"), in lower case after
/// the origin.
fn describe_code(code: RDKafkaErrorCode) -> String {
    let text = code.to_string();
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_lowercase(),
        None => text,
    }
}

/// Runs a future to completion on this thread. rdkafka's admin operations are futures that a
/// background thread of the admin client completes; spool needs no async runtime to wait for
/// them.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Fetch settings for reading backlogs fast: large fetches, and a fetcher kept busy while
/// records are handed out (librdkafka's 1 s backoff when its queue is full stalls a fast
/// reader). The plain and the group consumer both use them; `-X` wins over each.
pub const BACKLOG_FETCH: [(&str, &str); 6] = [
    ("fetch.max.bytes", "67108864"),
    ("max.partition.fetch.bytes", "8388608"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "262144"),
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.wait.max.ms", "100"),
];

/// Sets each of `pairs` that `config` does not set already (from `-X` or the command config).
pub fn set_unless_given(config: &mut ClientConfig, pairs: &[(&str, &str)]) {
    for (key, value) in pairs {
        if config.get(key).is_none() {
            config.set(*key, *value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(brokers: &str, properties: &[(&str, &str)]) -> ClusterSettings {
        ClusterSettings {
            brokers: brokers.to_string(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ClusterSettings::default()
        }
    }

    #[test]
    fn settings_are_checked_without_connecting() {
        let cluster = Cluster::new(settings(" a:1,b:2 ", &[("client.id", "x")])).unwrap();
        assert_eq!(cluster.brokers(), "a:1,b:2");
        assert_eq!(cluster.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(cluster.client_config().get("client.id"), Some("x"));
        assert_eq!(
            cluster.client_config().get("bootstrap.servers"),
            Some("a:1,b:2")
        );
        for bad in ["", " ", "a:1,,b:2", "a:1,"] {
            let e = Cluster::new(settings(bad, &[])).unwrap_err();
            assert!(e.is_usage(), "{bad:?}: {e}");
        }
        let e = Cluster::new(settings("a:1", &[("no.such.property", "1")])).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("no.such.property"), "{e}");
        let e = Cluster::new(settings("a:1", &[("acks", "sometimes")])).unwrap_err();
        assert!(e.to_string().contains("acks"), "{e}");
    }

    #[test]
    fn later_properties_win_and_passwords_stay_out_of_debug() {
        let cluster = Cluster::new(settings(
            "a:1",
            &[("sasl.password", "first"), ("sasl.password", "s3cret")],
        ))
        .unwrap();
        assert_eq!(cluster.client_config().get("sasl.password"), Some("s3cret"));
        assert!(!format!("{cluster:?}").contains("s3cret"));
    }

    #[test]
    fn the_last_error_is_the_specific_one() {
        let log = LogRouting::new(false);
        assert_eq!(log.last_error(), None);
        log.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "[thrd:a:1/bootstrap]: a:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)",
        );
        log.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            log.last_error().as_deref(),
            Some("a:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
        );
        // Debug lines are not errors.
        log.log(RDKafkaLogLevel::Debug, "BROKER", "[thrd:main]: something");
        assert!(log.last_error().unwrap().contains("Connection refused"));
    }

    #[test]
    fn block_on_waits_for_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let helper = std::thread::spawn(move || {
            let waker = rx.recv().unwrap();
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            waker.wake();
        });
        let mut sent = Some(tx);
        let value = block_on(std::future::poll_fn(|cx| {
            if done.load(std::sync::atomic::Ordering::SeqCst) {
                return Poll::Ready(42);
            }
            if let Some(tx) = sent.take() {
                tx.send(cx.waker().clone()).unwrap();
            }
            Poll::Pending
        }));
        assert_eq!(value, 42);
        helper.join().unwrap();
    }
}
