-- Queries run once when a recorder is made (see events.sql for the conventions).

-- MissingObjects names the objects of the migration that are not there, so a recorder on an
-- unmigrated schema fails with a clear message instead of on its first query. The names come from the
-- query text (the marker is replaced), none from parameters.
-- name: MissingObjects :many
SELECT name::text
FROM (VALUES
    ('events', to_regclass('/* TEMPLATE: schema */events')::oid),
    ('snapshots', to_regclass('/* TEMPLATE: schema */snapshots')::oid),
    ('tracking', to_regclass('/* TEMPLATE: schema */tracking')::oid),
    ('recorder_settings', to_regclass('/* TEMPLATE: schema */recorder_settings')::oid),
    ('events_notification_id_seq', to_regclass('/* TEMPLATE: schema */events_notification_id_seq')::oid),
    ('events_append', to_regprocedure('/* TEMPLATE: schema */events_append(text, text, uuid[], bigint[], text[], bytea[], text, text, bigint, bigint)')::oid),
    ('events_take_ids', to_regprocedure('/* TEMPLATE: schema */events_take_ids(text, text, integer, regclass)')::oid),
    ('events_take_ids_xid', to_regprocedure('/* TEMPLATE: schema */events_take_ids_xid(integer, regclass)')::oid),
    ('events_raise', to_regprocedure('/* TEMPLATE: schema */events_raise(text, text)')::oid),
    ('events_horizon', to_regprocedure('/* TEMPLATE: schema */events_horizon()')::oid),
    ('events_notifications_xid', to_regprocedure('/* TEMPLATE: schema */events_notifications_xid(bigint, bigint, text[], integer)')::oid),
    ('events_max_notification_id_xid', to_regprocedure('/* TEMPLATE: schema */events_max_notification_id_xid()')::oid)
) AS o (name, oid)
WHERE oid IS NULL;

-- RecordedOrdering returns the ordering recorded in the schema, if any, without recording one (for
-- read-only recorders, which may run on a standby).
-- name: RecordedOrdering :many
SELECT value FROM /* TEMPLATE: schema */recorder_settings WHERE name = 'ordering';

-- InRecovery reports whether the server is a standby.
-- name: InRecovery :one
SELECT pg_is_in_recovery()::boolean AS in_recovery;

-- ClaimOrdering records the ordering of the schema unless one is recorded, and returns the recorded one.
-- name: ClaimOrdering :one
WITH claimed AS (
    INSERT INTO /* TEMPLATE: schema */recorder_settings (name, value)
    VALUES ('ordering', sqlc.arg(ordering)::text)
    ON CONFLICT (name) DO NOTHING
    RETURNING value
)
SELECT value FROM claimed
UNION ALL
SELECT value FROM /* TEMPLATE: schema */recorder_settings WHERE name = 'ordering'
LIMIT 1;
