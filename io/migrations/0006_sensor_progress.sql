-- How far each sensor process's replay has been acknowledged by the broker (publications of its
-- deterministic plan, in order), so a sensor that is killed and started again resumes there
-- instead of sending everything again. Keyed by the sensor's share of devices ("1-50").
CREATE TABLE sensor_progress (
    sensor      text    NOT NULL PRIMARY KEY,
    acked       bigint  NOT NULL,
    updated_ms  bigint  NOT NULL
);
