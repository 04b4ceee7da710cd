/**
 * V8 flags the server runs with (`npm start`, the `subsecond` shebang, the benchmarks). Node cannot take them
 * once started, so each launcher names them; a test keeps the launchers in step with this list.
 *
 * `--max-semi-space-size=2` (MiB): per viewer per frame the send path makes short-lived objects (write
 * requests, stream bookkeeping), and under that allocation rate V8 grows the young generation to its default
 * maximum and keeps it. At 1,000 WebSocket viewers that was ~30 MiB of heap and ~60 KiB of RSS per viewer
 * above the live data; with 2 MiB semi-spaces RSS per viewer measured 12–14 KiB at the same CPU
 * (docs/benchmarks.md, "Steady-state memory").
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
