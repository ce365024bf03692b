-- One schema per experiment (the connection's search_path); device is a column, and primary
-- keys make a redelivered window or late reading change nothing.

-- Every second of every stored window: measured readings and imputed fillers.
CREATE TABLE readings (
    device       integer          NOT NULL,
    event_time   bigint           NOT NULL, -- epoch seconds
    power_w      double precision NOT NULL,
    imputed      boolean          NOT NULL,
    published_ms bigint,                    -- sensor publish time (measured readings only)
    stored_ms    bigint           NOT NULL,
    PRIMARY KEY (device, event_time)
);

-- One row per window (windower emission or smart-sensor batch).
CREATE TABLE windows (
    device       integer NOT NULL,
    window_start bigint  NOT NULL,
    window_end   bigint  NOT NULL,
    received     integer NOT NULL, -- measured readings in the window
    expected     integer NOT NULL,
    emitted_ms   bigint  NOT NULL,
    stored_ms    bigint  NOT NULL,
    PRIMARY KEY (device, window_start)
);

-- Readings that arrived after their window fired (routed to the `late` topic by the windower).
CREATE TABLE late_readings (
    device       integer          NOT NULL,
    event_time   bigint           NOT NULL,
    power_w      double precision NOT NULL,
    window_start bigint           NOT NULL,
    watermark_ms bigint           NOT NULL,
    published_ms bigint,
    stored_ms    bigint           NOT NULL,
    PRIMARY KEY (device, event_time)
);
