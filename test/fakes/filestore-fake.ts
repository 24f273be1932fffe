/**
 * A FAKE of the Cloud Filestore v1 REST API, on a loopback port, for exactly the endpoints
 * lib/filestore uses. Filestore has no emulator, so this stands in for file.googleapis.com; the
 * client is the real @google-cloud/filestore in its REST mode, authenticating with a throwaway
 * service-account key whose self-signed JWTs the fake verifies.
 *
 * It keeps instances (seeded by tests), backups, snapshots and long-running operations (done
 * after `operationPolls` polls), rejects requests the real API would reject (unknown fields,
 * output-only fields, bad ids and labels, wrong locations, unknown parameters) and can be told to
 * fail a call with a given HTTP status and Google error body.
 */
import * as http from 'node:http';
import { generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import { protos, v1 } from '@google-cloud/filestore';

const api = protos.google.cloud.filestore.v1;

export type FakeFilestoreRpc = 'ListInstances' | 'GetInstance' | 'CreateBackup' | 'GetBackup' | 'CreateSnapshot' | 'GetSnapshot' | 'GetOperation';

/** A failure as Google's front end sends it: an HTTP status and an error body with a status name. */
export interface FakeGoogleError {
  httpStatus: number;
  status: string;
  message?: string;
}

export interface FakeInstanceSpec {
  location: string;
  instance: string;
  /** A v1 Instance.Tier name. */
  tier: keyof typeof api.Instance.Tier;
  capacityGib: number;
  /** The file share; null for a multishare instance, whose shares v1 does not show. */
  share?: string | null;
  labels?: Record<string, string>;
  state?: keyof typeof api.Instance.State;
  createdAt?: Date;
}

interface FakeInstance extends Required<Omit<FakeInstanceSpec, 'location' | 'instance'>> {
  name: string;
}

export interface FakeBackup {
  name: string;
  state: keyof typeof api.Backup.State;
  description: string;
  labels: Record<string, string>;
  sourceInstance: string;
  sourceFileShare: string;
  sourceInstanceTier: keyof typeof api.Instance.Tier;
  capacityGib: number;
  createdAt: Date;
}

export interface FakeSnapshot {
  name: string;
  state: keyof typeof api.Snapshot.State;
  description: string;
  labels: Record<string, string>;
  createdAt: Date;
}

interface FakeOperation {
  name: string;
  target: string;
  kind: 'Backup' | 'Snapshot';
  pollsLeft: number;
  error?: { code: number; message: string };
  done: boolean;
  createdAt: Date;
}

interface Request {
  params: string[];
  query: URLSearchParams;
  body: Record<string, unknown>;
  intEnums: boolean;
}

class FakeApiError extends Error {
  constructor(readonly failure: FakeGoogleError & { message: string }) {
    super(failure.message);
  }
}

const invalid = (message: string) => new FakeApiError({ httpStatus: 400, status: 'INVALID_ARGUMENT', message });
const precondition = (message: string) => new FakeApiError({ httpStatus: 400, status: 'FAILED_PRECONDITION', message });
const notFound = (name: string) => new FakeApiError({ httpStatus: 404, status: 'NOT_FOUND', message: `Resource '${name}' was not found` });
const exists = (name: string) => new FakeApiError({ httpStatus: 409, status: 'ALREADY_EXISTS', message: `Resource '${name}' already exists` });

const ZONE_OR_REGION = /^[a-z]+-[a-z]+[0-9]+(-[a-z])?$/;
const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
const RESOURCE_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The API's label rules, international letters included. */
const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
const NO_BACKUPS = ['HIGH_SCALE_SSD'];
const NO_SNAPSHOTS = ['STANDARD', 'PREMIUM', 'BASIC_HDD', 'BASIC_SSD'];
const SERVICE_ACCOUNT = 'rbs-test@fake-filestore.iam.gserviceaccount.com';
const DEFAULT_MAX_PAGE_SIZE = 50;

/**
 * For a test file: one fake (and one client) for all its tests, reset before each. Call at the top
 * level of the file; the fake listens once the file's beforeAll hooks run.
 */
export function useFakeFilestore(): FakeFilestore {
  const fake = new FakeFilestore();
  beforeAll(() => fake.listen());
  beforeEach(() => fake.reset());
  afterAll(() => fake.stop());
  return fake;
}

const P = '^/v1/projects/([^/]+)/locations/([^/]+)';
const ROUTES: { rpc: FakeFilestoreRpc; method: string; path: RegExp; query: string[] }[] = [
  { rpc: 'ListInstances', method: 'GET', path: new RegExp(`${P}/instances$`), query: ['pageSize', 'pageToken'] },
  { rpc: 'GetInstance', method: 'GET', path: new RegExp(`${P}/instances/([^/]+)$`), query: [] },
  { rpc: 'CreateBackup', method: 'POST', path: new RegExp(`${P}/backups$`), query: ['backupId'] },
  { rpc: 'GetBackup', method: 'GET', path: new RegExp(`${P}/backups/([^/]+)$`), query: [] },
  { rpc: 'CreateSnapshot', method: 'POST', path: new RegExp(`${P}/instances/([^/]+)/snapshots$`), query: ['snapshotId'] },
  { rpc: 'GetSnapshot', method: 'GET', path: new RegExp(`${P}/instances/([^/]+)/snapshots/([^/]+)$`), query: [] },
  { rpc: 'GetOperation', method: 'GET', path: new RegExp(`${P}/operations/([^/]+)$`), query: [] },
];

export class FakeFilestore {
  readonly calls: { rpc: FakeFilestoreRpc | null; method: string; path: string; httpStatus: number }[] = [];
  private readonly instances = new Map<string, FakeInstance>();
  private readonly backups = new Map<string, FakeBackup>();
  private readonly snapshots = new Map<string, FakeSnapshot>();
  private readonly operations = new Map<string, FakeOperation>();
  private readonly failures = new Map<FakeFilestoreRpc, FakeGoogleError[]>();
  private readonly operationFailures = new Map<'CreateBackup' | 'CreateSnapshot', { code: number; message: string }>();
  private readonly server = http.createServer((req, res) => this.serve(req, res));
  private connected: v1.CloudFilestoreManagerClient | undefined;
  private unreachable: string[] = [];
  private maxPageSize = DEFAULT_MAX_PAGE_SIZE;
  private readonly key = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });

  constructor(
    readonly project = 'rbs-fake-project',
    /** How many polls an operation takes to finish. */
    private readonly operationPolls = 2,
  ) {}

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /**
   * The real client in REST mode, pointed at this fake, with the fake's service-account key (it
   * self-signs JWTs, so no token endpoint is involved); one per fake. Node's own fetch replaces
   * gaxios' default, which is a dynamic import() that jest's CommonJS sandbox cannot run.
   */
  client(): v1.CloudFilestoreManagerClient {
    this.connected ??= new v1.CloudFilestoreManagerClient({
      fallback: true,
      protocol: 'http',
      apiEndpoint: '127.0.0.1',
      port: this.port,
      credentials: { client_email: SERVICE_ACCOUNT, private_key: this.key.privateKey },
      clientOptions: { transporterOptions: { fetchImplementation: fetch } },
    });
    return this.connected;
  }

  async stop(): Promise<void> {
    await this.connected?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Forgets every resource, call, planned failure and setting, as a fresh fake would be. */
  reset(): void {
    for (const state of [this.instances, this.backups, this.snapshots, this.operations, this.failures, this.operationFailures]) {
      state.clear();
    }
    this.calls.length = 0;
    this.unreachable = [];
    this.maxPageSize = DEFAULT_MAX_PAGE_SIZE;
  }

  /** ListInstances returns at most this many instances a page. */
  setMaxPageSize(size: number): void {
    this.maxPageSize = size;
  }

  addInstance(spec: FakeInstanceSpec): string {
    const name = `projects/${this.project}/locations/${spec.location}/instances/${spec.instance}`;
    if (!ZONE_OR_REGION.test(spec.location) || !RESOURCE_ID.test(spec.instance)) throw new Error(`fake: bad instance ${name}`);
    this.instances.set(name, {
      name,
      tier: spec.tier,
      capacityGib: spec.capacityGib,
      share: spec.share === undefined ? 'vol1' : spec.share,
      labels: spec.labels ?? {},
      state: spec.state ?? 'READY',
      createdAt: spec.createdAt ?? new Date(),
    });
    return name;
  }

  backup(name: string): FakeBackup | undefined {
    const backup = this.backups.get(name);
    return backup && { ...backup };
  }

  snapshot(name: string): FakeSnapshot | undefined {
    const snapshot = this.snapshots.get(name);
    return snapshot && { ...snapshot };
  }

  /** The next `times` calls of `rpc` fail with `error` (before any state changes). */
  failNext(rpc: FakeFilestoreRpc, error: FakeGoogleError, times = 1): void {
    this.failures.set(rpc, [...(this.failures.get(rpc) ?? []), ...Array<FakeGoogleError>(times).fill(error)]);
  }

  /** The next operation `rpc` starts ends with this error (a canonical gRPC code) instead of a result. */
  failNextOperation(rpc: 'CreateBackup' | 'CreateSnapshot', error: { code: number; message: string }): void {
    this.operationFailures.set(rpc, error);
  }

  /** ListInstances across all locations reports these locations as unreachable. */
  setUnreachable(locations: string[]): void {
    this.unreachable = locations;
  }

  /** Finishes every pending operation, as Google would while nobody polls. */
  completeOperations(): void {
    for (const operation of this.operations.values()) if (!operation.done) this.finish(operation);
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const route = ROUTES.find((r) => r.method === req.method && r.path.test(url.pathname));
      let httpStatus = 200;
      let body: unknown;
      try {
        body = this.handle(req, url, route, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        // A bug in the fake reaches the test through the client, as an INTERNAL error with its stack.
        const failure = err instanceof FakeApiError ? err.failure : { httpStatus: 500, status: 'INTERNAL', message: `fake bug: ${(err as Error).stack}` };
        httpStatus = failure.httpStatus;
        body = { error: { code: httpStatus, message: failure.message, status: failure.status, details: [] } };
      }
      this.calls.push({ rpc: route?.rpc ?? null, method: req.method ?? '', path: url.pathname, httpStatus });
      res.writeHead(httpStatus, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(body));
    });
  }

  private handle(req: http.IncomingMessage, url: URL, route: (typeof ROUTES)[number] | undefined, text: string): unknown {
    this.authenticate(req.headers.authorization);
    if (!route) throw notFound(`${req.method} ${url.pathname}`);
    const params = route.path.exec(url.pathname)!.slice(1).map(decodeURIComponent);
    if (params[0] !== this.project) {
      throw new FakeApiError({ httpStatus: 403, status: 'PERMISSION_DENIED', message: `Permission denied on project ${params[0]}` });
    }
    for (const key of url.searchParams.keys()) {
      if (key !== '$alt' && !route.query.includes(key)) throw invalid(`Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter.`);
    }
    const alt = url.searchParams.get('$alt');
    if (alt !== null && alt !== 'json' && alt !== 'json;enum-encoding=int') throw invalid(`unsupported $alt ${alt}`);
    const failure = this.failures.get(route.rpc)?.shift();
    if (failure) throw new FakeApiError({ ...failure, message: failure.message ?? `fake ${route.rpc} failure` });
    const request: Request = { params, query: url.searchParams, body: parseBody(req, text), intEnums: alt === 'json;enum-encoding=int' };
    return this[route.rpc](request);
  }

  /** Accepts only an RS256 JWT signed by this fake's service-account key, unexpired. */
  private authenticate(authorization: string | undefined): void {
    const unauthenticated = (why: string) =>
      new FakeApiError({ httpStatus: 401, status: 'UNAUTHENTICATED', message: `Request had invalid authentication credentials: ${why}` });
    const [scheme, token] = (authorization ?? '').split(' ');
    const [header, payload, signature] = (token ?? '').split('.');
    if (scheme !== 'Bearer' || !signature) throw unauthenticated('expected a Bearer JWT');
    const signed = verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), this.key.publicKey, Buffer.from(signature, 'base64url'));
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: string; exp?: number };
    if (!signed || claims.iss !== SERVICE_ACCOUNT) throw unauthenticated('not signed by the service account');
    if (!claims.exp || claims.exp * 1000 < Date.now()) throw unauthenticated('expired');
  }

  private ListInstances({ params: [project, location], query, intEnums }: Request): unknown {
    if (location !== '-' && !ZONE_OR_REGION.test(location)) throw invalid(`invalid location ${location}`);
    const prefix = location === '-' ? `projects/${project}/locations/` : `projects/${project}/locations/${location}/`;
    const all = [...this.instances.values()].filter((i) => i.name.startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name));
    const pageSize = Math.min(Number(query.get('pageSize') ?? this.maxPageSize) || this.maxPageSize, this.maxPageSize);
    const offset = query.get('pageToken') ? Number(query.get('pageToken')) : 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > all.length) throw invalid('invalid page token');
    const next = offset + pageSize < all.length ? String(offset + pageSize) : undefined;
    return {
      instances: all.slice(offset, offset + pageSize).map((i) => instanceJson(i, intEnums)),
      ...(next && { nextPageToken: next }),
      ...(location === '-' && this.unreachable.length > 0 && { unreachable: this.unreachable }),
    };
  }

  private GetInstance({ params: [project, location, id], intEnums }: Request): unknown {
    return instanceJson(this.instanceAt(`projects/${project}/locations/${location}/instances/${id}`), intEnums);
  }

  private CreateBackup({ params: [project, location], query, body, intEnums }: Request): unknown {
    if (!REGION.test(location)) throw invalid(`backups are regional: ${location} is not a region`);
    const id = requiredId(query.get('backupId'), 'backup_id');
    checkFields(body, ['description', 'labels', 'sourceInstance', 'sourceFileShare', 'tags'], 'Backup');
    const name = `projects/${project}/locations/${location}/backups/${id}`;
    const source = this.instanceAt(String(body.sourceInstance ?? ''));
    if (body.sourceFileShare !== source.share) throw invalid(`source_file_share ${body.sourceFileShare} is not a share of ${source.name}`);
    if (source.share === null || NO_BACKUPS.includes(source.tier)) throw precondition(`instances of tier ${source.tier} do not support backups`);
    if (source.state !== 'READY') throw precondition(`instance ${source.name} is ${source.state}`);
    if (this.backups.has(name)) throw exists(name);
    this.backups.set(name, {
      name,
      state: 'CREATING',
      description: String(body.description ?? ''),
      labels: body.labels as Record<string, string>,
      sourceInstance: source.name,
      sourceFileShare: source.share,
      sourceInstanceTier: source.tier,
      capacityGib: source.capacityGib,
      createdAt: new Date(),
    });
    return this.startOperation('CreateBackup', name, `projects/${project}/locations/${location}`, intEnums);
  }

  private GetBackup({ params: [project, location, id], intEnums }: Request): unknown {
    const name = `projects/${project}/locations/${location}/backups/${id}`;
    const backup = this.backups.get(name);
    if (!backup) throw notFound(name);
    return backupJson(backup, intEnums);
  }

  private CreateSnapshot({ params: [project, location, instanceId], query, body, intEnums }: Request): unknown {
    const parent = this.instanceAt(`projects/${project}/locations/${location}/instances/${instanceId}`);
    const id = requiredId(query.get('snapshotId'), 'snapshot_id');
    checkFields(body, ['description', 'labels', 'tags'], 'Snapshot');
    if (parent.share === null || NO_SNAPSHOTS.includes(parent.tier)) throw precondition(`instances of tier ${parent.tier} do not support snapshots`);
    if (parent.share.length + id.length > 77) throw invalid('file share name and snapshot id must together be at most 77 characters');
    const name = `${parent.name}/snapshots/${id}`;
    if (this.snapshots.has(name)) throw exists(name);
    this.snapshots.set(name, {
      name,
      state: 'CREATING',
      description: String(body.description ?? ''),
      labels: body.labels as Record<string, string>,
      createdAt: new Date(),
    });
    return this.startOperation('CreateSnapshot', name, `projects/${project}/locations/${location}`, intEnums);
  }

  private GetSnapshot({ params: [project, location, instanceId, id], intEnums }: Request): unknown {
    const name = `projects/${project}/locations/${location}/instances/${instanceId}/snapshots/${id}`;
    const snapshot = this.snapshots.get(name);
    if (!snapshot) throw notFound(name);
    return snapshotJson(snapshot, intEnums);
  }

  private GetOperation({ params: [project, location, id], intEnums }: Request): unknown {
    const name = `projects/${project}/locations/${location}/operations/${id}`;
    const operation = this.operations.get(name);
    if (!operation) throw notFound(name);
    if (!operation.done && --operation.pollsLeft <= 0) this.finish(operation);
    return this.operationJson(operation, intEnums);
  }

  private instanceAt(name: string): FakeInstance {
    const instance = this.instances.get(name);
    if (!instance) throw notFound(name);
    return instance;
  }

  private startOperation(rpc: 'CreateBackup' | 'CreateSnapshot', target: string, parent: string, intEnums: boolean): unknown {
    const operation: FakeOperation = {
      name: `${parent}/operations/operation-${randomUUID()}`,
      target,
      kind: rpc === 'CreateBackup' ? 'Backup' : 'Snapshot',
      pollsLeft: this.operationPolls,
      error: this.operationFailures.get(rpc),
      done: false,
      createdAt: new Date(),
    };
    this.operationFailures.delete(rpc);
    this.operations.set(operation.name, operation);
    return this.operationJson(operation, intEnums);
  }

  private finish(operation: FakeOperation): void {
    operation.done = true;
    const resources = operation.kind === 'Backup' ? this.backups : this.snapshots;
    if (operation.error) resources.delete(operation.target);
    else resources.get(operation.target)!.state = 'READY';
  }

  private operationJson(operation: FakeOperation, intEnums: boolean): unknown {
    const metadata = {
      '@type': 'type.googleapis.com/google.cloud.common.OperationMetadata',
      createTime: operation.createdAt.toISOString(),
      target: operation.target,
      verb: 'create',
      apiVersion: 'v1',
    };
    if (!operation.done) return { name: operation.name, metadata, done: false };
    if (operation.error) return { name: operation.name, metadata, done: true, error: { ...operation.error, details: [] } };
    const response =
      operation.kind === 'Backup' ? backupJson(this.backups.get(operation.target)!, intEnums) : snapshotJson(this.snapshots.get(operation.target)!, intEnums);
    return {
      name: operation.name,
      metadata,
      done: true,
      response: { '@type': `type.googleapis.com/google.cloud.filestore.v1.${operation.kind}`, ...response },
    };
  }
}

function parseBody(req: http.IncomingMessage, text: string): Record<string, unknown> {
  if (req.method !== 'POST') return {};
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw invalid('expected a JSON body');
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // Reported below, as the API does.
  }
  throw invalid('Invalid JSON payload received.');
}

function requiredId(id: string | null, field: string): string {
  if (!id || !RESOURCE_ID.test(id)) throw invalid(`${field} must be a lowercase letter then up to 62 of [a-z0-9-], got ${JSON.stringify(id)}`);
  return id;
}

/** Unknown and output-only fields are errors; so are labels the API would refuse. */
function checkFields(body: Record<string, unknown>, allowed: string[], message: string): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) throw invalid(`Invalid JSON payload received. Unknown or output-only ${message} field "${field}".`);
  }
  if (typeof body.description === 'string' && body.description.length > 2048) throw invalid('description is over 2048 characters');
  if (body.tags !== undefined && Object.keys(body.tags as object).length > 0) throw invalid('tags are not supported by this fake');
  const labels = (body.labels ?? {}) as Record<string, unknown>;
  if (Object.keys(labels).length > 64) throw invalid('at most 64 labels');
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key) || typeof value !== 'string' || !LABEL_VALUE.test(value)) throw invalid(`invalid label ${key}`);
  }
  body.labels = labels;
}

/** The client asks for `$alt=json;enum-encoding=int`, and the API then answers with numbers. */
function enumValue<E extends object>(values: E, name: keyof E & string, intEnums: boolean): string | number {
  return intEnums ? (values[name] as number) : name;
}

function instanceJson(i: FakeInstance, intEnums: boolean): Record<string, unknown> {
  return {
    name: i.name,
    state: enumValue(api.Instance.State, i.state, intEnums),
    createTime: i.createdAt.toISOString(),
    tier: enumValue(api.Instance.Tier, i.tier, intEnums),
    labels: i.labels,
    fileShares: i.share === null ? [] : [{ name: i.share, capacityGb: String(i.capacityGib) }],
    networks: [{ network: 'default', ipAddresses: ['10.0.0.2'] }],
    etag: `"${i.state}-${i.capacityGib}"`,
  };
}

function backupJson(b: FakeBackup, intEnums: boolean): Record<string, unknown> {
  return {
    name: b.name,
    description: b.description,
    state: enumValue(api.Backup.State, b.state, intEnums),
    createTime: b.createdAt.toISOString(),
    labels: b.labels,
    capacityGb: String(b.capacityGib),
    storageBytes: '0',
    sourceInstance: b.sourceInstance,
    sourceFileShare: b.sourceFileShare,
    sourceInstanceTier: enumValue(api.Instance.Tier, b.sourceInstanceTier, intEnums),
  };
}

function snapshotJson(s: FakeSnapshot, intEnums: boolean): Record<string, unknown> {
  return {
    name: s.name,
    description: s.description,
    state: enumValue(api.Snapshot.State, s.state, intEnums),
    createTime: s.createdAt.toISOString(),
    labels: s.labels,
    filesystemUsedBytes: '0',
  };
}
