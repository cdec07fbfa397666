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
    ('events_horizon', to_regprocedure('/* TEMPLATE: schema */events_horizon()')::oid),
    ('events_notifications_xid', to_regprocedure('/* TEMPLATE: schema */events_notifications_xid(bigint, bigint, text[], integer)')::oid),
    ('events_max_notification_id_xid', to_regprocedure('/* TEMPLATE: schema */events_max_notification_id_xid()')::oid)
) AS o (name, oid)
WHERE oid IS NULL;

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
