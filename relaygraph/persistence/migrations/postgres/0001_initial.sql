-- relaygraph checkpoint tables (PostgreSQL). Every row belongs to one thread; the primary keys
-- lead with thread_id so a thread's rows are one index range.

-- One row per checkpoint: the header (ids, versions) and metadata, never channel values.
CREATE TABLE relaygraph_checkpoints (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    parent_checkpoint_id TEXT COLLATE "C",
    run_id TEXT COLLATE "C",
    header BYTEA NOT NULL,
    metadata BYTEA NOT NULL,
    metadata_json JSONB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);

-- History of a thread across namespaces, newest first.
CREATE INDEX relaygraph_checkpoints_by_thread
    ON relaygraph_checkpoints (thread_id, checkpoint_id);

CREATE INDEX relaygraph_checkpoints_by_run
    ON relaygraph_checkpoints (run_id) WHERE run_id IS NOT NULL;

-- One row per (channel, version): a step writes only the channels it changed. An append
-- row holds only new items and names the version it extends (base_version).
CREATE TABLE relaygraph_blobs (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    base_version TEXT COLLATE "C",
    data BYTEA NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

-- Pending writes of tasks against a checkpoint; first write per (task_id, idx) wins.
-- seq keeps the order writes were first recorded in.
CREATE TABLE relaygraph_writes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    task_path TEXT COLLATE "C" NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- The newest checkpoint of each namespace: moved only by compare-and-set.
CREATE TABLE relaygraph_heads (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns)
);

-- Per-thread expiry (unix seconds) when the saver has a TTL.
CREATE TABLE relaygraph_threads (
    thread_id TEXT COLLATE "C" PRIMARY KEY,
    expires_at DOUBLE PRECISION
);

CREATE INDEX relaygraph_threads_by_expiry
    ON relaygraph_threads (expires_at) WHERE expires_at IS NOT NULL;
