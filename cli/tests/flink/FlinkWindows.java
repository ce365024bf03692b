package io.wattcast.conformance;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.apache.flink.api.common.eventtime.AscendingTimestampsWatermarks;
import org.apache.flink.api.common.eventtime.BoundedOutOfOrdernessWatermarks;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.time.Time;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Windows readings with Apache Flink exactly as the original system did for each device, for the
 * windowing conformance test (cli/tests/windowing_flink.rs).
 *
 * <p>Usage: {@code FlinkWindows <readings.csv> <out.csv> <strategy>...}, a strategy being
 * {@code monotonous} or {@code bounded:<seconds>}. The input holds {@code case,device,second,power}
 * rows in arrival order. For every strategy and device, one pipeline of its own, as the original
 * ran one Flink job per device: the device's readings in file order, event time = second × 1000
 * ms, a watermark from Flink's own generator ({@code forMonotonousTimestamps} or {@code
 * forBoundedOutOfOrderness}) emitted after every event, 60 s tumbling event-time windows,
 * allowed lateness 0, late readings to a side output, and a window function that keeps one
 * reading per second (the last to arrive) and counts the distinct seconds.
 *
 * <p>The cases of a file run one after another through the same pipeline, each shifted by
 * {@link #CASE_SPAN_S} seconds of event time: a case's first reading moves the watermark past
 * every window of the case before, which fires them all as the end of a bounded source would.
 *
 * <p>Output rows: {@code window,<strategy>,<case>,<device>,<start>,<end>,<distinct>,<t=p ...>}
 * and {@code late,<strategy>,<case>,<device>,<second>,<power>,<window start>}, seconds within
 * the case.
 */
public final class FlinkWindows {
  /** Event time between two cases, a multiple of the window; a case's seconds lie in [0, CASE_SPAN_S). */
  static final long CASE_SPAN_S = 6_000_000L;

  static final long WINDOW_MS = 60_000L;

  /** (case, device, event time ms, power W). */
  static final TypeInformation<Tuple4<Integer, Integer, Long, Double>> READING =
      Types.TUPLE(Types.INT, Types.INT, Types.LONG, Types.DOUBLE);

  private FlinkWindows() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      throw new IllegalArgumentException(
          "usage: FlinkWindows <readings.csv> <out.csv> <monotonous|bounded:SECONDS>...");
    }
    List<Tuple4<Integer, Integer, Long, Double>> readings = read(Path.of(args[0]));
    Map<Integer, List<Tuple4<Integer, Integer, Long, Double>>> byDevice =
        readings.stream().collect(Collectors.groupingBy(r -> r.f1, TreeMap::new, Collectors.toList()));

    StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
    env.getConfig().setAutoWatermarkInterval(0); // watermarks come from onEvent only
    DataStream<String> all = null;
    for (int s = 2; s < args.length; s++) {
      String strategy = args[s];
      for (Map.Entry<Integer, List<Tuple4<Integer, Integer, Long, Double>>> device : byDevice.entrySet()) {
        DataStream<String> rows = pipeline(env, strategy, device.getKey(), device.getValue());
        all = all == null ? rows : all.union(rows);
      }
    }
    if (all == null) {
      throw new IllegalArgumentException(args[0] + ": no readings");
    }
    try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(Path.of(args[1]), StandardCharsets.UTF_8));
        CloseableIterator<String> results = all.executeAndCollect("wattcast windowing conformance")) {
      while (results.hasNext()) {
        out.println(results.next());
      }
    }
  }

  /** One device's readings windowed under one watermark strategy: window rows and late rows. */
  static DataStream<String> pipeline(
      StreamExecutionEnvironment env,
      String strategy,
      int device,
      List<Tuple4<Integer, Integer, Long, Double>> readings) {
    String name = strategy + "/device-" + device;
    OutputTag<Tuple4<Integer, Integer, Long, Double>> lateTag = new OutputTag<>("late-" + name, READING);
    SingleOutputStreamOperator<String> windows =
        env.fromCollection(readings, READING)
            .name(name)
            .assignTimestampsAndWatermarks(watermarks(strategy))
            .keyBy(r -> r.f1, Types.INT)
            .window(TumblingEventTimeWindows.of(Time.milliseconds(WINDOW_MS)))
            .allowedLateness(Time.milliseconds(0))
            .sideOutputLateData(lateTag)
            .process(new DistinctSeconds(strategy), Types.STRING);
    DataStream<String> late =
        windows
            .getSideOutput(lateTag)
            .map(
                r -> {
                  long second = r.f2 / 1000;
                  long start = TimeWindow.getWindowStartWithOffset(r.f2, 0, WINDOW_MS) / 1000;
                  return String.join(
                      ",",
                      "late",
                      strategy,
                      Integer.toString(r.f0),
                      Integer.toString(r.f1),
                      Long.toString(second - r.f0 * CASE_SPAN_S),
                      Double.toString(r.f3),
                      Long.toString(start - r.f0 * CASE_SPAN_S));
                },
                Types.STRING);
    return windows.union(late);
  }

  /** Flink's own generator for the strategy, asked for its watermark after every event. */
  static WatermarkStrategy<Tuple4<Integer, Integer, Long, Double>> watermarks(String strategy) {
    Duration bound;
    if (strategy.equals("monotonous")) {
      bound = null;
    } else if (strategy.startsWith("bounded:")) {
      bound = Duration.ofSeconds(Long.parseLong(strategy.substring("bounded:".length())));
    } else {
      throw new IllegalArgumentException("unknown watermark strategy " + strategy);
    }
    WatermarkStrategy<Tuple4<Integer, Integer, Long, Double>> everyEvent =
        WatermarkStrategy.forGenerator(ctx -> new EveryEvent(bound));
    return everyEvent.withTimestampAssigner((reading, previous) -> reading.f2);
  }

  /** Wraps Flink's watermark generator so that it emits after each event, not periodically. */
  static final class EveryEvent implements WatermarkGenerator<Tuple4<Integer, Integer, Long, Double>> {
    private final WatermarkGenerator<Tuple4<Integer, Integer, Long, Double>> flink;

    EveryEvent(Duration bound) {
      flink = bound == null ? new AscendingTimestampsWatermarks<>() : new BoundedOutOfOrdernessWatermarks<>(bound);
    }

    @Override
    public void onEvent(Tuple4<Integer, Integer, Long, Double> event, long timestamp, WatermarkOutput output) {
      flink.onEvent(event, timestamp, output);
      flink.onPeriodicEmit(output);
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
      flink.onPeriodicEmit(output);
    }
  }

  /** A fired window as one row: its distinct seconds, each with the last reading that arrived. */
  static final class DistinctSeconds
      extends ProcessWindowFunction<Tuple4<Integer, Integer, Long, Double>, String, Integer, TimeWindow> {
    private final String strategy;

    DistinctSeconds(String strategy) {
      this.strategy = strategy;
    }

    @Override
    public void process(
        Integer device,
        Context context,
        Iterable<Tuple4<Integer, Integer, Long, Double>> readings,
        Collector<String> out) {
      TreeMap<Long, Double> seconds = new TreeMap<>();
      int caseIndex = -1;
      for (Tuple4<Integer, Integer, Long, Double> r : readings) {
        seconds.put(r.f2 / 1000, r.f3);
        caseIndex = r.f0;
      }
      long shift = caseIndex * CASE_SPAN_S;
      String contents =
          seconds.entrySet().stream()
              .map(e -> (e.getKey() - shift) + "=" + e.getValue())
              .collect(Collectors.joining(" "));
      out.collect(
          String.join(
              ",",
              "window",
              strategy,
              Integer.toString(caseIndex),
              Integer.toString(device),
              Long.toString(context.window().getStart() / 1000 - shift),
              Long.toString(context.window().getEnd() / 1000 - shift),
              Integer.toString(seconds.size()),
              contents));
    }
  }

  /** The readings of a {@code case,device,second,power} CSV, in file order, cases shifted apart. */
  static List<Tuple4<Integer, Integer, Long, Double>> read(Path file) throws IOException {
    List<Tuple4<Integer, Integer, Long, Double>> readings = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String line = in.readLine();
      if (line == null || !line.equals("case,device,second,power")) {
        throw new IOException(file + ":1: expected the header case,device,second,power, got " + line);
      }
      int number = 1;
      int lastCase = 0;
      while ((line = in.readLine()) != null) {
        number++;
        String[] fields = line.split(",", -1);
        if (fields.length != 4) {
          throw new IOException(file + ":" + number + ": expected 4 fields, got " + fields.length);
        }
        int caseIndex = Integer.parseInt(fields[0]);
        long second = Long.parseLong(fields[2]);
        if (caseIndex < 0 || second < 0 || second >= CASE_SPAN_S) {
          throw new IOException(file + ":" + number + ": case must be ≥ 0 and second in [0, " + CASE_SPAN_S + ")");
        }
        if (caseIndex < lastCase) {
          throw new IOException(file + ":" + number + ": case " + caseIndex + " after case " + lastCase + "; cases must come in order");
        }
        lastCase = caseIndex;
        readings.add(
            Tuple4.of(
                caseIndex,
                Integer.parseInt(fields[1]),
                (caseIndex * CASE_SPAN_S + second) * 1000,
                Double.parseDouble(fields[3])));
      }
    }
    return readings;
  }
}
