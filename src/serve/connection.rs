//! One client connection: read a frame, decode it, hand it to its API family, write the answer.
//! Requests are answered one at a time and in order, as a Kafka broker does. Anything that is
//! not a well-formed request of an API we speak closes this connection only.

use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::codec::{self, Decoded, FrameError};
use super::{admin, fetch, groups, metadata, offsets, produce, Broker};

/// What a connection knows about its client.
pub struct Client {
    pub peer: SocketAddr,
    pub client_id: String,
}

/// Serves one connection until the client leaves, sends something unusable, or the server
/// shuts down.
pub fn serve(broker: &Broker, stream: &TcpStream, peer: SocketAddr) {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut writer = BufWriter::with_capacity(64 << 10, stream);
    let mut client = Client {
        peer,
        client_id: String::new(),
    };
    loop {
        let frame = match codec::read_frame(&mut reader, broker.max_request_size) {
            Ok(f) => f,
            Err(FrameError::Closed) => return,
            Err(e) => {
                note_closed(&client, &e);
                return;
            }
        };
        let request = match codec::decode_request(frame) {
            Ok(Decoded::Request(r)) => r,
            Ok(Decoded::ApiVersionsTooNew { correlation_id }) => {
                let body = ResponseKind::ApiVersions(metadata::api_versions_too_new());
                if respond(&mut writer, ApiKey::ApiVersions, 0, correlation_id, &body).is_err() {
                    return;
                }
                continue;
            }
            Err(e) => {
                note_closed(&client, &e);
                return;
            }
        };
        if let Some(id) = &request.header.client_id {
            if client.client_id.as_str() != id.as_str() {
                client.client_id = id.to_string();
            }
        }
        let (api_key, version) = (request.api_key, request.version);
        let correlation_id = request.header.correlation_id;
        let started = std::time::Instant::now();
        // Fetches and metadata are too many to read among the rest.
        let traced = super::trace::enabled()
            && !matches!(
                api_key,
                ApiKey::Fetch | ApiKey::Metadata | ApiKey::ApiVersions
            );
        if traced {
            trace!(
                "{} {:?} v{} #{} start",
                client.peer,
                api_key,
                version,
                correlation_id
            );
        }
        let answer = match handle(broker, &client, version, request.body) {
            Ok(answer) => answer,
            Err(e) => {
                note_closed(&client, &e);
                return;
            }
        };
        if traced {
            trace!(
                "{} {:?} #{} done in {:?}: {:?}",
                client.peer,
                api_key,
                correlation_id,
                started.elapsed(),
                answer.as_ref().map(trace_summary)
            );
        }
        if let Some(body) = answer {
            if let Err(e) = respond(&mut writer, api_key, version, correlation_id, &body) {
                note_closed(&client, &e);
                return;
            }
        }
    }
}

fn respond(
    writer: &mut BufWriter<&TcpStream>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<(), FrameError> {
    let frame = codec::encode_response(api_key, version, correlation_id, body)?;
    codec::write_frame(writer, &frame)?;
    writer.flush()?;
    Ok(())
}

/// A connection closed for a reason worth knowing about when debugging a client.
fn note_closed(client: &Client, e: &FrameError) {
    if std::env::var_os("SPOOL_SERVE_DEBUG").is_some() {
        eprintln!(
            "spool serve: closing the connection from {} ({}): {e}",
            client.peer, client.client_id
        );
    }
}

/// Answers one request; `None` when no answer is due (Produce with acks=0). An error closes
/// the connection (a request that does not fit the API's rules).
fn handle(
    broker: &Broker,
    client: &Client,
    version: i16,
    body: RequestKind,
) -> Result<Option<ResponseKind>, FrameError> {
    Ok(Some(match body {
        RequestKind::ApiVersions(r) => {
            ResponseKind::ApiVersions(metadata::api_versions(&r, version))
        }
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::metadata(broker, r, version)),
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(metadata::describe_cluster(broker, r, version))
        }
        RequestKind::Produce(r) => match produce::produce(broker, r, version) {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Ok(None),
        },
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(produce::init_producer_id(broker, r, version))
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::fetch(broker, r, version)),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(offsets::list_offsets(broker, r, version))
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(offsets::delete_records(broker, r, version))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(broker, r, version))
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(groups::list_groups(broker, r, version))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe_groups(broker, r, version))
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(groups::offset_fetch(broker, r, version))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join_group(broker, client, r, version))
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(groups::sync_group(broker, r, version))
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(broker, r, version)),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(groups::leave_group(broker, r, version))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(groups::offset_commit(broker, r, version))
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(groups::offset_delete(broker, r, version))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(groups::delete_groups(broker, r, version))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(broker, r, version))
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(broker, r, version))
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(broker, r, version))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(admin::describe_configs(broker, r, version))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(admin::alter_configs(broker, r, version))
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            admin::incremental_alter_configs(broker, r, version),
        ),
        other => {
            return Err(FrameError::Malformed(format!(
                "{:?} is not served by spool",
                api_name(&other)
            )));
        }
    }))
}

fn api_name(body: &RequestKind) -> String {
    let debug = format!("{body:?}");
    debug.split('(').next().unwrap_or("request").to_owned()
}

/// The part of an answer worth a trace line: error codes, generations, assignments.
fn trace_summary(r: &ResponseKind) -> String {
    match r {
        ResponseKind::Heartbeat(h) => format!("err {}", h.error_code),
        ResponseKind::JoinGroup(j) => format!(
            "err {} gen {} member {}",
            j.error_code,
            j.generation_id,
            j.member_id.as_str()
        ),
        ResponseKind::SyncGroup(j) => format!("err {} {:?}", j.error_code, j.assignment),
        ResponseKind::OffsetCommit(c) => format!(
            "{:?}",
            c.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect::<Vec<_>>()
        ),
        _ => String::new(),
    }
}
