-- One round trip per put and per read of a checkpoint (relaygraph/persistence/sql/postgres_sql.py).

-- The checkpoint's channel versions as two arrays next to its header, so that one statement
-- can read a checkpoint with the blobs it needs. Rows written before this migration have
-- NULL here and are read by decoding their header, as before.
ALTER TABLE relaygraph_checkpoints
    ADD COLUMN channels TEXT[] COLLATE "C",
    ADD COLUMN versions TEXT[] COLLATE "C";

-- A whole put, decided before anything is written: drop the thread if it expired, accept the
-- same checkpoint again as a no-op, check that every blob the put relies on without sending it
-- is stored (p_probe_need), compare-and-set the head (p_mode 0: any head, 1: no head yet, 2:
-- the head is p_expected), refuse other content under a stored id, then store blobs, header
-- and expiry. p_probe_*: keys whose presence decides the put (p_probe_need: relied on;
-- p_probe_sent: among the blobs sent). Returns one row (status, detail): ok | rewritten (a
-- blob key already stored was written again) | same | conflict (detail: the head, or NULL) |
-- exists | settle (detail: the probed keys that are stored, as a JSON array of [channel,
-- version]); nothing is written but for an expired thread's rows.
CREATE OR REPLACE FUNCTION relaygraph_put(
    p_thread TEXT, p_ns TEXT, p_id TEXT, p_parent TEXT, p_run TEXT,
    p_header BYTEA, p_metadata BYTEA, p_metadata_json JSONB,
    p_channels TEXT[], p_versions TEXT[],
    p_mode INTEGER, p_expected TEXT,
    p_blob_channels TEXT[], p_blob_versions TEXT[], p_blob_bases TEXT[], p_blob_data BYTEA[],
    p_probe_channels TEXT[], p_probe_versions TEXT[], p_probe_need BOOLEAN[],
    p_probe_sent BOOLEAN[],
    p_now DOUBLE PRECISION, p_expires DOUBLE PRECISION,
    OUT status TEXT, OUT detail TEXT
) LANGUAGE plpgsql
-- Generic plans from the first call: custom ones would be planned again on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_expires DOUBLE PRECISION;
    v_parent TEXT;
    v_header BYTEA;
    v_metadata BYTEA;
    v_head TEXT;
    v_moved BIGINT;
    v_missing BOOLEAN;
    v_rewritten BOOLEAN;
BEGIN
    SELECT t.expires_at, c.parent_checkpoint_id, c.header, c.metadata
      INTO v_expires, v_parent, v_header, v_metadata
      FROM (SELECT 1) AS one
      LEFT JOIN relaygraph_threads t ON t.thread_id = p_thread
      LEFT JOIN relaygraph_checkpoints c
        ON c.thread_id = p_thread AND c.checkpoint_ns = p_ns AND c.checkpoint_id = p_id;
    IF v_expires IS NOT NULL AND v_expires <= p_now THEN
        DELETE FROM relaygraph_writes WHERE thread_id = p_thread;
        DELETE FROM relaygraph_blobs WHERE thread_id = p_thread;
        DELETE FROM relaygraph_checkpoints WHERE thread_id = p_thread;
        DELETE FROM relaygraph_heads WHERE thread_id = p_thread;
        DELETE FROM relaygraph_threads WHERE thread_id = p_thread;
        v_header := NULL;
    END IF;
    IF v_header IS NOT NULL THEN  -- the id is stored
        IF v_parent IS NOT DISTINCT FROM p_parent AND v_header = p_header
           AND v_metadata = p_metadata THEN
            status := 'same';  -- a retry: immutable, nothing to do
            RETURN;
        END IF;
        -- other content under a stored id: the compare-and-set speaks first
        SELECT h.checkpoint_id INTO v_head FROM relaygraph_heads h
         WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns;
        IF (p_mode = 1 AND v_head IS NOT NULL)
           OR (p_mode = 2 AND v_head IS DISTINCT FROM p_expected) THEN
            status := 'conflict';
            detail := v_head;
        ELSE
            status := 'exists';
        END IF;
        RETURN;
    END IF;
    -- Check the keys the put relies on, one primary-key lookup each (a scalar subquery: a
    -- join, or an EXISTS the planner may hash, reads every blob of the thread), then move the
    -- head by compare-and-set, and only if both went well store blobs, header and expiry:
    -- one statement.
    WITH probe AS (
        SELECT p.need, p.sent, (
            SELECT TRUE FROM relaygraph_blobs b
             WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns
               AND b.channel = p.channel AND b.version = p.version LIMIT 1) IS NOT NULL AS present
          FROM unnest(p_probe_channels, p_probe_versions, p_probe_need, p_probe_sent)
            AS p(channel, version, need, sent)
        OFFSET 0
    ), verdict AS (
        SELECT COALESCE(bool_or(need AND NOT present), FALSE) AS missing,
               COALESCE(bool_or(sent AND present), FALSE) AS rewritten
          FROM probe
    ), inserted AS (  -- p_mode 0: any head; 1: only if there is none
        INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
        SELECT p_thread, p_ns, p_id FROM verdict WHERE p_mode <> 2 AND NOT verdict.missing
        ON CONFLICT (thread_id, checkpoint_ns) DO UPDATE SET checkpoint_id = excluded.checkpoint_id
          WHERE p_mode = 0
        RETURNING 1
    ), updated AS (  -- p_mode 2: only from p_expected
        UPDATE relaygraph_heads SET checkpoint_id = p_id
         WHERE p_mode = 2 AND thread_id = p_thread AND checkpoint_ns = p_ns
           AND checkpoint_id = p_expected AND NOT (SELECT missing FROM verdict)
        RETURNING 1
    ), moved AS (
        SELECT 1 FROM inserted UNION ALL SELECT 1 FROM updated
    ), blobs AS (
        INSERT INTO relaygraph_blobs
            (thread_id, checkpoint_ns, channel, version, base_version, data)
        SELECT p_thread, p_ns, u.channel, u.version, u.base, u.data
          FROM unnest(p_blob_channels, p_blob_versions, p_blob_bases, p_blob_data)
            AS u(channel, version, base, data)
         WHERE EXISTS (SELECT 1 FROM moved)
        ON CONFLICT (thread_id, checkpoint_ns, channel, version)
        DO UPDATE SET base_version = excluded.base_version, data = excluded.data
    ), header AS (
        INSERT INTO relaygraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id,
            parent_checkpoint_id, run_id, header, metadata, metadata_json, channels, versions)
        SELECT p_thread, p_ns, p_id, p_parent, p_run, p_header, p_metadata, p_metadata_json,
            p_channels, p_versions
         WHERE EXISTS (SELECT 1 FROM moved)
        ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING
    ), expiry AS (
        INSERT INTO relaygraph_threads (thread_id, expires_at)
        SELECT p_thread, p_expires WHERE p_expires IS NOT NULL AND EXISTS (SELECT 1 FROM moved)
        ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at
    )
    SELECT (SELECT count(*) FROM moved), v.missing, v.rewritten
      INTO v_moved, v_missing, v_rewritten FROM verdict v;
    IF v_missing THEN  -- nothing was written (but an expired thread's rows)
        status := 'settle';
        SELECT COALESCE(json_agg(json_build_array(p.channel, p.version)), '[]')::TEXT
          INTO detail
          FROM unnest(p_probe_channels, p_probe_versions) AS p(channel, version)
         WHERE (SELECT TRUE FROM relaygraph_blobs b
                 WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns
                   AND b.channel = p.channel AND b.version = p.version LIMIT 1) IS NOT NULL;
        RETURN;
    END IF;
    IF v_moved <> 1 THEN  -- nothing was written (but an expired thread's rows)
        SELECT h.checkpoint_id INTO v_head FROM relaygraph_heads h
         WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns;
        status := 'conflict';
        detail := v_head;
        RETURN;
    END IF;
    status := CASE WHEN v_rewritten THEN 'rewritten' ELSE 'ok' END;
END;
$$;
