use proptest::prelude::*;

use super::*;

fn person(user: &str) -> ParticipantFacts {
    ParticipantFacts {
        participant_id: Some(format!("{user}-conn")),
        user_id: Some(user.to_owned()),
        name: Some(user.to_uppercase()),
        moderator: None,
        role: None,
    }
}

fn ev(key: &str, at_s: i64, presence: Presence, who: Option<ParticipantFacts>) -> PresenceEvent {
    PresenceEvent {
        key: key.to_owned(),
        at_ms: at_s * 1000,
        presence,
        participant: who,
    }
}

/// A meeting from 0 s to 600 s: Ana 10-300 then back 400-550; Bo 20 until the end (no leave);
/// a recorder 30-590; Cy in the lobby 40-70, then 70-200.
fn meeting() -> Vec<PresenceEvent> {
    let mut recorder = person("rec");
    recorder.role = Some("recorder".into());
    let mut ana = person("ana");
    ana.moderator = Some(true);
    vec![
        ev("start", 0, Presence::SessionStarted, None),
        ev("ana-1", 10, Presence::Joined, Some(ana.clone())),
        ev("bo-1", 20, Presence::Joined, Some(person("bo"))),
        ev("rec-1", 30, Presence::Joined, Some(recorder.clone())),
        ev("cy-lobby", 40, Presence::LobbyJoined, Some(person("cy"))),
        ev("cy-admitted", 70, Presence::LobbyLeft, Some(person("cy"))),
        ev("cy-1", 70, Presence::Joined, Some(person("cy"))),
        ev("cy-2", 200, Presence::Left, Some(person("cy"))),
        ev("ana-2", 300, Presence::Left, Some(ana.clone())),
        ev("ana-3", 400, Presence::Joined, Some(ana.clone())),
        ev("ana-4", 550, Presence::Left, Some(ana)),
        ev("rec-2", 590, Presence::Left, Some(recorder)),
        ev("end", 600, Presence::SessionEnded, None),
    ]
}

fn by_identity(rows: &[Row]) -> BTreeMap<String, Row> {
    rows.iter()
        .map(|r| (r.identity.clone(), r.clone()))
        .collect()
}

#[test]
fn intervals_totals_inferred_ends_lobby_and_bots() {
    let rows = attendance(&meeting(), Options::default());
    let rows = by_identity(&rows);
    assert_eq!(rows.len(), 3, "the recorder is left out: {rows:?}");
    let ana = &rows["ana"];
    assert_eq!(ana.intervals.len(), 2);
    assert_eq!(ana.total_secs, 290 + 150);
    assert_eq!(
        (ana.first_join_ms, ana.last_leave_ms),
        (10_000, Some(550_000))
    );
    assert!(ana.moderator);
    assert_eq!(ana.name.as_deref(), Some("ANA"));
    let bo = &rows["bo"];
    assert_eq!(bo.intervals.len(), 1);
    assert!(bo.intervals[0].inferred_end, "closed by the session's end");
    assert_eq!(bo.total_secs, 580);
    let cy = &rows["cy"];
    assert_eq!(cy.lobby_secs, Some(30));
    assert_eq!(cy.total_secs, 130);
    assert_eq!(rows["ana"].lobby_secs, None, "no lobby reported");

    let with_bots = attendance(
        &meeting(),
        Options {
            include_bots: true,
            ..Options::default()
        },
    );
    let rec = &by_identity(&with_bots)["rec"];
    assert_eq!(rec.role.as_deref(), Some("recorder"));
    assert_eq!(rec.total_secs, 560);
}

#[test]
fn a_move_between_rooms_is_continuous_presence() {
    let ana = || Some(person("ana"));
    // JaaS: PARTICIPANT_LEFT with switch_room, then the breakout's join.
    let jaas = vec![
        ev("j", 10, Presence::Joined, ana()),
        ev("m", 100, Presence::Moved, ana()),
        ev("j2", 101, Presence::Joined, ana()),
        ev("l", 300, Presence::Left, ana()),
    ];
    // Prosody: a leave of the main room and a join of the breakout, same second or a little
    // apart, then back.
    let prosody = vec![
        ev("j", 10, Presence::Joined, ana()),
        ev("l1", 100, Presence::Left, ana()),
        ev("j1", 100, Presence::Joined, ana()),
        ev("l2", 200, Presence::Left, ana()),
        ev("j2", 203, Presence::Joined, ana()),
        ev("l", 300, Presence::Left, ana()),
    ];
    for events in [jaas, prosody] {
        let rows = attendance(&events, Options::default());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].intervals.len(), 1, "{:?}", rows[0].intervals);
        assert_eq!(rows[0].total_secs, 290);
    }
    // A real absence (longer than the gap) stays two intervals.
    let away = vec![
        ev("j", 10, Presence::Joined, ana()),
        ev("l1", 100, Presence::Left, ana()),
        ev("j1", 160, Presence::Joined, ana()),
        ev("l", 300, Presence::Left, ana()),
    ];
    let rows = attendance(&away, Options::default());
    assert_eq!(rows[0].intervals.len(), 2);
    assert_eq!(rows[0].total_secs, 90 + 140);
}

#[test]
fn a_leave_without_a_join_starts_at_the_session_start_and_a_running_session_stays_open() {
    let events = vec![
        ev("start", 0, Presence::SessionStarted, None),
        ev("l", 100, Presence::Left, Some(person("ana"))),
        ev("j", 50, Presence::Joined, Some(person("bo"))),
    ];
    let rows = by_identity(&attendance(&events, Options::default()));
    let ana = &rows["ana"];
    assert!(ana.intervals[0].inferred_start);
    assert_eq!(ana.total_secs, 100);
    let bo = &rows["bo"];
    assert_eq!(bo.intervals[0].to_ms, None, "still present");
    assert_eq!(bo.last_leave_ms, None);
    assert_eq!(bo.total_secs, 0, "only closed time counts");
}

#[test]
fn the_participant_id_stands_in_for_a_missing_user_id_and_nobody_is_skipped_silently() {
    let mut anon = person("x");
    anon.user_id = None;
    let events = vec![
        ev("j", 10, Presence::Joined, Some(anon.clone())),
        ev("l", 20, Presence::Left, Some(anon)),
        // No identity at all: nothing to attribute it to.
        ev("n", 30, Presence::Joined, Some(ParticipantFacts::default())),
    ];
    let rows = attendance(&events, Options::default());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].identity, "x-conn");
}

#[test]
fn extreme_times_never_panic() {
    let events = vec![
        ev("s", 0, Presence::SessionStarted, None),
        PresenceEvent {
            key: "j".into(),
            at_ms: i64::MIN,
            presence: Presence::Joined,
            participant: Some(person("a")),
        },
        PresenceEvent {
            key: "l".into(),
            at_ms: i64::MAX,
            presence: Presence::Left,
            participant: Some(person("a")),
        },
        PresenceEvent {
            key: "e".into(),
            at_ms: i64::MAX,
            presence: Presence::SessionEnded,
            participant: None,
        },
    ];
    let rows = attendance(&events, Options::default());
    assert_eq!(rows[0].total_secs, i64::MAX / 1000);
}

proptest! {
    /// Out-of-order and repeated deliveries give the answer the ordered ones give.
    #[test]
    fn any_order_and_any_repeats_give_the_same_answer(
        seed in any::<u64>(),
        repeats in proptest::collection::vec(0usize..13, 0..8),
    ) {
        let ordered = attendance(&meeting(), Options::default());
        let mut events = meeting();
        for (n, i) in repeats.into_iter().enumerate() {
            let mut copy = events[i % 13].clone();
            // Some repeats are the same item again, some a conflict copy under another key.
            if n % 2 == 1 {
                copy.key.push_str("#conflict");
            }
            events.push(copy);
        }
        // Fisher-Yates with a xorshift seeded by proptest.
        let mut x = seed | 1;
        for i in (1..events.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            events.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(attendance(&events, Options::default()), ordered);
    }
}
