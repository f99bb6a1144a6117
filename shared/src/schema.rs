//! The DynamoDB tables the code expects, described once. The emulator set-up, the local stack,
//! the integration tests and the template check (`template.yaml` must declare the same keys
//! and indexes) all read these descriptions, so code and infrastructure cannot drift apart.
//!
//! ## Events table
//! | attribute | role |
//! | --- | --- |
//! | `idempotencyKey` (S) | partition key; the conditional `PutItem` deduplicates on it |
//! | `sessionId` (S) + `sessionSort` (S, `<13-digit ms>#<key>`) | GSI `bySession`: one `Query` = a session's events in timestamp order |
//! | `roomFqn` (S) + `roomSort` (S, `<13-digit ms>#<sessionId>`) | sparse GSI `byRoom`, set on session boundaries (ROOM_CREATED / ROOM_DESTROYED, …) and on file events that name no session (Daily's recordings, Jibri's uploads; `roomSort` tail `-`): one `Query` = a room's sessions |
//! | `jobPending` (S, always `pending`) + `jobPendingSort` (S, `<13-digit lease end ms>`) | sparse GSI `byPendingJob`, set only while a file event's job is not yet queued (state `sending`), removed when it is: one `Query` = the jobs whose enqueue lease ran out, for the sweeper. Projects `jobMessage` (the planned job JSON) and `payloadSha256` only |
//! | `expiresAt` (N) | TTL (only when a retention is configured) |
//!
//! ## Settings table
//! | attribute | role |
//! | --- | --- |
//! | `id` (S) | partition key: `app#<appId>` (an app's defaults) or `room#<appId>/<room>` |
//! | `scope` (S) | `app` or `room` |
//! | `settings` (S) | the validated settings document as JSON text |
//! | `version` (N), `updatedAt` (N, Unix ms) | optimistic locking for operators' edits |

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

/// What a global secondary index copies from the item besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    All,
    /// Only these non-key attributes.
    Include(&'static [&'static str]),
}

/// DynamoDB's limits that a write must respect, or it fails on every retry.
pub mod limits {
    /// An item: attribute names plus values. DynamoDB says 400 KB; measured, it accepts a
    /// little more (409,600 would be 400 KiB). The decimal value is safe either way.
    pub const ITEM_BYTES: usize = 400_000;
    /// A partition key, of the table or of a global secondary index.
    pub const PARTITION_KEY_BYTES: usize = 2048;
    /// A sort key, of the table or of a global secondary index.
    pub const SORT_KEY_BYTES: usize = 1024;
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub projection: IndexProjection,
}

/// A table: string keys only, on-demand billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The logical id of the table in template.yaml.
    pub logical_id: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub indexes: &'static [IndexSpec],
    pub ttl_attribute: Option<&'static str>,
    /// The stream's view type (`NEW_IMAGE`, `NEW_AND_OLD_IMAGES`): the meeting events are
    /// published from it (`crate::meeting_events`).
    pub stream: Option<&'static str>,
}

/// Attribute names of the events table.
pub mod event_attr {
    pub const KEY: &str = "idempotencyKey";
    /// The provider that sent the event (`jaas`, `daily`, ...). Items written before the
    /// provider seam have none: they are JaaS's.
    pub const PROVIDER: &str = "provider";
    pub const EVENT_TYPE: &str = "eventType";
    /// The room's name as the provider shows it (`fqn` is its identity across tenants).
    pub const ROOM: &str = "room";
    /// Participant facts of participant events: a map of `participantId`, `userId`, `name`,
    /// `moderator`, each present when the provider says.
    pub const PARTICIPANT: &str = "participant";
    /// The event's [`crate::facts::Presence`] (`joined`, `left`, `session-ended`, …).
    pub const PRESENCE: &str = "presence";
    pub const SESSION_ID: &str = "sessionId";
    pub const SESSION_SORT: &str = "sessionSort";
    pub const ROOM_FQN: &str = "roomFqn";
    pub const ROOM_SORT: &str = "roomSort";
    pub const FQN: &str = "fqn";
    pub const APP_ID: &str = "appId";
    pub const CUSTOMER_ID: &str = "customerId";
    pub const TIMESTAMP: &str = "ts";
    pub const RECEIVED_AT: &str = "receivedAt";
    pub const PAYLOAD: &str = "payload";
    pub const PAYLOAD_REF: &str = "payloadRef";
    pub const PAYLOAD_SHA256: &str = "payloadSha256";
    pub const DATA_ERROR: &str = "dataError";
    /// A file event stored without a copy job: why its link is unusable (never the link).
    pub const LINK_ERROR: &str = "linkError";
    pub const CONFLICT_OF: &str = "conflictOf";
    pub const JOB_ID: &str = "jobId";
    /// The jobs of an event that made several (Daily's raw tracks), a list; `jobId` otherwise.
    pub const JOB_IDS: &str = "jobIds";
    /// The kind of each copy job (`recording`, `transcription`, …), a list in the order of
    /// `jobId` / `jobIds`. Items stored before it have none.
    pub const JOB_KINDS: &str = "jobKinds";
    pub const JOB_STATE: &str = "jobState";
    pub const JOB_LEASE_UNTIL: &str = "jobLeaseUntil";
    pub const KIND: &str = "kind";
    pub const HEADERS: &str = "headers";
    pub const REASON: &str = "reason";
    pub const EXPIRES_AT: &str = "expiresAt";
    /// How the event was stored differently from how it came (comma-separated codes, e.g. a
    /// key too long for DynamoDB stored under its hash).
    pub const STORAGE_NOTES: &str = "storageNotes";
    /// Random token of the delivery that wrote the item: a retried write that meets its own
    /// applied item (answer lost) recognises it.
    pub const ATTEMPT: &str = "attempt";
    /// Set (to [`JOB_PENDING_VALUE`](super::JOB_PENDING_VALUE)) only while the job is not yet
    /// queued: the partition key of the sparse index the sweeper reads.
    pub const JOB_PENDING: &str = "jobPending";
    /// The enqueue lease end as 13-digit zero-padded ms text, kept equal to `jobLeaseUntil`.
    pub const JOB_PENDING_SORT: &str = "jobPendingSort";
    /// The planned copy job (JSON), kept until it is queued so the sweeper can send it
    /// without re-reading the payload (which may be in S3).
    pub const JOB_MESSAGE: &str = "jobMessage";
    /// Set (to [`LINK_WATCH_VALUE`](super::LINK_WATCH_VALUE)) on a file event until the sweeper
    /// has looked at its copies as their links near expiry: the partition key of the sparse
    /// index `byLinkWatch`.
    pub const LINK_WATCH: &str = "linkWatch";
    /// The earliest link expiry of the event's files, 13-digit zero-padded ms text.
    pub const LINK_WATCH_SORT: &str = "linkWatchSort";
}

/// The one partition of the pending-job index. A single partition is enough: an item is in
/// it only between the write and the send (milliseconds) unless something failed, and only
/// file events (a few per meeting) get there at all.
pub const JOB_PENDING_VALUE: &str = "pending";

/// The one partition of the link-watch index. File events only, each leaving it once the
/// sweeper has looked at it (hours before its links die): a few items per meeting.
pub const LINK_WATCH_VALUE: &str = "watch";

pub const EVENTS_BY_SESSION: &str = "bySession";
pub const EVENTS_BY_ROOM: &str = "byRoom";
pub const EVENTS_PENDING_JOBS: &str = "byPendingJob";
pub const EVENTS_LINK_WATCH: &str = "byLinkWatch";

pub const EVENTS: TableSpec = TableSpec {
    logical_id: "EventsTable",
    hash_key: event_attr::KEY,
    range_key: None,
    indexes: &[
        IndexSpec {
            name: EVENTS_BY_SESSION,
            hash_key: event_attr::SESSION_ID,
            range_key: Some(event_attr::SESSION_SORT),
            projection: IndexProjection::All,
        },
        IndexSpec {
            name: EVENTS_BY_ROOM,
            hash_key: event_attr::ROOM_FQN,
            range_key: Some(event_attr::ROOM_SORT),
            projection: IndexProjection::All,
        },
        IndexSpec {
            name: EVENTS_PENDING_JOBS,
            hash_key: event_attr::JOB_PENDING,
            range_key: Some(event_attr::JOB_PENDING_SORT),
            projection: IndexProjection::Include(&[
                event_attr::JOB_MESSAGE,
                event_attr::PAYLOAD_SHA256,
            ]),
        },
        IndexSpec {
            name: EVENTS_LINK_WATCH,
            hash_key: event_attr::LINK_WATCH,
            range_key: Some(event_attr::LINK_WATCH_SORT),
            // What a `RecordingAtRisk` says about the file, never the payload.
            projection: IndexProjection::Include(&[
                event_attr::PROVIDER,
                event_attr::EVENT_TYPE,
                event_attr::TIMESTAMP,
                event_attr::RECEIVED_AT,
                event_attr::SESSION_ID,
                event_attr::FQN,
                event_attr::ROOM,
                event_attr::APP_ID,
                event_attr::JOB_ID,
                event_attr::JOB_IDS,
                event_attr::JOB_KINDS,
            ]),
        },
    ],
    ttl_attribute: Some(event_attr::EXPIRES_AT),
    stream: Some("NEW_IMAGE"),
};

/// Attribute names of the settings table (layout in [`crate::aws::settings`]).
pub mod settings_attr {
    /// `app#<appId>` or `room#<appId>/<room>`.
    pub const ID: &str = "id";
    /// `app` or `room`.
    pub const SCOPE: &str = "scope";
    /// The validated settings as canonical JSON text.
    pub const SETTINGS: &str = "settings";
    pub const VERSION: &str = "version";
    pub const UPDATED_AT: &str = "updatedAt";
}

/// Settings: `id` is `app#<appId>` for an app's defaults or `room#<appId>/<room>`.
pub const SETTINGS: TableSpec = TableSpec {
    logical_id: "SettingsTable",
    hash_key: settings_attr::ID,
    range_key: None,
    indexes: &[],
    ttl_attribute: None,
    stream: None,
};

/// Attribute names of the copies table (one item per copy job; see `copier::state`).
pub mod copy_attr {
    pub const JOB_ID: &str = "jobId";
    /// `pending` | `copying` | `copied` | `failed`.
    pub const STATE: &str = "state";
    pub const OWNER: &str = "owner";
    /// Lease end, Unix ms (state `copying`).
    pub const LEASE_UNTIL: &str = "leaseUntil";
    pub const ATTEMPTS: &str = "attempts";
    pub const UPLOAD_ID: &str = "uploadId";
    pub const OBJECT_KEY: &str = "objectKey";
    pub const TOTAL_BYTES: &str = "totalBytes";
    /// The origin's validator (strong ETag or Last-Modified) of the file the stored parts came
    /// from; a resume sends it as `If-Range`.
    pub const VALIDATOR: &str = "originValidator";
    /// Checkpoint: parts `1..=doneParts` (bytes `0..doneBytes`) are uploaded; `hashState`
    /// (B) is the whole-file SHA-256 state after them. Constant size: parts are listed from S3.
    pub const DONE_PARTS: &str = "doneParts";
    pub const DONE_BYTES: &str = "doneBytes";
    pub const HASH_STATE: &str = "hashState";
    pub const SCREENSHOTS_DONE: &str = "screenshotsDone";
    pub const REASON: &str = "reason";
    /// BOOL: a failure that is never retried.
    pub const PERMANENT: &str = "permanent";
    pub const BYTES: &str = "bytes";
    pub const SHA256: &str = "sha256";
    pub const OBJECTS: &str = "objects";
    pub const CREATED_AT: &str = "createdAt";
    pub const UPDATED_AT: &str = "updatedAt";
    pub const COMPLETED_AT: &str = "completedAt";
    pub const EXPIRES_AT: &str = "expiresAt";
    /// What the file belongs to ([`crate::jobs::FileAbout`] as JSON): provider, kind, session,
    /// room, tenant. Written when the copy finishes or fails; read by the meeting events.
    pub const ABOUT: &str = "about";
    /// N: when the copy was flagged at risk (Unix ms), once per job: still not copied and its
    /// link dies within the warning window, or the copier gave up retrying. With
    /// `atRiskCause`, `atRiskReason` and `linkExpiresAt` (Unix ms); read by the meeting events.
    pub const AT_RISK_AT: &str = "atRiskAt";
    pub const AT_RISK_CAUSE: &str = "atRiskCause";
    pub const AT_RISK_REASON: &str = "atRiskReason";
    pub const LINK_EXPIRES_AT: &str = "linkExpiresAt";
}

/// Copy state per job (`jobId`), driven by the recording copier.
pub const COPIES: TableSpec = TableSpec {
    logical_id: "CopiesTable",
    hash_key: copy_attr::JOB_ID,
    range_key: None,
    indexes: &[],
    ttl_attribute: Some(copy_attr::EXPIRES_AT),
    // The old image tells a new `copied` from a repeated one.
    stream: Some("NEW_AND_OLD_IMAGES"),
};

pub const ALL_TABLES: [&TableSpec; 3] = [&EVENTS, &SETTINGS, &COPIES];

impl TableSpec {
    /// Every attribute that appears in a key of the table or of an index.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut attrs = vec![self.hash_key];
        attrs.extend(self.range_key);
        for ix in self.indexes {
            attrs.push(ix.hash_key);
            attrs.extend(ix.range_key);
        }
        attrs.sort_unstable();
        attrs.dedup();
        attrs
    }

    /// Creates the table (for the emulator and the local stack; production uses the template).
    /// An existing table is left alone.
    pub async fn create(
        &self,
        client: &aws_sdk_dynamodb::Client,
        name: &str,
    ) -> Result<(), aws_sdk_dynamodb::Error> {
        let key = |attr: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(attr)
                .key_type(kt)
                .build()
                .expect("key schema element has its required fields")
        };
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(self.hash_key, KeyType::Hash));
        if let Some(r) = self.range_key {
            req = req.key_schema(key(r, KeyType::Range));
        }
        if let Some(view) = self.stream {
            req = req.stream_specification(
                aws_sdk_dynamodb::types::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(view))
                    .build()
                    .expect("stream specification has its required fields"),
            );
        }
        for attr in self.key_attributes() {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition has its required fields"),
            );
        }
        for ix in self.indexes {
            let projection = match ix.projection {
                IndexProjection::All => Projection::builder().projection_type(ProjectionType::All),
                IndexProjection::Include(attrs) => attrs.iter().fold(
                    Projection::builder().projection_type(ProjectionType::Include),
                    |p, a| p.non_key_attributes(*a),
                ),
            };
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(ix.name)
                .key_schema(key(ix.hash_key, KeyType::Hash))
                .projection(projection.build());
            if let Some(r) = ix.range_key {
                gsi = gsi.key_schema(key(r, KeyType::Range));
            }
            req = req.global_secondary_indexes(gsi.build().expect("index has its required fields"));
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) => {
                let e = aws_sdk_dynamodb::Error::from(e);
                if !matches!(e, aws_sdk_dynamodb::Error::ResourceInUseException(_)) {
                    return Err(e);
                }
                return Ok(());
            }
        }
        if let Some(ttl) = self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl)
                        .enabled(true)
                        .build()
                        .expect("ttl spec has its required fields"),
                )
                .send()
                .await?;
        }
        Ok(())
    }
}

/// The copy-job queue and its dead-letter queue, as the template declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: &'static str,
    pub dlq_logical_id: &'static str,
    /// At least 6× the copier's timeout (AWS's advice for SQS event sources), so a message is
    /// never handed to a second copier while the first may still be working on it.
    pub visibility_timeout_secs: u32,
    /// Deliveries before a job is moved to the DLQ: 4 × 1.5 h of attempts, well inside a
    /// recording link's 24 h.
    pub max_receive_count: u32,
    /// Longer than any link lives.
    pub retention_secs: u32,
    /// 14 days, the SQS maximum: time to investigate and redrive.
    pub dlq_retention_secs: u32,
}

/// The recording copier's Lambda timeout (the maximum Lambda allows). Copies that need longer
/// stop cleanly before it and resume on the next delivery.
pub const COPIER_TIMEOUT_SECS: u32 = 900;

pub const JOBS_QUEUE: QueueSpec = QueueSpec {
    logical_id: "JobsQueue",
    dlq_logical_id: "JobsDeadLetterQueue",
    visibility_timeout_secs: 6 * COPIER_TIMEOUT_SECS,
    max_receive_count: 4,
    retention_secs: 4 * 24 * 3600,
    dlq_retention_secs: 14 * 24 * 3600,
};

/// How often the event sweeper runs (template `Schedule`; the local stack's timer). Together
/// with the enqueue lease it bounds how long a stored file event can wait for its job when the
/// queue failed and JaaS never retries: lease + one period.
pub const SWEEP_PERIOD_SECS: u64 = 60;
/// [`SWEEP_PERIOD_SECS`] as an EventBridge schedule expression.
pub const SWEEP_SCHEDULE: &str = "rate(1 minute)";

/// Messages the copier takes per invocation (the event source mapping's BatchSize): one, so a
/// six-hour recording never shares a Lambda's 15 minutes with other files.
pub const COPIER_BATCH_SIZE: i32 = 1;

/// Kinds of data-plane resource the functions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Table,
    Queue,
    Bucket,
    Secret,
}

impl ResourceKind {
    /// The CloudFormation type that declares it.
    pub fn cloudformation_type(self) -> &'static str {
        match self {
            Self::Table => "AWS::DynamoDB::Table",
            Self::Queue => "AWS::SQS::Queue",
            Self::Bucket => "AWS::S3::Bucket",
            Self::Secret => "AWS::SecretsManager::Secret",
        }
    }
}

pub const RECORDINGS_BUCKET: &str = "RecordingsBucket";
pub const PAYLOAD_BUCKET: &str = "PayloadBucket";
pub const JAAS_SECRET: &str = "JaasSecret";

/// Every data-plane resource, by template logical id: what `template.yaml` declares and what
/// the local stack creates on the emulator. A test holds the template to this list.
/// Meeting events the bus would not take, parked whole for a redrive.
pub const MEETING_EVENTS_DLQ: &str = "MeetingEventsDeadLetterQueue";

pub const DATA_RESOURCES: &[(&str, ResourceKind)] = &[
    ("EventsTable", ResourceKind::Table),
    ("SettingsTable", ResourceKind::Table),
    ("CopiesTable", ResourceKind::Table),
    ("JobsQueue", ResourceKind::Queue),
    ("JobsDeadLetterQueue", ResourceKind::Queue),
    (MEETING_EVENTS_DLQ, ResourceKind::Queue),
    (RECORDINGS_BUCKET, ResourceKind::Bucket),
    (PAYLOAD_BUCKET, ResourceKind::Bucket),
    (JAAS_SECRET, ResourceKind::Secret),
];
