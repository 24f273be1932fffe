/** The Prometheus endpoint every RBS process serves (lib/metrics): only GET /metrics, escaped, and never fatal. */
import * as http from 'node:http';
import * as net from 'node:net';
import { Counter, Gauge } from 'prom-client';
import { serveMetrics, type MetricsEndpoint } from '../../lib/metrics/endpoint';
import { boundedLabel, processRegistry } from '../../lib/metrics/registry';
import { lint, scrape, valueOf } from '../harness/prometheus';

let endpoint: MetricsEndpoint | undefined;
afterEach(() => endpoint?.close());

const request = (address: string, method: string, path: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`http://${address}${path}`, { method }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });

test("a process's registry passes promlint, Node's own process metrics included", async () => {
  const registry = processRegistry();
  endpoint = await serveMetrics('127.0.0.1:0', registry);
  const exposition = await scrape(endpoint.address);
  expect(lint(exposition)).toEqual({ parses: true, problems: [] });
  expect(valueOf(exposition, 'process_cpu_seconds_total')).toBeGreaterThan(0);
});

test('hostile label values (quotes, backslashes, newlines, a forged sample) stay inside their label', async () => {
  const registry = processRegistry();
  const counter = new Counter({ name: 'rbs_test_hostile_total', help: 'A counter with hostile labels.', labelNames: ['value'], registers: [registry] });
  const hostile = 'a"b\\c\nrbs_test_hostile_total{value="forged"} 1e9\n# TYPE x counter';
  counter.inc({ value: hostile }, 2);
  endpoint = await serveMetrics('127.0.0.1:0', registry);
  const exposition = await scrape(endpoint.address);
  expect(lint(exposition)).toEqual({ parses: true, problems: [] });
  expect(valueOf(exposition, 'rbs_test_hostile_total', { value: hostile })).toBe(2);
  expect(valueOf(exposition, 'rbs_test_hostile_total', { value: 'forged' })).toBe(0);
});

test('only GET and HEAD of /metrics are served; anything else is refused and serves nothing', async () => {
  endpoint = await serveMetrics('127.0.0.1:0', processRegistry());
  expect(await request(endpoint.address, 'GET', '/')).toMatchObject({ status: 404, body: 'only /metrics is served here\n' });
  expect(await request(endpoint.address, 'GET', '/metrics/../debug')).toMatchObject({ status: 404 });
  expect(await request(endpoint.address, 'POST', '/metrics')).toMatchObject({ status: 405, body: 'metrics are read with GET\n' });
  expect(await request(endpoint.address, 'HEAD', '/metrics')).toMatchObject({ status: 200, body: '' });
  expect(await request(endpoint.address, 'GET', '/metrics?x=1')).toMatchObject({ status: 200 });
});

test('a request line no URL parser accepts is refused, and the process serves on', async () => {
  endpoint = await serveMetrics('127.0.0.1:0', processRegistry());
  const [host, port] = [endpoint.address.split(':')[0], Number(endpoint.address.split(':')[1])];
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.end('GET http://[broken HTTP/1.1\r\nHost: x\r\n\r\n'));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  expect(answer).toMatch(/^HTTP\/1\.1 404 /);
  expect(lint(await scrape(endpoint.address)).parses).toBe(true);
});

test('a collection that throws answers 500 and tells the service why, not the scraper; the endpoint keeps serving', async () => {
  const registry = processRegistry();
  let broken = true;
  new Gauge({
    name: 'rbs_test_flaky',
    help: 'A gauge whose collection fails once.',
    registers: [registry],
    collect() {
      if (broken) throw new Error('password authentication failed for user "rbs" host=db.internal');
      this.set(1);
    },
  });
  const errors: Error[] = [];
  endpoint = await serveMetrics('127.0.0.1:0', registry, { onError: (err) => errors.push(err) });
  expect(await request(endpoint.address, 'GET', '/metrics')).toEqual({ status: 500, body: 'collecting metrics failed\n' });
  expect(errors.map((err) => err.message)).toEqual(['password authentication failed for user "rbs" host=db.internal']);
  broken = false;
  expect(valueOf(await scrape(endpoint.address), 'rbs_test_flaky')).toBe(1);
});

test('a collection that hangs (a stalled store) answers 503 by its deadline, and frees the connection', async () => {
  const registry = processRegistry();
  new Gauge({
    name: 'rbs_test_stalled',
    help: 'A gauge whose collection never ends.',
    registers: [registry],
    collect: () => new Promise<void>(() => undefined),
  });
  const errors: Error[] = [];
  endpoint = await serveMetrics('127.0.0.1:0', registry, { collectTimeoutMs: 200, onError: (err) => errors.push(err) });
  const started = Date.now();
  expect(await request(endpoint.address, 'GET', '/metrics')).toEqual({ status: 503, body: 'collecting metrics took too long\n' });
  expect(Date.now() - started).toBeLessThan(2000);
  expect(errors.map((err) => err.message)).toEqual(['collecting metrics took longer than 200 ms']);
});

test('a bad or taken address is refused, naming it', async () => {
  await expect(serveMetrics('nowhere', processRegistry())).rejects.toThrow("'nowhere' is not host:port");
  await expect(serveMetrics('127.0.0.1:70000', processRegistry())).rejects.toThrow("'127.0.0.1:70000' is not host:port");
  endpoint = await serveMetrics('127.0.0.1:0', processRegistry());
  await expect(serveMetrics(endpoint.address, processRegistry())).rejects.toThrow(`cannot serve metrics on ${endpoint.address}: listen EADDRINUSE`);
});

test('a label takes only known values; anything else is counted as other', () => {
  const known = new Set(['build', 'test']);
  expect(boundedLabel('build', known)).toBe('build');
  expect(boundedLabel('$(rm -rf /)', known)).toBe('other');
  expect(boundedLabel('', known)).toBe('other');
});
