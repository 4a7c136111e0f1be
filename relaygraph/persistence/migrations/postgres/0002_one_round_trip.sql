-- One round trip per put and per read of a checkpoint (relaygraph/persistence/sql/postgres_sql.py).

-- The checkpoint's channel versions as two arrays next to its header, so that one statement
-- can read a checkpoint with the blobs it needs. Rows written before this migration have
-- NULL here and are read by decoding their header, as before.
ALTER TABLE relaygraph_checkpoints
    ADD COLUMN channels TEXT[] COLLATE "C",
    ADD COLUMN versions TEXT[] COLLATE "C";

-- A whole put, decided before anything is written: drop the thread if it expired, accept the
-- same checkpoint again as a no-op, compare-and-set the head (p_mode 0: any head, 1: no head
-- yet, 2: the head is p_expected), refuse other content under a stored id, check that every
-- blob the put relies on without sending it is stored (p_need_*), then store blobs, header and
-- expiry. Returns one row (status, detail): ok | rewritten (a blob key already stored was
-- written again) | same | conflict (detail: the head, or NULL) | exists | settle (detail: the
-- probed keys that are stored, as a JSON array of [channel, version]; nothing was written).
CREATE OR REPLACE FUNCTION relaygraph_put(
    p_thread TEXT, p_ns TEXT, p_id TEXT, p_parent TEXT, p_run TEXT,
    p_header BYTEA, p_metadata BYTEA, p_metadata_json JSONB,
    p_channels TEXT[], p_versions TEXT[],
    p_mode INTEGER, p_expected TEXT,
    p_blob_channels TEXT[], p_blob_versions TEXT[], p_blob_bases TEXT[], p_blob_data BYTEA[],
    p_probe_channels TEXT[], p_probe_versions TEXT[],
    p_need_channels TEXT[], p_need_versions TEXT[],
    p_now DOUBLE PRECISION, p_expires DOUBLE PRECISION
) RETURNS TABLE (status TEXT, detail TEXT) LANGUAGE plpgsql AS $$
DECLARE
    v_expires DOUBLE PRECISION;
    v_stored RECORD;
    v_found BOOLEAN;
    v_head TEXT;
    v_moved INTEGER;
    v_present_c TEXT[];
    v_present_v TEXT[];
    v_rewritten BOOLEAN;
BEGIN
    SELECT t.expires_at INTO v_expires FROM relaygraph_threads t WHERE t.thread_id = p_thread;
    IF v_expires IS NOT NULL AND v_expires <= p_now THEN
        DELETE FROM relaygraph_writes WHERE thread_id = p_thread;
        DELETE FROM relaygraph_blobs WHERE thread_id = p_thread;
        DELETE FROM relaygraph_checkpoints WHERE thread_id = p_thread;
        DELETE FROM relaygraph_heads WHERE thread_id = p_thread;
        DELETE FROM relaygraph_threads WHERE thread_id = p_thread;
    END IF;
    SELECT c.parent_checkpoint_id, c.header, c.metadata INTO v_stored
      FROM relaygraph_checkpoints c
     WHERE c.thread_id = p_thread AND c.checkpoint_ns = p_ns AND c.checkpoint_id = p_id
       FOR UPDATE;
    v_found := FOUND;
    IF v_found AND v_stored.parent_checkpoint_id IS NOT DISTINCT FROM p_parent
       AND v_stored.header = p_header AND v_stored.metadata = p_metadata THEN
        RETURN QUERY SELECT 'same'::TEXT, NULL::TEXT;
        RETURN;
    END IF;
    IF p_mode <> 0 THEN
        SELECT h.checkpoint_id INTO v_head FROM relaygraph_heads h
         WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns FOR UPDATE;
        IF (p_mode = 1 AND v_head IS NOT NULL)
           OR (p_mode = 2 AND v_head IS DISTINCT FROM p_expected) THEN
            RETURN QUERY SELECT 'conflict'::TEXT, v_head;
            RETURN;
        END IF;
    END IF;
    IF v_found THEN
        RETURN QUERY SELECT 'exists'::TEXT, NULL::TEXT;
        RETURN;
    END IF;
    -- One primary-key lookup per key (a scalar subquery: a join may scan the thread's blobs).
    SELECT COALESCE(array_agg(w.channel), '{}'), COALESCE(array_agg(w.version), '{}')
      INTO v_present_c, v_present_v
      FROM unnest(p_probe_channels, p_probe_versions) AS w(channel, version)
     WHERE (SELECT TRUE FROM relaygraph_blobs b
             WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns
               AND b.channel = w.channel AND b.version = w.version);
    IF EXISTS (
        SELECT 1 FROM unnest(p_need_channels, p_need_versions) AS n(channel, version)
         WHERE NOT EXISTS (
            SELECT 1 FROM unnest(v_present_c, v_present_v) AS s(channel, version)
             WHERE s.channel = n.channel AND s.version = n.version)
    ) THEN
        RETURN QUERY SELECT 'settle'::TEXT, (
            SELECT COALESCE(json_agg(json_build_array(s.channel, s.version)), '[]')::TEXT
              FROM unnest(v_present_c, v_present_v) AS s(channel, version));
        RETURN;
    END IF;
    v_rewritten := EXISTS (
        SELECT 1 FROM unnest(v_present_c, v_present_v) AS s(channel, version)
          JOIN unnest(p_blob_channels, p_blob_versions) AS k(channel, version)
            ON k.channel = s.channel AND k.version = s.version);
    IF p_mode = 0 THEN
        INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
        VALUES (p_thread, p_ns, p_id)
        ON CONFLICT (thread_id, checkpoint_ns) DO UPDATE SET checkpoint_id = excluded.checkpoint_id;
    ELSIF p_mode = 1 THEN
        INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
        VALUES (p_thread, p_ns, p_id)
        ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING;
        GET DIAGNOSTICS v_moved = ROW_COUNT;
        IF v_moved <> 1 THEN  -- another put made the first head meanwhile
            SELECT h.checkpoint_id INTO v_head FROM relaygraph_heads h
             WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns;
            RETURN QUERY SELECT 'conflict'::TEXT, v_head;
            RETURN;
        END IF;
    ELSE
        UPDATE relaygraph_heads SET checkpoint_id = p_id
         WHERE thread_id = p_thread AND checkpoint_ns = p_ns AND checkpoint_id = p_expected;
    END IF;
    INSERT INTO relaygraph_blobs (thread_id, checkpoint_ns, channel, version, base_version, data)
    SELECT p_thread, p_ns, u.channel, u.version, u.base, u.data
      FROM unnest(p_blob_channels, p_blob_versions, p_blob_bases, p_blob_data)
        AS u(channel, version, base, data)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version)
    DO UPDATE SET base_version = excluded.base_version, data = excluded.data;
    INSERT INTO relaygraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id,
        parent_checkpoint_id, run_id, header, metadata, metadata_json, channels, versions)
    VALUES (p_thread, p_ns, p_id, p_parent, p_run, p_header, p_metadata, p_metadata_json,
        p_channels, p_versions)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING;
    IF p_expires IS NOT NULL THEN
        INSERT INTO relaygraph_threads (thread_id, expires_at) VALUES (p_thread, p_expires)
        ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
    RETURN QUERY SELECT CASE WHEN v_rewritten THEN 'rewritten' ELSE 'ok' END, NULL::TEXT;
END;
$$;
