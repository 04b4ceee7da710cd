/**
 * Which channel carries a stream's RTP packets from the main process to a WHEP worker more cheaply: the IPC
 * channel with `serialization: 'advanced'` (one message per batch) or an extra stdio pipe (a Unix socket pair)
 * with length-prefixed records. Packets of 1,100 bytes are sent in bursts of one video frame every 33 ms, each
 * burst flushed as one batch (as the server batches per event-loop turn); CPU of both sides from cpuUsage().
 *
 *   node bench/whep-workers/channel.ts [--pps 150,1500,6000] [--seconds 5]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const PACKET = 1100;
const FRAME_MS = 1000 / 30;

/** `-each`: one send per packet instead of one per burst, to show what batching saves. */
type Mode = 'ipc' | 'pipe' | 'ipc-each' | 'pipe-each';

if (process.argv[2] === 'child') {
  const mode = process.argv[3] as Mode;
  let packets = 0;
  let bytes = 0;
  const count = (batch: Buffer) => {
    // Walk the records as the worker does: [u16 length][packet].
    let at = 0;
    while (at + 2 <= batch.length) {
      const length = batch.readUInt16BE(at);
      if (at + 2 + length > batch.length) break;
      packets++;
      bytes += length;
      at += 2 + length;
    }
    return at;
  };
  if (mode.startsWith('ipc')) {
    process.on('message', (m: { batch?: Uint8Array; type?: string }) => {
      if (m.batch) count(Buffer.from(m.batch.buffer, m.batch.byteOffset, m.batch.byteLength));
      else if (m.type === 'report') process.send?.({ packets, bytes, cpu: process.cpuUsage() });
    });
  } else {
    const socket = new Socket({ fd: 4, readable: true, writable: false });
    let pending: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      const data = pending ? Buffer.concat([pending, chunk]) : chunk;
      const used = count(data);
      pending = used < data.length ? data.subarray(used) : null;
    });
    process.on('message', (m: { type?: string }) => {
      if (m.type === 'report') process.send?.({ packets, bytes, cpu: process.cpuUsage() });
    });
  }
  process.on('disconnect', () => process.exit(0));
} else {
  const rates = flag('pps', '150,1500,6000').split(',').map(Number);
  const seconds = Number(flag('seconds', '5'));
  const rows: Record<string, number | string>[] = [];
  for (const pps of rates) {
    for (const mode of ['ipc', 'pipe', 'ipc-each', 'pipe-each'] as Mode[]) {
      const child = fork(import.meta.filename, ['child', mode], {
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      });
      const pipe = child.stdio[4] as Socket | null;
      await new Promise((r) => setTimeout(r, 300));
      const report = () =>
        new Promise<{ packets: number; cpu: NodeJS.CpuUsage }>((resolve) => {
          child.once('message', (m) => resolve(m as { packets: number; cpu: NodeJS.CpuUsage }));
          child.send({ type: 'report' });
        });
      const c0 = await report();
      const p0 = process.cpuUsage();
      const t0 = performance.now();
      const perFrame = Math.max(1, Math.round(pps / 30));
      const payload = Buffer.alloc(PACKET, 7);
      let sent = 0;
      await new Promise<void>((resolve) => {
        const end = t0 + seconds * 1000;
        const tick = setInterval(() => {
          if (performance.now() >= end) {
            clearInterval(tick);
            resolve();
            return;
          }
          const each = mode.endsWith('-each');
          const records = each ? 1 : perFrame;
          for (let n = 0; n < perFrame; n += records) {
            const batch = Buffer.allocUnsafe(records * (PACKET + 2));
            let at = 0;
            for (let i = 0; i < records; i++) {
              batch.writeUInt16BE(PACKET, at);
              payload.copy(batch, at + 2);
              at += PACKET + 2;
            }
            if (mode.startsWith('ipc')) child.send({ batch });
            else pipe?.write(batch);
          }
          sent += perFrame;
        }, FRAME_MS);
      });
      await new Promise((r) => setTimeout(r, 300));
      const p1 = process.cpuUsage(p0);
      const c1 = await report();
      const elapsed = (performance.now() - t0) / 1000;
      const childCpu = (c1.cpu.user + c1.cpu.system - c0.cpu.user - c0.cpu.system) / 1e6;
      const row = {
        mode,
        packetsPerSecond: Math.round(sent / elapsed),
        received: c1.packets - c0.packets,
        sent,
        senderCpuPercent: Number((((p1.user + p1.system) / 1e6 / elapsed) * 100).toFixed(2)),
        workerCpuPercent: Number(((childCpu / elapsed) * 100).toFixed(2)),
        microsecondsPerPacketBothSides: Number(
          ((((p1.user + p1.system) / 1e6 + childCpu) * 1e6) / Math.max(1, sent)).toFixed(2),
        ),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
      child.disconnect();
      await new Promise((r) => child.once('exit', r));
    }
  }
  const file = join(
    import.meta.dirname,
    `../results/whep-workers-channel-${new Date().toISOString().slice(0, 10)}.json`,
  );
  writeFileSync(
    file,
    `${JSON.stringify({ at: new Date().toISOString(), loadAverage: loadavg(), rows }, null, 2)}\n`,
  );
  console.log(`results in ${file}`);
}
