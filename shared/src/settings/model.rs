//! Meeting settings as types that only hold values JaaS accepts (PROVIDERS.md,
//! SETTINGS_PROVISIONING). Parse, don't validate: the only ways to build a [`Settings`] go
//! through the field parsers here, so an invalid value can neither be stored nor answered.
//!
//! Parsing is hand-written over `serde_json::Value` rather than derived so that every refusal
//! names the field and the rule it broke (operators read these messages in the CLI) and so
//! that JSON types are strict: `"true"` is not a boolean and `10.0` is not an occupant count.
//!
//! Limits we chose where JaaS documents none are marked as ours below; they only keep typos
//! (a pasted sentence as a passcode) out of storage.

use std::fmt;

use serde_json::{Map, Value};

/// Why a settings document or one of its values was refused. Messages never contain a
/// passcode (they name the rule, not the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown setting {0:?} (known: {known})", known = Field::names())]
    UnknownField(String),
    #[error("settings must be a JSON object")]
    NotAnObject,
    #[error("settings are not valid JSON: {0}")]
    NotJson(String),
    #[error("participantsSoftLimit ({soft}) must not be above maxOccupants ({max})")]
    SoftLimitAboveMax { soft: u16, max: u16 },
}

fn invalid(field: Field, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.name(),
        reason: reason.into(),
    }
}

/// A room passcode: ASCII digits only. Empty means "no passcode" (JaaS reads an empty or
/// missing passcode as none); storing it explicitly lets a room opt out of an app-wide
/// passcode. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Passcode(String);

impl Passcode {
    /// Our bound (JaaS documents none).
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, SettingsError> {
        if raw.len() > Self::MAX_LEN {
            return Err(invalid(
                Field::Passcode,
                format!("at most {} digits", Self::MAX_LEN),
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(Field::Passcode, "digits 0-9 only"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The digits, for the answer to JaaS and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the explicit "no passcode" value.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_none() {
            "Passcode(none)"
        } else {
            "Passcode(****)"
        })
    }
}

/// Room capacity, 2..=500 as JaaS documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaxOccupants(u16);

impl MaxOccupants {
    pub const MIN: u16 = 2;
    pub const MAX: u16 = 500;

    pub fn new(n: u64) -> Result<Self, SettingsError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&n) {
            Ok(Self(n as u16))
        } else {
            Err(invalid(
                Field::MaxOccupants,
                format!("must be between {} and {}", Self::MIN, Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Participants above this count join as visitors. 1..=500 (our lower bound: 0 would turn
/// everyone into a visitor); never above [`MaxOccupants`] of the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParticipantsSoftLimit(u16);

impl ParticipantsSoftLimit {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = MaxOccupants::MAX;

    pub fn new(n: u64) -> Result<Self, SettingsError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&n) {
            Ok(Self(n as u16))
        } else {
            Err(invalid(
                Field::ParticipantsSoftLimit,
                format!("must be between {} and {}", Self::MIN, Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A telephone number for dial-out: E.164, an optional `+` and 4 to 15 digits (E.164 allows
/// at most 15; the lower bound is ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, SettingsError> {
        let digits = raw.strip_prefix('+').unwrap_or(raw);
        if !(4..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                Field::OutboundPhoneNo,
                "an E.164 number: optional '+' and 4 to 15 digits",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $field:expr, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, SettingsError> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err(invalid($field, format!(
                        "one of {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

string_enum!(
    /// Who lets people out of the lobby.
    LobbyType, Field::LobbyType, {
        WaitForApproval => "WAIT_FOR_APPROVAL",
        WaitForModerator => "WAIT_FOR_MODERATOR",
    }
);

string_enum!(
    /// Speech-to-text engine.
    TranscriberType, Field::TranscriberType, {
        Google => "GOOGLE",
        OracleCloudAiSpeech => "ORACLE_CLOUD_AI_SPEECH",
        EghtWhisper => "EGHT_WHISPER",
    }
);

string_enum!(
    /// Whose display names are hidden (JaaS documents one value).
    HideDisplayName, Field::HideDisplayName, {
        Guest => "GUEST",
    }
);

/// Every setting JaaS documents, plus the ones 8x8's own tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    LobbyEnabled,
    Passcode,
    LobbyType,
    MaxOccupants,
    TranscriberType,
    ParticipantsSoftLimit,
    VisitorsEnabled,
    HideDisplayName,
    AutoAudioRecording,
    AutoVideoRecording,
    AutoTranscriptions,
    OutboundPhoneNo,
    VisitorsLive,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::LobbyEnabled,
        Field::Passcode,
        Field::LobbyType,
        Field::MaxOccupants,
        Field::TranscriberType,
        Field::ParticipantsSoftLimit,
        Field::VisitorsEnabled,
        Field::HideDisplayName,
        Field::AutoAudioRecording,
        Field::AutoVideoRecording,
        Field::AutoTranscriptions,
        Field::OutboundPhoneNo,
        Field::VisitorsLive,
    ];

    /// The JSON name JaaS uses.
    pub fn name(self) -> &'static str {
        match self {
            Field::LobbyEnabled => "lobbyEnabled",
            Field::Passcode => "passcode",
            Field::LobbyType => "lobbyType",
            Field::MaxOccupants => "maxOccupants",
            Field::TranscriberType => "transcriberType",
            Field::ParticipantsSoftLimit => "participantsSoftLimit",
            Field::VisitorsEnabled => "visitorsEnabled",
            Field::HideDisplayName => "hideDisplayName",
            Field::AutoAudioRecording => "autoAudioRecording",
            Field::AutoVideoRecording => "autoVideoRecording",
            Field::AutoTranscriptions => "autoTranscriptions",
            Field::OutboundPhoneNo => "outboundPhoneNo",
            Field::VisitorsLive => "visitorsLive",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    fn names() -> String {
        Field::ALL.map(Field::name).join(", ")
    }

    fn is_bool(self) -> bool {
        matches!(
            self,
            Field::LobbyEnabled
                | Field::VisitorsEnabled
                | Field::AutoAudioRecording
                | Field::AutoVideoRecording
                | Field::AutoTranscriptions
                | Field::VisitorsLive
        )
    }

    fn is_count(self) -> bool {
        matches!(self, Field::MaxOccupants | Field::ParticipantsSoftLimit)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A settings document: for an app's defaults, a room, the global default, or the answer.
/// A field that is `None` was not set at this level (and is left out of the answer, which
/// JaaS reads as "off").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub lobby_enabled: Option<bool>,
    pub passcode: Option<Passcode>,
    pub lobby_type: Option<LobbyType>,
    pub max_occupants: Option<MaxOccupants>,
    pub transcriber_type: Option<TranscriberType>,
    pub participants_soft_limit: Option<ParticipantsSoftLimit>,
    pub visitors_enabled: Option<bool>,
    pub hide_display_name: Option<HideDisplayName>,
    pub auto_audio_recording: Option<bool>,
    pub auto_video_recording: Option<bool>,
    pub auto_transcriptions: Option<bool>,
    pub outbound_phone_no: Option<PhoneNumber>,
    pub visitors_live: Option<bool>,
}

fn expect_bool(field: Field, v: &Value) -> Result<bool, SettingsError> {
    v.as_bool()
        .ok_or_else(|| invalid(field, "must be true or false"))
}

fn expect_count(field: Field, v: &Value) -> Result<u64, SettingsError> {
    v.as_u64()
        .ok_or_else(|| invalid(field, "must be a whole number"))
}

fn expect_str(field: Field, v: &Value) -> Result<&str, SettingsError> {
    v.as_str().ok_or_else(|| invalid(field, "must be a string"))
}

impl Settings {
    /// Parses a JSON document (an object of known settings), including the cross-field rule.
    pub fn from_json(value: &Value) -> Result<Self, SettingsError> {
        let object = value.as_object().ok_or(SettingsError::NotAnObject)?;
        let mut settings = Settings::default();
        for (name, v) in object {
            let field =
                Field::from_name(name).ok_or_else(|| SettingsError::UnknownField(name.clone()))?;
            settings.set_json(field, v)?;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// [`Settings::from_json`] over text.
    pub fn from_json_str(text: &str) -> Result<Self, SettingsError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            // serde's message quotes no input, only a position.
            SettingsError::NotJson(e.to_string())
        })?;
        Self::from_json(&value)
    }

    /// Sets one field from a JSON value of the right JSON type. Does not check the
    /// cross-field rule (a caller setting several fields checks once, with [`Self::validate`]).
    pub fn set_json(&mut self, field: Field, v: &Value) -> Result<(), SettingsError> {
        match field {
            Field::LobbyEnabled => self.lobby_enabled = Some(expect_bool(field, v)?),
            Field::VisitorsEnabled => self.visitors_enabled = Some(expect_bool(field, v)?),
            Field::AutoAudioRecording => self.auto_audio_recording = Some(expect_bool(field, v)?),
            Field::AutoVideoRecording => self.auto_video_recording = Some(expect_bool(field, v)?),
            Field::AutoTranscriptions => self.auto_transcriptions = Some(expect_bool(field, v)?),
            Field::VisitorsLive => self.visitors_live = Some(expect_bool(field, v)?),
            Field::Passcode => self.passcode = Some(Passcode::parse(expect_str(field, v)?)?),
            Field::LobbyType => self.lobby_type = Some(LobbyType::parse(expect_str(field, v)?)?),
            Field::TranscriberType => {
                self.transcriber_type = Some(TranscriberType::parse(expect_str(field, v)?)?)
            }
            Field::HideDisplayName => {
                self.hide_display_name = Some(HideDisplayName::parse(expect_str(field, v)?)?)
            }
            Field::OutboundPhoneNo => {
                self.outbound_phone_no = Some(PhoneNumber::parse(expect_str(field, v)?)?)
            }
            Field::MaxOccupants => {
                self.max_occupants = Some(MaxOccupants::new(expect_count(field, v)?)?)
            }
            Field::ParticipantsSoftLimit => {
                self.participants_soft_limit =
                    Some(ParticipantsSoftLimit::new(expect_count(field, v)?)?)
            }
        }
        Ok(())
    }

    /// Sets one field from command-line text (`lobbyEnabled=true`, `maxOccupants=20`,
    /// `passcode=0042`): booleans and counts are read as such, everything else as a string,
    /// so a passcode keeps its leading zeros.
    pub fn set_text(&mut self, field: Field, text: &str) -> Result<(), SettingsError> {
        let value = if field.is_bool() {
            match text.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(invalid(field, "must be true or false")),
            }
        } else if field.is_count() {
            let n: u64 = text
                .trim()
                .parse()
                .map_err(|_| invalid(field, "must be a whole number"))?;
            Value::from(n)
        } else {
            Value::String(text.to_owned())
        };
        self.set_json(field, &value)
    }

    /// Clears one field (it is then inherited from the level below).
    pub fn unset(&mut self, field: Field) {
        match field {
            Field::LobbyEnabled => self.lobby_enabled = None,
            Field::Passcode => self.passcode = None,
            Field::LobbyType => self.lobby_type = None,
            Field::MaxOccupants => self.max_occupants = None,
            Field::TranscriberType => self.transcriber_type = None,
            Field::ParticipantsSoftLimit => self.participants_soft_limit = None,
            Field::VisitorsEnabled => self.visitors_enabled = None,
            Field::HideDisplayName => self.hide_display_name = None,
            Field::AutoAudioRecording => self.auto_audio_recording = None,
            Field::AutoVideoRecording => self.auto_video_recording = None,
            Field::AutoTranscriptions => self.auto_transcriptions = None,
            Field::OutboundPhoneNo => self.outbound_phone_no = None,
            Field::VisitorsLive => self.visitors_live = None,
        }
    }

    /// The rule between fields of one document: the soft limit is not above the capacity.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let (Some(soft), Some(max)) = (self.participants_soft_limit, self.max_occupants)
            && soft.get() > max.get()
        {
            return Err(SettingsError::SoftLimitAboveMax {
                soft: soft.get(),
                max: max.get(),
            });
        }
        Ok(())
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
    }

    /// Field by field: every field `upper` sets wins, the rest come from `self`.
    pub fn overlaid_with(&self, upper: &Settings) -> Settings {
        fn pick<T: Clone>(lower: &Option<T>, upper: &Option<T>) -> Option<T> {
            upper.clone().or_else(|| lower.clone())
        }
        Settings {
            lobby_enabled: pick(&self.lobby_enabled, &upper.lobby_enabled),
            passcode: pick(&self.passcode, &upper.passcode),
            lobby_type: pick(&self.lobby_type, &upper.lobby_type),
            max_occupants: pick(&self.max_occupants, &upper.max_occupants),
            transcriber_type: pick(&self.transcriber_type, &upper.transcriber_type),
            participants_soft_limit: pick(
                &self.participants_soft_limit,
                &upper.participants_soft_limit,
            ),
            visitors_enabled: pick(&self.visitors_enabled, &upper.visitors_enabled),
            hide_display_name: pick(&self.hide_display_name, &upper.hide_display_name),
            auto_audio_recording: pick(&self.auto_audio_recording, &upper.auto_audio_recording),
            auto_video_recording: pick(&self.auto_video_recording, &upper.auto_video_recording),
            auto_transcriptions: pick(&self.auto_transcriptions, &upper.auto_transcriptions),
            outbound_phone_no: pick(&self.outbound_phone_no, &upper.outbound_phone_no),
            visitors_live: pick(&self.visitors_live, &upper.visitors_live),
        }
    }

    /// The JSON JaaS receives (and what is stored): set fields only, passcode in clear.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |field: Field, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(field.name().to_owned(), v);
            }
        };
        put(Field::LobbyEnabled, self.lobby_enabled.map(Value::from));
        put(
            Field::Passcode,
            self.passcode.as_ref().map(|p| Value::from(p.expose())),
        );
        put(
            Field::LobbyType,
            self.lobby_type.map(|t| Value::from(t.as_str())),
        );
        put(
            Field::MaxOccupants,
            self.max_occupants.map(|n| Value::from(n.get())),
        );
        put(
            Field::TranscriberType,
            self.transcriber_type.map(|t| Value::from(t.as_str())),
        );
        put(
            Field::ParticipantsSoftLimit,
            self.participants_soft_limit.map(|n| Value::from(n.get())),
        );
        put(
            Field::VisitorsEnabled,
            self.visitors_enabled.map(Value::from),
        );
        put(
            Field::HideDisplayName,
            self.hide_display_name.map(|h| Value::from(h.as_str())),
        );
        put(
            Field::AutoAudioRecording,
            self.auto_audio_recording.map(Value::from),
        );
        put(
            Field::AutoVideoRecording,
            self.auto_video_recording.map(Value::from),
        );
        put(
            Field::AutoTranscriptions,
            self.auto_transcriptions.map(Value::from),
        );
        put(
            Field::OutboundPhoneNo,
            self.outbound_phone_no
                .as_ref()
                .map(|p| Value::from(p.as_str())),
        );
        put(Field::VisitorsLive, self.visitors_live.map(Value::from));
        Value::Object(m)
    }

    /// [`Self::to_json`] with a set passcode replaced by `****`: for operators' screens.
    pub fn to_json_masked(&self) -> Value {
        let mut v = self.to_json();
        if let Some(p) = v.get_mut(Field::Passcode.name())
            && p.as_str().is_some_and(|s| !s.is_empty())
        {
            *p = Value::from("****");
        }
        v
    }
}

/// A JaaS appId (`vpaas-magic-cookie-<hex>` in practice): ASCII letters, digits, `-`, `_`,
/// `.`; at most 128 characters (our bound). Restricting it keeps the table keys unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("appId is empty");
        }
        if raw.len() > Self::MAX_LEN {
            return Err("appId is longer than 128 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err("appId may hold only letters, digits, '-', '_' and '.'");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A meeting's full name, `<appId>/<room>`. The room is everything after the first `/`:
/// non-empty, no control characters, at most 512 bytes (our bound, well inside DynamoDB's
/// 2048-byte partition key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fqn {
    app: AppId,
    room: String,
}

impl Fqn {
    pub const MAX_ROOM_LEN: usize = 512;

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let (app, room) = raw
            .split_once('/')
            .ok_or("fqn must look like <appId>/<room>")?;
        let app = AppId::parse(app)?;
        if room.is_empty() {
            return Err("room name is empty");
        }
        if room.len() > Self::MAX_ROOM_LEN {
            return Err("room name is longer than 512 bytes");
        }
        if room.chars().any(char::is_control) {
            return Err("room name contains control characters");
        }
        Ok(Self {
            app,
            room: room.to_owned(),
        })
    }

    pub fn app(&self) -> &AppId {
        &self.app
    }

    pub fn room(&self) -> &str {
        &self.room
    }
}

impl fmt::Display for Fqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.room)
    }
}

/// Where a settings document applies: an app's defaults or one room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    App(AppId),
    Room(Fqn),
}

impl Scope {
    /// The table key: `app#<appId>` or `room#<appId>/<room>` (see [`crate::schema::SETTINGS`]).
    pub fn key(&self) -> String {
        match self {
            Scope::App(app) => format!("app#{app}"),
            Scope::Room(fqn) => format!("room#{fqn}"),
        }
    }

    /// The scope a table key names.
    pub fn from_key(key: &str) -> Result<Self, &'static str> {
        if let Some(app) = key.strip_prefix("app#") {
            Ok(Scope::App(AppId::parse(app)?))
        } else if let Some(fqn) = key.strip_prefix("room#") {
            Ok(Scope::Room(Fqn::parse(fqn)?))
        } else {
            Err("settings key is neither app#... nor room#...")
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::App(app) => write!(f, "app {app}"),
            Scope::Room(fqn) => write!(f, "room {fqn}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err_field(r: Result<Settings, SettingsError>) -> &'static str {
        match r {
            Err(SettingsError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn every_field_round_trips() {
        let doc = json!({
            "lobbyEnabled": true,
            "passcode": "0042",
            "lobbyType": "WAIT_FOR_MODERATOR",
            "maxOccupants": 20,
            "transcriberType": "EGHT_WHISPER",
            "participantsSoftLimit": 10,
            "visitorsEnabled": false,
            "hideDisplayName": "GUEST",
            "autoAudioRecording": true,
            "autoVideoRecording": false,
            "autoTranscriptions": true,
            "outboundPhoneNo": "+4930123456",
            "visitorsLive": true
        });
        let s = Settings::from_json(&doc).expect("valid");
        assert_eq!(s.to_json(), doc);
        assert_eq!(Field::ALL.len(), doc.as_object().map(|o| o.len()).unwrap());
    }

    #[test]
    fn fields_nobody_set_are_left_out() {
        let s = Settings::from_json(&json!({"lobbyEnabled": false})).unwrap();
        assert_eq!(s.to_json(), json!({"lobbyEnabled": false}));
        assert_eq!(Settings::default().to_json(), json!({}));
        assert!(Settings::default().is_empty());
        assert!(!s.is_empty());
    }

    #[test]
    fn booleans_must_be_json_booleans() {
        for f in Field::ALL.into_iter().filter(|f| f.is_bool()) {
            for bad in [json!("true"), json!(1), json!(null), json!([])] {
                let doc = json!({ f.name(): bad });
                assert_eq!(err_field(Settings::from_json(&doc)), f.name(), "{doc}");
            }
            for good in [true, false] {
                let s = Settings::from_json(&json!({ f.name(): good })).unwrap();
                assert_eq!(s.to_json()[f.name()], json!(good));
            }
        }
    }

    #[test]
    fn passcode_is_digits_only() {
        for good in ["", "0", "0042", "12345678901234567890123456789012"] {
            let s = Settings::from_json(&json!({ "passcode": good })).unwrap();
            assert_eq!(s.passcode.as_ref().map(Passcode::expose), Some(good));
        }
        for bad in [
            "12a4",
            " 1234",
            "1234 ",
            "-1",
            "١٢٣",
            "12.3",
            "123456789012345678901234567890123",
        ] {
            assert_eq!(
                err_field(Settings::from_json(&json!({ "passcode": bad }))),
                "passcode",
                "{bad:?}"
            );
        }
        // A number is not accepted: it would lose leading zeros.
        assert_eq!(
            err_field(Settings::from_json(&json!({ "passcode": 1234 }))),
            "passcode"
        );
    }

    #[test]
    fn passcode_never_shows_in_debug_or_errors() {
        let s = Settings::from_json(&json!({ "passcode": "987654" })).unwrap();
        assert!(!format!("{s:?}").contains("987654"));
        let e = Settings::from_json(&json!({ "passcode": "98765x" })).unwrap_err();
        assert!(!e.to_string().contains("98765"));
        assert_eq!(s.to_json_masked()["passcode"], "****");
        let none = Settings::from_json(&json!({ "passcode": "" })).unwrap();
        assert_eq!(none.to_json_masked()["passcode"], "");
    }

    #[test]
    fn max_occupants_is_2_to_500_exhaustively() {
        for n in 0u64..=1_000 {
            let r = Settings::from_json(&json!({ "maxOccupants": n }));
            assert_eq!(r.is_ok(), (2..=500).contains(&n), "{n}");
        }
        for bad in [
            json!(-5),
            json!(20.0),
            json!(20.5),
            json!("20"),
            json!(u64::MAX),
        ] {
            assert_eq!(
                err_field(Settings::from_json(&json!({ "maxOccupants": bad }))),
                "maxOccupants"
            );
        }
    }

    #[test]
    fn soft_limit_is_1_to_500_and_not_above_max() {
        for n in 0u64..=600 {
            let r = Settings::from_json(&json!({ "participantsSoftLimit": n }));
            assert_eq!(r.is_ok(), (1..=500).contains(&n), "{n}");
        }
        for max in [2u64, 3, 50, 499, 500] {
            for soft in 1u64..=500 {
                let r = Settings::from_json(
                    &json!({ "maxOccupants": max, "participantsSoftLimit": soft }),
                );
                if soft <= max {
                    r.expect("soft limit within capacity");
                } else {
                    assert_eq!(
                        r.unwrap_err(),
                        SettingsError::SoftLimitAboveMax {
                            soft: soft as u16,
                            max: max as u16
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn enums_accept_exactly_their_documented_values() {
        let cases: [(Field, &[&str]); 3] = [
            (
                Field::LobbyType,
                &["WAIT_FOR_APPROVAL", "WAIT_FOR_MODERATOR"],
            ),
            (
                Field::TranscriberType,
                &["GOOGLE", "ORACLE_CLOUD_AI_SPEECH", "EGHT_WHISPER"],
            ),
            (Field::HideDisplayName, &["GUEST"]),
        ];
        for (field, values) in cases {
            for v in values {
                let s = Settings::from_json(&json!({ field.name(): v })).unwrap();
                assert_eq!(s.to_json()[field.name()], json!(v));
                let lower = v.to_ascii_lowercase();
                assert_eq!(
                    err_field(Settings::from_json(&json!({ field.name(): lower }))),
                    field.name()
                );
            }
            for bad in [json!(""), json!("OTHER"), json!(1), json!(true)] {
                assert_eq!(
                    err_field(Settings::from_json(&json!({ field.name(): bad }))),
                    field.name()
                );
            }
        }
        assert_eq!(LobbyType::ALL.len(), 2);
        assert_eq!(TranscriberType::ALL.len(), 3);
    }

    #[test]
    fn phone_numbers_are_e164() {
        for good in ["+4930123456", "4930123456", "+123456789012345", "1234"] {
            Settings::from_json(&json!({ "outboundPhoneNo": good })).expect(good);
        }
        for bad in [
            "",
            "+",
            "123",
            "+1234567890123456",
            "+49 30 123",
            "0800-CALL",
            "++123456",
        ] {
            assert_eq!(
                err_field(Settings::from_json(&json!({ "outboundPhoneNo": bad }))),
                "outboundPhoneNo",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_non_objects_are_refused() {
        assert_eq!(
            Settings::from_json(&json!({"lobbyenabled": true})).unwrap_err(),
            SettingsError::UnknownField("lobbyenabled".into())
        );
        for v in [json!([]), json!("x"), json!(null), json!(1)] {
            assert_eq!(
                Settings::from_json(&v).unwrap_err(),
                SettingsError::NotAnObject
            );
        }
        assert!(matches!(
            Settings::from_json_str("{"),
            Err(SettingsError::NotJson(_))
        ));
    }

    #[test]
    fn text_assignments_follow_the_field_type() {
        let mut s = Settings::default();
        s.set_text(Field::Passcode, "0042").unwrap();
        s.set_text(Field::MaxOccupants, "20").unwrap();
        s.set_text(Field::LobbyEnabled, "true").unwrap();
        s.set_text(Field::LobbyType, "WAIT_FOR_APPROVAL").unwrap();
        assert_eq!(
            s.to_json(),
            json!({"passcode": "0042", "maxOccupants": 20, "lobbyEnabled": true,
                   "lobbyType": "WAIT_FOR_APPROVAL"})
        );
        assert!(s.set_text(Field::LobbyEnabled, "yes").is_err());
        assert!(s.set_text(Field::MaxOccupants, "1").is_err());
        assert!(s.set_text(Field::MaxOccupants, "many").is_err());
        s.unset(Field::Passcode);
        assert!(s.passcode.is_none());
        for f in Field::ALL {
            s.unset(f);
        }
        assert!(s.is_empty());
    }

    #[test]
    fn overlay_is_field_by_field() {
        let lower =
            Settings::from_json(&json!({"lobbyEnabled": true, "maxOccupants": 10})).unwrap();
        let upper = Settings::from_json(&json!({"lobbyEnabled": false, "passcode": "1"})).unwrap();
        assert_eq!(
            lower.overlaid_with(&upper).to_json(),
            json!({"lobbyEnabled": false, "maxOccupants": 10, "passcode": "1"})
        );
    }

    #[test]
    fn fqn_and_scope_keys() {
        let fqn = Fqn::parse("vpaas-magic-cookie-abc/My Room/part").unwrap();
        assert_eq!(fqn.app().as_str(), "vpaas-magic-cookie-abc");
        assert_eq!(fqn.room(), "My Room/part");
        assert_eq!(fqn.to_string(), "vpaas-magic-cookie-abc/My Room/part");
        let room = Scope::Room(fqn.clone());
        assert_eq!(room.key(), "room#vpaas-magic-cookie-abc/My Room/part");
        assert_eq!(Scope::from_key(&room.key()).unwrap(), room);
        let app = Scope::App(fqn.app().clone());
        assert_eq!(app.key(), "app#vpaas-magic-cookie-abc");
        assert_eq!(Scope::from_key(&app.key()).unwrap(), app);
        for bad in [
            "",
            "noslash",
            "/room",
            "app/",
            "ap p/room",
            "app#x/room",
            "a/r\n",
        ] {
            assert!(Fqn::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Fqn::parse(&format!("a/{}", "r".repeat(513))).is_err());
        assert!(Fqn::parse(&format!("a/{}", "r".repeat(512))).is_ok());
        assert!(AppId::parse(&"a".repeat(129)).is_err());
        assert!(Scope::from_key("other#x").is_err());
    }
}
