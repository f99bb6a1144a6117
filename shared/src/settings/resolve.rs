//! Resolution: what JaaS receives for a room. Room settings override the app's defaults,
//! which override the global default from config, field by field; a field no level sets is
//! left out of the answer.
//!
//! Each stored document is valid on its own, but levels can combine into an answer whose
//! `participantsSoftLimit` exceeds its `maxOccupants` (an app default soft limit of 50 under
//! a room capacity of 10). The answer must still be legal, so the soft limit is lowered to
//! the capacity, which is what JaaS would enforce anyway; the caller logs that it happened.

use super::model::{ParticipantsSoftLimit, Settings};

/// The effective settings for one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub settings: Settings,
    /// True when the soft limit was lowered to the room capacity.
    pub soft_limit_clamped: bool,
}

/// Merges the three levels, highest last.
pub fn resolve(global: &Settings, app: Option<&Settings>, room: Option<&Settings>) -> Resolved {
    let mut settings = global.clone();
    if let Some(app) = app {
        settings = settings.overlaid_with(app);
    }
    if let Some(room) = room {
        settings = settings.overlaid_with(room);
    }
    let mut soft_limit_clamped = false;
    if let (Some(soft), Some(max)) = (settings.participants_soft_limit, settings.max_occupants)
        && soft.get() > max.get()
    {
        settings.participants_soft_limit = Some(
            ParticipantsSoftLimit::new(u64::from(max.get()))
                .expect("every legal capacity is a legal soft limit"),
        );
        soft_limit_clamped = true;
    }
    debug_assert!(settings.validate().is_ok());
    Resolved {
        settings,
        soft_limit_clamped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::model::Field;
    use serde_json::{Value, json};

    fn s(v: Value) -> Settings {
        Settings::from_json(&v).expect("valid test settings")
    }

    #[test]
    fn room_beats_app_beats_global_field_by_field() {
        let global =
            s(json!({"lobbyEnabled": true, "maxOccupants": 100, "visitorsEnabled": false}));
        let app =
            s(json!({"maxOccupants": 50, "passcode": "1111", "lobbyType": "WAIT_FOR_MODERATOR"}));
        let room = s(json!({"passcode": "2222", "lobbyEnabled": false}));
        let r = resolve(&global, Some(&app), Some(&room));
        assert_eq!(
            r.settings.to_json(),
            json!({
                "lobbyEnabled": false,
                "maxOccupants": 50,
                "visitorsEnabled": false,
                "passcode": "2222",
                "lobbyType": "WAIT_FOR_MODERATOR"
            })
        );
        assert!(!r.soft_limit_clamped);
    }

    #[test]
    fn missing_levels_fall_through() {
        let global = s(json!({"lobbyEnabled": true}));
        assert_eq!(resolve(&global, None, None).settings, global);
        let room = s(json!({"maxOccupants": 3}));
        assert_eq!(
            resolve(&global, None, Some(&room)).settings.to_json(),
            json!({"lobbyEnabled": true, "maxOccupants": 3})
        );
        assert_eq!(
            resolve(&Settings::default(), None, None).settings.to_json(),
            json!({})
        );
    }

    #[test]
    fn empty_passcode_on_a_room_removes_the_app_passcode() {
        let app = s(json!({"passcode": "1111"}));
        let room = s(json!({"passcode": ""}));
        let r = resolve(&Settings::default(), Some(&app), Some(&room));
        assert_eq!(r.settings.to_json(), json!({"passcode": ""}));
    }

    #[test]
    fn soft_limit_from_a_lower_level_is_clamped_to_the_room_capacity() {
        let app = s(json!({"participantsSoftLimit": 50}));
        let room = s(json!({"maxOccupants": 10}));
        let r = resolve(&Settings::default(), Some(&app), Some(&room));
        assert!(r.soft_limit_clamped);
        assert_eq!(
            r.settings.to_json(),
            json!({"participantsSoftLimit": 10, "maxOccupants": 10})
        );
        r.settings.validate().expect("answer is legal");
    }

    /// Every combination of which level sets a field: the highest level that sets it wins.
    #[test]
    fn precedence_holds_for_every_field_and_level_combination() {
        let values = |field: Field, level: u64| -> Value {
            match field.name() {
                "passcode" => json!(format!("{level}{level}")),
                "maxOccupants" => json!(100 + level),
                "participantsSoftLimit" => json!(10 + level),
                "outboundPhoneNo" => json!(format!("+4930{level}{level}{level}")),
                "lobbyType" => {
                    json!(["WAIT_FOR_APPROVAL", "WAIT_FOR_MODERATOR"][level as usize % 2])
                }
                "transcriberType" => {
                    json!(["GOOGLE", "EGHT_WHISPER", "ORACLE_CLOUD_AI_SPEECH"][level as usize])
                }
                "hideDisplayName" => json!("GUEST"),
                _ => json!(level % 2 == 1),
            }
        };
        for field in Field::ALL {
            for mask in 0u8..8 {
                let level = |i: u64| -> Option<Settings> {
                    (mask & (1 << i) != 0).then(|| s(json!({ field.name(): values(field, i) })))
                };
                let (g, a, r) = (level(0).unwrap_or_default(), level(1), level(2));
                let got = resolve(&g, a.as_ref(), r.as_ref()).settings.to_json();
                let winner = (0..3).rev().find(|i| mask & (1 << i) != 0);
                match winner {
                    Some(i) => assert_eq!(got, json!({ field.name(): values(field, i) })),
                    None => assert_eq!(got, json!({})),
                }
            }
        }
    }
}
