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

-- AppendEvent records one event with no tracking mark, the common append, in one statement: the
-- insert takes its ID from events_take_ids (see the migrations), inlined, and only then the xid (an
-- xid taken before the ID would make the xid ordering refuse the append: ES002). The insert takes
-- the lock on the events table that events_take_ids asks of its callers when the statement starts.
-- name: AppendEvent :one
INSERT INTO /* TEMPLATE: schema */events (notification_id, originator_id, originator_version, xid, topic, state)
VALUES (
    /* TEMPLATE: schema */events_take_ids(sqlc.arg(ordering)::text, sqlc.narg(lock_timeout)::text, 1,
        '/* TEMPLATE: schema */events_notification_id_seq'::regclass),
    sqlc.arg(originator_id)::uuid,
    sqlc.arg(originator_version)::bigint,
    pg_current_xact_id(),
    sqlc.arg(topic)::text,
    sqlc.arg(state)::bytea
)
RETURNING notification_id;

-- AppendEventBatch records a batch of events (two or more) with no tracking mark in one statement, as
-- AppendEvent records one, and returns the first notification ID; the batch has the consecutive IDs
-- from there, in input order. The IDs come from one call of events_take_ids, in a materialized CTE
-- that the primary query reads first: it runs once, before any row is inserted and so before the
-- rows' xid is taken. The insert, a data-modifying CTE, runs to completion after it.
-- name: AppendEventBatch :one
WITH ids AS MATERIALIZED (
    SELECT /* TEMPLATE: schema */events_take_ids(sqlc.arg(ordering)::text, sqlc.narg(lock_timeout)::text,
        cardinality(sqlc.arg(originator_ids)::_uuid::uuid[]),
        '/* TEMPLATE: schema */events_notification_id_seq'::regclass) AS first_id
), inserted AS (
    INSERT INTO /* TEMPLATE: schema */events (notification_id, originator_id, originator_version, xid, topic, state)
    SELECT ids.first_id + u.ord - 1, u.originator_id, u.originator_version, pg_current_xact_id(), u.topic, u.state
    FROM ids, ROWS FROM (
        unnest(sqlc.arg(originator_ids)::_uuid::uuid[]),
        unnest(sqlc.arg(versions)::_int8::bigint[]),
        unnest(sqlc.arg(topics)::_text::text[]),
        unnest(sqlc.arg(states)::_bytea::bytea[])
    ) WITH ORDINALITY AS u (originator_id, originator_version, topic, state, ord)
)
SELECT ids.first_id::bigint AS first_id FROM ids;

-- AppendEvents calls events_append (see the migrations): one round trip records the batch and the
-- tracking mark and returns the first notification ID (0 for no events).
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
-- committed row is safe to read.

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

-- With the xid ordering a row is final when its xid is below the xmin of the reader's snapshot (see
-- the migrations). SelectNotificationsXID is the plain query a page is read with: the page's rows in ID
-- order, as the table-lock ordering's query returns them, but with a NULL state for each row that is
-- not final, so that the reader returns the rows before the first of those and knows that rows were
-- held back (the final rows are a prefix of the page: every append with a lower ID has a lower xid).
-- Held-back rows cost their IDs only. Rows up to final, an ID the reader already knows to be final
-- (below it, every append has ended), are final whatever their xid. topics NULL reads all topics.
-- name: SelectNotificationsXID :many
SELECT e.notification_id, e.originator_id, e.originator_version, e.topic,
    (CASE WHEN e.notification_id <= sqlc.arg(final)::bigint
            OR e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot())) THEN e.state END)::bytea AS state
FROM /* TEMPLATE: schema */events AS e
WHERE e.notification_id > sqlc.arg(after)
  AND e.notification_id <= sqlc.arg(up_to)
  AND (sqlc.narg(topics)::_text::text[] IS NULL OR e.topic = ANY (sqlc.narg(topics)::_text::text[]))
ORDER BY e.notification_id
LIMIT sqlc.arg(lim);

-- SelectNotificationsXIDHorizon reads the page through events_notifications_xid, which also returns
-- the rows up to the horizon, taken before its snapshot: an application's own appends are readable as
-- soon as they have ended, whatever transaction elsewhere holds the xmin back. A reader asks for it
-- when rows were held back. topics NULL reads all topics.
-- name: SelectNotificationsXIDHorizon :many
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
