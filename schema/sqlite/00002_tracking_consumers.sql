-- Tracking marks are kept per consumer and upstream, so that any number of projections and process
-- applications share one database, each with marks of its own.
--
-- The marks recorded before this migration had no consumer: they move to the consumer named '' with
-- their values, and a consumer takes them over by renaming them (esctl tracking adopt), or by being
-- named '' itself. SQLite cannot change a primary key in place, so the table is rebuilt.

-- +goose Up
CREATE TABLE tracking_by_consumer (
    consumer        TEXT    NOT NULL,
    upstream        TEXT    NOT NULL,
    notification_id INTEGER NOT NULL,
    PRIMARY KEY (consumer, upstream)
) STRICT, WITHOUT ROWID;

INSERT INTO tracking_by_consumer (consumer, upstream, notification_id)
SELECT '', application_name, notification_id FROM tracking;

DROP TABLE tracking;

ALTER TABLE tracking_by_consumer RENAME TO tracking;

-- +goose Down
-- The table of the first version keeps one mark per upstream: only the marks of the consumer '' have a
-- place in it.
CREATE TABLE tracking_by_upstream (
    application_name TEXT    NOT NULL PRIMARY KEY,
    notification_id  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO tracking_by_upstream (application_name, notification_id)
SELECT upstream, notification_id FROM tracking WHERE consumer = '';

DROP TABLE tracking;

ALTER TABLE tracking_by_upstream RENAME TO tracking;
