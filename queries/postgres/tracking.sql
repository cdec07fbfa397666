-- Queries of the tracking marks (see events.sql for the conventions). Inserting a mark goes through
-- events_append (AppendEvents with no events), so its conflict check lives in one place.

-- name: MaxTrackingID :one
SELECT coalesce(max(notification_id), 0)::bigint AS max_id
FROM /* TEMPLATE: schema */tracking
WHERE application_name = sqlc.arg(application_name);
