import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, envName, loadConfig, resolveConfig } from './load.ts';
import { DEFAULTS } from './schema.ts';

test('defaults need no file: HTTP 8080, RTMP 1935, loopback-only publishing', () => {
  const { config } = loadConfig([], {});
  assert.deepEqual(config, DEFAULTS);
  assert.equal(config.http.port, 8080);
  assert.equal(config.rtmp.port, 1935);
  assert.equal(config.auth.loopbackPublish, true);
  assert.equal(config.auth.publishKey, '');
});

test('file < environment < flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-config-'));
  try {
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      'http:\n  port: 1000\n  host: 127.0.0.1\nrtmp:\n  port: 2000\nmse:\n  maxBacklogBytes: 65536\n',
    );
    const env = { SUBSECOND_RTMP_PORT: '3000', SUBSECOND_AUTH_PUBLISH_KEY: 'k' };
    const { config } = loadConfig(['--config', file, '--rtmp.port=4000', '--log.level', 'warn'], env);
    assert.equal(config.http.port, 1000);
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.rtmp.port, 4000);
    assert.equal(config.auth.publishKey, 'k');
    assert.equal(config.mse.maxBacklogBytes, 65536);
    assert.equal(config.log.level, 'warn');
    assert.equal(loadConfig(['--config', file], env).config.rtmp.port, 3000);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('unknown keys and bad values are refused with the key named', () => {
  assert.throws(() => resolveConfig({ http: { prot: 1 } } as never), /unknown setting http\.prot/);
  assert.throws(() => resolveConfig({ htp: {} } as never), /unknown setting htp/);
  assert.throws(() => resolveConfig({ http: { port: 70000 } }), /http\.port: .*65535.*got 70000/);
  assert.throws(() => resolveConfig({ log: { level: 'loud' as never } }), /log\.level/);
  assert.throws(
    () => loadConfig(['--rtmp.enabled', 'maybe'], {}),
    /rtmp\.enabled: expected true or false, got "maybe"/,
  );
  assert.throws(() => loadConfig([], { SUBSECOND_HTTP_PORT: 'x' }), /from environment SUBSECOND_HTTP_PORT/);
  assert.throws(() => loadConfig(['--config', '/nonexistent/c.yaml'], {}), ConfigError);
  assert.throws(() => loadConfig(['--http.port'], {}), /--http\.port needs a value/);
  assert.throws(
    () => loadConfig(['--hls.partTargetMs', '2000', '--hls.segmentTargetMs', '1000'], {}),
    /hls\.partTargetMs: must be below hls\.segmentTargetMs \(got 2000\)/,
  );
});

test("DASH's settings are in dash:, and an old hls.dash* key is refused naming its new one", () => {
  assert.equal(DEFAULTS.dash.enabled, true);
  assert.equal(DEFAULTS.dash.targetLatencyMs, 1000);
  const { config } = loadConfig(['--dash.enabled=false'], { SUBSECOND_DASH_TARGET_LATENCY_MS: '1500' });
  assert.equal(config.dash.enabled, false);
  assert.equal(config.dash.targetLatencyMs, 1500);
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-config-'));
  try {
    const file = join(dir, 'old.yaml');
    writeFileSync(file, 'hls:\n  segmentTargetMs: 2000\n  dashTargetLatencyMs: 1500\n');
    assert.throws(
      () => loadConfig(['--config', file], {}),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message ===
          `hls.dashTargetLatencyMs has moved: use dash.targetLatencyMs instead (in config file ${file})`,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.throws(
    () => resolveConfig({ hls: { dash: false } } as never),
    /hls\.dash has moved: use dash\.enabled instead$/,
  );
  assert.throws(
    () => loadConfig([], { SUBSECOND_HLS_DASH: 'false' }),
    /SUBSECOND_HLS_DASH has moved: use SUBSECOND_DASH_ENABLED instead$/,
  );
  assert.throws(
    () => loadConfig(['--hls.dashTargetLatencyMs', '900'], {}),
    /--hls\.dashTargetLatencyMs has moved: use --dash\.targetLatencyMs instead$/,
  );
});

test('environment names follow the keys', () => {
  assert.equal(envName('http', 'tlsCert'), 'SUBSECOND_HTTP_TLS_CERT');
  assert.equal(envName('mse', 'maxBacklogBytes'), 'SUBSECOND_MSE_MAX_BACKLOG_BYTES');
});

test('config.sample.yaml documents exactly the defaults', () => {
  const sample = new URL('../../config.sample.yaml', import.meta.url).pathname;
  assert.deepEqual(loadConfig(['--config', sample], {}).config, DEFAULTS);
});

test('cluster.redis without cluster.secret is refused, naming the missing key', () => {
  assert.throws(
    () => resolveConfig({ cluster: { redis: 'redis://127.0.0.1:6379' } }),
    /cluster\.secret: cluster\.redis is set, so cluster\.secret must be too/,
  );
  assert.throws(
    () => resolveConfig({ cluster: { redis: 'http://x' } }),
    /cluster\.redis: expected redis:\/\//,
  );
  assert.equal(
    resolveConfig({ cluster: { redis: 'redis://127.0.0.1:6379', secret: 's' } }).cluster.secret,
    's',
  );
});
