-- What each device's sensor sent, recorded by the sensor once the broker acknowledged all of it:
-- how a run in the cluster knows when every reading has arrived (drained).
CREATE TABLE sensor_reports (
    device         integer NOT NULL PRIMARY KEY,
    readings_sent  bigint  NOT NULL,
    finished_ms    bigint  NOT NULL
);
