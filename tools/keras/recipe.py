"""The original project's Keras recipe, for comparing wattcast's model with Keras side by side.

Two commands:

  export  trains the recipe on one CSV with one seed, exports the model with tf2onnx, and records
          Keras's own recursive forecast for a fixed history (the fixture wattcast's forecaster is
          tested against: cli/tests/model_keras.rs), for a symbolic batch and a batch of 1
  seeds   trains the recipe on each CSV with each seed and prints test RMSE/MAE and train time as
          JSON lines (the Keras column of docs/model.md's seed table)

The recipe is the one docs/model.md describes: the first 600 readings, split 50/50 in time, min-max
scaled on the training half, 60 readings -> the next, LSTM(25) -> Dropout(0.1) -> Dense(1), Adam,
mean squared error, 200 epochs of batch 32, shuffled. Samples and scores are computed exactly as
wattcast computes them (len - look_back samples per half, one-step predictions in watts), so the
two sides score the same 240 test targets.

Run it through `make keras-model` or `make keras-seeds`, which install the pinned versions of
requirements.txt into a virtual environment under ~/.cache/wattcast.
"""

import argparse
import csv
import json
import math
import os
import sys
import time

READINGS = 600
LOOK_BACK = 60
HIDDEN = 25
EPOCHS = 200
BATCH = 32
HORIZON = 60


def read_power(path, column="sensor_energy_value"):
    """The power column of a CSV in file order; exits naming the file and line on a bad row."""
    values = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or column not in reader.fieldnames:
            sys.exit(f"{path}: no {column!r} column in the header {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                sys.exit(f"{path}:{line}: {column} {row.get(column)!r} is not a number")
            if not math.isfinite(value):
                sys.exit(f"{path}:{line}: {column} {value} is not finite")
            values.append(value)
    return values


def samples(series, np):
    """(inputs [n, look_back, 1], targets [n]) of one half: each look-back window -> the next."""
    n = len(series) - LOOK_BACK
    inputs = np.array([series[i : i + LOOK_BACK] for i in range(n)], dtype=np.float32)
    targets = np.array([series[i + LOOK_BACK] for i in range(n)], dtype=np.float32)
    return inputs.reshape(n, LOOK_BACK, 1), targets


def train(path, seed):
    """Trains the recipe on the CSV's first 600 readings; returns (model, scaler, scores)."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    power = read_power(path)
    if len(power) < READINGS:
        sys.exit(f"{path}: {len(power)} readings, the recipe needs {READINGS}")
    data = np.array(power[:READINGS], dtype=np.float64)
    train_half, test_half = data[: READINGS // 2], data[READINGS // 2 :]
    low, high = float(train_half.min()), float(train_half.max())
    if not high > low:
        sys.exit(f"{path}: the training half is constant at {low} W, it cannot be scaled")

    def scale(values):
        return (values - low) / (high - low)

    def unscale(values):
        return values * (high - low) + low

    train_x, train_y = samples(scale(train_half), np)
    test_x, test_y = samples(scale(test_half), np)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Input(shape=(LOOK_BACK, 1), name="input"),
            tf.keras.layers.LSTM(HIDDEN),
            tf.keras.layers.Dropout(0.1),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mean_squared_error", optimizer="adam")
    started = time.perf_counter()
    model.fit(train_x, train_y, epochs=EPOCHS, batch_size=BATCH, verbose=0)
    seconds = time.perf_counter() - started
    predicted = unscale(model.predict(test_x, verbose=0).reshape(-1).astype(np.float64))
    actual = unscale(test_y.astype(np.float64))
    errors = predicted - actual
    scores = {
        "csv": os.path.basename(path),
        "seed": seed,
        "testRmse": float(np.sqrt(np.mean(errors**2))),
        "testMae": float(np.mean(np.abs(errors))),
        "trainSeconds": seconds,
    }
    return model, {"min": low, "max": high}, scores


def recursive_forecast(model, scaler, history):
    """Keras's own 60-step forecast after `history` (watts): each prediction joins the window."""
    import numpy as np

    low, high = scaler["min"], scaler["max"]
    window = [(v - low) / (high - low) for v in history[-LOOK_BACK:]]
    forecast = []
    for _ in range(HORIZON):
        x = np.array(window, dtype=np.float32).reshape(1, LOOK_BACK, 1)
        step = float(model.predict(x, verbose=0)[0, 0])
        forecast.append(step * (high - low) + low)
        window = window[1:] + [step]
    return forecast


def export(args):
    """Trains, exports ONNX with tf2onnx, and writes the model, scaler and forecast fixture."""
    import numpy as np
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    model, scaler, scores = train(args.csv, args.seed)
    os.makedirs(args.out, exist_ok=True)
    # A symbolic batch (what a Keras user usually exports) and a batch of 1: tf2onnx builds the
    # LSTM's zero initial states at run time for the first, as constants for the second.
    exports = {"model.onnx": None, "model-batch-1.onnx": 1}
    for name, batch in exports.items():
        spec = [tf.TensorSpec([batch, LOOK_BACK, 1], tf.float32, name="input")]
        path = os.path.join(args.out, name)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=args.opset, output_path=path)
    with open(os.path.join(args.out, "scaler.json"), "w") as f:
        json.dump(scaler, f)
        f.write("\n")
    history = read_power(args.history)[args.history_start : args.history_start + LOOK_BACK]
    if len(history) != LOOK_BACK:
        sys.exit(f"{args.history}: fewer than {LOOK_BACK} readings from row {args.history_start}")
    forecast = recursive_forecast(model, scaler, history)
    # onnxruntime on each exported file, as a check that the export computes what Keras does.
    low, high = scaler["min"], scaler["max"]
    onnxruntime_differences = {}
    for name in exports:
        session = onnxruntime.InferenceSession(os.path.join(args.out, name))
        input_name = session.get_inputs()[0].name
        window = [(v - low) / (high - low) for v in history]
        by_onnxruntime = []
        for _ in range(HORIZON):
            x = np.array(window, dtype=np.float32).reshape(1, LOOK_BACK, 1)
            step = float(session.run(None, {input_name: x})[0].reshape(-1)[0])
            by_onnxruntime.append(step * (high - low) + low)
            window = window[1:] + [step]
        onnxruntime_differences[name] = max(abs(a - b) for a, b in zip(forecast, by_onnxruntime))
    fixture = {
        "command": " ".join(["tools/keras/recipe.py"] + sys.argv[1:]),
        "versions": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "opset": args.opset},
        "trainedOn": {"csv": os.path.basename(args.csv), "readings": READINGS, "seed": args.seed},
        "scores": scores,
        "history": {"csv": args.history, "firstRow": args.history_start, "readings": LOOK_BACK},
        "kerasForecast": forecast,
        "onnxruntimeMaxDifference": onnxruntime_differences,
    }
    with open(os.path.join(args.out, "forecast.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(json.dumps(scores))
    for name, difference in onnxruntime_differences.items():
        print(f"{name}: onnxruntime within {difference:.2e} W of Keras", file=sys.stderr)


def seeds(args):
    """Prints one JSON line of scores per (CSV, seed)."""
    for path in args.csv:
        for seed in range(args.first_seed, args.last_seed + 1):
            _, _, scores = train(path, seed)
            print(json.dumps(scores), flush=True)


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    e = commands.add_parser("export", help="train one model and write the forecast fixture")
    e.add_argument("--csv", required=True, help="training data (sensor_timestamp,sensor_id,sensor_energy_value)")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--opset", type=int, default=15)
    e.add_argument("--history", required=True, help="CSV whose readings are the forecast's history")
    e.add_argument("--history-start", type=int, default=0, help="first data row of the history")
    e.add_argument("--out", required=True, help="directory for model.onnx, scaler.json, forecast.json")
    e.set_defaults(run=export)
    s = commands.add_parser("seeds", help="scores of each seed on each CSV, as JSON lines")
    s.add_argument("--csv", required=True, nargs="+")
    s.add_argument("--first-seed", type=int, default=1)
    s.add_argument("--last-seed", type=int, default=5)
    s.set_defaults(run=seeds)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
