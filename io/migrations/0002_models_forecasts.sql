-- Every model a device has had: the initial one and each retrain, with where its files are.
CREATE TABLE models (
    device         integer          NOT NULL,
    version        text             NOT NULL, -- `initial` or `{from}-{to}` (event-time seconds)
    data_from      bigint,                    -- first reading trained on (epoch seconds)
    data_to        bigint,                    -- last reading trained on
    readings       integer          NOT NULL,
    train_seconds  double precision NOT NULL,
    test_rmse      double precision,
    test_mae       double precision,
    baseline_rmse  double precision,
    object_prefix  text             NOT NULL, -- in the models bucket
    created_ms     bigint           NOT NULL,
    PRIMARY KEY (device, version)
);

-- The coordinator's forecasts: after each window, the next `horizon` seconds, recursively.
CREATE TABLE forecasts (
    device         integer          NOT NULL,
    origin         bigint           NOT NULL, -- first forecast second (= the window's end)
    event_time     bigint           NOT NULL, -- the forecast second
    power_w        double precision NOT NULL,
    model_version  text             NOT NULL,
    stored_ms      bigint           NOT NULL,
    PRIMARY KEY (device, origin, event_time)
);
CREATE INDEX forecasts_by_time ON forecasts (device, event_time);
