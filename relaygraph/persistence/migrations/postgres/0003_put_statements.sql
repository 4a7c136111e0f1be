-- relaygraph_put (migration 0002) as separate statements: the compare-and-set picks its statement
-- by mode, and the blob, header and expiry inserts run only when they have rows, instead of
-- one statement whose every branch the executor set up (indexes opened, conflict arbiters
-- found) on each call whether it ran or not. Same parameters, statuses and guarantees: the
-- function runs in the caller's one transaction, and nothing is written unless the probe
-- found every key the put relies on and the head moved. Parameters and statuses: see 0002.
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
    -- Which keys the put relies on are missing, and which of those it sends are stored: one
    -- primary-key lookup per key.
    SELECT COALESCE(bool_or(p.need AND b.present IS NULL), FALSE),
           COALESCE(bool_or(p.sent AND b.present), FALSE)
      INTO v_missing, v_rewritten
      FROM unnest(p_probe_channels, p_probe_versions, p_probe_need, p_probe_sent)
        AS p(channel, version, need, sent)
      LEFT JOIN LATERAL (
        SELECT TRUE AS present FROM relaygraph_blobs b
         WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns
           AND b.channel = p.channel AND b.version = p.version LIMIT 1) b ON TRUE;
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
    -- The compare-and-set (p_mode 0: any head; 1: only if there is none; 2: only from
    -- p_expected); a concurrent put moving the same head waits for this row, then finds it moved.
    IF p_mode = 2 THEN
        UPDATE relaygraph_heads SET checkpoint_id = p_id
         WHERE thread_id = p_thread AND checkpoint_ns = p_ns AND checkpoint_id = p_expected;
    ELSIF p_mode = 1 THEN
        INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
        VALUES (p_thread, p_ns, p_id) ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING;
    ELSE
        INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
        VALUES (p_thread, p_ns, p_id)
        ON CONFLICT (thread_id, checkpoint_ns) DO UPDATE SET checkpoint_id = excluded.checkpoint_id;
    END IF;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved <> 1 THEN  -- nothing was written (but an expired thread's rows)
        SELECT h.checkpoint_id INTO v_head FROM relaygraph_heads h
         WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns;
        status := 'conflict';
        detail := v_head;
        RETURN;
    END IF;
    IF cardinality(p_blob_channels) > 0 THEN
        INSERT INTO relaygraph_blobs
            (thread_id, checkpoint_ns, channel, version, base_version, data)
        SELECT p_thread, p_ns, u.channel, u.version, u.base, u.data
          FROM unnest(p_blob_channels, p_blob_versions, p_blob_bases, p_blob_data)
            AS u(channel, version, base, data)
        ON CONFLICT (thread_id, checkpoint_ns, channel, version)
        DO UPDATE SET base_version = excluded.base_version, data = excluded.data;
    END IF;
    INSERT INTO relaygraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id,
        parent_checkpoint_id, run_id, header, metadata, metadata_json, channels, versions)
    VALUES (p_thread, p_ns, p_id, p_parent, p_run, p_header, p_metadata, p_metadata_json,
        p_channels, p_versions)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING;
    IF p_expires IS NOT NULL THEN
        INSERT INTO relaygraph_threads (thread_id, expires_at) VALUES (p_thread, p_expires)
        ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
    status := CASE WHEN v_rewritten THEN 'rewritten' ELSE 'ok' END;
END;
$$;
