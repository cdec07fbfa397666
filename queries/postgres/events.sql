-- Queries of the PostgreSQL recorders, compiled by sqlc into db/postgres/internal/dbsqlc.
--
-- Every table and function name carries the /* TEMPLATE: schema */ marker, which the recorder replaces
-- with its schema once per query text. Optional bounds are passed as values that cannot exclude
-- anything (up_to = max int64, lim = NULL, which PostgreSQL reads as no limit), so each query has one
-- static text and one cached prepared statement.
--
-- Array parameters are cast to the array types' internal names (_uuid, _int8, _text, _bytea): sqlc
-- does not know those names and types the parameters as interface{}, which keeps it from wrapping them
-- in lib/pq's pq.Array (it does for []T parameters with database/sql); PostgreSQL reads them as
-- uuid[], bigint[], text[] and bytea[], and pgx's stdlib driver encodes Go slices as such arrays.

-- AppendEvents calls events_append (see the migrations): one round trip records the batch and the
-- optional tracking mark and returns the first notification ID (0 for no events).
-- name: AppendEvents :one
SELECT coalesce(/* TEMPLATE: schema */events_append(
    sqlc.arg(ordering)::text,
    sqlc.narg(lock_timeout)::text,
    sqlc.arg(originator_ids)::_uuid::uuid[],
    sqlc.arg(versions)::_int8::bigint[],
    sqlc.arg(topics)::_text::text[],
    sqlc.arg(states)::_bytea::bytea[],
    sqlc.narg(consumer)::text,
    sqlc.narg(upstream)::text,
    sqlc.narg(tracking_id)::bigint,
    sqlc.narg(prior)::bigint
), 0)::bigint AS first_id;

-- name: SelectEvents :many
SELECT originator_version, topic, state
FROM /* TEMPLATE: schema */events
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version
LIMIT sqlc.narg(lim);

-- name: SelectEventsDesc :many
SELECT originator_version, topic, state
FROM /* TEMPLATE: schema */events
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version DESC
LIMIT sqlc.narg(lim);

-- The notification queries come in two flavours, one per ordering. With the table-lock ordering every
-- committed row is safe to read. With the xid ordering the reading is done by functions of the
-- migration (see there), which take a horizon before the snapshot they read with.

-- name: SelectNotifications :many
SELECT notification_id, originator_id, originator_version, topic, state
FROM /* TEMPLATE: schema */events
WHERE notification_id > sqlc.arg(after)
  AND notification_id <= sqlc.arg(up_to)
ORDER BY notification_id
LIMIT sqlc.arg(lim);

-- name: SelectNotificationsByTopics :many
SELECT notification_id, originator_id, originator_version, topic, state
FROM /* TEMPLATE: schema */events
WHERE notification_id > sqlc.arg(after)
  AND notification_id <= sqlc.arg(up_to)
  AND topic = ANY (sqlc.arg(topics)::_text::text[])
ORDER BY notification_id
LIMIT sqlc.arg(lim);

-- name: MaxNotificationID :one
SELECT coalesce(max(notification_id), 0)::bigint AS max_id
FROM /* TEMPLATE: schema */events;

-- SelectNotificationsXID reads all topics when topics is NULL.
-- name: SelectNotificationsXID :many
SELECT n.notification_id, n.originator_id, n.originator_version, n.topic, n.state
FROM /* TEMPLATE: schema */events_notifications_xid(
    sqlc.arg(after)::bigint,
    sqlc.arg(up_to)::bigint,
    sqlc.narg(topics)::_text::text[],
    sqlc.arg(lim)::integer
) AS n;

-- name: MaxNotificationIDXID :one
SELECT /* TEMPLATE: schema */events_max_notification_id_xid()::bigint AS max_id;

-- Notify wakes the subscribers of every process after appends have committed. It runs in its own
-- transaction (never in an append's: a NOTIFY takes a database-wide lock at commit that would
-- serialise the appends' commits), with synchronous_commit off, since a wake-up need not wait for the
-- WAL flush: a lost one is covered by the subscribers' polling.
-- name: Notify :exec
SELECT set_config('synchronous_commit', 'off', true), pg_notify(sqlc.arg(channel)::text, sqlc.arg(payload)::text);
