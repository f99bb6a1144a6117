//! The JaaS webhook event model: the envelope and typed `data` for every documented event type.
//!
//! Parsing is lenient where JaaS is: duplicate keys (one documented example repeats `appId`),
//! missing `appId`/`idempotencyKey`, `moderator` as bool or string, `data` as an array for
//! USAGE and AGGREGATED_REACTIONS. Unknown event types parse to [`EventData::Unknown`] and
//! unknown fields are kept in each struct's `extra` map. The model is for decisions (keys,
//! jobs, indexes); what we store is the raw body exactly as it came, so the original payload
//! can always be recovered byte for byte.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::lenient;

/// Unknown fields of a data object, kept as they came.
pub type Extra = BTreeMap<String, Value>;

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every webhook event type documented in the JaaS catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),* }

        impl EventType {
            /// All documented webhook event types (SETTINGS_PROVISIONING is a request, not an event).
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    RoomCreated => "ROOM_CREATED",
    RoomDestroyed => "ROOM_DESTROYED",
    ParticipantJoined => "PARTICIPANT_JOINED",
    ParticipantLeft => "PARTICIPANT_LEFT",
    ParticipantJoinedLobby => "PARTICIPANT_JOINED_LOBBY",
    ParticipantLeftLobby => "PARTICIPANT_LEFT_LOBBY",
    RecordingStarted => "RECORDING_STARTED",
    RecordingEnded => "RECORDING_ENDED",
    RecordingUploaded => "RECORDING_UPLOADED",
    TranscriptionUploaded => "TRANSCRIPTION_UPLOADED",
    ChatUploaded => "CHAT_UPLOADED",
    LiveStreamStarted => "LIVE_STREAM_STARTED",
    LiveStreamEnded => "LIVE_STREAM_ENDED",
    SipCallInStarted => "SIP_CALL_IN_STARTED",
    SipCallInEnded => "SIP_CALL_IN_ENDED",
    SipCallOutStarted => "SIP_CALL_OUT_STARTED",
    SipCallOutEnded => "SIP_CALL_OUT_ENDED",
    Feedback => "FEEDBACK",
    DialInStarted => "DIAL_IN_STARTED",
    DialInEnded => "DIAL_IN_ENDED",
    DialOutStarted => "DIAL_OUT_STARTED",
    DialOutEnded => "DIAL_OUT_ENDED",
    Usage => "USAGE",
    SpeakerStats => "SPEAKER_STATS",
    PollCreated => "POLL_CREATED",
    PollAnswer => "POLL_ANSWER",
    Reactions => "REACTIONS",
    AggregatedReactions => "AGGREGATED_REACTIONS",
    ScreenSharingHistory => "SCREEN_SHARING_HISTORY",
    VideoSegmentUploaded => "VIDEO_SEGMENT_UPLOADED",
    RoleChanged => "ROLE_CHANGED",
    RtcstatsUploaded => "RTCSTATS_UPLOADED",
    TranscriptionChunkReceived => "TRANSCRIPTION_CHUNK_RECEIVED",
    DocumentAdded => "DOCUMENT_ADDED",
    DocumentDeleted => "DOCUMENT_DELETED",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ROOM_CREATED, ROOM_DESTROYED, RECORDING_STARTED/ENDED, LIVE_STREAM_STARTED/ENDED.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub conference: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_breakout: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub breakout_room_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// PARTICIPANT_JOINED/LEFT and their lobby variants.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantData {
    /// Sent as a bool or as the string "true"/"false".
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub moderator: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub group: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub avatar: Option<String>,
    /// left | kicked | unknown | switch_room | unrecoverable_error (kept as text: new values appear).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub disconnect_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_breakout: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub breakout_room_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// TRANSCRIPTION_UPLOADED and CHAT_UPLOADED: one pre-authenticated link, valid 24 h.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileLinkData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pre_authenticated_link: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub link_expiration: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingParticipant {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub avatar: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// RECORDING_UPLOADED: the .mp4 link (sessions up to 6 h), deleted by JaaS after 24 h.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingUploadedData {
    #[serde(default)]
    pub participants: Vec<RecordingParticipant>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pre_authenticated_link: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub link_expiration: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub share: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub initiator_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub duration_sec: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub start_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub end_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub recording_session_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// SIP_CALL_IN/OUT_STARTED/ENDED (the ENDED events carry no address or nick).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SipCallData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub nick: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// DIAL_IN/OUT_STARTED/ENDED.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialData {
    /// "in" | "out".
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub direction: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub nick: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// FEEDBACK: rating 1..=5, or -1 when not given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackData {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub rating: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub comments: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One element of USAGE's `data` array.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEntry {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub customer_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub kid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub call_direction: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One value of SPEAKER_STATS' map (keyed by full participant jid).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStat {
    /// Milliseconds spoken.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub avatar: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOption {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub key: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// Only in POLL_ANSWER: whether this participant checked the option.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub value: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollUser {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub current_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// POLL_CREATED and POLL_ANSWER.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub question: Option<String>,
    #[serde(default)]
    pub answers: Vec<PollOption>,
    #[serde(default)]
    pub user: Option<PollUser>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub poll_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_breakout: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub breakout_room_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// REACTIONS: reactions one participant sent in a short interval.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionsData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_name: Option<String>,
    #[serde(default)]
    pub reactions: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One element of AGGREGATED_REACTIONS' `data` array.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedReaction {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reaction: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// SCREEN_SHARING_HISTORY: a link to a *list* of short-lived screenshot links.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenSharingHistoryData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pre_authenticated_link: Option<String>,
    /// The paginated variant of the list.
    #[serde(
        default,
        rename = "preAuthenticatedLinkV2",
        deserialize_with = "lenient::opt_string"
    )]
    pub pre_authenticated_link_v2: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub link_expiration: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// VIDEO_SEGMENT_UPLOADED: a 90 s segment of the recording.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSegmentData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pre_authenticated_link: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub link_expiration: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub start_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub end_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub recording_session_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JidRef {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_jid: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// ROLE_CHANGED: a participant was granted moderator rights.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleChangedData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub role: Option<String>,
    #[serde(default)]
    pub granted_to: Option<JidRef>,
    #[serde(default)]
    pub granted_by: Option<JidRef>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// RTCSTATS_UPLOADED: a gzip stats file, link valid 48 h.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcStatsData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub stats_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub participant_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub endpoint_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkParticipant {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub avatar_url: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// TRANSCRIPTION_CHUNK_RECEIVED: one final phrase during the meeting.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionChunkData {
    #[serde(default, rename = "final", deserialize_with = "lenient::opt_string")]
    pub final_text: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub language: Option<String>,
    #[serde(
        default,
        rename = "messageID",
        deserialize_with = "lenient::opt_string"
    )]
    pub message_id: Option<String>,
    #[serde(default)]
    pub participant: Option<ChunkParticipant>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// DOCUMENT_ADDED: a shared file, link valid 24 h.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentAddedData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pre_authenticated_link: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub link_expiration: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub file_size: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub initiator_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub file_created_at: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// DOCUMENT_DELETED.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentDeletedData {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub initiator_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Typed `data`, one variant per documented event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    RoomCreated(ConferenceData),
    RoomDestroyed(ConferenceData),
    ParticipantJoined(ParticipantData),
    ParticipantLeft(ParticipantData),
    ParticipantJoinedLobby(ParticipantData),
    ParticipantLeftLobby(ParticipantData),
    RecordingStarted(ConferenceData),
    RecordingEnded(ConferenceData),
    RecordingUploaded(RecordingUploadedData),
    TranscriptionUploaded(FileLinkData),
    ChatUploaded(FileLinkData),
    LiveStreamStarted(ConferenceData),
    LiveStreamEnded(ConferenceData),
    SipCallInStarted(SipCallData),
    SipCallInEnded(SipCallData),
    SipCallOutStarted(SipCallData),
    SipCallOutEnded(SipCallData),
    Feedback(FeedbackData),
    DialInStarted(DialData),
    DialInEnded(DialData),
    DialOutStarted(DialData),
    DialOutEnded(DialData),
    Usage(Vec<UsageEntry>),
    SpeakerStats(BTreeMap<String, SpeakerStat>),
    PollCreated(PollData),
    PollAnswer(PollData),
    Reactions(ReactionsData),
    AggregatedReactions(Vec<AggregatedReaction>),
    ScreenSharingHistory(ScreenSharingHistoryData),
    VideoSegmentUploaded(VideoSegmentData),
    RoleChanged(RoleChangedData),
    RtcstatsUploaded(RtcStatsData),
    TranscriptionChunkReceived(TranscriptionChunkData),
    DocumentAdded(DocumentAddedData),
    DocumentDeleted(DocumentDeletedData),
    /// An event type we do not know (yet), or a known one whose `data` did not fit its
    /// type. Kept as it came; the raw payload is stored either way.
    Unknown(Value),
}

impl EventData {
    /// Types `data` for `event_type`. A `data` that does not fit its documented shape is
    /// returned as [`EventData::Unknown`] together with the reason, never as an error:
    /// the event is still stored.
    pub fn from_value(event_type: Option<EventType>, data: Value) -> (Self, Option<String>) {
        use EventType as T;
        let Some(t) = event_type else {
            return (EventData::Unknown(data), None);
        };
        // A missing or null `data` is read as an empty object (or list) of the right type.
        let data = if data.is_null() {
            match t {
                T::Usage | T::AggregatedReactions => Value::Array(Vec::new()),
                _ => Value::Object(Map::new()),
            }
        } else {
            data
        };
        let typed = match t {
            T::RoomCreated => typed(&data, EventData::RoomCreated),
            T::RoomDestroyed => typed(&data, EventData::RoomDestroyed),
            T::ParticipantJoined => typed(&data, EventData::ParticipantJoined),
            T::ParticipantLeft => typed(&data, EventData::ParticipantLeft),
            T::ParticipantJoinedLobby => typed(&data, EventData::ParticipantJoinedLobby),
            T::ParticipantLeftLobby => typed(&data, EventData::ParticipantLeftLobby),
            T::RecordingStarted => typed(&data, EventData::RecordingStarted),
            T::RecordingEnded => typed(&data, EventData::RecordingEnded),
            T::RecordingUploaded => typed(&data, EventData::RecordingUploaded),
            T::TranscriptionUploaded => typed(&data, EventData::TranscriptionUploaded),
            T::ChatUploaded => typed(&data, EventData::ChatUploaded),
            T::LiveStreamStarted => typed(&data, EventData::LiveStreamStarted),
            T::LiveStreamEnded => typed(&data, EventData::LiveStreamEnded),
            T::SipCallInStarted => typed(&data, EventData::SipCallInStarted),
            T::SipCallInEnded => typed(&data, EventData::SipCallInEnded),
            T::SipCallOutStarted => typed(&data, EventData::SipCallOutStarted),
            T::SipCallOutEnded => typed(&data, EventData::SipCallOutEnded),
            T::Feedback => typed(&data, EventData::Feedback),
            T::DialInStarted => typed(&data, EventData::DialInStarted),
            T::DialInEnded => typed(&data, EventData::DialInEnded),
            T::DialOutStarted => typed(&data, EventData::DialOutStarted),
            T::DialOutEnded => typed(&data, EventData::DialOutEnded),
            T::Usage => typed(&data, EventData::Usage),
            T::SpeakerStats => typed(&data, EventData::SpeakerStats),
            T::PollCreated => typed(&data, EventData::PollCreated),
            T::PollAnswer => typed(&data, EventData::PollAnswer),
            T::Reactions => typed(&data, EventData::Reactions),
            T::AggregatedReactions => typed(&data, EventData::AggregatedReactions),
            T::ScreenSharingHistory => typed(&data, EventData::ScreenSharingHistory),
            T::VideoSegmentUploaded => typed(&data, EventData::VideoSegmentUploaded),
            T::RoleChanged => typed(&data, EventData::RoleChanged),
            T::RtcstatsUploaded => typed(&data, EventData::RtcstatsUploaded),
            T::TranscriptionChunkReceived => typed(&data, EventData::TranscriptionChunkReceived),
            T::DocumentAdded => typed(&data, EventData::DocumentAdded),
            T::DocumentDeleted => typed(&data, EventData::DocumentDeleted),
        };
        match typed {
            Ok(d) => (d, None),
            Err(e) => (
                EventData::Unknown(data),
                Some(format!("{t} data: {}", lenient::describe_error(&e))),
            ),
        }
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    data: &Value,
    wrap: fn(T) -> EventData,
) -> Result<EventData, serde_json::Error> {
    T::deserialize(data).map(wrap)
}

/// Why a verified body is not a JaaS event. Such bodies are quarantined, not refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body is JSON but not an object")]
    NotAnObject,
    #[error("body has no string eventType")]
    MissingEventType,
}

impl EnvelopeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingEventType => "missing_event_type",
        }
    }
}

/// A JaaS webhook event: the envelope plus typed data.
#[derive(Debug, Clone, PartialEq)]
pub struct JaasEvent {
    pub idempotency_key: Option<String>,
    pub customer_id: Option<String>,
    pub app_id: Option<String>,
    /// As sent; [`JaasEvent::known_type`] tells whether we know it.
    pub event_type: String,
    pub session_id: Option<String>,
    /// Unix milliseconds: the source of truth for ordering (delivery order is not).
    pub timestamp: Option<i64>,
    /// `<appId>/<room>`.
    pub fqn: Option<String>,
    pub data: EventData,
    /// `data` exactly as it came (null when absent). Decisions that must not depend on
    /// sibling fields typing (copy jobs) read from here by path.
    pub raw_data: Value,
    /// Set when a known type's `data` did not fit its documented shape.
    pub data_error: Option<String>,
    /// Envelope fields we do not know, kept as they came.
    pub extra: Extra,
}

impl JaasEvent {
    /// Parses a JaaS webhook body leniently. Duplicate keys keep the last value (as JSON
    /// parsers commonly do); the raw body, stored separately, keeps both.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| EnvelopeError::NotJson(lenient::describe_error(&e)))?;
        let Value::Object(mut map) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let event_type = match map.remove("eventType") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            _ => return Err(EnvelopeError::MissingEventType),
        };
        let mut take = |k: &str| {
            map.remove(k)
                .as_ref()
                .and_then(lenient::string_of)
                .filter(|s| !s.is_empty())
        };
        let idempotency_key = take("idempotencyKey");
        let customer_id = take("customerId");
        let session_id = take("sessionId");
        let fqn = take("fqn");
        let app_id = take("appId");
        let timestamp = map.remove("timestamp").as_ref().and_then(lenient::i64_of);
        let raw_data = map.remove("data").unwrap_or(Value::Null);
        let (data, data_error) =
            EventData::from_value(EventType::parse(&event_type), raw_data.clone());
        Ok(Self {
            idempotency_key,
            customer_id,
            app_id,
            event_type,
            session_id,
            timestamp,
            fqn,
            data,
            raw_data,
            data_error,
            extra: map.into_iter().collect(),
        })
    }

    pub fn known_type(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }

    /// The app id from the envelope, else the part of `fqn` before the first `/`.
    pub fn app(&self) -> Option<&str> {
        self.app_id.as_deref().or_else(|| {
            self.fqn
                .as_deref()
                .and_then(|f| f.split_once('/').map(|(a, _)| a))
        })
    }

    /// The room name: the part of `fqn` after the first `/`.
    pub fn room(&self) -> Option<&str> {
        self.fqn
            .as_deref()
            .and_then(|f| f.split_once('/').map(|(_, r)| r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas::catalogue;

    #[test]
    fn catalogue_has_every_documented_type_once() {
        let examples = catalogue::examples();
        let mut seen: Vec<_> = examples.iter().map(|e| e.section.clone()).collect();
        seen.sort();
        let mut all: Vec<_> = EventType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        all.sort();
        assert_eq!(seen, all);
        assert_eq!(EventType::ALL.len(), 35);
    }

    #[test]
    fn every_catalogue_example_parses_to_its_typed_variant() {
        for ex in catalogue::examples() {
            let ev = JaasEvent::parse(ex.body.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", ex.section));
            assert_eq!(ev.event_type, ex.section);
            assert!(
                ev.data_error.is_none(),
                "{}: {:?}",
                ex.section,
                ev.data_error
            );
            assert!(
                !matches!(ev.data, EventData::Unknown(_)),
                "{} parsed as Unknown",
                ex.section
            );
            assert!(ev.session_id.is_some(), "{}", ex.section);
            assert!(ev.timestamp.is_some(), "{}", ex.section);
            assert!(ev.app().is_some(), "{}", ex.section);
        }
    }

    #[test]
    fn moderator_is_read_from_bool_or_string() {
        for (raw, want) in [
            (r#""true""#, Some(true)),
            (r#""false""#, Some(false)),
            ("true", Some(true)),
            ("false", Some(false)),
            (r#""maybe""#, None),
        ] {
            let body =
                format!(r#"{{"eventType":"PARTICIPANT_JOINED","data":{{"moderator":{raw}}}}}"#);
            let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
            let EventData::ParticipantJoined(p) = ev.data else {
                panic!("wrong variant")
            };
            assert_eq!(p.moderator, want, "{raw}");
        }
    }

    #[test]
    fn duplicate_app_id_keeps_last_and_does_not_fail() {
        let ex = catalogue::example("RECORDING_STARTED");
        let ev = JaasEvent::parse(ex.body.as_bytes()).expect("duplicate key tolerated");
        assert_eq!(
            ev.app_id.as_deref(),
            Some("vpaas-magic-cookie-c2824d584eac4489a1e32e4e164d5a3c")
        );
    }

    #[test]
    fn unknown_fields_and_types_are_kept() {
        let body = br#"{"eventType":"PARTICIPANT_JOINED","conference":"x","data":{"flip":true,"participantFullJid":"a@b/c"}}"#;
        let ev = JaasEvent::parse(body).expect("parses");
        let EventData::ParticipantJoined(p) = &ev.data else {
            panic!("wrong variant")
        };
        assert_eq!(p.extra.get("flip"), Some(&Value::Bool(true)));
        assert!(p.extra.contains_key("participantFullJid"));
        assert!(ev.extra.contains_key("conference"));

        let ev = JaasEvent::parse(br#"{"eventType":"TRANSCRIPTION_STARTED","data":{"a":1}}"#)
            .expect("unknown types parse");
        assert_eq!(ev.known_type(), None);
        assert!(matches!(ev.data, EventData::Unknown(_)));
    }

    #[test]
    fn misshapen_data_of_a_known_type_is_kept_with_a_reason() {
        let ev = JaasEvent::parse(br#"{"eventType":"USAGE","data":{"not":"a list"}}"#)
            .expect("still an event");
        assert!(matches!(ev.data, EventData::Unknown(_)));
        assert!(
            ev.data_error
                .as_deref()
                .unwrap_or("")
                .starts_with("USAGE data")
        );
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(
            JaasEvent::parse(b"not json"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(JaasEvent::parse(b"[1,2]"), Err(EnvelopeError::NotAnObject));
        assert_eq!(
            JaasEvent::parse(br#"{"data":{}}"#),
            Err(EnvelopeError::MissingEventType)
        );
        assert_eq!(
            JaasEvent::parse(br#"{"eventType":5}"#),
            Err(EnvelopeError::MissingEventType)
        );
    }

    #[test]
    fn app_and_room_fall_back_to_fqn() {
        let ev =
            JaasEvent::parse(br#"{"eventType":"X","fqn":"vpaas-magic-cookie-1/room/with/slash"}"#)
                .expect("parses");
        assert_eq!(ev.app(), Some("vpaas-magic-cookie-1"));
        assert_eq!(ev.room(), Some("room/with/slash"));
    }
}
