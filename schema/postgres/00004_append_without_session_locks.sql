-- Appends whose locks nothing can leave behind, a single event appended by one INSERT, and readers
-- that do not trust the horizon on a standby.
--
-- The orderings' work moves into one function, events_take_ids, called by events_append (batches and
-- tracking marks) and by the recorders' statement for a single event (an INSERT of the event with its
-- ID from events_take_ids, with no function around it). events_horizon returns 0 on a standby.
--
-- Object names carry the /* TEMPLATE: schema */ marker, as in the first migration; no string literal
-- does (see the second migration).

-- +goose Up

-- events_raise raises an error with the SQLSTATE p_code and the message p_message, for the SQL
-- functions below, which cannot. Its declared result lets it stand wherever an ID is expected.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_raise(p_code text, p_message text) RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '%', p_message USING ERRCODE = p_code;
END
$$;
-- +goose StatementEnd

-- events_take_ids_xid is the critical section of the xid ordering (see events_take_ids). In a block, it
-- takes the critical-section lock (key classid 'ES' 0x0001, objid the sequence's OID), assigns the
-- transaction's xid, takes p_count IDs from p_seq, and raises ES900, which rolls the block back; it
-- returns the first ID. Rolling back a block (a subtransaction) releases the locks taken in it, so the
-- lock is held only while the xid and the IDs are taken, and commits run concurrently; the xid and the
-- sequence are not undone by the rollback. The steps are one CASE, which evaluates its branches in
-- order: PL/pgSQL evaluates a simple expression without starting a query.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_take_ids_xid(p_count integer, p_seq regclass) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    first_id bigint;
BEGIN
    BEGIN
        first_id := CASE
            WHEN pg_advisory_xact_lock((1163067393::bigint << 32) | p_seq::oid::bigint) IS NULL THEN NULL
            WHEN pg_current_xact_id() IS NULL THEN NULL
            WHEN p_count = 1 THEN nextval(p_seq)
            ELSE setval(p_seq, nextval(p_seq) + p_count - 1) - p_count + 1
        END;
        RAISE SQLSTATE 'ES900';
    EXCEPTION WHEN SQLSTATE 'ES900' THEN
        NULL; -- rolled back: the lock is released, the xid and the IDs stay
    END;
    RETURN first_id;
END
$$;
-- +goose StatementEnd

-- events_take_ids takes p_count (at least 1) notification IDs from the sequence p_seq, the events
-- table's (callers name it, so that finding it is part of their plan rather than a query of each
-- call), as p_ordering requires, and returns the first; the batch has the contiguous IDs from there.
-- p_lock_timeout, when not NULL, is set as lock_timeout for the rest of the transaction first. It is a
-- SQL function of one expression, which PostgreSQL inlines into the query that calls it: the
-- table-lock ordering costs no function call, the xid ordering one, for its critical section. The
-- expression is a CASE, which evaluates its branches in order.
--
-- 'table_lock' takes an exclusive lock of the schema (an advisory lock, key classid 'ES' 0x0003) until
-- the transaction ends, so appends run one at a time and IDs are allocated in commit order. It is the
-- ordering of the Python eventsourcing library, which locks the events table instead, as the earlier
-- migrations did (LOCK TABLE … IN EXCLUSIVE MODE): that lock also made appends wait for autovacuum of
-- the table, and as a statement it needed a PL/pgSQL function around the insert. The caller must hold
-- ROW EXCLUSIVE on the events table when it calls (an INSERT into the table takes it when the
-- statement starts): appends of the earlier migrations' function, still running while this migration
-- is applied, then wait for the new ones or make them wait, and stay ordered with them.
--
-- 'xid' must be the first write of its transaction (ES002), so that the xid it assigns is the
-- transaction's. It takes the shared "in flight" lock (classid 'ES' 0x0002) until the transaction ends
-- (see events_horizon), then runs the critical section (events_take_ids_xid). Between appends, xid
-- order is so ID order: critical sections never overlap, and each append takes its xid and its IDs
-- inside its own.
--
-- Every lock is transaction-level: PostgreSQL releases it when its block or its transaction ends,
-- however that ends (commit, error, cancel, statement or lock timeout, terminated session), so no lock
-- outlives its append and nothing is left to an exception handler. (The earlier migrations held the
-- critical section with a session-level lock and released it in a handler; a second cancel arriving
-- during the handler left the lock with an idle session, and every append of the schema then waited
-- for it. A rolled-back block costs more than a released session lock: it is the price of a critical
-- section that nothing can leave behind, which BENCHMARKS.md measures.) The critical-section and
-- in-flight keys are those of the earlier migrations, so appends running the old function while this
-- migration is applied exclude the new ones.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_take_ids(
    p_ordering     text,
    p_lock_timeout text,
    p_count        integer,
    p_seq          regclass
) RETURNS bigint
LANGUAGE sql
AS $$
SELECT CASE
    WHEN CASE WHEN p_lock_timeout IS NULL THEN false
              ELSE set_config('lock_timeout', p_lock_timeout, true) IS NULL END THEN NULL
    WHEN p_ordering = 'xid' THEN CASE
        WHEN pg_current_xact_id_if_assigned() IS NOT NULL THEN /* TEMPLATE: schema */events_raise('ES002',
            'events_append: with the xid ordering the append must be the first write of its transaction')
        WHEN pg_advisory_xact_lock_shared((1163067394::bigint << 32) | p_seq::oid::bigint) IS NULL THEN NULL
        ELSE /* TEMPLATE: schema */events_take_ids_xid(p_count, p_seq)
    END
    WHEN p_ordering = 'table_lock' THEN CASE
        WHEN pg_advisory_xact_lock((1163067395::bigint << 32) | p_seq::oid::bigint) IS NULL THEN NULL
        WHEN p_count = 1 THEN nextval(p_seq)
        ELSE setval(p_seq, nextval(p_seq) + p_count - 1) - p_count + 1
    END
    ELSE /* TEMPLATE: schema */events_raise('22023', 'events_append: unknown ordering ' || p_ordering)
END
$$;
-- +goose StatementEnd

-- events_append as in the second migration (its tracking mark, its errors, p_lock_timeout for the rest
-- of the transaction), with its IDs from events_take_ids.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */events_append(
    p_ordering         text,
    p_lock_timeout     text,
    p_originator_ids   uuid[],
    p_versions         bigint[],
    p_topics           text[],
    p_states           bytea[],
    p_consumer         text,
    p_upstream         text,
    p_tracking_id      bigint,
    p_prior            bigint
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n        integer := coalesce(cardinality(p_originator_ids), 0);
    seq      oid;
    first_id bigint;
    mark     bigint;
BEGIN
    IF coalesce(cardinality(p_versions), 0) <> n OR coalesce(cardinality(p_topics), 0) <> n
            OR coalesce(cardinality(p_states), 0) <> n THEN
        RAISE EXCEPTION 'events_append: arrays of different lengths' USING ERRCODE = '22023';
    END IF;
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;

    IF n > 0 THEN
        LOCK TABLE /* TEMPLATE: schema */events IN ROW EXCLUSIVE MODE; -- see events_take_ids
        SELECT s.tableoid INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
        first_id := /* TEMPLATE: schema */events_take_ids(p_ordering, NULL, n, seq::regclass);
        INSERT INTO /* TEMPLATE: schema */events
            (notification_id, originator_id, originator_version, xid, topic, state)
        SELECT first_id + u.ord - 1, u.originator_id, u.originator_version, pg_current_xact_id(), u.topic, u.state
        FROM unnest(p_originator_ids, p_versions, p_topics, p_states)
            WITH ORDINALITY AS u (originator_id, originator_version, topic, state, ord);
    END IF;

    IF p_consumer IS NOT NULL THEN
        IF p_tracking_id <= p_prior THEN
            RAISE EXCEPTION 'tracking: consumer % upstream %: notification % is not above the prior mark %',
                p_consumer, p_upstream, p_tracking_id, p_prior USING ERRCODE = 'ES001';
        END IF;
        IF p_prior = 0 THEN
            INSERT INTO /* TEMPLATE: schema */tracking (consumer, upstream, notification_id)
            VALUES (p_consumer, p_upstream, p_tracking_id)
            ON CONFLICT (consumer, upstream) DO NOTHING;
        ELSE
            UPDATE /* TEMPLATE: schema */tracking SET notification_id = p_tracking_id
            WHERE consumer = p_consumer AND upstream = p_upstream AND notification_id = p_prior;
        END IF;
        IF NOT FOUND THEN
            SELECT t.notification_id INTO mark FROM /* TEMPLATE: schema */tracking AS t
            WHERE t.consumer = p_consumer AND t.upstream = p_upstream;
            RAISE EXCEPTION 'tracking: consumer % upstream %: the mark is %, not the prior mark %',
                p_consumer, p_upstream, coalesce(mark, 0), p_prior USING ERRCODE = 'ES001';
        END IF;
    END IF;

    RETURN first_id;
END
$$;
-- +goose StatementEnd

-- events_horizon as in the second migration, but 0 on a standby (a server in recovery). There the
-- advisory locks are the standby's own, which no append on the primary takes, and the sequence runs
-- ahead of the commits it has replayed (nextval is logged ahead, and before its transaction commits):
-- a horizon from them would let readers pass IDs whose appends have not been replayed yet. Readers on
-- a standby rely on the xid filter alone, which holds there: a standby's snapshot counts as running
-- every transaction of the primary it has not seen end, including those it has not heard of yet below
-- the highest xid it has seen.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */events_horizon() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    seq     oid;
    horizon bigint := 0;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN 0;
    END IF;
    SELECT s.tableoid INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
    BEGIN
        IF pg_try_advisory_xact_lock((1163067394::bigint << 32) | seq::bigint) THEN
            SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO horizon
            FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
        END IF;
        RAISE SQLSTATE 'ES900';
    EXCEPTION WHEN SQLSTATE 'ES900' THEN
        NULL; -- the lock is released
    END;
    RETURN horizon;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The second migration's events_append must not depend on the functions dropped here: it gets its
-- body back, with the critical section of this migration (a schema taken back to the second
-- migration's version keeps appends that cannot leave a lock behind). events_horizon keeps its check
-- for standbys, which the code of the second migration's version does not need but is not harmed by.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */events_append(
    p_ordering         text,
    p_lock_timeout     text,
    p_originator_ids   uuid[],
    p_versions         bigint[],
    p_topics           text[],
    p_states           bytea[],
    p_consumer         text,
    p_upstream         text,
    p_tracking_id      bigint,
    p_prior            bigint
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_originator_ids), 0);
    seq        oid;
    first_id   bigint;
    writer_xid xid8;
    mark       bigint;
BEGIN
    IF coalesce(cardinality(p_versions), 0) <> n OR coalesce(cardinality(p_topics), 0) <> n
            OR coalesce(cardinality(p_states), 0) <> n THEN
        RAISE EXCEPTION 'events_append: arrays of different lengths' USING ERRCODE = '22023';
    END IF;
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;

    IF n > 0 THEN
        SELECT s.tableoid INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
        IF p_ordering = 'xid' THEN
            IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
                RAISE EXCEPTION 'events_append: with the xid ordering the append must be the first write of its transaction'
                    USING ERRCODE = 'ES002';
            END IF;
            PERFORM pg_advisory_xact_lock_shared((1163067394::bigint << 32) | seq::bigint);
            BEGIN
                PERFORM pg_advisory_xact_lock((1163067393::bigint << 32) | seq::bigint);
                writer_xid := pg_current_xact_id();
                first_id := nextval(seq::regclass);
                IF n > 1 THEN
                    PERFORM setval(seq::regclass, first_id + n - 1);
                END IF;
                RAISE SQLSTATE 'ES900';
            EXCEPTION WHEN SQLSTATE 'ES900' THEN
                NULL;
            END;
        ELSIF p_ordering = 'table_lock' THEN
            LOCK TABLE /* TEMPLATE: schema */events IN EXCLUSIVE MODE;
            writer_xid := pg_current_xact_id();
            first_id := nextval(seq::regclass);
            IF n > 1 THEN
                PERFORM setval(seq::regclass, first_id + n - 1);
            END IF;
        ELSE
            RAISE EXCEPTION 'events_append: unknown ordering %', p_ordering USING ERRCODE = '22023';
        END IF;

        INSERT INTO /* TEMPLATE: schema */events
            (notification_id, originator_id, originator_version, xid, topic, state)
        SELECT first_id + u.ord - 1, u.originator_id, u.originator_version, writer_xid, u.topic, u.state
        FROM unnest(p_originator_ids, p_versions, p_topics, p_states)
            WITH ORDINALITY AS u (originator_id, originator_version, topic, state, ord);
    END IF;

    IF p_consumer IS NOT NULL THEN
        IF p_tracking_id <= p_prior THEN
            RAISE EXCEPTION 'tracking: consumer % upstream %: notification % is not above the prior mark %',
                p_consumer, p_upstream, p_tracking_id, p_prior USING ERRCODE = 'ES001';
        END IF;
        IF p_prior = 0 THEN
            INSERT INTO /* TEMPLATE: schema */tracking (consumer, upstream, notification_id)
            VALUES (p_consumer, p_upstream, p_tracking_id)
            ON CONFLICT (consumer, upstream) DO NOTHING;
        ELSE
            UPDATE /* TEMPLATE: schema */tracking SET notification_id = p_tracking_id
            WHERE consumer = p_consumer AND upstream = p_upstream AND notification_id = p_prior;
        END IF;
        IF NOT FOUND THEN
            SELECT t.notification_id INTO mark FROM /* TEMPLATE: schema */tracking AS t
            WHERE t.consumer = p_consumer AND t.upstream = p_upstream;
            RAISE EXCEPTION 'tracking: consumer % upstream %: the mark is %, not the prior mark %',
                p_consumer, p_upstream, coalesce(mark, 0), p_prior USING ERRCODE = 'ES001';
        END IF;
    END IF;

    RETURN first_id;
END
$$;
-- +goose StatementEnd

DROP FUNCTION /* TEMPLATE: schema */events_take_ids(text, text, integer, regclass);
DROP FUNCTION /* TEMPLATE: schema */events_take_ids_xid(integer, regclass);
DROP FUNCTION /* TEMPLATE: schema */events_raise(text, text);
