package main

// The SQL esctl runs itself: what the recorders' interfaces do not offer (counts, every snapshot, the
// tracking table) and the copy's inserts with explicit notification IDs. PostgreSQL texts name tables
// after schema.TemplateMarker, as the recorders' queries do.

// query is one statement in both dialects.
type query struct{ sqlite, postgres string }

// recorderTables are the tables every store has once migrated.
var recorderTables = []string{"events", "snapshots", "tracking"}

var (
	countTables = query{
		sqlite: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'snapshots', 'tracking')`,
		postgres: `SELECT (to_regclass('/* TEMPLATE: schema */events') IS NOT NULL)::int
			+ (to_regclass('/* TEMPLATE: schema */snapshots') IS NOT NULL)::int
			+ (to_regclass('/* TEMPLATE: schema */tracking') IS NOT NULL)::int`,
	}

	// migrationVersion is the newest migration applied, as goose records it.
	migrationVersion = query{
		sqlite:   `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`,
		postgres: `SELECT coalesce(max(version_id), 0) FROM /* TEMPLATE: schema */goose_db_version WHERE is_applied`,
	}

	// eventsByTopic counts events and their state's bytes per topic, topics in the order they first
	// appear in the log.
	eventsByTopic = query{
		sqlite: `SELECT topic, count(*), coalesce(sum(length(state)), 0) FROM events
			GROUP BY topic ORDER BY min(notification_id)`,
		postgres: `SELECT topic, count(*), coalesce(sum(length(state)), 0) FROM /* TEMPLATE: schema */events
			GROUP BY topic ORDER BY min(notification_id)`,
	}

	// countEvents counts the events with notification IDs in ($1, $2].
	countEvents = query{
		sqlite:   `SELECT count(*) FROM events WHERE notification_id > ? AND notification_id <= ?`,
		postgres: `SELECT count(*) FROM /* TEMPLATE: schema */events WHERE notification_id > $1 AND notification_id <= $2`,
	}

	maxNotificationID = query{
		sqlite:   `SELECT coalesce(max(notification_id), 0) FROM events`,
		postgres: `SELECT coalesce(max(notification_id), 0) FROM /* TEMPLATE: schema */events`,
	}

	selectNotification = query{
		sqlite:   `SELECT originator_id, originator_version, topic, state FROM events WHERE notification_id = ?`,
		postgres: `SELECT originator_id, originator_version, topic, state FROM /* TEMPLATE: schema */events WHERE notification_id = $1`,
	}

	// lockEvents keeps every other writer of the target's events out until the copy's transaction
	// ends; see copyEvents.
	lockEvents = query{
		postgres: `LOCK TABLE /* TEMPLATE: schema */events IN EXCLUSIVE MODE`,
	}

	insertEvent = query{
		sqlite: `INSERT INTO events (notification_id, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)`,
		postgres: `INSERT INTO /* TEMPLATE: schema */events (notification_id, originator_id, originator_version, xid, topic, state)
			SELECT u.id, u.originator_id, u.version, pg_current_xact_id(), u.topic, u.state
			FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::text[], $5::bytea[]) AS u (id, originator_id, version, topic, state)`,
	}

	// advanceSequence makes the next notification ID of the target's own appends follow $1.
	advanceSequence = query{
		postgres: `SELECT setval('/* TEMPLATE: schema */events_notification_id_seq',
			greatest($1, (SELECT last_value FROM /* TEMPLATE: schema */events_notification_id_seq)))`,
	}

	countSnapshots = query{
		sqlite:   `SELECT count(*), count(DISTINCT originator_id), coalesce(sum(length(state)), 0) FROM snapshots`,
		postgres: `SELECT count(*), count(DISTINCT originator_id), coalesce(sum(length(state)), 0) FROM /* TEMPLATE: schema */snapshots`,
	}

	// selectSnapshots reads the snapshots after a key, in key order: ($1, $2) is the last key read.
	selectSnapshots = query{
		sqlite: `SELECT originator_id, originator_version, topic, state FROM snapshots
			WHERE (originator_id, originator_version) > (?, ?) ORDER BY originator_id, originator_version LIMIT ?`,
		postgres: `SELECT originator_id, originator_version, topic, state FROM /* TEMPLATE: schema */snapshots
			WHERE (originator_id, originator_version) > ($1::uuid, $2) ORDER BY originator_id, originator_version LIMIT $3`,
	}

	// insertSnapshot skips a snapshot the target has already: a snapshot is the state at its version,
	// the same whoever stored it.
	insertSnapshot = query{
		sqlite: `INSERT INTO snapshots (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
		postgres: `INSERT INTO /* TEMPLATE: schema */snapshots (originator_id, originator_version, topic, state)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
	}
)
